"""What an upstream's response may do to the proxy (issue 20): trailers, oversized heads,
answers to HEAD, connections that die before the head, interim responses, close-delimited
bodies and h2c. Raw-socket upstreams that write exact bytes and count their connections, a
real proxy under both of uvicorn's parsers, raw-socket clients; unit cases of the pool with
the same kind of upstream in the test's own loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
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
    exchange,
    ok,
    read_response,
    run_proxy,
    single,
)
from test_upstream import Upstream, fetch, request, run

from ingressproxy.proxy.headers import HeaderRewriter
from ingressproxy.upstream.pool import MAX_HEAD_BYTES, MAX_HEAD_FIELDS, UpstreamTransport

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


# --------------------------------------------------------------------------- head limits


class Outcome:
    """What a handler thread learnt about its connection, for the test to wait on."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.cut = False  # the proxy closed the connection while we were still writing

    def wait(self) -> None:
        assert self.done.wait(WAIT)


def _filler(conn: Conn, outcome: Outcome, head: bytes, more: Callable[[], bytes] | None) -> None:
    """Answer the first request with `head`, then with more() for as long as the proxy reads."""
    try:
        if conn.read_request() is None:
            return
        conn.sock.sendall(head)
        while more is not None:
            conn.sock.sendall(more())
    except OSError:
        outcome.cut = True
    finally:
        if not outcome.cut:
            outcome.cut = conn.wait_closed()
        outcome.done.set()


OVERSIZED = {
    # 4,001 small fields: 36 KB, within the byte limit, far over the field count.
    "4001-fields": (b"HTTP/1.1 200 OK\r\n" + b"X-F: 1\r\n" * 4001 + b"\r\nok", None),
    # One 32 MB field: a head that does end, far over the byte limit.
    "32-mb": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (32 << 20) + b"\r\n\r\nok", None),
    # Heads that never end, written as fast as the proxy reads.
    "endless-fields": (b"HTTP/1.1 200 OK\r\n", lambda: b"X-Filler: 0123456789\r\n" * 1000),
    "endless-value": (b"HTTP/1.1 200 OK\r\nX-Endless: ", lambda: b"a" * 65536),
    "endless-interim": (b"", lambda: b"HTTP/1.1 100 Continue\r\n\r\n" * 1000),
}


