"""The guard's keep-alive timeout (a coarse deadline instead of uvicorn's per-request timer):
an idle keep-alive connection is closed after about `timeout_keep_alive`, and a request in
time disarms it."""

from __future__ import annotations

import socket
import time
from typing import Any

from ingressproxy.guard import RequestLimits, guarded_protocol
from ingressproxy.testing import serve_in_thread

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
