"""uvicorn HTTP protocols that refuse hostile requests before the app ever sees them.

Flow: client bytes -> GuardedH11Protocol / GuardedHttpToolsProtocol (limits, deadlines,
framing rules) -> uvicorn's own parsing -> ProxyApp. uvicorn alone has no header deadline (a
new connection may dribble one byte a second forever), no limit on header count or size, and
its two parsers disagree on ambiguous framing (h11 accepts Content-Length with
Transfer-Encoding, httptools accepts `gzip, chunked` and a missing Host): a proxy must refuse
what either side of it could read differently. `guarded_protocol(limits)` is what
`uvicorn.Config(http=...)` takes; cli.py passes it.

GuardedHttpToolsProtocol runs uvicorn's parser callbacks, on_headers_complete (which builds our
cycle.ProxyCycle) and on_response_complete as copies with our checks inline: cheaper than
calling uvicorn's, or than a wrapper around its protocol (docs/performance.md, "uvicorn's
internals"). UVICORN_CHECKED names the versions they were checked against;
tests/test_uvicorn_differential.py replays the framing cases through both.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import h11
import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ..upstream.deadlines import Deadlines
from .cycle import ProxyCycle
from .settings import Settings

__all__ = [
    "UVICORN_CHECKED",
    "GuardedH11Protocol",
    "GuardedHttpToolsProtocol",
    "RequestLimits",
    "check_head",
    "guarded_protocol",
    "unchecked_uvicorn",
]

log = logging.getLogger("ingressproxy.guard")

# The uvicorn versions whose HttpToolsProtocol and RequestResponseCycle the copies here and in
# cycle.py were checked against, line by line, with tests/test_uvicorn_differential.py green
# (docs/performance.md, "uvicorn's internals"). On any other version the test of that file
# fails and `serve` logs a warning; pyproject.toml's range admits only this minor version.
UVICORN_CHECKED = ("0.54.0",)

# Room for the method, the version and line ends around the target and header lines.
_HEAD_SLACK = 256
# Like llhttp and nginx: no length of 19 digits or more (parsers that overflow disagree).
_MAX_LENGTH_DIGITS = 18


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """What one request head may be. Defaults: nginx's 8 KiB request line
    (large_client_header_buffers), Envoy's 100 headers (max_headers_count), 32 KiB of header
    fields (nginx's 4 x 8 KiB buffers), and 20 s to send the head (Apache's mod_reqtimeout)."""

    max_uri_length: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    header_timeout: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_uri_length=settings.max_uri_length,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout=settings.header_timeout,
        )

    @property
    def max_head_bytes(self) -> int:
        """The most bytes an unfinished head may take in memory before we refuse it."""
        return self.max_uri_length + self.max_header_bytes + _HEAD_SLACK


def check_head(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    limits: RequestLimits,
) -> tuple[int, str] | None:
    """(status, reason) when a parsed request head must be refused, else None.

    `headers` have lower-case names. The framing rules are RFC 9112's, applied strictly
    because we forward: one Content-Length of digits or one Transfer-Encoding of plain
    `chunked`, never both (6.1, 6.3); no Transfer-Encoding on HTTP/1.0 (6.1); exactly one Host
    on HTTP/1.1 (3.2); origin-form targets only (the proxy is not a forward proxy).
    """
    if version not in (b"1.1", b"1.0"):
        return 505, f"HTTP/{version.decode('latin-1')} is not served"
    if len(target) > limits.max_uri_length:
        return 414, f"request target of {len(target)} bytes"
    if len(headers) > limits.max_headers:
        return 431, f"{len(headers)} header fields"
    size = 0
    hosts = lengths = codings = 0
    length = coding = b""
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            lengths += 1
            length = value
        elif name == b"transfer-encoding":
            codings += 1
            coding = value
    if size > limits.max_header_bytes:
        return 431, f"{size} bytes of header fields"
    if not target.startswith(b"/") and not (method == b"OPTIONS" and target == b"*"):
        return 400, "only origin-form request targets are served"
    if hosts != 1 and (hosts or version == b"1.1"):
        return 400, "missing Host header" if not hosts else "more than one Host header"
    if codings:
        if lengths:
            return 400, "both Content-Length and Transfer-Encoding"
        if codings > 1 or coding.strip(b" \t").lower() != b"chunked":
            return 400, "Transfer-Encoding other than chunked"
        if version == b"1.0":
            return 400, "Transfer-Encoding on HTTP/1.0"
    elif lengths:
        digits = length.strip(b" \t")
        if lengths > 1:
            return 400, "more than one Content-Length"
        if not digits.isdigit() or len(digits) > _MAX_LENGTH_DIGITS:
            return 400, "malformed Content-Length"
    return None


def _answer(status: int, detail: str) -> bytes:
    phrase = http.HTTPStatus(status).phrase
    body = f"{status} {phrase}\n".encode("ascii")
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii") + body


class _HeadGuard:
    """The parts both protocols share: the header deadline and refusing a connection.

    Mixed in before uvicorn's protocol class, whose transport/loop/client it uses.
    """

    limits: ClassVar[RequestLimits]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None
    _head_timer: asyncio.TimerHandle | None
    _head_bytes: int

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout, self._head_timed_out
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _in_head(self) -> bool:
        raise NotImplementedError

    def _head_begun(self) -> bool:
        """Some bytes of the current request head have arrived."""
        return self._head_bytes > 0

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head():
            return
        if self._head_begun():
            # Slowloris: headers trickling in. nginx (client_header_timeout) answers 408.
            self._refuse(408, f"request head not complete after {self.limits.header_timeout:g}s")
        else:
            self.transport.close()  # an idle new connection: nothing to answer

    def _refuse(self, status: int, detail: str) -> None:
        """Answer `status` with a short generic body and close: whatever follows on this
        connection can no longer be framed with confidence."""
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        if log.isEnabledFor(logging.INFO):
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.info("refused a request from %s: %s (%d)", peer, detail, status)
        self.transport.write(_answer(status, detail))
        self.transport.close()


class _GuardedH11Connection(h11.Connection):
    """h11's server connection with our checks on each request head."""

    def __init__(self, limits: RequestLimits) -> None:
        # h11 itself refuses an unfinished head past this size (with a 431 hint).
        super().__init__(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self.limits = limits
        self.refusal: tuple[int, str] | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if self.refusal is None:
                status = 431 if exc.error_status_hint == 431 else 400
                self.refusal = (status, str(exc))
            raise
        if type(event) is h11.Request:
            refusal = check_head(
                event.method, event.target, event.http_version, event.headers, self.limits
            )
            if refusal is not None:
                self.refusal = refusal
                raise h11.RemoteProtocolError(refusal[1], error_status_hint=refusal[0])
        return event


class GuardedH11Protocol(_HeadGuard, H11Protocol):
    """uvicorn's h11 protocol with RequestLimits, the header deadline and check_head."""

    limits: ClassVar[RequestLimits] = RequestLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = _GuardedH11Connection(self.limits)
        self._head_timer = None
        self._head_bytes = 0
        self._line_seen = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # from accept, like nginx's client_header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _in_head(self) -> bool:
        # h11 is IDLE from a cycle's start until a whole request head has been parsed.
        return self.conn.their_state is h11.IDLE

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            if not self._head_bytes:
                self._line_seen = False
            if not self._line_seen:
                # The request line is what max_uri_length bounds: 414 before buffering more.
                end = data.find(b"\n")
                line = self._head_bytes + (len(data) if end < 0 else end)
                if line > self.limits.max_uri_length + _HEAD_SLACK:
                    self._refuse(414, f"request line of {line}+ bytes")
                    return
                self._line_seen = end >= 0
            self._head_bytes += len(data)
            self._arm_head_timer()
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, f"request head of {self._head_bytes}+ bytes")
        else:
            self._cancel_head_timer()
            self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        refusal = getattr(self.conn, "refusal", None)
        status, detail = refusal if refusal is not None else (400, msg)
        self._refuse(status, detail)


