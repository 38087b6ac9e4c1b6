"""cycle.ProxyCycle: uvicorn's response cycle with the head's fields checked in two searches.
It must write exactly what uvicorn's RequestResponseCycle writes, refuse exactly what it
refuses, and be what the guarded listener uses. With BODY_FOLLOWS in the start message the
same bytes leave, the head joined to the first body message's write."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from proxykit import WAIT, RecordingTransport
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from ingressproxy.server.cycle import BODY_FOLLOWS, ProxyCycle
from ingressproxy.server.guard import RequestLimits, guarded_protocol
from ingressproxy.testing.server import serve_in_thread


def run(
    cls: type[RequestResponseCycle],
    messages: list[dict[str, Any]],
    *,
    method: str = "GET",
    keep_alive: bool = True,
    default_headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[list[bytes], str | None, dict[str, Any]]:
    """What a cycle of class `cls` writes for `messages`, the error it raises (if any), and
    its state afterwards."""
    transport = RecordingTransport()
    completed: list[bool] = []

    async def main() -> str | None:
        cycle = cls(
            scope={  # type: ignore[typeddict-item]
                "type": "http",
                "method": method,
                "path": "/p",
                "raw_path": b"/p",
                "query_string": b"",
                "http_version": "1.1",
                "client": ("127.0.0.1", 1),
                "headers": [],
            },
            transport=transport,  # type: ignore[arg-type]
            flow=FlowControl(transport),  # type: ignore[arg-type]
            logger=logging.getLogger("test.cycle"),
            access_logger=logging.getLogger("test.cycle.access"),
            access_log=False,
            default_headers=default_headers or [],
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=keep_alive,
            on_response=lambda: completed.append(True),
        )
        try:
            for message in messages:
                await cycle.send(message)  # type: ignore[arg-type]
        except RuntimeError as exc:
            return str(exc)
        finally:
            state.update(
                started=cycle.response_started,
                complete=cycle.response_complete,
                keep_alive=cycle.keep_alive,
                chunked=cycle.chunked_encoding,
                expected=cycle.expected_content_length,
                on_response=bool(completed),
                closed=transport.closed,
            )
        return None

    state: dict[str, Any] = {}
    error = asyncio.run(main())
    return transport.writes, error, state


def start(headers: list[tuple[bytes, bytes]], status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


PROXIED = [
    (b"Server", b"nginx/1.22.1"),
    (b"Date", b"Fri, 27 Nov 2026 05:40:00 GMT"),
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"Content-Length", b"5"),
    (b"ETag", b'"6567-5"'),
    (b"X-Tab", b"a\tb"),
    (b"X-Empty", b""),
]

CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "proxied head and body": ([start(PROXIED), body(b"hello")], {}),
    "HEAD": ([start(PROXIED), body(b"")], {"method": "HEAD"}),
    "no length: chunked": ([start([(b"a", b"1")]), body(b"ab", True), body(b"c")], {}),
    "no length, 204": ([start([(b"a", b"1")], 204), body(b"")], {}),
    "app's own chunked": (
        [start([(b"Transfer-Encoding", b"Chunked")]), body(b"xy", True), body(b"")],
        {},
    ),
    "connection close": ([start([(b"Connection", b"Keep-Alive, Close")]), body(b"")], {}),
    "not keep-alive": ([start([(b"content-length", b"0")]), body(b"")], {"keep_alive": False}),
    "default headers": (
        [start([(b"content-length", b"1")]), body(b"x")],
        {"default_headers": [(b"server", b"uvicorn")]},
    ),
    # A generator is used up by one run: each run gets a fresh one (see the test).
    "headers as a generator of lists": ([start([]), body(b"x")], {"generator": True}),
    "headers as a tuple": ([start(((b"content-length", b"1"),)), body(b"x")], {}),  # type: ignore[arg-type]
    "bad name (space)": ([start([(b"bad name", b"v")])], {}),
    "bad name (colon)": ([start([(b"ok", b"v"), (b"a:b", b"v")])], {}),
    "bad name (control)": ([start([(b"a\x01", b"v")])], {}),
    "bad value (newline)": ([start([(b"a", b"v"), (b"b", b"x\r\ny: z")])], {}),
    "bad value (NUL)": ([start([(b"a", b"\x00")])], {}),
    "body too long": ([start([(b"content-length", b"1")]), body(b"xy")], {}),
    "body too short": ([start([(b"content-length", b"3")]), body(b"xy")], {}),
    "body first": ([body(b"x")], {}),
    "start twice": ([start([]), start([])], {}),
    "after the end": ([start([(b"content-length", b"0")]), body(b""), body(b"")], {}),
}


@pytest.mark.parametrize("case", CASES)
def test_writes_and_refuses_exactly_what_uvicorns_cycle_does(case: str) -> None:
    messages, options = CASES[case]
    if options.get("generator"):
        pairs = [[b"content-length", b"1"], [b"A", b"b"]]

        def fresh() -> list[dict[str, Any]]:
            return [start(iter(pairs)), body(b"x")]  # type: ignore[arg-type]

        ours = run(ProxyCycle, fresh())
        theirs = run(RequestResponseCycle, fresh())
        assert ours[1] is None and b"content-length: 1\r\na: b\r\n" in ours[0][0]
    else:
        ours = run(ProxyCycle, messages, **options)
        theirs = run(RequestResponseCycle, messages, **options)
    assert ours == theirs
    if case.startswith("bad "):
        assert ours[1] is not None and ours[0] == []  # refused, nothing written


FOLLOWED = [
    case for case in CASES if not case.startswith("bad ") and "generator" not in CASES[case][1]
]


@pytest.mark.parametrize("case", FOLLOWED)
def test_body_follows_joins_the_head_to_the_first_body_write(case: str) -> None:
    messages, options = CASES[case]
    flagged = [dict(m) for m in messages]
    if flagged[0]["type"] == "http.response.start":
        flagged[0][BODY_FOLLOWS] = True
    ours = run(ProxyCycle, flagged, **options)
    theirs = run(RequestResponseCycle, messages, **options)
    writes, error, state = theirs
    assert ours[2] == state and ours[1] == error
    if len(writes) >= 2:
        assert ours[0] == [writes[0] + writes[1], *writes[2:]]
    elif error is not None and writes:
        # Refused after the head, before any body write (too long a body, a second start):
        # the held head never leaves; uvicorn's run_asgi then closes the connection, as it
        # does after uvicorn's lone head.
        assert writes == [writes[0]] and ours[0] == []
    else:
        assert ours[0] == writes  # HEAD: the head alone, when the (empty) body message comes


def test_a_held_head_waits_for_the_body_message() -> None:
    flagged = {**start([(b"content-length", b"2")]), BODY_FOLLOWS: True}
    writes, error, state = run(ProxyCycle, [flagged])
    assert writes == [] and error is None and state["started"] and not state["complete"]
    writes, error, state = run(ProxyCycle, [flagged, body(b"h", True), body(b"i")])
    assert writes[1:] == [b"i"] and writes[0].endswith(b"\r\n\r\nh") and state["complete"]


# Between the head and the body in the app below: long enough that a client thread stalled
# on a loaded machine still reads the unheld head before the body exists.
PAUSE = 1.0


def first_read(port: int, method: bytes = b"GET") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(method + b" / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(65536)


@pytest.mark.parametrize("follows", [True, False])
def test_body_follows_over_a_real_listener(follows: bool) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = start([(b"content-length", b"4")])
        if follows:
            message[BODY_FOLLOWS] = True
        await send(message)
        await asyncio.sleep(PAUSE)
        await send(body(b"body"))

    protocol = guarded_protocol(RequestLimits(), http="httptools")
    with serve_in_thread(app, http=protocol) as server:
        got = first_read(server.port)
        if follows:
            # The head waited for the body: one read has both.
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nbody")
        else:
            # The head left at once; the body came PAUSE seconds later.
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n")
        # HEAD: no body is written, so the body message sends the held head alone.
        head = first_read(server.port, b"HEAD")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")


def test_the_guarded_listener_uses_it_and_drops_a_bad_head() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(type(send.__self__).__name__)  # send is the cycle's bound method
        value = b"x\ny" if scope["path"] == "/bad" else b"ok"
        await send(start([(b"x-value", value), (b"content-length", b"2")]))
        await send(body(b"hi"))

    protocol = guarded_protocol(RequestLimits(), http="httptools")
    with serve_in_thread(app, http=protocol) as server:
        for path, expect_ok in ((b"/good", True), (b"/bad", False)):
            with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as s:
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                got = s.recv(65536)
            if expect_ok:
                assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-value: ok\r\n" in got
            else:
                # As under uvicorn's own cycle: the response had started, so the connection
                # is dropped rather than answered.
                assert got == b""
    assert seen == ["ProxyCycle", "ProxyCycle"]
