"""WebSocket exchange with one upstream endpoint: open the upstream handshake, then relay
messages both ways until either side closes.

Flow: proxy (routing and header rules as for HTTP) -> WebSocketForwarder.open(...) ->
UpstreamWebSocket -> proxy accepts the client with the upstream's subprotocol -> relay().
websockets errors become ours here; nothing websockets-typed leaves this module.

The proxy ends the WebSocket on both sides (uvicorn speaks to the client, the `websockets`
client to the upstream) and relays whole messages: text stays text, binary stays binary, close
codes and reasons are passed on. Compression is negotiated per hop (none towards the
upstream: it is a local hop, and recompressing costs CPU for nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from starlette.types import Receive, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from ..errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from ..ir.model import Endpoint
from ..server.settings import Settings
from .headers import HOP_BY_HOP

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "UpstreamRefused",
    "UpstreamWebSocket",
    "WebSocketForwarder",
    "sendable_close_code",
]

log = logging.getLogger("ingressproxy.forward_ws")

Headers = list[tuple[bytes, bytes]]

# uvicorn's default ws_max_size: a message the client may send us may also come back.
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024

# The handshake fields each hop negotiates for itself; the client's are never passed on.
_HANDSHAKE_FIELDS = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | _HANDSHAKE_FIELDS | {b"host", b"date", b"server", b"content-length"}


def sendable_close_code(code: int | None) -> int:
    """A close code we may put in a close frame for `code` as received.

    1005 (no status) and 1006 (abnormal closure) only describe what was received (RFC 6455
    7.4.1); 1005 becomes a normal closure, 1006 becomes 1014 (the registered "bad gateway"
    code) towards the client and 1001 (going away) towards the upstream (the proxy passes
    the other way; callers pick `abnormal`).
    """
    if code is None or code == 1005:
        return 1000
    if code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014):
        return code
    if 3000 <= code < 5000:
        return code
    return 1011


class UpstreamRefused(UpstreamError):
    """The upstream answered the handshake with something other than 101: the client gets
    that answer (status, headers, body) as it is, like nginx passes a refusal on."""

    def __init__(self, detail: str, status: int, headers: Headers, body: bytes) -> None:
        super().__init__(detail)
        self.status = status
        self.public = ""
        self.headers = headers
        self.body = body


class _UpstreamConnection(ClientConnection):
    """ClientConnection whose handshake carries the client's Host instead of the endpoint's
    address (same rule as HTTP: the upstream sees the Host the client asked for)."""

    host = ""

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        original = self.protocol.connect
        host = self.host

        def connect_with_host() -> Any:
            request = original()
            if host:
                del request.headers["Host"]
                request.headers["Host"] = host
            return request

        self.protocol.connect = connect_with_host  # type: ignore[method-assign]
        await super().handshake(*args, **kwargs)


class UpstreamWebSocket:
    """An open upstream WebSocket: what to accept the client with, and the relay."""

    __slots__ = ("_conn", "endpoint", "headers", "subprotocol")

    def __init__(self, conn: ClientConnection, endpoint: Endpoint) -> None:
        self._conn = conn
        self.endpoint = endpoint
        self.subprotocol: str | None = conn.subprotocol
        response = conn.response
        # The upstream's 101 headers for the client (cookies, for instance), minus the ones
        # each hop negotiates itself.
        self.headers: Headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (response.headers.raw_items() if response is not None else ())
            if name.lower().encode("latin-1") not in _NOT_FORWARDED
        ]

    async def relay(self, receive: Receive, send: Send) -> tuple[int, str]:
        """Pass messages both ways until one side closes, then close the other with the same
        code and reason. Returns (code, reason) of the closing side."""
        conn = self._conn
        closed: list[tuple[int, str]] = []

        async def client_to_upstream() -> None:
            try:
                while True:
                    message = await receive()
                    kind = message["type"]
                    if kind == "websocket.receive":
                        text = message.get("text")
                        await conn.send(text if text is not None else message.get("bytes") or b"")
                    elif kind == "websocket.disconnect":
                        code = message.get("code", 1005)
                        reason = message.get("reason") or ""
                        closed.append((code, reason))
                        up = 1001 if code == 1006 else sendable_close_code(code)
                        await conn.close(up, reason)
                        return
            except ConnectionClosed:
                return  # the upstream went first; upstream_to_client tells the client

        async def upstream_to_client() -> None:
            try:
                async for data in conn:
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
            except ConnectionClosed:
                pass
            except OSError:
                return  # the client is gone (uvicorn's ClientDisconnected)
            rcvd = conn.protocol.close_rcvd
            code = rcvd.code if rcvd is not None else 1006
            reason = rcvd.reason if rcvd is not None else ""
            if not closed:
                closed.append((code, reason))
            out = 1014 if code == 1006 else sendable_close_code(code)
            with contextlib.suppress(OSError):
                await send({"type": "websocket.close", "code": out, "reason": reason})

        tasks = [
            asyncio.ensure_future(client_to_upstream()),
            asyncio.ensure_future(upstream_to_client()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            # The other side follows within the closing handshake; bounded all the same.
            await asyncio.wait(tasks, timeout=conn.close_timeout or 10.0)
        finally:
            for task in tasks:
                task.cancel()
            await conn.close()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("WebSocket relay with %s failed: %r", self.endpoint, task.exception())
        return closed[0] if closed else (1006, "")


class WebSocketForwarder:
    """Opens upstream WebSockets with the proxy's timeouts and message limits."""

    def __init__(self, settings: Settings, *, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        # The handshake is one request and one response: connect plus read timeout, as for
        # an HTTP request's headers.
        self._open_timeout = settings.connect_timeout + settings.read_timeout
        self._max_message = max_message

    async def open(
        self,
        endpoint: Endpoint,
        target: str,
        headers: Headers,
        subprotocols: Sequence[str],
    ) -> UpstreamWebSocket:
        """Open the upstream handshake for `target` with the client's (already rewritten)
        `headers` and offered `subprotocols`.

        Raises UpstreamConnectError (nothing sent: retry elsewhere), UpstreamTimeout,
        UpstreamRefused (the upstream's non-101 answer), UpstreamProtocolError.
        """
        scheme = "wss" if endpoint.scheme == "https" else "ws"
        host = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
        uri = f"{scheme}://{host}:{endpoint.port}{target}"
        client_host = ""
        extra: list[tuple[str, str]] = []
        for name, value in headers:
            if name == b"host":
                client_host = value.decode("latin-1")
            elif name not in _NOT_FORWARDED:
                extra.append((name.decode("latin-1"), value.decode("latin-1")))

        class Connection(_UpstreamConnection):
            host = client_host

        try:
            conn = await connect(
                uri,
                additional_headers=extra,
                subprotocols=[Subprotocol(p) for p in subprotocols] or None,
                compression=None,
                user_agent_header=None,  # the client's User-Agent, if any, is in `extra`
                proxy=None,  # never an HTTP_PROXY from the environment (loopback upstreams)
                open_timeout=self._open_timeout,
                max_size=self._max_message,
                create_connection=Connection,
            )
        except InvalidStatus as exc:
            response = exc.response
            raw = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers.raw_items()
            ]
            raise UpstreamRefused(
                f"{endpoint} refused the WebSocket handshake: HTTP {response.status_code}",
                response.status_code,
                raw,
                bytes(response.body or b""),
            ) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{endpoint}: WebSocket handshake timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
        except (InvalidHandshake, InvalidURI, ValueError) as exc:
            raise UpstreamProtocolError(
                f"{endpoint}: bad WebSocket handshake: {type(exc).__name__}: {exc}"
            ) from exc
        return UpstreamWebSocket(conn, endpoint)
