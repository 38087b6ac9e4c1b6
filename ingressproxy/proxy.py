"""The catch-all raw ASGI app: read the snapshot once, match, forward, map errors to statuses.

Flow: uvicorn (or Starlette's Mount("/")) -> ProxyApp -> paths / headers / balancer ->
forward_http (forward_ws for WebSockets) -> upstream, and the upstream's response streamed
back unchanged but for hop-by-hop headers. Runs standalone under uvicorn too (it answers
lifespan itself then). Failure handling (retries, passive health, limits) is described in
docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from .balancer import Balancer
from .entrypoints import https_redirect
from .errors import (
    BadRequest,
    ClientDisconnected,
    ClientError,
    ResponseAborted,
    UpstreamClosedEarly,
    UpstreamError,
    UpstreamLoop,
    UpstreamProtocolError,
)
from .forward_http import EMPTY_BODY, HTTPForwarder, RequestBody, UpstreamResponse
from .forward_ws import UpstreamRefused, UpstreamWebSocket, WebSocketForwarder
from .headers import HeaderRewriter, RequestHead, ResponseHead
from .observe import RequestObserver, RequestRecord, error_kind
from .paths import BadPath, canonicalize
from .routetable import Backend, Endpoint, Route, RouteTable, normalize_host
from .settings import Settings
from .snapshot import SnapshotHolder

__all__ = ["PROXY_UVICORN_OPTIONS", "ProxyApp"]

log = logging.getLogger("ingressproxy.proxy")

# How uvicorn must run this app: we decide which peers to trust (headers.py), and Server and
# Date come from the upstream (uvicorn would add a second copy of each to every response).
PROXY_UVICORN_OPTIONS: dict[str, bool] = {
    "proxy_headers": False,
    "server_header": False,
    "date_header": False,
}

# Characters left alone when re-quoting a decoded scope["path"] (servers without raw_path).
_PATH_SAFE = "/:@!$&'()*+,;=~"

# RFC 9110 9.2.2: methods whose repetition has the same effect as one request. Only these are
# retried after a connection closed before any response byte (nginx: proxy_next_upstream
# non_idempotent is off by default).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# A failed connect (nothing sent) is retried on at most this many other endpoints, all within
# one --connect-timeout from the first try (nginx's proxy_next_upstream_tries/_timeout).
_CONNECT_RETRIES = 2
# A request still waiting after this long starts watching for the client leaving, so a stalled
# upstream is cancelled well within a second of a disconnect; quicker exchanges never pay for
# the watcher task (Starlette's per-response listener costs ~25%, PERF-NOTES.md).
_WATCH_AFTER = 0.25


# uvicorn's websockets-sansio protocol logs this at ERROR after every handshake answered with
# websocket.http.response (it never marks that path complete); ours always answers.
_HANDSHAKE_NOISE = "ASGI callable returned without completing handshake."


def _not_aborted(record: logging.LogRecord) -> bool:
    """uvicorn logs every exception an app raises with a traceback. ResponseAborted is our way
    to make it drop a connection, already logged by us in one line; a CancelledError is a
    request cut at the end of --graceful-timeout, which uvicorn already reports in one line."""
    if record.msg == _HANDSHAKE_NOISE:
        return False
    return record.exc_info is None or not isinstance(
        record.exc_info[1], (ResponseAborted, asyncio.CancelledError)
    )


class ProxyApp:
    """`ProxyApp(holder, settings)` is an ASGI app; `startup()` / `aclose()` open and close
    the upstream connection pool (done lazily on first use when nobody called startup)."""

    def __init__(
        self,
        holder: SnapshotHolder,
        settings: Settings,
        *,
        forwarder: HTTPForwarder | None = None,
        observer: RequestObserver | None = None,
        balancer: Balancer | None = None,
    ) -> None:
        self._holder = holder
        # Metrics and the access log; None means no per-request bookkeeping at all.
        self._observer = observer
        self.open_requests = 0  # HTTP requests in flight, counted only when observed
        self._rewriter = HeaderRewriter(settings.trusted_proxies, settings.server_header)
        self._balancer = balancer if balancer is not None else Balancer()
        self._ws = WebSocketForwarder(settings)
        self._max_body_size = settings.max_body_size
        self._body_timeout = settings.body_timeout or None
        self._connect_timeout = settings.connect_timeout
        self._own = _OwnAddress(settings.host, settings.port)
        logging.getLogger("uvicorn.error").addFilter(_not_aborted)  # idempotent
        self._forwarder = forwarder if forwarder is not None else HTTPForwarder(settings)
        # (generation, backend key, ingress) already logged as unavailable: once per reload.
        self._reported: set[tuple[int, str, str]] = set()
        # The TLS listener's port once it is up (app lifespan): HTTPS redirects point there.
        self.https_port: int | None = None
        self._redirect_to_https = settings.redirect_to_https
        self._debug_headers = settings.debug_headers

    async def startup(self) -> None:
        self._forwarder.start()

    async def aclose(self) -> None:
        await self._forwarder.aclose()

    @property
    def balancer(self) -> Balancer:
        """The endpoint rotation and passive health state (for the admin API and tests)."""
        return self._balancer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._observer is None:
                await self._http(scope, receive, send)
            else:
                await self._observed(scope, receive, send, self._observer)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # ------------------------------------------------------------------ http

    async def _observed(
        self, scope: Scope, receive: Receive, send: Send, observer: RequestObserver
    ) -> None:
        """`_http` with a RequestRecord for `observer` once the exchange is over."""
        note = _Note(scope)
        started = time.time()
        t0 = time.perf_counter()

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                note.bytes_sent += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                note.status = message["status"]
            await send(message)

        self.open_requests += 1
        try:
            await self._http(scope, receive, observed_send, note)
        finally:
            self.open_requests -= 1
            client = scope.get("client")
            observer(
                RequestRecord(
                    time=started,
                    client=client[0] if client else None,
                    method=scope["method"],
                    host=note.host,
                    path=note.path,
                    status=note.status,
                    duration=time.perf_counter() - t0,
                    bytes_sent=note.bytes_sent,
                    table=note.table,
                    route=note.route,
                    endpoint=note.endpoint,
                    request_id=note.request_id,
                    upstream_error=note.upstream_error,
                )
            )

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, note: _Note | None = None
    ) -> None:
        snapshot = self._holder.current  # once: a reload never changes a request mid-flight
        client = scope.get("client")
        server = scope.get("server")
        raw_path = scope.get("raw_path")
        try:
            path = canonicalize(
                raw_path if raw_path is not None else quote(scope["path"], safe=_PATH_SAFE)
            )
            head = self._rewriter.request(
                scope["headers"],
                client=client[0] if client else None,
                scheme=scope.get("scheme", "http"),
                server_port=server[1] if server else None,
            )
        except (BadPath, BadRequest) as exc:
            # Closed after: with ambiguous framing we cannot know where the next request starts.
            await self._answer(send, 400, f"400 Bad Request: {exc}\n", close=True)
            return
        if head.host is None:
            if scope.get("http_version") == "1.1":
                # RFC 9112 3.2: a server must answer 400 to an HTTP/1.1 request without Host.
                await self._answer(send, 400, "400 Bad Request: missing Host header\n", close=True)
                return
            host = ""
        else:
            host = normalize_host(head.host.decode("latin-1"))

        # The TLS listener routes with the `websecure` table (entrypoints.py); RouteTable.match
        # is the same either way.
        secure = scope.get("scheme") == "https"
        table = snapshot.entrypoints.table(snapshot.table, secure)
        route = table.match(host, path).route
        if note is not None:
            note.host, note.path, note.table, note.route = host, path, table, route
        if (
            not secure
            and self.https_port is not None
            and (self._redirect_to_https or snapshot.entrypoints.redirects)
        ):
            qs: bytes = scope.get("query_string", b"")
            redirect = https_redirect(
                snapshot.entrypoints,
                route,
                redirect_all=self._redirect_to_https,
                method=scope["method"],
                host=host,
                https_port=self.https_port,
                target=(raw_path or path.encode()).decode("latin-1")
                + ("?" + qs.decode("latin-1") if qs else ""),
            )
            if redirect is not None:
                await self._redirect(send, *redirect)
                return
        if route is None:
            await self._answer(send, 404, f'no route for host "{host}" path "{path}"\n')
            return
        backend = route.backend
        if backend.error is not None or not backend.endpoints:
            await self._unavailable(send, route, backend, snapshot.generation)
            return

        method: str = scope["method"]
        limit = self._max_body_size
        if limit is not None and head.content_length is not None and head.content_length > limit:
            # Refused before any upstream is contacted (nginx: client_max_body_size); with
            # `Expect: 100-continue` the client does not even send the body.
            log.info(
                "%s %s: Content-Length %d over %d (413)", method, path, head.content_length, limit
            )
            await self._answer(send, 413, "413 Content Too Large\n", close=True)
            return
        query: bytes = scope.get("query_string", b"")
        target = path.encode("ascii")
        if query:
            target += b"?" + query
        if note is not None:
            note.request_id = _request_id(head.headers)
        body: RequestBody | None = None
        if head.has_body:
            body = RequestBody(receive, max_size=limit, idle_timeout=self._body_timeout)
        watch = _ClientWatch(receive, body)
        upstream: UpstreamResponse | None = None
        responding = False
        try:
            if body is not None:
                await body.prime()
            upstream = await self._exchange(method, backend, target, head, body, scope, note)
            reply = self._rewriter.response(upstream.headers, upstream.status)
            if self._debug_headers:
                reply.headers.append((DEBUG_HEADER, _debug_value(route, upstream.endpoint)))
            if reply.ambiguous:
                raise UpstreamProtocolError(
                    f"{upstream.endpoint} sent both Content-Length and Transfer-Encoding"
                )
            responding = True
            await self._relay(upstream, reply, send, watch)
        except asyncio.CancelledError:
            if not watch.gone:
                # uvicorn's graceful shutdown ran out of time: a short 503 beats its generic
                # 500, and the cancellation goes on (not ours to swallow).
                if not responding:
                    with contextlib.suppress(Exception):
                        await self._answer(send, 503, "503 Service Unavailable\n", close=True)
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            self._client_gone(method, path, note)
        except ClientDisconnected:
            self._client_gone(method, path, note)
        except ClientError as exc:
            log.info("%s %s: %s (%d)", method, path, exc, exc.status)
            await self._answer(send, exc.status, f"{exc.status} {exc.public}\n", close=True)
        except UpstreamError as exc:
            if note is not None:
                note.upstream_error = error_kind(exc)
            log.warning("upstream %s for %s %s: %s", backend.key, method, path, exc)
            if responding:
                # The status line is out: the only honest signal left is to drop the
                # connection, so the client sees a truncated message, never a clean end.
                raise ResponseAborted(str(exc)) from None
            await self._answer(send, exc.status, f"{exc.status} {exc.public}\n")
        finally:
            watch.stop()
            if upstream is not None:
                await upstream.aclose()  # a half-read connection is closed, never pooled

    def _client_gone(self, method: str, path: str, note: _Note | None) -> None:
        # nginx's 499: the client closed the connection before the response was complete.
        if note is not None:
            note.status = ClientDisconnected.status
        log.info("%s %s: the client went away before the response was complete (499)", method, path)

    async def _exchange(
        self,
        method: str,
        backend: Backend,
        target: bytes,
        head: RequestHead,
        body: RequestBody | None,
        scope: Scope,
        note: _Note | None,
    ) -> UpstreamResponse:
        """Send the request to an endpoint of `backend`, retrying only where it is safe.

        A connect failure (nothing sent) moves on to another endpoint, for any method, at
        most _CONNECT_RETRIES times within one --connect-timeout. A connection closed before
        any response byte is retried once, for idempotent requests whose body can be sent
        again. Nothing is retried once a response has started.
        """
        balancer = self._balancer
        forwarder = self._forwarder
        server = scope.get("server")
        stream = EMPTY_BODY if body is None else body
        endpoint = balancer.pick(backend)
        started = time.monotonic()
        tried: list[Endpoint] | None = None
        connect_timeout: float | None = None
        closed_retry = True
        while True:
            if note is not None:
                note.endpoint = endpoint
            headers = head.headers
            if head.host is None:
                # HTTP/1.0 without Host: HTTP/1.1 to the upstream requires one.
                headers = [*headers, (b"host", str(endpoint).encode("ascii"))]
            try:
                if self._own.is_self(endpoint, server):
                    raise UpstreamLoop(f"{endpoint} is this proxy's own listen address")
                upstream = await forwarder.send(
                    method, endpoint, target, headers, stream, connect_timeout=connect_timeout
                )
            except UpstreamError as exc:
                if exc.nothing_sent:
                    balancer.connect_failed(endpoint)
                    if tried is None:
                        tried = []
                    tried.append(endpoint)
                    left = self._connect_timeout - (time.monotonic() - started)
                    following = (
                        balancer.pick_other(backend, tried)
                        if len(tried) <= _CONNECT_RETRIES and left > 0
                        else None
                    )
                    if following is not None:
                        log.info("retrying %s %s on %s: %s", method, target[:200], following, exc)
                        endpoint, connect_timeout = following, left
                        continue
                elif (
                    isinstance(exc, UpstreamClosedEarly)
                    and closed_retry
                    and method in _IDEMPOTENT
                    and (body is None or body.replayable)
                ):
                    closed_retry = False
                    log.info("retrying %s %s once: %s", method, target[:200], exc)
                    endpoint, connect_timeout = balancer.pick(backend), None
                    continue
                raise
            balancer.connect_succeeded(endpoint)
            return upstream

    async def _relay(
        self, upstream: UpstreamResponse, reply: ResponseHead, send: Send, watch: _ClientWatch
    ) -> None:
        """Stream the upstream's response to the client, one ASGI message per chunk.

        uvicorn's send() waits while the client's socket buffer is full, so a slow reader
        stops us reading the upstream (back-pressure, not memory).
        """
        await send(
            {"type": "http.response.start", "status": upstream.status, "headers": reply.headers}
        )
        remaining = reply.content_length
        finished = False
        async for chunk in upstream.chunks():
            if not chunk:
                continue
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    # With a known length the last chunk ends the message, saving a send;
                    # iterating on lets httpcore see the end, so the connection is reused.
                    watch.stop()
                    finished = True
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    continue
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not finished:
            watch.stop()
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _unavailable(
        self, send: Send, route: Route, backend: Backend, generation: int
    ) -> None:
        reason = backend.error or "no endpoints found"
        key = (generation, backend.key, route.ingress.name)
        if key not in self._reported:
            if len(self._reported) > 4096:
                self._reported.clear()
            self._reported.add(key)
            # Worded like Traefik's provider log, which users grep for.
            log.warning(
                "Skipping service: %s namespace=%s ingress=%s serviceName=%s servicePort=%s",
                reason,
                backend.namespace,
                route.ingress.name,
                backend.service,
                backend.port,
            )
        await self._answer(send, 503, f"service {backend.key} is unavailable: {reason}\n")

    async def _redirect(self, send: Send, status: int, location: str) -> None:
        """A redirect to the TLS listener (ssl-redirect, --redirect-to-https)."""
        body = f"{status} redirect to {location}\n".encode("latin-1", "replace")
        head = self._rewriter.response(
            [
                (b"location", location.encode("latin-1", "replace")),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ]
        )
        await send({"type": "http.response.start", "status": status, "headers": head.headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _answer(self, send: Send, status: int, text: str, *, close: bool = False) -> None:
        """A short text/plain answer of our own (errors); never a traceback. `close` ends the
        connection after it (the rest of what the client sends cannot be trusted)."""
        body = text.encode("utf-8", "replace")
        fields = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
        ]
        head = self._rewriter.response(fields)
        if close:
            head.headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": head.headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    # ------------------------------------------------------------------ websocket, lifespan

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxy a WebSocket: the same routing and header rules as HTTP, then forward_ws.

        Everything that goes wrong before the upstream accepts is answered as an HTTP response
        (uvicorn's websocket.http.response extension), never as a 101 followed by a close.
        """
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        snapshot = self._holder.current  # once: a reload never cuts an open WebSocket
        client = scope.get("client")
        server = scope.get("server")
        raw_path = scope.get("raw_path")
        try:
            path = canonicalize(
                raw_path if raw_path is not None else quote(scope["path"], safe=_PATH_SAFE)
            )
            head = self._rewriter.request(
                scope["headers"],
                client=client[0] if client else None,
                scheme=scope.get("scheme", "ws"),
                server_port=server[1] if server else None,
            )
        except (BadPath, BadRequest) as exc:
            await self._ws_answer(scope, send, 400, f"400 Bad Request: {exc}\n")
            return
        if head.host is None:
            await self._ws_answer(scope, send, 400, "400 Bad Request: missing Host header\n")
            return
        host = normalize_host(head.host.decode("latin-1"))
        secure = scope.get("scheme") == "wss"
        table = snapshot.entrypoints.table(snapshot.table, secure)
        route = table.match(host, path).route
        if route is None:
            await self._ws_answer(scope, send, 404, f'no route for host "{host}" path "{path}"\n')
            return
        backend = route.backend
        if backend.error is not None or not backend.endpoints:
            reason = backend.error or "no endpoints found"
            text = f"service {backend.key} is unavailable: {reason}\n"
            await self._ws_answer(scope, send, 503, text)
            return
        query: bytes = scope.get("query_string", b"")
        target = path + ("?" + query.decode("latin-1") if query else "")
        try:
            upstream = await self._ws_open(backend, target, head, scope)
        except UpstreamRefused as exc:
            log.info("upstream %s: %s", backend.key, exc)
            await self._ws_answer(scope, send, exc.status, "", exc.headers, exc.body)
            return
        except UpstreamError as exc:
            log.warning("upstream %s for WebSocket %s: %s", backend.key, path, exc)
            await self._ws_answer(scope, send, exc.status, f"{exc.status} {exc.public}\n")
            return
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": upstream.subprotocol,
                "headers": upstream.headers,
            }
        )
        code, reason = await upstream.relay(receive, send)
        log.debug("WebSocket %s to %s closed: %d %s", path, upstream.endpoint, code, reason)

    async def _ws_open(
        self, backend: Backend, target: str, head: RequestHead, scope: Scope
    ) -> UpstreamWebSocket:
        """forward_ws.open with the HTTP path's connect retries and passive health."""
        balancer = self._balancer
        server = scope.get("server")
        subprotocols: list[str] = scope.get("subprotocols") or []
        endpoint = balancer.pick(backend)
        tried: list[Endpoint] = []
        while True:
            try:
                if self._own.is_self(endpoint, server):
                    raise UpstreamLoop(f"{endpoint} is this proxy's own listen address")
                upstream = await self._ws.open(endpoint, target, head.headers, subprotocols)
            except UpstreamError as exc:
                if exc.nothing_sent:
                    balancer.connect_failed(endpoint)
                    tried.append(endpoint)
                    following = (
                        balancer.pick_other(backend, tried)
                        if len(tried) <= _CONNECT_RETRIES
                        else None
                    )
                    if following is not None:
                        endpoint = following
                        continue
                raise
            balancer.connect_succeeded(endpoint)
            return upstream

    async def _ws_answer(
        self,
        scope: Scope,
        send: Send,
        status: int,
        text: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
    ) -> None:
        """An HTTP answer to a WebSocket handshake (or close 1011 where the server cannot)."""
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1011})
            return
        if body is None:
            body = text.encode("utf-8", "replace")
        if headers is None:
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
        fields = [(n, v) for n, v in headers if n.lower() != b"content-length"]
        fields.append((b"content-length", str(len(body)).encode("ascii")))
        head = self._rewriter.response(fields)
        start: Message = {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": head.headers,
        }
        await send(start)
        await send({"type": "websocket.http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Only reached when run without Starlette (which handles lifespan itself)."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Note:
    """What an observed request learns on its way through `_http` (mutable, per request)."""

    __slots__ = (
        "bytes_sent",
        "endpoint",
        "host",
        "path",
        "request_id",
        "route",
        "status",
        "table",
        "upstream_error",
    )

    def __init__(self, scope: Scope) -> None:
        self.host = ""
        self.path: str = scope.get("path", "")
        # Until a response starts: a failure before it becomes uvicorn's 500.
        self.status = 500
        self.bytes_sent = 0
        self.table: RouteTable | None = None
        self.route: Route | None = None
        self.endpoint: Endpoint | None = None
        self.request_id: str | None = None
        self.upstream_error: str | None = None


def _request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    # The rewriter appends X-Request-Id last; search from the end.
    for name, value in reversed(headers):
        if name == b"x-request-id":
            return value.decode("latin-1")
    return None


class _ClientWatch:
    """Cancels the request's task when the client goes away mid-exchange (uvicorn's send()
    drops data silently once the client is gone, and a stalled upstream would otherwise hold
    the request until --read-timeout).

    A request still running after _WATCH_AFTER starts one task reading `receive` (only once the
    body is fully read: until then RequestBody sees a disconnect itself). `gone` tells the
    request that a CancelledError is ours to turn into a 499.
    """

    __slots__ = ("_body", "_receive", "_task", "_timer", "_watcher", "active", "gone")

    def __init__(self, receive: Receive, body: RequestBody | None) -> None:
        self._receive = receive
        self._body = body
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self.active = True
        self.gone = False
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            _WATCH_AFTER, self._start
        )

    def _start(self) -> None:
        if not self.active:
            return
        loop = asyncio.get_running_loop()
        if self._body is not None and not self._body.done:
            self._timer = loop.call_later(_WATCH_AFTER, self._start)
            return
        self._timer = None
        self._watcher = loop.create_task(self._watch())

    async def _watch(self) -> None:
        receive = self._receive
        while (await receive())["type"] != "http.disconnect":
            pass
        # Single-threaded: while `active`, the request is suspended inside its exchange, where
        # it catches the CancelledError.
        if self.active and self._task is not None:
            self.gone = True
            self._task.cancel()

    def stop(self) -> None:
        """The response is (about to be) complete: nothing to watch any more."""
        self.active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is not None:
            # Not awaited: awaiting a cancelled task here could swallow our own cancellation.
            self._watcher.cancel()
            self._watcher = None


class _OwnAddress:
    """Endpoints that are this proxy's own listener: forwarding there would loop until the
    connection pool ran dry. Checked against the configured --host/--port and the address
    each connection actually arrived on (scope["server"], which knows the bound port)."""

    __slots__ = ("_host", "_port")

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port

    def is_self(self, endpoint: Endpoint, server: tuple[str, int] | None) -> bool:
        port = endpoint.port  # two int comparisons in the common case
        if port == self._port and _same_host(endpoint.address, self._host):
            return True
        return server is not None and port == server[1] and _same_host(endpoint.address, server[0])


def _same_host(address: str, listen: str) -> bool:
    """Whether connecting to `address` reaches a socket listening on `listen`."""
    if address.lower() == "localhost":
        address = "127.0.0.1"
    try:
        a = ipaddress.ip_address(address.strip("[]"))
        b = ipaddress.ip_address(listen.strip("[]"))
    except ValueError:
        return address.lower() == listen.lower()
    if a == b:
        return True
    # A wildcard listener (0.0.0.0, ::) also answers on every loopback address.
    return b.is_unspecified and (a.is_loopback or a.is_unspecified)


# `serve --debug-headers`: which Ingress rule and endpoint answered ("why did my request go
# there?", the question `explain` answers offline).
DEBUG_HEADER = b"x-ingressproxy-route"


def _debug_value(route: Route, endpoint: Endpoint) -> bytes:
    rule = (
        "spec.defaultBackend"
        if route.path is None
        else f"{route.field} {route.path_type} {route.host or '*'}{route.path}"
    )
    ingress = f"{route.ingress.namespace}/{route.ingress.name}"
    text = f"{ingress} {rule} -> {route.backend.key} {endpoint}"
    return text.encode("latin-1", "replace")
