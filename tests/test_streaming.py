"""Bodies through the proxy under both parsers: big uploads and downloads byte for byte,
server-sent events one by one, bodiless responses, `Expect: 100-continue`, body size limits,
and back-pressure from a slow reader. (The 1 GiB / resident-memory run is
benchmarks/streaming.py; gzip pass-through is in test_proxy.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
from collections.abc import Iterator

import httpx
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
from starlette.types import Receive, Scope, Send

from ingressproxy.testing.server import ServerThread, serve_in_thread

MiB = 1024 * 1024
SIZE = 64 * MiB


def blocks(total: int, size: int = MiB) -> Iterator[bytes]:
    """`total` bytes of distinct 1 MiB blocks (a counter in each), cheap to regenerate."""
    base = hashlib.sha256(b"seed").digest() * (size // 32)
    for i in range(0, total, size):
        n = min(size, total - i)
        yield (i.to_bytes(8, "big") + base[8:])[:n]


def digest(total: int) -> str:
    h = hashlib.sha256()
    for block in blocks(total):
        h.update(block)
    return h.hexdigest()


EVENTS = [threading.Event() for _ in range(3)]


async def upstream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """/download?N streams N bytes of blocks(); /upload answers {"bytes", "sha256"} of what it
    read; /events sends three server-sent events, each once the test saw the previous one."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/upload":
        h, size = hashlib.sha256(), 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            h.update(message.get("body", b""))
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        answer = json.dumps({"bytes": size, "sha256": h.hexdigest()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})
        return
    if path == "/download":
        total = int(scope["query_string"])
        length = str(total).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        for block in blocks(total):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/events":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for i, seen in enumerate(EVENTS):
            event = f"id: {i}\nevent: tick\ndata: {i}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
            # The next event only once the client has this one through the proxy: a proxy
            # that buffered would stall here (bounded by WAIT) and the test would fail.
            if not await asyncio.to_thread(seen.wait, WAIT):
                break
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with serve_in_thread(upstream_app, lifespan="off") as server:
        yield server


@pytest.fixture(scope="module", params=HTTP_IMPLS)
def proxy(request: pytest.FixtureRequest, upstream: ServerThread) -> Iterator[Running]:
    with run_proxy(single("stream.test", upstream.port), request.param) as running:
        yield running


@pytest.fixture
def client(proxy: Running) -> Iterator[httpx.Client]:
    headers = {"host": "stream.test"}
    with httpx.Client(base_url=proxy.url, headers=headers, trust_env=False, timeout=WAIT) as c:
        yield c


def test_a_64_mib_download_arrives_byte_for_byte(client: httpx.Client) -> None:
    h, size = hashlib.sha256(), 0
    with client.stream("GET", f"/download?{SIZE}") as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            h.update(chunk)
            size += len(chunk)
    assert size == SIZE
    assert h.hexdigest() == digest(SIZE)


def test_a_64_mib_chunked_upload_arrives_byte_for_byte(client: httpx.Client) -> None:
    r = client.post("/upload", content=blocks(SIZE))
    assert r.json() == {"bytes": SIZE, "sha256": digest(SIZE)}


def test_server_sent_events_arrive_one_by_one(client: httpx.Client) -> None:
    for event in EVENTS:
        event.clear()
    received: list[str] = []
    with client.stream("GET", "/events") as r:
        assert r.headers["content-type"] == "text/event-stream"
        buffer = b""
        for chunk in r.iter_raw():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                received.append(event.decode())
                EVENTS[len(received) - 1].set()
    assert received == [f"id: {i}\nevent: tick\ndata: {i}" for i in range(3)]


# --------------------------------------------------------------------------- bodiless responses