class _Disarm:
    """Stands in for uvicorn's keep-alive TimerHandle: its cancel() disarms our deadline."""

    __slots__ = ("_deadlines", "_key")

    def __init__(self, deadlines: Deadlines, key: object) -> None:
        self._deadlines = deadlines
        self._key = key

    def cancel(self) -> None:
        self._deadlines.disarm(self._key)


class GuardedHttpToolsProtocol(_HeadGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol with RequestLimits, the header deadline and check_head."""

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
        self._begun = False  # llhttp has seen the start of the current request
        self._header_bytes = 0
        self._refusal: tuple[int, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()
        # Shared by the loop's connections; a second late at most: nothing waits on it.
        self._keepalive = Deadlines.for_loop(self.loop, resolution=1.0)
        self._keepalive_handle = _Disarm(self._keepalive, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _in_head(self) -> bool:
        return self._head_open

    def _head_begun(self) -> bool:
        # A keep-alive request's first bytes arrive while _head_open is still false, so the
        # byte count alone would miss them.
        return self._begun or self._head_bytes > 0

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received, with our refusals mapped to their statuses.
        if self.timeout_keep_alive_task is not None:
            # uvicorn's _unset_keepalive_if_required, two calls fewer: the task is always
            # our _Disarm (on_response_complete is the only place that arms it).
            self._keepalive.disarm(self)
            self.timeout_keep_alive_task = None
        if self._head_open:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            status, detail = self._refusal or (400, str(exc))
            self._refuse(status, detail)
            return
        if self._head_open:
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, f"request head of {self._head_bytes}+ bytes")
            elif self._begun:
                # Armed only for a head still incomplete after this read: a keep-alive
                # request that arrives whole never pays for a timer.
                self._arm_head_timer()

    # Parser callbacks: a raise stops llhttp, and data_received answers self._refusal.

    def _stop(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        raise ValueError(detail)

    def on_message_begin(self) -> None:
        # uvicorn's on_message_begin (0.54), inline: it runs for every request.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        self._head_open = True
        self._begun = True
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url  # called with pieces as they arrive: the limit holds while streaming
        if len(self.url) > self.limits.max_uri_length:
            self._stop(414, f"request target of {len(self.url)}+ bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        headers = self.headers
        limits = self.limits
        if self._header_bytes > limits.max_header_bytes:
            self._stop(431, f"{self._header_bytes}+ bytes of header fields")
        if len(headers) >= limits.max_headers:
            self._stop(431, f"more than {limits.max_headers} header fields")
        # uvicorn's on_header, inline: it runs for every header of every request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        http_version = parser.get_http_version()
        refusal = check_head(
            method, self.url, http_version.encode("ascii"), self.headers, self.limits
        )
        upgrade = parser.should_upgrade() and not self._should_upgrade()
        if refusal is None and upgrade and self._declares_body():
            # llhttp stops parsing at an Upgrade it was not asked to perform (h2c), so a body
            # after it would never reach the app: refuse rather than hang.
            refusal = (400, "a request body with a non-WebSocket Upgrade")
        if refusal is not None:
            self._stop(*refusal)
        self._head_open = False
        self._begun = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._cancel_head_timer()
        # uvicorn's on_headers_complete (0.54), but the cycle is our ProxyCycle (cycle.py: the
        # response head checked in one pass, and written with the body on BODY_FOLLOWS).
        scope = self.scope
        scope["method"] = method.decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return  # a WebSocket: uvicorn's data_received hands the connection over
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""

        app = self.app
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")

        existing_cycle = self.cycle
        self.cycle = ProxyCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            # After an Upgrade the parser cannot read another request on this connection.
            keep_alive=http_version != "1.0" and parser.should_keep_alive() and not upgrade,
            on_response=self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:
            # Pipelined requests wait for the response before them.
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def on_response_complete(self) -> None:
        # uvicorn's on_response_complete, but the keep-alive timeout is a coarse deadline
        # (deadlines.py) instead of a loop timer armed and cancelled for every request.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._keepalive.arm(self, self.timeout_keep_alive, self.timeout_keep_alive_handler)
            # What uvicorn's _unset_keepalive_if_required cancels on the next bytes or close.
            self.timeout_keep_alive_task = self._keepalive_handle  # type: ignore[assignment]

    def _declares_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and value.strip(b" \t") != b"0"
            ):
                return True
        return False


def unchecked_uvicorn() -> str | None:
    """A one-line warning when the installed uvicorn is not one the copies of its internals
    were checked against (UVICORN_CHECKED), else None."""
    version = uvicorn.__version__
    if version in UVICORN_CHECKED:
        return None
    return (
        f"uvicorn {version} is not a version ingressproxy's request guard was checked against "
        f"({', '.join(UVICORN_CHECKED)}): it copies parts of uvicorn's httptools protocol, so "
        "framing may differ; install one of those"
    )


@functools.cache
def _warn_if_unchecked() -> None:
    warning = unchecked_uvicorn()
    if warning is not None:
        log.warning("%s", warning)


def guarded_protocol(
    limits: RequestLimits, http: Literal["auto", "h11", "httptools"] = "auto"
) -> type[H11Protocol] | type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` enforcing `limits`. "auto" is
    httptools (faster) when installed, like uvicorn's own auto. Called when a server is set
    up: logs unchecked_uvicorn()'s warning, once a process."""
    _warn_if_unchecked()
    if http == "auto":
        http = "httptools"
    base: type[GuardedH11Protocol] | type[GuardedHttpToolsProtocol] = (
        GuardedHttpToolsProtocol if http == "httptools" else GuardedH11Protocol
    )
    return type(base.__name__, (base,), {"limits": limits})
