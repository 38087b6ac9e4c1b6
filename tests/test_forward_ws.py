"""WebSockets through the proxy under both parsers: a real uvicorn WebSocket upstream, the
`websockets` client on the other side, and everything that may go wrong before and after the
handshake."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import websockets.exceptions
import websockets.sync.client
from proxykit import HTTP_IMPLS, WAIT, Running, dead_port, make_table, route, run_proxy, service
from starlette.types import Receive, Scope, Send

from ingressproxy.ir.snapshot import Snapshot
from ingressproxy.ir.table import RouteTable
from ingressproxy.proxy.forward_ws import sendable_close_code
from ingressproxy.testing.server import serve_in_thread


@dataclass
class Closes:
    """Close codes and reasons the upstream received from the proxy."""

    seen: list[tuple[int, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, code: int, reason: str) -> None:
        with self.changed:
            self.seen.append((code, reason))
            self.changed.notify_all()

    def wait(self, count: int) -> list[tuple[int, str]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.seen) >= count, WAIT)
            return list(self.seen)


def ws_upstream(closes: Closes) -> object:
    """/ws/echo echoes; "close CODE REASON" makes it close; /ws/headers sends the handshake it
    got as JSON first; /ws/forbidden refuses with 403. Subprotocols: the last offered of
    chat.v1/chat.v2."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        path = scope["path"]
        if path == "/ws/forbidden":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain"), (b"x-why", b"policy")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"nope"})
            return
        offered = [p for p in scope.get("subprotocols", []) if p in ("chat.v1", "chat.v2")]
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": offered[-1] if offered else None,
                "headers": [(b"set-cookie", b"session=1")],
            }
        )
        if path == "/ws/headers":
            report = {
                "path": scope["raw_path"].decode() + "?" + scope["query_string"].decode(),
                "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
            }
            await send({"type": "websocket.send", "text": json.dumps(report)})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closes.add(message.get("code", 1005), message.get("reason") or "")
                return
            text = message.get("text")
            if text is not None and text.startswith("close "):
                _, code, reason = text.split(" ", 2)
                await send({"type": "websocket.close", "code": int(code), "reason": reason})
                return
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


@dataclass
class Setup:
    proxy: Running
    closes: Closes
    table: RouteTable

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.proxy.port}{path}"


@pytest.fixture(scope="module", params=HTTP_IMPLS)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    closes = Closes()
    with serve_in_thread(ws_upstream(closes), lifespan="off") as upstream:  # type: ignore[arg-type]
        table = make_table([route("127.0.0.1", "/ws", service("chat", upstream.port))])
        with run_proxy(table, request.param) as proxy:
            yield Setup(proxy, closes, table)


def connect(url: str, **kwargs: object) -> websockets.sync.client.ClientConnection:
    return websockets.sync.client.connect(url, open_timeout=WAIT, **kwargs)  # type: ignore[arg-type]


def test_text_and_binary_messages_both_ways_in_order(setup: Setup) -> None:
    with connect(setup.url("/ws/echo")) as ws:
        ws.send("héllo")
        assert ws.recv(WAIT) == "héllo"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(WAIT) == b"\x00\x01\xff"
        big = bytes(range(256)) * 4096  # 1 MiB in one message
        ws.send(big)
        assert ws.recv(WAIT) == big
        for i in range(100):
            ws.send(str(i))
        assert [ws.recv(WAIT) for _ in range(100)] == [str(i) for i in range(100)]


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["chat.v1", "chat.v2"], "chat.v2"), (["chat.v1", "other"], "chat.v1"), (None, None)],
)
def test_subprotocol_negotiation_passes_through(
    setup: Setup, offered: list[str] | None, chosen: str | None
) -> None:
    with connect(setup.url("/ws/echo"), subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        assert ws.response is not None
        assert ws.response.headers.get("set-cookie") == "session=1"


def test_the_upstreams_close_code_and_reason_reach_the_client(setup: Setup) -> None:
    with connect(setup.url("/ws/echo")) as ws:
        ws.send("close 4001 bye now")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            ws.recv(WAIT)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye now")


def test_the_clients_close_code_and_reason_reach_the_upstream(setup: Setup) -> None:
    before = len(setup.closes.seen)
    with connect(setup.url("/ws/echo")) as ws:
        ws.send("ping")
        assert ws.recv(WAIT) == "ping"
        ws.close(4002, "done here")
    assert setup.closes.wait(before + 1)[before] == (4002, "done here")


def test_an_upstream_refusal_is_passed_on_as_an_http_response(setup: Setup) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        connect(setup.url("/ws/forbidden"))
    response = info.value.response
    assert (response.status_code, response.body) == (403, b"nope")
    assert response.headers.get("x-why") == "policy"


def test_an_unreachable_upstream_is_502_before_any_101(setup: Setup) -> None:
    with dead_port() as dead:
        port = dead.getsockname()[1]
        setup.proxy.holder.swap(
            Snapshot(make_table([route("127.0.0.1", "/ws", service("gone", port))]))
        )
        try:
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                connect(setup.url("/ws/echo"))
        finally:
            setup.proxy.holder.swap(Snapshot(setup.table))
    assert info.value.response.status_code == 502
    assert info.value.response.body == b"502 Bad Gateway\n"


def test_routing_and_header_rules_are_those_of_http(setup: Setup) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        connect(setup.url("/elsewhere"))
    assert info.value.response.status_code == 404
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        connect(setup.url("/ws/a%2Fb"))
    assert info.value.response.status_code == 400

    spoofed = {"X-Forwarded-For": "6.6.6.6", "X_Forwarded_For": "6.6.6.7", "X-Kept": "yes"}
    with connect(setup.url("/ws/./headers/../headers?q=1"), additional_headers=spoofed) as ws:
        report = json.loads(ws.recv(WAIT))
    headers: dict[str, list[str]] = {}
    for name, value in report["headers"]:
        headers.setdefault(name, []).append(value)
    assert report["path"] == "/ws/headers?q=1"  # canonical, as for HTTP
    assert headers["host"] == [f"127.0.0.1:{setup.proxy.port}"]  # the client's Host
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-kept"] == ["yes"]
    assert not [name for name in headers if "_" in name]
    assert len(headers["sec-websocket-key"]) == 1  # the upstream hop's own handshake


def test_a_reload_never_cuts_an_open_websocket(setup: Setup) -> None:
    with connect(setup.url("/ws/echo")) as ws:
        ws.send("before")
        assert ws.recv(WAIT) == "before"
        setup.proxy.holder.swap(Snapshot(make_table([])))  # the route is gone
        try:
            ws.send("after")
            assert ws.recv(WAIT) == "after"
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                connect(setup.url("/ws/echo"))
            assert info.value.response.status_code == 404  # new connections see the reload
        finally:
            setup.proxy.holder.swap(Snapshot(setup.table))


@pytest.mark.parametrize(
    ("received", "sent"),
    [(1000, 1000), (1005, 1000), (4001, 4001), (1011, 1011), (1015, 1011), (2999, 1011)],
)
def test_sendable_close_code(received: int, sent: int) -> None:
    assert sendable_close_code(received) == sent