def _bodiless(conn: Conn) -> None:
    while (seen := conn.read_request()) is not None:
        if seen.method == b"HEAD":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        elif seen.target == b"/204":
            conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif seen.target == b"/304":
            conn.send(b'HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: "v1"\r\n\r\n')
        else:
            conn.send(ok(b"after"))


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_head_204_and_304_carry_no_body_and_keep_the_connection_usable(http: str) -> None:
    with (
        RawUpstream(_bodiless) as upstream,
        run_proxy(single("stream.test", upstream.port), http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        results = []
        for method, target in [
            (b"HEAD", b"/"),
            (b"GET", b"/204"),
            (b"GET", b"/304"),
            (b"GET", b"/"),
        ]:
            sock.sendall(b"%s %s HTTP/1.1\r\nHost: stream.test\r\n\r\n" % (method, target))
            # h11 knows these carry no body: any stray byte would break the next response.
            r = read_response(sock, method)
            results.append((r.status, r.body, r.complete))
        assert results == [
            (200, b"", True),
            (204, b"", True),
            (304, b"", True),
            (200, b"after", True),
        ]


# --------------------------------------------------------------------------- request bodies


def _echo_body(conn: Conn) -> None:
    while (seen := conn.read_request()) is not None:
        expect = b"expect" in [n for n, _ in seen.headers]
        conn.send(ok(seen.body + (b" (expect passed on)" if expect else b"")))


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_expect_100_continue(http: str) -> None:
    with (
        RawUpstream(_echo_body) as upstream,
        run_proxy(single("stream.test", upstream.port), http) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: stream.test\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1)  # byte by byte: nothing of the final answer is consumed
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"hello")
        r = read_response(sock, b"POST")
    assert (r.status, r.body) == (200, b"hello")


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_declared_body_over_the_limit_is_413_before_any_upstream_contact(http: str) -> None:
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(single("stream.test", upstream.port), http, max_body_size=10) as proxy,
    ):
        r = exchange(
            proxy.port,
            b"POST / HTTP/1.1\r\nHost: stream.test\r\nContent-Length: 1000000\r\n"
            b"Expect: 100-continue\r\n\r\n",
            b"POST",
            check_closed=True,
        )
        small = exchange(
            proxy.port,
            b"POST / HTTP/1.1\r\nHost: stream.test\r\nContent-Length: 10\r\n\r\n0123456789",
        )
        assert (r.status, r.body, r.closed) == (413, b"413 Content Too Large\n", True)
        assert small.status == 200
        assert [s.body for s in upstream.seen] == [b"0123456789"]  # only the one that fit


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_chunked_body_growing_past_the_limit_is_cut(http: str) -> None:
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(single("stream.test", upstream.port), http, max_body_size=100_000) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: stream.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (10_000, b"c" * 10_000)
        try:
            for _ in range(50):  # 500 kB offered; the proxy stops reading at 100 kB
                sock.sendall(chunk)
        except OSError:
            pass
        r = read_response(sock, b"POST")
        assert r.status == 413
        assert r.closed or is_closed(sock)
        assert not any(seen.complete for seen in upstream.seen)


# --------------------------------------------------------------------------- back-pressure


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_slow_reader_back_pressures_the_upstream(http: str) -> None:
    """The client stops reading: the upstream must soon be unable to send more, instead of the
    proxy buffering the whole (1 GiB) response in memory."""
    offered = 1024 * MiB
    sent = [0]
    blocked = threading.Event()

    def flood(conn: Conn) -> None:
        conn.read_request()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % offered)
        conn.sock.settimeout(1.0)  # a send blocked this long means the proxy stopped reading
        block = b"b" * (256 * 1024)
        try:
            while sent[0] < offered:
                conn.sock.sendall(block)
                sent[0] += len(block)
        except TimeoutError:
            blocked.set()

    with (
        RawUpstream(flood) as upstream,
        run_proxy(single("stream.test", upstream.port), http) as proxy,
        socket.socket() as sock,
    ):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", proxy.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: stream.test\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert blocked.wait(WAIT * 3)  # and then we read nothing more
        assert sent[0] < 64 * MiB
