"""Hostile and malformed requests against the real protocol stack (guard.py + uvicorn + the
proxy), under both of uvicorn's parsers, over raw sockets: what the client gets back, that the
connection is closed, and what (nothing) reaches the upstream."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from proxykit import (
    HTTP_IMPLS,
    WAIT,
    Conn,
    RawUpstream,
    Running,
    exchange,
    is_closed,
    ok,
    read_response,
    run_proxy,
    serve_ok,
    single,
)

from ingressproxy.ir.snapshot import Snapshot
from ingressproxy.server.guard import RequestLimits, check_head

HOST = b"guard.test"


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    with RawUpstream(serve_ok) as up:
        yield up


@pytest.fixture(scope="module", params=HTTP_IMPLS)
def proxy(request: pytest.FixtureRequest, upstream: RawUpstream) -> Iterator[Running]:
    with run_proxy(single("guard.test", upstream.port), request.param) as running:
        yield running


def untouched(upstream: RawUpstream, before: tuple[int, int]) -> bool:
    return (upstream.connections, len(upstream.seen)) == before


def snapshot(upstream: RawUpstream) -> tuple[int, int]:
    return (upstream.connections, len(upstream.seen))


def test_a_plain_request_gets_through(proxy: Running, upstream: RawUpstream) -> None:
    r = exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: guard.test\r\nConnection: close\r\n\r\n")
    assert (r.status, r.body) == (200, b"ok")


# --------------------------------------------------------------------------- smuggling

POST = b"POST / HTTP/1.1\r\nHost: guard.test\r\n"
SMUGGLING: dict[str, tuple[bytes, int]] = {
    "content-length-and-chunked": (
        POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "chunked-and-content-length": (
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        400,
    ),
    "two-different-content-lengths": (
        POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    "content-length-with-sign": (POST + b"Content-Length: +3\r\n\r\nabc", 400),
    "negative-content-length": (POST + b"Content-Length: -3\r\n\r\nabc", 400),
    "hex-content-length": (POST + b"Content-Length: 0x3\r\n\r\nabc", 400),
    "two-numbers-content-length": (POST + b"Content-Length: 3 3\r\n\r\nabc", 400),
    "content-length-over-int64": (POST + b"Content-Length: 99999999999999999999\r\n\r\na", 400),
    "gzip-transfer-encoding": (POST + b"Transfer-Encoding: gzip\r\n\r\nabc", 400),
    "gzip-then-chunked": (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    "chunked-twice-in-one-field": (
        POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "two-transfer-encoding-fields": (
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "identity-transfer-encoding": (POST + b"Transfer-Encoding: identity\r\n\r\n", 400),
    "xchunked": (POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    "vertical-tab-before-chunked": (
        POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "transfer-encoding-on-http-1.0": (
        b"POST / HTTP/1.0\r\nHost: guard.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "missing-host-on-http-1.1": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: guard.test\r\nHost: other.test\r\n\r\n", 400),
    "space-before-colon": (POST + b"Content-Length : 3\r\n\r\nabc", 400),
    "nul-in-a-value": (b"GET / HTTP/1.1\r\nHost: guard.test\r\nX-A: a\x00b\r\n\r\n", 400),
    "absolute-form-target": (b"GET http://guard.test/ HTTP/1.1\r\nHost: guard.test\r\n\r\n", 400),
    "connect-method": (b"CONNECT guard.test:443 HTTP/1.1\r\nHost: guard.test\r\n\r\n", 400),
    "http-2.0-request-line": (b"GET / HTTP/2.0\r\nHost: guard.test\r\n\r\n", 505),
}


@pytest.mark.parametrize("case", list(SMUGGLING))
def test_ambiguous_requests_are_refused_and_never_reach_the_upstream(
    proxy: Running, upstream: RawUpstream, case: str
) -> None:
    request, status = SMUGGLING[case]
    before = snapshot(upstream)
    r = exchange(proxy.port, request, check_closed=True)
    assert r.status == status
    assert r.closed  # whatever followed on the connection can no longer be framed
    assert b"Traceback" not in r.body and len(r.body) < 64
    assert untouched(upstream, before)


@pytest.mark.parametrize(
    ("case", "chunked_body"),
    [
        ("non-hex chunk size", b"zz\r\nabc\r\n0\r\n\r\n"),
        ("negative chunk size", b"-3\r\nabc\r\n0\r\n\r\n"),
        ("chunk without its CRLF", b"3\r\nabcX0\r\n\r\n"),
    ],
)
def test_malformed_chunks_are_refused_and_no_request_completes_upstream(
    proxy: Running, case: str, chunked_body: bytes
) -> None:
    with RawUpstream(serve_ok) as upstream:
        proxy.holder.swap(Snapshot(single("chunks.test", upstream.port)))
        try:
            r = exchange(
                proxy.port,
                b"POST / HTTP/1.1\r\nHost: chunks.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunked_body,
                check_closed=True,
            )
        finally:
            proxy.holder.swap(Snapshot(single("guard.test", 1)))
        assert r.status == 400
        assert r.closed
        # The body is read before an upstream is contacted, so a body broken from its first
        # bytes never leaves; a break further in aborts the upstream request mid-body.
        assert not any(seen.complete for seen in upstream.seen)


def test_an_oversized_chunk_size_never_completes_upstream(proxy: Running) -> None:
    """llhttp refuses a chunk size beyond 64 bits; h11 reads up to 20 hex digits and then waits
    for that much data. Either way the upstream never receives a complete request."""
    with RawUpstream(serve_ok) as upstream:
        proxy.holder.swap(Snapshot(single("chunks.test", upstream.port)))
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock:
                sock.sendall(
                    b"POST / HTTP/1.1\r\nHost: chunks.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"
                )
                sock.shutdown(socket.SHUT_WR)
                r = read_response(sock, b"POST")
        finally:
            proxy.holder.swap(Snapshot(single("guard.test", 1)))
        assert r.status in (0, 400)  # 400 from httptools; h11 just sees the client leave
        for conn_seen in upstream.seen:
            assert not conn_seen.complete


# --------------------------------------------------------------------------- limits


def test_header_bytes_over_the_limit_is_431(proxy: Running, upstream: RawUpstream) -> None:
    before = snapshot(upstream)
    big = b"X-Big: " + b"a" * 40_000 + b"\r\n"
    r = exchange(
        proxy.port, b"GET / HTTP/1.1\r\nHost: guard.test\r\n" + big + b"\r\n", check_closed=True
    )
    assert (r.status, r.closed) == (431, True)
    assert untouched(upstream, before)


def test_header_count_over_the_limit_is_431(proxy: Running, upstream: RawUpstream) -> None:
    before = snapshot(upstream)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    r = exchange(
        proxy.port, b"GET / HTTP/1.1\r\nHost: guard.test\r\n" + many + b"\r\n", check_closed=True
    )
    assert (r.status, r.closed) == (431, True)
    assert untouched(upstream, before)


def test_request_target_over_the_limit_is_414(proxy: Running, upstream: RawUpstream) -> None:
    before = snapshot(upstream)
    r = exchange(
        proxy.port,
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: guard.test\r\n\r\n",
        check_closed=True,
    )
    assert (r.status, r.closed) == (414, True)
    assert untouched(upstream, before)


@pytest.mark.parametrize("what", ["header", "target"])
def test_limits_hold_while_the_head_is_still_arriving(proxy: Running, what: str) -> None:
    """A head that never ends is refused once it passes the limit, not buffered forever."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock:
        if what == "header":
            sock.sendall(b"GET / HTTP/1.1\r\nHost: guard.test\r\nX-Endless: ")
        else:
            sock.sendall(b"GET /")
        sent = 0
        # 1 KiB at a time until the proxy answers (bounded: a megabyte, or WAIT per piece).
        while sent < 1_000_000 and not select.select([sock], [], [], 0.01)[0]:
            try:
                sock.sendall(b"a" * 1024)
            except OSError:
                break
            sent += 1024
        r = read_response(sock)
    assert r.status == (431 if what == "header" else 414)
    assert sent < 100_000  # refused around the limit, not after buffering everything


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_limits_are_configurable(http: str) -> None:
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(
            single("guard.test", upstream.port),
            http,
            max_headers=5,
            max_uri_length=64,
            max_header_bytes=200,
        ) as proxy,
    ):
        six = b"".join(b"X-H%d: v\r\n" % i for i in range(5))
        assert (
            exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: guard.test\r\n" + six + b"\r\n").status
            == 431
        )
        four = b"".join(b"X-H%d: v\r\n" % i for i in range(3))
        assert (
            exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: guard.test\r\n" + four + b"\r\n").status
            == 200
        )
        assert (
            exchange(
                proxy.port, b"GET /" + b"a" * 64 + b" HTTP/1.1\r\nHost: guard.test\r\n\r\n"
            ).status
            == 414
        )
        big = b"X-Big: " + b"a" * 200 + b"\r\n"
        assert (
            exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: guard.test\r\n" + big + b"\r\n").status
            == 431
        )


