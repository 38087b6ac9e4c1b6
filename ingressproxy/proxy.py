"""The catch-all raw ASGI app: read the snapshot once, match, forward, map errors to statuses.

Flow: uvicorn (or Starlette's Mount("/")) -> ProxyApp -> paths / headers / balancer ->
forward_http -> upstream, and the upstream's response streamed back unchanged but for
hop-by-hop headers. Runs standalone under uvicorn too (it answers lifespan itself then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from .balancer import Balancer
from .entrypoints import https_redirect
from .errors import BadRequest, ClientDisconnected, UpstreamError
from .forward_http import EMPTY_BODY, HTTPForwarder, RequestBody, UpstreamResponse
from .headers import HeaderRewriter
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
    ) -> None:
        self._holder = holder
        # Metrics and the access log; None means no per-request bookkeeping at all.
        self._observer = observer
        self.open_requests = 0  # HTTP requests in flight, counted only when observed
        self._rewriter = HeaderRewriter(settings.trusted_proxies, settings.server_header)
        self._balancer = Balancer()
        self._forwarder = forwarder if forwarder is not None else HTTPForwarder(settings)
        # (generation, backend key, ingress) already logged as unavailable: once per reload.
        self._reported: set[tuple[int, str, str]] = set()
        # The TLS listener's port once it is up (app lifespan): HTTPS redirects point there.
        self.https_port: int | None = None
        self._redirect_to_https = settings.redirect_to_https

    async def startup(self) -> None:
        self._forwarder.start()

    async def aclose(self) -> None:
        await self._forwarder.aclose()

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
            await self._answer(send, 400, f"400 Bad Request: {exc}\n")
            return
        if head.host is None:
            if scope.get("http_version") == "1.1":
                # RFC 9112 3.2: a server must answer 400 to an HTTP/1.1 request without Host.
                await self._answer(send, 400, "400 Bad Request: missing Host header\n")
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

        endpoint = self._balancer.pick(backend)
        query: bytes = scope.get("query_string", b"")
        target = path.encode("ascii")
        if query:
            target += b"?" + query
        headers = head.headers
        if head.host is None:
            # HTTP/1.0 without Host: HTTP/1.1 to the upstream requires one.
            headers.append((b"host", str(endpoint).encode("ascii")))
        if note is not None:
            note.endpoint = endpoint
            note.request_id = _request_id(headers)
        body = RequestBody(receive) if head.has_body else EMPTY_BODY
        method: str = scope["method"]
        try:
            upstream = await self._forwarder.send(method, endpoint, target, headers, body)
        except ClientDisconnected:
            log.debug("%s %s: client closed the connection during the upload", method, path)
            if note is not None:
                note.status = ClientDisconnected.status
            return
        except UpstreamError as exc:
            if note is not None:
                note.upstream_error = error_kind(exc)
            log.warning("upstream %s (%s) for %s %s: %s", backend.key, endpoint, method, path, exc)
            await self._answer(send, exc.status, f"{exc.status} {exc.public}\n")
            return
        try:
            watch = body.done if isinstance(body, RequestBody) else True
            await self._relay(upstream, send, receive if watch else None)
        except UpstreamError as exc:
            # The status line is out: the only honest signal left is to drop the connection
            # (raising makes uvicorn close it) so the client sees a truncated message.
            if note is not None:
                note.upstream_error = error_kind(exc)
            log.warning("upstream %s (%s) for %s %s: %s", backend.key, endpoint, method, path, exc)
            raise
        finally:
            await upstream.aclose()

    async def _relay(self, upstream: UpstreamResponse, send: Send, receive: Receive | None) -> None:
        """Stream the upstream's response to the client, one ASGI message per chunk.

        `receive` (when the request body is fully read) lets us notice a client that went
        away during a long response (uvicorn's send() silently drops data then), so the
        upstream connection is closed instead of read to the end.
        """
        head = self._rewriter.response(upstream.headers)
        await send(
            {"type": "http.response.start", "status": upstream.status, "headers": head.headers}
        )
        remaining = head.content_length
        finished = False
        watcher: asyncio.Task[None] | None = None
        try:
            async for chunk in upstream.chunks():
                if not chunk:
                    continue
                if remaining is not None:
                    remaining -= len(chunk)
                    # With a known length the last chunk ends the message, saving a send.
                    finished = remaining <= 0
                await send({"type": "http.response.body", "body": chunk, "more_body": not finished})
                if finished:
                    continue  # let httpcore read the end of message, so the connection is reused
                if watcher is None:
                    if receive is not None:
                        watcher = asyncio.create_task(_disconnected(receive))
                elif watcher.done():
                    log.debug("client closed the connection during the response")
                    return
            if not finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # Not awaited: awaiting a cancelled task here could swallow our own cancellation.
            if watcher is not None:
                watcher.cancel()

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

    async def _answer(self, send: Send, status: int, text: str) -> None:
        """A short text/plain answer of our own (errors); never a traceback."""
        body = text.encode("utf-8", "replace")
        head = self._rewriter.response(
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"x-content-type-options", b"nosniff"),
            ]
        )
        await send({"type": "http.response.start", "status": status, "headers": head.headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    # ------------------------------------------------------------------ websocket, lifespan

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Not proxied yet: refuse the handshake cleanly (501 where the server lets us send an
        HTTP answer, else close 1011)."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            body = b"WebSocket proxying is not supported yet\n"
            start: Message = {
                "type": "websocket.http.response.start",
                "status": 501,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
            await send(start)
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1011})

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


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (or the response is complete, for uvicorn)."""
    while (await receive())["type"] != "http.disconnect":
        pass
