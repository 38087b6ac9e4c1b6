"""HTTPForwarder over real sockets with both kinds of transport: our pool's direct entry
(the default) and any other httpx transport (httpx's own here), which must read the same."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from test_upstream import OK, Upstream, answer, run

from ingressproxy.errors import UpstreamProtocolError
from ingressproxy.ir.model import Endpoint
from ingressproxy.proxy.forward_http import EMPTY_BODY, HTTPForwarder
from ingressproxy.server.settings import Settings

CUT = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"


async def _cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(CUT)
    await writer.drain()
    writer.close()


def forwarder(kind: str) -> HTTPForwarder:
    f = HTTPForwarder(Settings())
    if kind == "httpx":
        f._transport = httpx.AsyncHTTPTransport(retries=0)  # as the benchmark's variant does
    return f


@pytest.mark.parametrize("kind", ["pool", "httpx"])
def test_a_response_reads_the_same_through_either_transport(kind: str) -> None:
    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(OK, ref)) as up:
            ref.append(up)
            f = forwarder(kind)
            endpoint = Endpoint("127.0.0.1", up.port)
            headers = [(b"host", b"app.test")]
            for _ in range(2):
                r = await f.send("GET", endpoint, b"/a?b=1", headers, EMPTY_BODY)
                body = r.complete_body()
                if body is None:
                    body = b"".join([c async for c in r.chunks()])
                await r.aclose()
                assert (r.status, body) == (200, b"hello")
                assert [v for n, v in r.headers if n.lower() == b"x-a"] == [b"1", b"2"]
            await f.aclose()
            assert up.requests[0].startswith(b"GET /a?b=1 HTTP/1.1\r\n")

    run(main())


@pytest.mark.parametrize("kind", ["pool", "httpx"])
def test_a_body_cut_short_is_our_protocol_error(kind: str) -> None:
    async def main() -> None:
        async with Upstream(_cut_short) as up:
            f = forwarder(kind)
            r = await f.send(
                "GET", Endpoint("127.0.0.1", up.port), b"/", [(b"host", b"a")], EMPTY_BODY
            )
            with pytest.raises(UpstreamProtocolError, match="failed mid-body"):
                async for _ in r.chunks():
                    pass
            await r.aclose()
            await f.aclose()

    run(main())
