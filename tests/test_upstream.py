"""UpstreamTransport against real sockets: framing, keep-alive reuse, errors as httpx's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from ingressproxy.upstream.pool import UpstreamTransport

WAIT = 10.0
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    """A raw TCP server on 127.0.0.1:0 in the test's loop, counting connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Upstream:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request head (and a Content-Length body), or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        body = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                body = await reader.readexactly(int(line.split(b":")[1]))
            if line.lower() == b"transfer-encoding: chunked":
                body = await reader.readuntil(b"0\r\n\r\n")
        self.requests.append(head + body)
        return head + body


def answer(response: bytes, upstream_ref: list[Upstream]) -> Handler:
    """A keep-alive server answering every request with `response`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await upstream_ref[0].read_request(reader) is not None:
            writer.write(response)
            await writer.drain()

    return handler


def request(port: int, target: bytes = b"/x", method: str = "GET", **kw: Any) -> httpx.Request:
    timeouts = kw.pop("timeouts", {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0})
    return httpx.Request(
        method,
        f"http://127.0.0.1:{port}",
        headers=kw.pop("headers", [(b"host", b"app.test")]),
        stream=kw.pop("stream", httpx.ByteStream(b"")),
        extensions={"timeout": timeouts, "target": target},
    )


async def fetch(transport: UpstreamTransport, req: httpx.Request) -> tuple[int, Any, bytes]:
    response = await transport.handle_async_request(req)
    try:
        body = b"".join([c async for c in response.stream])  # type: ignore[union-attr]
    finally:
        await response.aclose()
    return response.status_code, response.headers, body


def run(coro: Awaitable[None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(WAIT):
            await coro

    asyncio.run(bounded())


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello"


def test_sends_the_request_as_given_and_reuses_the_connection() -> None:
    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(OK, ref)) as up:
            ref.append(up)
            transport = UpstreamTransport()
            for _ in range(3):
                status, headers, body = await fetch(transport, request(up.port, b"/a%2Fb?q=1"))
                assert (status, body) == (200, b"hello")
                assert headers.get_list("x-a") == ["1", "2"]
            await transport.aclose()
            assert up.connections == 1
            # The target byte for byte, our headers only: nothing added.
            assert up.requests[0] == b"GET /a%2Fb?q=1 HTTP/1.1\r\nhost: app.test\r\n\r\n"

    run(main())


def test_chunked_and_until_close_bodies() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"

    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(chunked, ref)) as up:
            ref.append(up)
            transport = UpstreamTransport()
            assert (await fetch(transport, request(up.port)))[2] == b"abcde"
            assert (await fetch(transport, request(up.port)))[2] == b"abcde"
            assert up.connections == 1
            await transport.aclose()

        async def close_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await ref2[0].read_request(reader)
            writer.write(until_close)
            await writer.drain()

        ref2: list[Upstream] = []
        async with Upstream(close_after) as up2:
            ref2.append(up2)
            transport = UpstreamTransport()
            assert (await fetch(transport, request(up2.port)))[2] == b"until the end"
            assert (await fetch(transport, request(up2.port)))[2] == b"until the end"
            assert up2.connections == 2  # a body ended by the close is never reused
            await transport.aclose()

    run(main())


def test_head_and_204_have_no_body_and_interim_responses_are_dropped() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"

    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(head, ref)) as up:
            ref.append(up)
            transport = UpstreamTransport()
            status, headers, body = await fetch(transport, request(up.port, method="HEAD"))
            assert (status, headers["content-length"], body) == (200, "100", b"")
            await transport.aclose()
        ref2: list[Upstream] = []
        async with Upstream(answer(early, ref2)) as up2:
            ref2.append(up2)
            transport = UpstreamTransport()
            status, headers, body = await fetch(transport, request(up2.port))
            assert (status, body, "link" in headers) == (204, b"", False)
            await transport.aclose()

    run(main())


def test_request_bodies_are_framed_as_their_headers_say() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b""
        yield b"defg"

    class Streamed(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for c in chunks():
                yield c

    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(OK, ref)) as up:
            ref.append(up)
            transport = UpstreamTransport()
            te = [(b"host", b"a"), (b"transfer-encoding", b"chunked")]
            await fetch(transport, request(up.port, method="POST", headers=te, stream=Streamed()))
            cl = [(b"host", b"a"), (b"content-length", b"5")]
            body = httpx.ByteStream(b"12345")
            await fetch(transport, request(up.port, method="PUT", headers=cl, stream=body))
            await transport.aclose()
            assert up.requests[0].endswith(b"\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
            assert up.requests[1].endswith(b"content-length: 5\r\n\r\n12345")

    run(main())


def test_a_close_before_any_response_byte_reads_like_httpcore() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ref[0].read_request(reader)

    ref: list[Upstream] = []

    async def main() -> None:
        async with Upstream(hang_up) as up:
            ref.append(up)
            transport = UpstreamTransport()
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await fetch(transport, request(up.port))
            await transport.aclose()

    run(main())


def test_a_reused_connection_closed_before_any_response_byte_reads_the_same() -> None:
    """A pooled connection starts each exchange fresh (finish() resets it): a hang-up after
    a first complete exchange is "without sending a response" (what the proxy retries for an
    idempotent request), not a response cut short."""

    async def once_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ref[0].read_request(reader)
        writer.write(OK)
        await writer.drain()
        await ref[0].read_request(reader)  # the second request, never answered

    ref: list[Upstream] = []

    async def main() -> None:
        async with Upstream(once_then_hang_up) as up:
            ref.append(up)
            transport = UpstreamTransport()
            assert (await fetch(transport, request(up.port)))[2] == b"hello"
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await fetch(transport, request(up.port))
            await transport.aclose()
            assert up.connections == 1  # the second request went out on the pooled one

    run(main())


def test_a_body_cut_short_is_a_protocol_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ref[0].read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    ref: list[Upstream] = []

    async def main() -> None:
        async with Upstream(cut) as up:
            ref.append(up)
            transport = UpstreamTransport()
            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await fetch(transport, request(up.port))
            await transport.aclose()

    run(main())


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nsecret",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nsecret",
        b"HELLO secret\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    ],
)
def test_bad_framing_is_a_protocol_error_and_the_connection_is_dropped(response: bytes) -> None:
    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(response, ref)) as up:
            ref.append(up)
            transport = UpstreamTransport()
            with pytest.raises(httpx.RemoteProtocolError):
                await fetch(transport, request(up.port))
            await transport.aclose()

    run(main())


def test_connect_errors_and_timeouts_are_httpx_exceptions() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ref[0].read_request(reader)
        await reader.read()  # never answers

    ref: list[Upstream] = []

    async def main() -> None:
        transport = UpstreamTransport()
        async with Upstream(silent) as up:
            ref.append(up)
            port = up.port
            quick = {"connect": 5.0, "read": 0.2, "write": 5.0, "pool": 5.0}
            with pytest.raises(httpx.ReadTimeout):
                await fetch(transport, request(port, timeouts=quick))
        # The server is gone: nothing listens on its port now.
        with pytest.raises(httpx.ConnectError):
            await fetch(transport, request(port))
        await transport.aclose()

    run(main())


def test_a_full_pool_waits_then_times_out() -> None:
    async def main() -> None:
        arrived = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if ref[0].connections > 1:
                await answer(OK, ref)(reader, writer)  # later connections are answered
                return
            await ref[0].read_request(reader)
            arrived.set()
            await reader.read()

        ref: list[Upstream] = []
        async with Upstream(silent) as up:
            ref.append(up)
            transport = UpstreamTransport(max_connections=1)
            first = asyncio.create_task(transport.handle_async_request(request(up.port)))
            await arrived.wait()  # the first exchange holds the only slot
            quick = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 0.2}
            with pytest.raises(httpx.PoolTimeout):
                await transport.handle_async_request(request(up.port, timeouts=quick))
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            # Its slot is free again: a new exchange gets a connection.
            assert (await fetch(transport, request(up.port, timeouts=quick)))[0] == 200
            await transport.aclose()

    run(main())


def test_expired_idle_connections_are_not_reused() -> None:
    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(OK, ref)) as up:
            ref.append(up)
            transport = UpstreamTransport(keepalive_expiry=0.0)
            await fetch(transport, request(up.port))
            await fetch(transport, request(up.port))
            assert up.connections == 2
            await transport.aclose()

    run(main())


def test_bytes_after_a_complete_response_retire_the_connection() -> None:
    async def main() -> None:
        ref: list[Upstream] = []
        async with Upstream(answer(OK + b"HTTP/1.1 200 OK\r\n", ref)) as up:
            ref.append(up)
            transport = UpstreamTransport()
            assert (await fetch(transport, request(up.port)))[2] == b"hello"
            assert (await fetch(transport, request(up.port)))[2] == b"hello"
            assert up.connections == 2
            await transport.aclose()

    run(main())