@pytest.mark.parametrize("case", list(OVERSIZED))
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_an_oversized_response_head_is_502_at_once_and_the_connection_dropped(
    http: str, case: str
) -> None:
    head, more = OVERSIZED[case]
    outcome = Outcome()
    with (
        RawUpstream(lambda conn: _filler(conn, outcome, head, more)) as upstream,
        proxied(upstream, http, read_timeout=30.0) as proxy,
    ):
        started = time.monotonic()
        r = exchange(proxy.port, GET % b"big")
        elapsed = time.monotonic() - started
        assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
        assert elapsed < WAIT  # not the 30 s read timeout
        outcome.wait()
        assert outcome.cut  # the proxy dropped that connection
        assert upstream.connections == 1  # and did not try again


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_head_within_the_limits_passes(http: str) -> None:
    fields = MAX_HEAD_FIELDS - 1  # and Content-Length
    value = b"v" * ((MAX_HEAD_BYTES - 2048) // fields)
    head = b"".join(b"X-F%d: %s\r\n" % (i, value) for i in range(fields))

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(ok(b"fits", head.rstrip(b"\r\n")))

    with (
        RawUpstream(handler) as upstream,
        proxied(upstream, http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(GET % b"fits")
        r, _, _ = read_with_trailers(sock, max_head=1 << 17)
    assert (r.status, r.body) == (200, b"fits")
    assert len([n for n, _ in r.headers if n.startswith(b"x-f")]) == fields


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_slowly_dripping_head_is_cut_by_the_read_timeout(http: str) -> None:
    """The read timeout covers the whole head, not the silence between its bytes."""
    outcome = Outcome()
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: drip\r\n" * 50 + b"\r\n"

    def drip(conn: Conn) -> None:
        try:
            if conn.read_request() is None:
                return
            for i in range(len(head)):
                conn.sock.sendall(head[i : i + 1])
                time.sleep(0.02)  # the upstream's pace: 50 bytes a second, never silent
        except OSError:
            outcome.cut = True
        finally:
            outcome.done.set()

    with RawUpstream(drip) as upstream, proxied(upstream, http, read_timeout=1.0) as proxy:
        started = time.monotonic()
        r = exchange(proxy.port, GET % b"slow")
        elapsed = time.monotonic() - started
        assert (r.status, r.body) == (504, b"504 Gateway Timeout\n")
        assert 1.0 <= elapsed < WAIT
        outcome.wait()
        assert outcome.cut


def test_the_pool_bounds_heads_and_trailers_by_its_limits() -> None:
    """UpstreamTransport's own limits: a head over them, and trailers that never end, fail
    the exchange with RemoteProtocolError and close the connection."""
    big_head = b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 2000 + b"\r\nContent-Length: 2\r\n\r\nok"
    many = b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 11 + b"Content-Length: 2\r\n\r\nok"
    fine = b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 9 + b"Content-Length: 2\r\n\r\nok"
    endless_trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"

    answers = {b"/big": big_head, b"/many": many, b"/fine": fine}

    async def main() -> None:
        closed = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while (seen := await ref[0].read_request(reader)) is not None:
                    target = seen.split(b" ")[1]
                    if target == b"/trailers":
                        writer.write(endless_trailers)
                        while True:
                            writer.write(b"X-T: " + b"t" * 100 + b"\r\n")
                            await writer.drain()
                    writer.write(answers[target])
                    await writer.drain()
            finally:
                closed.set()  # the pool closed the connection

        ref: list[Upstream] = []
        async with Upstream(handler) as up:
            ref.append(up)
            transport = UpstreamTransport(max_head_bytes=1024, max_head_fields=10)
            assert (await fetch(transport, request(up.port, b"/fine")))[2] == b"ok"
            for target, match in [(b"/big", "1024 bytes"), (b"/many", "10 fields")]:
                closed.clear()
                with pytest.raises(httpx.RemoteProtocolError, match=match):
                    await fetch(transport, request(up.port, target))
                await closed.wait()
            closed.clear()
            response = await transport.handle_async_request(request(up.port, b"/trailers"))
            with pytest.raises(httpx.RemoteProtocolError, match="trailers over 1024 bytes"):
                async for _ in response.stream:  # type: ignore[union-attr]
                    pass
            await response.aclose()
            await closed.wait()
            await transport.aclose()

    run(main())


# --------------------------------------------------------------------------- HEAD


def _head_answers(conn: Conn) -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Length: none\r\n\r\n",
        ]
    )
    while (seen := conn.read_request()) is not None:
        if seen.method == b"HEAD":
            conn.send(next(answers))
        else:
            conn.send(ok(b"got"))


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_answers_to_head_give_the_upstream_connection_back(http: str) -> None:
    """Whatever an answer to HEAD says of its body (a length, chunked, nothing), it has none:
    the connection serves the next request. Three HEADs then a GET over one connection."""
    with (
        RawUpstream(_head_answers) as upstream,
        proxied(upstream, http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        results = []
        for method in (b"HEAD", b"HEAD", b"HEAD", b"GET"):
            sock.sendall(b"%s /h HTTP/1.1\r\nHost: up.test\r\n\r\n" % method)
            r = read_response(sock, method)
            results.append((r.status, r.body, r.complete))
        assert results == [(200, b"", True)] * 3 + [(200, b"got", True)]
        assert upstream.connections == 1
        assert [s.method for s in upstream.seen] == [b"HEAD", b"HEAD", b"HEAD", b"GET"]


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_an_answer_to_head_that_sends_a_body_anyway_is_not_reused(http: str) -> None:
    def handler(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            if seen.method == b"HEAD":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
            else:
                conn.send(ok(b"clean"))

    with (
        RawUpstream(handler) as upstream,
        proxied(upstream, http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: up.test\r\n\r\n")
        head = read_response(sock, b"HEAD")
        sock.sendall(GET % b"g")
        get = read_response(sock)
        assert (head.status, head.body, get.status, get.body) == (200, b"", 200, b"clean")
        assert upstream.connections == 2  # the stray bytes retired the first connection


@pytest.mark.parametrize(
    ("version", "connection", "reused"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"Connection: close\r\n", False),
        (b"1.0", b"", False),
        (b"1.0", b"Connection: keep-alive\r\n", True),
    ],
)
def test_an_answer_to_head_without_a_length_keeps_the_connection_as_connection_says(
    version: bytes, connection: bytes, reused: bool
) -> None:
    answer = b"HTTP/%s 200 OK\r\n%s\r\n" % (version, connection)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await ref[0].read_request(reader) is not None:
            writer.write(answer)
            await writer.drain()
            if connection == b"Connection: close\r\n" or (version == b"1.0" and not connection):
                return

    ref: list[Upstream] = []

    async def main() -> None:
        async with Upstream(handler) as up:
            ref.append(up)
            transport = UpstreamTransport()
            for _ in range(2):
                status, _, body = await fetch(transport, request(up.port, method="HEAD"))
                assert (status, body) == (200, b"")
            assert up.connections == (1 if reused else 2)
            await transport.aclose()

    run(main())


# --------------------------------------------------------------------------- retries


def _dies_before_the_head(ending: bytes) -> Callable[[Conn], None]:
    """The first connection reads its request, sends `ending` and closes; later ones serve."""

    def handler(conn: Conn) -> None:
        first = conn.upstream.connections == 1
        while conn.read_request() is not None:
            if first:
                conn.sock.sendall(ending)
                return  # closed by RawUpstream
            conn.send(ok(b"second try"))

    return handler


DEATHS = {
    "nothing": b"",
    "mid-head": b"HTTP/1.1 200 OK\r\nX-Partial: 1\r\n",
    "after-100-continue": b"HTTP/1.1 100 Continue\r\n\r\n",
}


@pytest.mark.parametrize("death", list(DEATHS))
@pytest.mark.parametrize("method", [b"GET", b"PUT", b"POST"])
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_connection_dying_before_the_head_is_retried_for_idempotent_methods_only(
    http: str, method: bytes, death: str
) -> None:
    with (
        RawUpstream(_dies_before_the_head(DEATHS[death])) as upstream,
        proxied(upstream, http) as proxy,
    ):
        r = exchange(
            proxy.port,
            b"%s /r HTTP/1.1\r\nHost: up.test\r\nContent-Length: 4\r\n\r\nbody" % method,
            method,
        )
        seen = [(s.method, s.body) for s in upstream.seen]
    if method == b"POST":
        assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
        assert seen == [(b"POST", b"body")]  # never sent twice
    else:
        assert (r.status, r.body) == (200, b"second try")
        assert seen == [(method, b"body")] * 2


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "separate-writes"])
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_interim_responses_are_skipped_and_the_final_answer_is_passed_on(
    http: str, split: bool
) -> None:
    parts = [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal",
    ]

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if split:
                for part in parts:
                    conn.sock.sendall(part)
            else:
                conn.sock.sendall(b"".join(parts))
            conn.send(b"")

    with (
        RawUpstream(handler) as upstream,
        proxied(upstream, http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"POST /i HTTP/1.1\r\nHost: up.test\r\nContent-Length: 2\r\n\r\nhi")
        raw = b""
        while not raw.endswith(b"final"):
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
        sock.sendall(GET % b"again")
        again = read_response(sock)
    assert raw.startswith(b"HTTP/1.1 201 ")  # never an interim 1xx first
    assert b"style.css" not in raw
    assert b"x-final: yes" in raw.lower()
    assert again.status == 201
    assert upstream.connections == 1


CLOSE_DELIMITED = {
    "http-1.0": b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n",
    "http-1.0-keep-alive": b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
    "connection-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
}


@pytest.mark.parametrize("case", list(CLOSE_DELIMITED))
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_close_delimited_bodies_reach_http11_clients_whole(http: str, case: str) -> None:
    body = os.urandom(1 << 20) + b"the end"

    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.sock.sendall(CLOSE_DELIMITED[case] + body)
            conn.sock.shutdown(socket.SHUT_WR)

    with (
        RawUpstream(handler) as upstream,
        proxied(upstream, http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(GET % b"big")
        r = read_response(sock)
        assert (r.status, r.complete, len(r.body), r.body == body) == (200, True, len(body), True)
        # A clean end: the client's connection is still good for another request.
        sock.sendall(GET % b"next")
        assert read_response(sock).status == 200
        assert upstream.connections == 2


# --------------------------------------------------------------------------- h2c


def _record_heads(heads: list[bytes]) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            heads.append(bytes(conn.raw.split(b"\r\n\r\n", 1)[0]).lower())
            conn.raw.clear()
            conn.send(ok())

    return handler


@pytest.mark.parametrize(
    "connection",
    [
        b"",
        b"Connection: Upgrade\r\n",
        b"Connection: keep-alive\r\n",
        b"Connection: HTTP2-Settings\r\n",
    ],
    ids=["none", "upgrade-only", "keep-alive", "settings-only"],
)
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_h2c_is_stripped_whatever_connection_lists(http: str, connection: bytes) -> None:
    heads: list[bytes] = []
    with RawUpstream(_record_heads(heads)) as upstream, proxied(upstream, http) as proxy:
        r = exchange(
            proxy.port,
            b"GET / HTTP/1.1\r\nHost: up.test\r\n"
            + connection
            + b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        )
    assert (r.status, r.body) == (200, b"ok")  # a plain answer, never 101
    (head,) = heads
    assert b"\r\nupgrade:" not in head
    assert b"\r\nhttp2-settings:" not in head
    assert b"aamaaabkaaqaap__" not in head
    assert b"\r\nconnection:" not in head


def test_http2_settings_is_dropped_by_the_header_pass_alone() -> None:
    head = HeaderRewriter().request(
        [(b"host", b"a"), (b"upgrade", b"h2c"), (b"http2-settings", b"AAMAAABk")],
        client="127.0.0.1",
        scheme="http",
        server_port=80,
    )
    assert not [n for n, _ in head.headers if n in (b"upgrade", b"http2-settings")]


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_an_upstream_101_never_reaches_the_client(http: str) -> None:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
            conn.wait_closed()

    with RawUpstream(handler) as upstream, proxied(upstream, http) as proxy:
        r = exchange(
            proxy.port,
            b"GET / HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        )
    assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
