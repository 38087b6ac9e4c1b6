"""Alternatives to guard.py's httptools protocol, for the benchmark's `--variants` (issue 15:
keep the copies of uvicorn's internals, or replace them by something public).

- `SuperGuardedProtocol`: the same guard as a subclass of uvicorn's HttpToolsProtocol that
  copies nothing: every parser callback calls uvicorn's own through super(), the response
  cycle is uvicorn's RequestResponseCycle (no `BODY_FOLLOWS`, two regex searches per response
  field), the keep-alive timeout uvicorn's loop timer per request. It still reads uvicorn's
  private members (url, headers, parser, cycle).
- `WrappedGuardProtocol`: the same guard with nothing private of uvicorn: a plain
  asyncio.Protocol in front of an unchanged HttpToolsProtocol, built through the constructor
  `uvicorn.Config(http=...)` calls. Its own llhttp parser reads every request head first (the
  limits, the header deadline, check_head's framing rules); only bytes that passed reach
  uvicorn's protocol, which then parses them again and does everything else.

Both refuse what guard.GuardedHttpToolsProtocol refuses, with the same answers; what they cost
per request beside it is docs/performance.md's "uvicorn's internals".
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ingressproxy.server.guard import RequestLimits, _HeadGuard, check_head

__all__ = ["SuperGuardedProtocol", "WrappedGuardProtocol"]

_FRAMING = frozenset((b"host", b"content-length", b"transfer-encoding"))


class SuperGuardedProtocol(_HeadGuard, HttpToolsProtocol):
    """guard.GuardedHttpToolsProtocol without its copies of uvicorn's methods."""

    limits: ClassVar[RequestLimits] = RequestLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer = None
        self._head_bytes = 0
        self._head_open = True
        self._begun = False
        self._header_bytes = 0
        self._refusal: tuple[int, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _in_head(self) -> bool:
        return self._head_open

    def _head_begun(self) -> bool:
        return self._begun or self._head_bytes > 0

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)  # a parser error: send_400_response below
        if self.transport.is_closing():
            return
        if self._head_open:
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, f"request head of {self._head_bytes}+ bytes")
            elif self._begun:
                self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        status, detail = self._refusal or (400, msg)
        self._refuse(status, detail)

    def _stop(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        raise ValueError(detail)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._begun = True
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_uri_length:
            self._stop(414, f"request target of {len(self.url)}+ bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            self._stop(431, f"{self._header_bytes}+ bytes of header fields")
        if len(self.headers) >= self.limits.max_headers:
            self._stop(431, f"more than {self.limits.max_headers} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        parser = self.parser
        refusal = check_head(
            parser.get_method(),
            self.url,
            parser.get_http_version().encode("ascii"),
            self.headers,
            self.limits,
        )
        upgrade = parser.should_upgrade() and not self._should_upgrade()
        if refusal is None and upgrade and _declares_body(self.headers):
            refusal = (400, "a request body with a non-WebSocket Upgrade")
        if refusal is not None:
            self._stop(*refusal)
        self._head_open = False
        self._begun = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()
        if upgrade:
            self.cycle.keep_alive = False  # llhttp reads nothing after an Upgrade


class WrappedGuardProtocol(_HeadGuard, asyncio.Protocol):
    """The guard in front of an unchanged uvicorn HttpToolsProtocol (nothing private)."""

    limits: ClassVar[RequestLimits] = RequestLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.inner = HttpToolsProtocol(config, server_state, app_state, _loop)
        self.loop = _loop or asyncio.get_event_loop()
        self.websockets = config.ws_protocol_class is not None
        self.parser = httptools.HttpRequestParser(self)
        # As uvicorn sets its own parser: both must read the same messages.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.client = None
        self._head_timer = None
        self._head_bytes = 0
        self._head_open = True
        self._begun = False
        self._passing = False  # after an Upgrade: uvicorn's protocol has the connection
        self._refusal: tuple[int, str] | None = None
        self._url = b""
        self._count = 0
        self._header_bytes = 0
        self._framing: list[tuple[bytes, bytes]] = []
        self._upgrade = b""
        self._connection = b""

    # asyncio.Protocol, handed on to uvicorn's protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.client = transport.get_extra_info("peername")
        self.inner.connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _in_head(self) -> bool:
        return self._head_open

    def _head_begun(self) -> bool:
        return self._begun or self._head_bytes > 0

    def data_received(self, data: bytes) -> None:
        if not self._passing:
            if self._head_open:
                self._head_bytes += len(data)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._passing = True
            except httptools.HttpParserError as exc:
                status, detail = self._refusal or (400, str(exc))
                self._refuse(status, detail)
                return
            if self._head_open:
                if self._head_bytes > self.limits.max_head_bytes:
                    self._refuse(431, f"request head of {self._head_bytes}+ bytes")
                    return
                if self._begun:
                    self._arm_head_timer()
        self.inner.data_received(data)

    # llhttp callbacks of our own parser: the head only (no on_body: bodies are skipped in C)

    def _stop(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        raise ValueError(detail)

    def on_message_begin(self) -> None:
        self._head_open = True
        self._begun = True
        self._url = b""
        self._count = 0
        self._header_bytes = 0
        self._framing = []
        self._upgrade = self._connection = b""

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_uri_length:
            self._stop(414, f"request target of {len(self._url)}+ bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._count += 1
        limits = self.limits
        if self._header_bytes > limits.max_header_bytes:
            self._stop(431, f"{self._header_bytes}+ bytes of header fields")
        if self._count > limits.max_headers:
            self._stop(431, f"more than {limits.max_headers} header fields")
        if len(name) in (4, 7, 10, 14, 17):  # host, upgrade, connection, the two framings
            name = name.lower()
            if name in _FRAMING:
                self._framing.append((name, value))
            elif name == b"upgrade":
                self._upgrade = value.lower()
            elif name == b"connection":
                self._connection = value.lower()

    def on_headers_complete(self) -> None:
        parser = self.parser
        refusal = check_head(
            parser.get_method(),
            self._url,
            parser.get_http_version().encode("ascii"),
            self._framing,
            self.limits,
        )
        if refusal is None and parser.should_upgrade():
            websocket = (
                self.websockets
                and self._upgrade == b"websocket"
                and b"upgrade" in [t.strip() for t in self._connection.split(b",")]
            )
            if not websocket and _declares_body(self._framing):
                refusal = (400, "a request body with a non-WebSocket Upgrade")
        if refusal is not None:
            self._stop(*refusal)
        self._head_open = False
        self._begun = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._cancel_head_timer()


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (
            name == b"content-length" and value.strip(b" \t") != b"0"
        ):
            return True
    return False
