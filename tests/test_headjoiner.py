"""headjoin.HeadJoiner: a response head held at the app's request leaves with the body, in one
write, over a real uvicorn listener; without the request, writes pass straight through."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from proxykit import WAIT, RecordingTransport

from ingressproxy.guard import RequestLimits, guarded_protocol
from ingressproxy.headjoin import HEAD_WITH_BODY, HeadJoiner
from ingressproxy.testing import serve_in_thread

# Between the head and the body in the app below: long enough that a client thread stalled
# on a loaded machine still reads the unheld head before the body exists.
PAUSE = 1.0


def joiner() -> tuple[HeadJoiner, RecordingTransport]:
    t = RecordingTransport()
    return HeadJoiner(t), t  # type: ignore[arg-type]


def test_a_held_head_leaves_with_the_next_write() -> None:
    j, t = joiner()
    j.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # not held: nobody asked
    j.hold_next()
    j.write(b"head")
    assert t.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    j.write(b"body")
    j.write(b"more")
    assert t.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", b"headbody", b"more"]


def test_flush_and_close_never_lose_a_held_head() -> None:
    j, t = joiner()
    j.flush()  # nothing held: nothing written
    j.hold_next()
    j.write(b"head of a HEAD response")
    j.flush()
    assert t.writes == [b"head of a HEAD response"]
    j.hold_next()
    j.write(b"head")
    j.close()
    assert t.writes[-1] == b"head" and t.closed and j.is_closing()
    assert j.get_extra_info("peername") == "info:peername"  # the rest is the transport's


def app_factory(hold: bool) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if hold:
            scope["extensions"][HEAD_WITH_BODY]["hold"]()
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await asyncio.sleep(PAUSE)
        await send({"type": "http.response.body", "body": b"body"})

    return app


def first_read(port: int, method: bytes = b"GET") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(method + b" / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(65536)


@pytest.mark.parametrize("hold", [True, False])
def test_over_a_real_listener(hold: bool) -> None:
    protocol = guarded_protocol(RequestLimits(), http="httptools")
    with serve_in_thread(app_factory(hold), http=protocol) as server:
        got = first_read(server.port)
        if hold:
            # The head waited for the body: one read has both.
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nbody")
        else:
            # The head left at once; the body came PAUSE seconds later.
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n")
        # HEAD: uvicorn writes no body, so the end of the response sends the held head.
        head = first_read(server.port, b"HEAD")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
