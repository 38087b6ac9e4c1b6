"""The guard's keep-alive timeout (a coarse deadline instead of uvicorn's per-request timer):
an idle keep-alive connection is closed after about `timeout_keep_alive`, and a request in
time disarms it."""

from __future__ import annotations

import socket
import time
from typing import Any

from ingressproxy.server.guard import RequestLimits, guarded_protocol
from ingressproxy.testing.server import serve_in_thread

WAIT = 10.0
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


def ask(s: socket.socket) -> bytes:
    s.sendall(REQUEST)
    return s.recv(65536)


def test_idle_connections_close_after_the_keep_alive_timeout_and_busy_ones_stay() -> None:
    protocol = guarded_protocol(RequestLimits(), http="httptools")
    with (
        serve_in_thread(app, http=protocol, timeout_keep_alive=2) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as s,
    ):
        # Requests 0.5 s apart (1.5 s of slack for a stalled machine): each disarms the
        # deadline the one before armed, so the connection outlives the 2 s timeout.
        for _ in range(5):
            assert ask(s).endswith(b"\r\n\r\nok")
            time.sleep(0.5)
        assert ask(s).endswith(b"\r\n\r\nok")
        started = time.monotonic()
        # Closed by the server once idle for the timeout (the socket's WAIT bounds the test).
        assert s.recv(1) == b""
        assert time.monotonic() - started >= 1.9  # never early


def test_each_request_on_a_connection_gets_its_own_scope_cycle_and_head_decisions() -> None:
    """Requests on one keep-alive connection each get a fresh scope and response cycle, with
    keep-alive, 100-continue and uvicorn's default headers (its Date, replaced every second)
    decided by their own head and time (the guard builds the cycle in its own copy of uvicorn's
    on_headers_complete)."""
    seen: list[tuple[dict[str, Any], object, list[Any]]] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append((scope, send.__self__, list(scope["headers"])))
        body = b""
        if scope["method"] == "POST":
            message = await receive()  # answers the Expect: 100-continue
            body = message["body"]
        reply = b"got " + body
        headers = [(b"content-length", str(len(reply)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": reply})

    def read_response(s: socket.socket) -> bytes:
        got = b""
        while b"\r\n\r\n" not in got or not got.split(b"\r\n\r\n", 1)[1].startswith(b"got"):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        return got

    protocol = guarded_protocol(RequestLimits(), http="httptools")
    with (
        serve_in_thread(recording, http=protocol, date_header=True) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as s,
    ):
        first = ask(s)
        time.sleep(2.1)  # uvicorn's Date moves on at least once
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        )
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hi")
        second = read_response(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        third = read_response(s)
        assert s.recv(1) == b""  # closed after the response that asked for it
    assert first.endswith(b"\r\n\r\ngot ") and second.endswith(b"\r\n\r\ngot hi")
    assert b"connection: close" not in first + second and b"connection: close" in third
    dates = [line for r in (first, second) for line in r.split(b"\r\n") if line.startswith(b"date")]
    assert len(dates) == 2 and dates[0] != dates[1]
    scopes, cycles, headers = zip(*seen, strict=True)
    assert len({id(x) for x in scopes}) == 3 and len({id(x) for x in cycles}) == 3
    assert [scope["headers"] for scope in scopes] == list(headers)  # none reused or refilled
    assert [scope["method"] for scope in scopes] == ["GET", "POST", "GET"]
