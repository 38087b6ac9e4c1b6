"""What an upstream's response may do to the proxy (issue 20): chunked trailers. Raw-socket
upstreams that write exact bytes and count their connections, a real proxy under both of
uvicorn's parsers, raw-socket clients; unit cases of the pool with the same kind of upstream in
the test's own loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

import h11
import httpx
import pytest
from proxykit import (
    HTTP_IMPLS,
    WAIT,
    Conn,
    RawResponse,
    RawUpstream,
    Running,
    ok,
    read_response,
    run_proxy,
    single,
)
from test_upstream import Upstream, fetch, request, run

from ingressproxy.upstream.pool import UpstreamTransport

HOST = b"up.test"
GET = b"GET /%s HTTP/1.1\r\nHost: up.test\r\n\r\n"


def proxied(
    upstream: RawUpstream, http: str, **settings: Any
) -> contextlib.AbstractContextManager[Running]:
    return run_proxy(single("up.test", upstream.port), http, **settings)


# --------------------------------------------------------------------------- trailers

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
BODY = b"5\r\nhello\r\n6\r\n world\r\n"
TRAILERS = {
    # Taken as header fields, this one set a cookie when the trailers came with the head.
    "set-cookie": b"0\r\nSet-Cookie: session=evil\r\nX-Checksum: abc\r\n\r\n",
    # And this one, framing, made the answer a 502 (or, arriving later, cut it short).
    "framing": (
        b"0\r\nSet-Cookie: session=evil\r\nContent-Length: 5\r\nX-Checksum: abc\r\n"
        b"Transfer-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n"
    ),
}


def read_with_trailers(
    sock: socket.socket,
    on_body: Callable[[bytes], None] = lambda body: None,
    *,
    max_head: int = 16384,
) -> tuple[RawResponse, list[tuple[bytes, bytes]], bytes]:
    """One response to a GET read with h11 as read_response does, plus the trailer fields it
    carried and every byte the proxy sent for it; `on_body` sees the body so far as it grows.
    `max_head`: h11's limit on the head (16 KiB by default)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
    conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"host", b"x")]))
    conn.send(h11.EndOfMessage())
    raw = bytearray()
    status, body = 0, bytearray()
    headers: list[tuple[bytes, bytes]] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            raw += data
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += event.data
            on_body(bytes(body))
        elif isinstance(event, h11.EndOfMessage):
            response = RawResponse(status, headers, bytes(body), complete=True)
            return response, list(event.headers), bytes(raw)
        elif isinstance(event, h11.ConnectionClosed):
            return RawResponse(status, headers, bytes(body), False, True), [], bytes(raw)


@pytest.mark.parametrize("te", [b"", b"TE: trailers\r\n"], ids=["plain", "te-trailers"])
@pytest.mark.parametrize("timing", ["with-the-head", "later"])
@pytest.mark.parametrize("trailers", list(TRAILERS))
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_trailers_never_become_header_fields_and_are_dropped(
    http: str, trailers: str, timing: str, te: bytes
) -> None:
    """A trailer Set-Cookie must not take effect, a trailer Content-Length must not turn the
    answer into a 502 (or cut it), and none reaches the client, which uvicorn's HTTP/1.1
    servers could not send as trailers anyway. The connection stays in use on both sides."""
    body_read = threading.Event()

    def handler(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            if seen.target != b"/t":
                conn.send(ok(b"second"))
            elif timing == "later":
                conn.send(CHUNKED_HEAD + BODY)
                body_read.wait(WAIT)  # the proxy has passed the head and the body on
                conn.sock.sendall(TRAILERS[trailers])
            else:
                conn.send(CHUNKED_HEAD + BODY + TRAILERS[trailers])

    with (
        RawUpstream(handler) as upstream,
        proxied(upstream, http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"GET /t HTTP/1.1\r\nHost: up.test\r\n" + te + b"\r\n")

        def whole_body_read(body: bytes) -> None:
            if body == b"hello world":
                body_read.set()

        response, sent_trailers, raw = read_with_trailers(sock, whole_body_read)
        assert (response.status, response.body, response.complete) == (200, b"hello world", True)
        names = [n.lower() for n, _ in response.headers]
        assert b"set-cookie" not in names
        assert b"x-checksum" not in names
        assert b"content-length" not in names
        assert sent_trailers == []
        assert b"evil" not in raw and b"abc" not in raw
        assert raw.endswith(b"0\r\n\r\n")
        # The client's connection goes on, and so does the upstream's, unless a trailer
        # made llhttp think otherwise (`Transfer-Encoding: gzip` there: closing is safe).
        sock.sendall(GET % b"second")
        second = read_response(sock)
        assert (second.status, second.body) == (200, b"second")
    assert upstream.connections == (1 if trailers == "set-cookie" else 2)


def test_after_a_trailer_content_length_the_next_head_is_checked_strictly_again() -> None:
    """Trailers may hold Content-Length (llhttp is made lenient for them), the next response's
    head on the same connection may not hold it with Transfer-Encoding."""
    chunked = CHUNKED_HEAD + BODY + b"0\r\nContent-Length: 5\r\nSet-Cookie: a=b\r\n\r\n"
    both = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in (chunked, both):
            if await ref[0].read_request(reader) is None:
                return
            writer.write(response)
            await writer.drain()
        await reader.read()

    ref: list[Upstream] = []

    async def main() -> None:
        async with Upstream(handler) as up:
            ref.append(up)
            transport = UpstreamTransport()
            status, headers, body = await fetch(transport, request(up.port))
            assert (status, body, "set-cookie" in headers) == (200, b"hello world", False)
            with pytest.raises(httpx.RemoteProtocolError, match="Content-Length"):
                await fetch(transport, request(up.port))
            assert up.connections == 1
            await transport.aclose()

    run(main())