# --------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_slowloris_is_cut_at_the_header_deadline(http: str) -> None:
    """One byte at a time: the head is refused with 408 at the deadline, long before the
    client would have finished it."""
    head = b"GET / HTTP/1.1\r\nHost: guard.test\r\n" + b"X-Slow: " + b"s" * 400 + b"\r\n\r\n"
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(single("guard.test", upstream.port), http, header_timeout=1.0) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        cut = threading.Event()

        def trickle() -> None:
            for i in range(len(head)):
                if cut.is_set():
                    return
                try:
                    sock.send(head[i : i + 1])
                except OSError:
                    return
                time.sleep(0.02)  # the attack's pace (~50 bytes a second), not a synchronisation

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        r = read_response(sock)
        cut.set()
        sender.join(WAIT)
        assert r.status == 408
        assert r.closed or is_closed(sock)
        assert upstream.connections == 0


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_stalled_keep_alive_request_is_cut_at_the_header_deadline(http: str) -> None:
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(single("guard.test", upstream.port), http, header_timeout=0.5) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: guard.test\r\n\r\n")
        assert read_response(sock).status == 200
        sock.sendall(b"GET / HTTP/1.1\r\nHo")  # ... and nothing more
        r = read_response(sock)
        assert r.status == 408
        assert r.closed or is_closed(sock)


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_an_idle_new_connection_is_closed_at_the_header_deadline(http: str) -> None:
    with (
        run_proxy(single("guard.test", 1), http, header_timeout=0.5) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        assert sock.recv(100) == b""  # closed without an answer: nothing was asked


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_idle_keep_alive_time_does_not_count_as_header_time(http: str) -> None:
    """The deadline runs from a request's first byte (or from accept), not across the pause
    between keep-alive requests (uvicorn's --timeout-keep-alive bounds that)."""
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(single("guard.test", upstream.port), http, header_timeout=0.5) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: guard.test\r\n\r\n")
            assert read_response(sock).status == 200
            time.sleep(1.0)  # an idle client, longer than the header deadline


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_stalled_body_is_408_and_the_upstream_never_gets_a_complete_request(
    http: str,
) -> None:
    def hold(conn: Conn) -> None:
        conn.read_request()

    with (
        RawUpstream(hold) as upstream,
        run_proxy(single("guard.test", upstream.port), http, body_timeout=0.5) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: guard.test\r\nContent-Length: 10\r\n\r\nabc")
        r = read_response(sock, b"POST")
        assert r.status == 408
        assert r.closed or is_closed(sock)
        assert not any(seen.complete for seen in upstream.seen)


# --------------------------------------------------------------------------- what goes upstream


def _raw_head(conn: Conn) -> bytes:
    return bytes(conn.raw).partition(b"\r\n\r\n")[0]


@pytest.fixture
def recorder() -> Iterator[tuple[RawUpstream, list[bytes]]]:
    heads: list[bytes] = []

    def record(conn: Conn) -> None:
        while conn.read_request() is not None:
            heads.append(_raw_head(conn))
            conn.raw.clear()
            conn.send(ok())

    with RawUpstream(record) as up:
        yield up, heads


def _fields(head: bytes) -> list[tuple[bytes, bytes]]:
    lines = head.split(b"\r\n")[1:]
    return [(n.strip().lower(), v.strip()) for n, _, v in (line.partition(b":") for line in lines)]


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_every_upstream_request_has_one_framing_header_or_none(
    http: str, recorder: tuple[RawUpstream, list[bytes]]
) -> None:
    upstream, heads = recorder
    with run_proxy(single("guard.test", upstream.port), http) as proxy:
        get = exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: guard.test\r\n\r\n")
        sized = exchange(proxy.port, POST + b"Content-Length: 3\r\n\r\nabc")
        chunked = exchange(
            proxy.port, POST + b"Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        old = exchange(
            proxy.port, b"POST / HTTP/1.0\r\nHost: guard.test\r\nContent-Length: 2\r\n\r\nab"
        )
    assert [r.status for r in (get, sized, chunked, old)] == [200] * 4
    framing = [
        [(n, v) for n, v in _fields(head) if n in (b"content-length", b"transfer-encoding")]
        for head in heads
    ]
    assert framing == [
        [],
        [(b"content-length", b"3")],
        [(b"transfer-encoding", b"chunked")],
        [(b"content-length", b"2")],
    ]


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_spoofed_forwarding_headers_never_reach_the_upstream(
    http: str, recorder: tuple[RawUpstream, list[bytes]]
) -> None:
    upstream, heads = recorder
    with run_proxy(single("guard.test", upstream.port), http) as proxy:
        r = exchange(
            proxy.port,
            b"GET / HTTP/1.1\r\nHost: guard.test\r\n"
            b"X-Forwarded-For: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.7\r\n"
            b"X-Forwarded_For: 6.6.6.8\r\nx_forwarded_proto: https\r\n"
            b"X-Real-IP: 6.6.6.9\r\nX_Real_IP: 6.6.6.10\r\nX-Forwarded-Host: evil.test\r\n"
            b"Connection: X-Forwarded-For, X-Real-IP, X-Forwarded-Proto\r\n\r\n",
        )
    assert r.status == 200
    (head,) = heads  # recorded before the upstream answered, so before exchange() returned
    fields = _fields(head)
    names = [n for n, _ in fields]
    assert [v for n, v in fields if n == b"x-forwarded-for"] == [b"127.0.0.1"]
    assert [v for n, v in fields if n == b"x-real-ip"] == [b"127.0.0.1"]
    assert [v for n, v in fields if n == b"x-forwarded-proto"] == [b"http"]
    assert [v for n, v in fields if n == b"x-forwarded-host"] == [b"guard.test"]
    assert not [n for n in names if b"_" in n]
    assert b"connection" not in names
    assert b"6.6.6" not in head


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_h2c_upgrade_is_stripped(http: str, recorder: tuple[RawUpstream, list[bytes]]) -> None:
    upstream, heads = recorder
    with run_proxy(single("guard.test", upstream.port), http) as proxy:
        r = exchange(
            proxy.port,
            b"GET / HTTP/1.1\r\nHost: guard.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        )
    assert (r.status, r.body) == (200, b"ok")  # a plain answer, never 101
    (head,) = heads  # recorded before the upstream answered, so before exchange() returned
    names = [n for n, _ in _fields(head)]
    assert b"upgrade" not in names
    assert b"http2-settings" not in names
    assert b"connection" not in names


# --------------------------------------------------------------------------- check_head


LIMITS = RequestLimits(max_uri_length=20, max_header_bytes=100, max_headers=3)


@pytest.mark.parametrize(
    ("version", "target", "headers", "expected"),
    [
        (b"1.1", b"/", [(b"host", b"a")], None),
        (b"1.0", b"/", [], None),
        (b"1.1", b"*", [(b"host", b"a")], 400),  # OPTIONS only
        (b"1.1", b"/" + b"a" * 20, [(b"host", b"a")], 414),
        (b"1.1", b"/", [(b"host", b"a")] + [(b"x", b"y")] * 3, 431),
        (b"1.1", b"/", [(b"host", b"a"), (b"x", b"y" * 100)], 431),
        (b"1.1", b"/", [], 400),
        (b"1.0", b"/", [(b"host", b"a"), (b"host", b"b")], 400),
        (b"1.1", b"/", [(b"host", b"a"), (b"content-length", b" 12 ")], None),
        (b"1.1", b"/", [(b"host", b"a"), (b"transfer-encoding", b"CHUNKED")], None),
        (b"1.0", b"/", [(b"transfer-encoding", b"chunked")], 400),
        (b"0.9", b"/", [], 505),
    ],
)
def test_check_head(
    version: bytes, target: bytes, headers: list[tuple[bytes, bytes]], expected: int | None
) -> None:
    refusal = check_head(b"GET", target, version, headers, LIMITS)
    assert (refusal[0] if refusal else None) == expected


def test_options_star_is_allowed_by_check_head() -> None:
    assert check_head(b"OPTIONS", b"*", b"1.1", [(b"host", b"a")], LIMITS) is None
