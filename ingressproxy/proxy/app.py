"""The catch-all raw ASGI app: read the snapshot once, match, forward, map errors to statuses.

Flow: uvicorn (or Starlette's Mount("/")) -> ProxyApp -> paths / headers / balancer ->
forward_http (proxy_ws, then forward_ws, for WebSockets) -> upstream, and the upstream's
response streamed back unchanged but for hop-by-hop headers. Runs standalone under uvicorn
too (it answers lifespan itself then). Failure handling (retries, passive health, limits) is
described in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from ..errors import (
    BadRequest,
    ClientDisconnected,
    ClientError,
    ResponseAborted,
    UpstreamClosedEarly,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamLoop,
    UpstreamProtocolError,
)
from ..ir.conditions import RequestView
from ..ir.filters import Answer, FilterRequest, FilterResponse, RedirectScheme
from ..ir.model import Backend, Endpoint, ErrorPages, Router
from ..ir.snapshot import SnapshotHolder
from ..ir.table import RouteTable, normalize_host
from ..observe.record import RequestObserver, RequestRecord, error_kind
from ..server.cycle import BODY_FOLLOWS
from ..server.settings import Settings
from ..upstream.affinity import choose
from ..upstream.balancer import Balancer
from .exchange import (
    CONNECT_RETRIES,
    DEBUG_HEADER,
    ClientWatch,
    OwnAddress,
    client_address,
    client_watches,
    debug_value,
    filter_request,
    read_request,
    request_id,
)
from .forward_http import EMPTY_BODY, HTTPForwarder, RequestBody, UpstreamResponse
from .headers import HeaderRewriter, RequestHead
from .paths import BadPath
from .websocket import WebSocketProxy

__all__ = ["DEBUG_HEADER", "PROXY_UVICORN_OPTIONS", "ProxyApp"]

log = logging.getLogger("ingressproxy.proxy")

# How uvicorn must run this app: we decide which peers to trust (headers.py), and Server and
# Date come from the upstream (uvicorn would add a second copy of each to every response).
PROXY_UVICORN_OPTIONS: dict[str, bool] = {
    "proxy_headers": False,
    "server_header": False,
    "date_header": False,
}

# RFC 9110 9.2.2: methods whose repetition has the same effect as one request. Only these are
# retried after a connection that died before the response head was complete (nginx:
# proxy_next_upstream non_idempotent is off by default).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


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
        self._max_body_size = settings.max_body_size
        self._body_timeout = settings.body_timeout or None
        self._connect_timeout = settings.connect_timeout
        self._own = OwnAddress(settings.host, settings.port)
        self._websocket = WebSocketProxy(
            holder, settings, rewriter=self._rewriter, balancer=self._balancer, own=self._own
        )
        logging.getLogger("uvicorn.error").addFilter(_not_aborted)  # idempotent
        self._forwarder = forwarder if forwarder is not None else HTTPForwarder(settings)
        # (generation, backend key, ingress) already logged as unavailable: once per reload.
        self._reported: set[tuple[int, str, str]] = set()
        self._https_port: int | None = None
        # --redirect-to-https: the plain listener's own redirect, before routing (Traefik's
        # entry point redirection: a permanent RedirectScheme, 301 for GET, else 308).
        self._entry_redirect = (
            RedirectScheme(None, "--redirect-to-https") if settings.redirect_to_https else None
        )
        self._debug_headers = settings.debug_headers
        self._watches = client_watches()  # each request's disconnect watch
        # An HTTP request's entry: the app calls it for scope type "http" (so can a caller
        # that has checked the type itself, one coroutine fewer: app._ProxyStarlette).
        self.http: Callable[[Scope, Receive, Send], Awaitable[None]] = (
            self._http if observer is None else self._observed
        )

    async def startup(self) -> None:
        self._watches = client_watches()  # bound to this (possibly new) loop at its first use
        self._forwarder.start()

    async def aclose(self) -> None:
        await self._forwarder.aclose()

    @property
    def https_port(self) -> int | None:
        """The TLS listener's port once it is up (app lifespan): HTTPS redirects point there."""
        return self._https_port

    @https_port.setter
    def https_port(self, port: int | None) -> None:
        self._https_port = port
        self._websocket.https_port = port

    @property
    def balancer(self) -> Balancer:
        """The endpoint rotation and passive health state (for the admin API and tests)."""
        return self._balancer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # ------------------------------------------------------------------ http

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`_http` with a RequestRecord for the observer once the exchange is over."""
        observer = self._observer
        assert observer is not None
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
        try:
            path, head = read_request(scope, self._rewriter, "http")
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
        route = table.route(host, path)
        if route is not None and route.conditions:
            # Only now is the request's method, headers and query looked at: the router found
            # heads a chain of routers with conditions (ir.table), ask again with them.
            view = RequestView(
                scope["method"], head.headers, scope.get("query_string", b"").decode("latin-1")
            )
            route = table.route(host, path, view)
        if note is not None:
            note.host, note.path, note.table, note.route = host, path, table, route
        if not secure and self._entry_redirect is not None:
            answer = self._entry_redirect.on_request(self._filter_request(scope, host, path, head))
            if answer is not None:
                await self._filter_answer(send, answer)
                return
        query: bytes = scope.get("query_string", b"")
        forward = path  # what goes upstream: the canonical path, unless a filter rewrites it
        limit = self._max_body_size
        if route is not None and route.request_filters:
            # The router's request-phase filters, in order: each answers the request itself
            # (a redirect, a refusal) or edits what goes upstream (path, query, headers, the
            # body limit). A router without filters pays only the test above.
            req = self._filter_request(scope, host, path, head)
            for f in route.request_filters:
                answer = f.on_request(req)
                if answer is not None:
                    await self._filter_answer(send, answer, route, head, scope["method"])
                    return
            forward, query, limit = req.path, req.query.encode("latin-1"), req.max_body_size
        if route is None:
            await self._answer(send, 404, f'no route for host "{host}" path "{path}"\n')
            return
        if route.auth is not None and await self._external_auth(route, scope, head, send):
            return  # the auth service said no: its answer is sent
        backend = route.backend
        if backend.error is not None or not backend.endpoints:
            await self._unavailable(send, route, backend, snapshot.generation, scope, head, note)
            return

        method: str = scope["method"]
        first: Endpoint | None = None
        set_cookie: str | None = None
        if backend.weights or backend.balance is not None:
            choice = choose(
                self._balancer,
                backend,
                RequestView(method, head.headers, query.decode("latin-1")),
                client=client_address(head.headers),
                uri=(scope.get("raw_path") or b"").decode("latin-1")
                + ("?" + query.decode("latin-1") if query else ""),
                https=secure,
                now=time.time(),
            )
            if choice.endpoint is None:
                await self._unavailable(
                    send, route, choice.backend, snapshot.generation, scope, head, note
                )
                return
            backend, first, set_cookie = choice.backend, choice.endpoint, choice.set_cookie
        if limit is not None and head.content_length is not None and head.content_length > limit:
            # Refused before any upstream is contacted (nginx: client_max_body_size); with
            # `Expect: 100-continue` the client does not even send the body.
            log.info(
                "%s %s: Content-Length %d over %d (413)", method, path, head.content_length, limit
            )
            await self._answer(send, 413, "413 Content Too Large\n", close=True)
            return
        target = forward.encode("ascii")
        if query:
            target += b"?" + query
        if note is not None:
            note.request_id = request_id(head.headers)
        body: RequestBody | None = None
        if head.has_body:
            body = RequestBody(receive, max_size=limit, idle_timeout=self._body_timeout)
        watch = ClientWatch(receive, body, self._watches)
        upstream: UpstreamResponse | None = None
        responding = False
        try:
            if body is not None:
                await body.prime()
            upstream = await self._exchange(method, backend, target, head, body, scope, note, first)
            errors = route.errors
            if errors is not None and upstream.status in errors.codes:
                # custom-http-errors: this answer is replaced by the error service's.
                status = upstream.status
                await upstream.aclose()
                upstream = None
                upstream = await self._error_exchange(errors, status, scope, head, note)
            reply = self._rewriter.response(upstream.headers, upstream.status)
            if route.response_filters:
                edited = FilterResponse(upstream.status, reply.headers, head.headers, method)
                for edit in route.response_filters:
                    edit.on_response(edited)
            if set_cookie is not None:
                reply.headers.append((b"set-cookie", set_cookie.encode("latin-1")))
            if self._debug_headers:
                reply.headers.append((DEBUG_HEADER, debug_value(route, upstream.endpoint)))
            if reply.ambiguous:
                raise UpstreamProtocolError(
                    f"{upstream.endpoint} sent both Content-Length and Transfer-Encoding"
                )
            responding = True
            start = {
                "type": "http.response.start",
                "status": upstream.status,
                "headers": reply.headers,
            }
            whole = upstream.complete_body()
            if whole is None:
                await self._relay(upstream, reply.content_length, start, send, watch)
            else:
                # The whole response arrived with its head (most small ones): one body
                # message, no iteration, and behind our guard one write for both
                # (cycle.ProxyCycle honours BODY_FOLLOWS). The watch stops in `finally`, after
                # the write: nothing yields between the body's write and there, so a watcher
                # woken by the completed response cannot cancel us first.
                start[BODY_FOLLOWS] = True
                await send(start)
                await send({"type": "http.response.body", "body": whole, "more_body": False})
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
            if not await self._error_page(route, exc.status, scope, head, note, send):
                await self._answer(send, exc.status, f"{exc.status} {exc.public}\n")
        finally:
            watch.stop()
            # A half-read connection is closed, never pooled.
            if upstream is not None and not upstream.close_now():
                await upstream.aclose()

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
        first: Endpoint | None = None,
    ) -> UpstreamResponse:
        """Send the request to an endpoint of `backend`, retrying only where it is safe.

        Decided by the error's type. A connect failure (`nothing_sent`) moves on to another
        endpoint, for any method, at most CONNECT_RETRIES times within one --connect-timeout.
        A connection that died after the request went out and before the response head was
        complete (UpstreamClosedEarly) is retried once, for idempotent requests whose body
        can be sent again. Nothing is retried once this returns: the head is in, and from
        then on response bytes may have reached the client.

        The service's own options (ir.service) narrow this: its RetryPolicy caps the tries
        (or turns retries off), its Timeouts replace the listener's; `first` is the endpoint
        a policy already chose (affinity, hashing, a weighted member).
        """
        balancer = self._balancer
        forwarder = self._forwarder
        server = scope.get("server")
        stream = EMPTY_BODY if body is None else body
        endpoint = balancer.pick(backend) if first is None else first
        started = time.monotonic()
        tried: list[Endpoint] | None = None
        budget = self._connect_timeout
        connect_timeout: float | None = None
        closed_retry = True
        retries = CONNECT_RETRIES
        timeouts = backend.timeouts
        policy = backend.retries
        if policy is not None:
            # tries counts the first one; 0: every endpoint once.
            retries = (policy.tries - 1 if policy.tries else len(backend.endpoints)) * (
                policy.on_error
            )
            closed_retry = policy.on_error and retries > 0
        if timeouts is not None and timeouts.connect is not None:
            budget = connect_timeout = timeouts.connect
        while True:
            if note is not None:
                note.endpoint = endpoint
            headers = head.headers
            if head.host is None or not backend.pass_host:
                # HTTP/1.0 without Host: HTTP/1.1 to the upstream requires one. A service
                # that does not pass the client's Host sends the endpoint's own.
                headers = [(k, v) for k, v in headers if k != b"host"]
                headers.append((b"host", str(endpoint).encode("ascii")))
            try:
                if self._own.is_self(endpoint, server):
                    raise UpstreamLoop(f"{endpoint} is this proxy's own listen address")
                upstream = await forwarder.send(
                    method,
                    endpoint,
                    target,
                    headers,
                    stream,
                    connect_timeout=connect_timeout,
                    timeouts=timeouts,
                )
            except UpstreamError as exc:
                if exc.nothing_sent:
                    balancer.connect_failed(endpoint)
                    if tried is None:
                        tried = []
                    tried.append(endpoint)
                    left = budget - (time.monotonic() - started)
                    # A connect timeout used up the budget: each try waits for what is left
                    # of it. (`left` alone can still look positive: the loop's timer may fire
                    # a millisecond early, and a retry would then time out at once.)
                    following = (
                        balancer.pick_other(backend, tried)
                        if len(tried) <= retries
                        and left > 0
                        and not isinstance(exc, UpstreamConnectTimeout)
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
        self,
        upstream: UpstreamResponse,
        content_length: int | None,
        start: Message,
        send: Send,
        watch: ClientWatch,
    ) -> None:
        """Stream the upstream's response to the client, one ASGI message per chunk (a
        response not yet complete when its head arrived).

        uvicorn's send() waits while the client's socket buffer is full, so a slow reader
        stops us reading the upstream (back-pressure, not memory).
        """
        await send(start)
        remaining = content_length
        finished = False
        async for chunk in upstream.chunks():
            if not chunk:
                continue
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    # With a known length the last chunk ends the message, saving a send;
                    # iterating on lets the transport see the end, so the connection is reused.
                    watch.stop()
                    finished = True
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    continue
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not finished:
            watch.stop()
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _external_auth(
        self, route: Router, scope: Scope, head: RequestHead, send: Send
    ) -> bool:
        """nginx's auth_request as ingress-nginx's template sets it up (ir.model.ExternalAuth).
        True when the request was answered here (refused, or the service failed); False to go
        on, with the answer's `response_headers` now on the upstream request."""
        auth = route.auth
        assert auth is not None
        query: bytes = scope.get("query_string", b"")
        raw = (scope.get("raw_path") or b"/").decode("latin-1")
        uri = raw + ("?" + query.decode("latin-1") if query else "")
        scheme = "https" if scope.get("scheme") == "https" else "http"
        http_host = (head.host or b"").decode("latin-1")
        client = client_address(head.headers) or ""
        method: str = scope["method"]
        original = f"{scheme}://{http_host}{uri}"
        ours = {
            "host": auth.host,
            "x-original-url": original,
            "x-original-method": method,
            "x-sent-from": "nginx-ingress-controller",
            "x-real-ip": client,
            "x-forwarded-for": client,
            "x-auth-request-redirect": auth.request_redirect or uri,
        }
        if auth.method is not None:
            ours["x-original-uri"] = uri
            ours["x-scheme"] = scheme
        dropped = {*ours, "content-length", "transfer-encoding", "x-forwarded-proto"}
        fields = [(k, v) for k, v in head.headers if k.decode("latin-1") not in dropped]
        fields += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in ours.items()]
        plain = RequestHead(fields, auth.host.encode("latin-1"), False, False, None)
        try:
            answer = await self._exchange(
                auth.method or "GET",
                auth.backend,
                auth.target.encode("latin-1"),
                plain,
                None,
                scope,
                None,
            )
        except UpstreamError as exc:
            log.warning("auth service %s for %s %s: %s", auth.url, method, raw[:200], exc)
            await self._answer(send, 500, "500 Internal Server Error\n")
            return True
        try:
            if answer.complete_body() is None:
                async for _ in answer.chunks():
                    pass
        except UpstreamError:
            pass
        finally:
            if not answer.close_now():
                await answer.aclose()
        status = answer.status
        if 200 <= status < 300:
            for name in auth.response_headers:
                key = name.lower().encode("latin-1")
                values = [(key, v) for k, v in answer.headers if k.lower() == key]
                head.headers[:] = [(k, v) for k, v in head.headers if k != key]
                head.headers.extend(values)
            return False
        if status == 401 and auth.signin:
            sep = "&" if "?" in auth.signin else "?"
            location = f"{auth.signin}{sep}{auth.signin_param}={quote(original, safe='')}"
            answer302 = Answer(302, (("location", location),), "")
            await self._filter_answer(send, answer302, route, head, method)
            return True
        if status in (401, 403):
            challenge = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in answer.headers
                if status == 401 and k.lower() == b"www-authenticate"
            ]
            reason = "Authorization Required" if status == 401 else "Forbidden"
            refused = Answer(status, tuple(challenge), f"{status} {reason}\n")
            await self._filter_answer(send, refused, route, head, method)
            return True
        log.warning(
            "auth service %s answered %d for %s %s: 500", auth.url, status, method, raw[:200]
        )
        await self._answer(send, 500, "500 Internal Server Error\n")
        return True

    async def _error_exchange(
        self, errors: ErrorPages, status: int, scope: Scope, head: RequestHead, note: _Note | None
    ) -> UpstreamResponse:
        """The request, as ingress-nginx's CUSTOM_ERRORS location sends it to the error
        service: method and headers kept, no body, path "/" with the query string, the
        ErrorContext headers and X-Forwarded-For the client's address alone."""
        headers = [
            (k, v)
            for k, v in head.headers
            if k not in (b"content-length", b"transfer-encoding", b"x-forwarded-for")
        ]
        query: bytes = scope.get("query_string", b"")
        raw = (scope.get("raw_path") or b"/").decode("latin-1")
        original = raw + ("?" + query.decode("latin-1") if query else "")
        dataclasses.replace(errors.context, code=status).apply(headers, original)
        client = client_address(head.headers)
        if client:
            headers.append((b"x-forwarded-for", client.encode("latin-1")))
        plain = RequestHead(headers, head.host, False, False, None)
        target = b"/?" + query if query else b"/"
        return await self._exchange(
            scope["method"], errors.backend, target, plain, None, scope, note
        )

    async def _error_page(
        self,
        route: Router,
        status: int,
        scope: Scope,
        head: RequestHead,
        note: _Note | None,
        send: Send,
    ) -> bool:
        """Answer with the route's error service when `status` is one of its error codes
        (our own 502/503/504 included, as nginx's error_page covers its own errors). False
        when the route has none for it, or the error service fails too: the caller answers."""
        errors = route.errors
        if errors is None or status not in errors.codes:
            return False
        backend = errors.backend
        if backend.error is not None or not backend.endpoints:
            return False
        try:
            upstream = await self._error_exchange(errors, status, scope, head, note)
        except UpstreamError as exc:
            log.warning("error service %s for %s: %s", backend.key, status, exc)
            return False
        try:
            body = upstream.complete_body()
            if body is None:
                body = b"".join([chunk async for chunk in upstream.chunks()])
            reply = self._rewriter.response(upstream.headers, upstream.status)
            fields = [(k, v) for k, v in reply.headers if k.lower() != b"content-length"]
            fields.append((b"content-length", str(len(body)).encode("ascii")))
            await send(
                {"type": "http.response.start", "status": upstream.status, "headers": fields}
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
        except UpstreamError as exc:
            log.warning("error service %s for %s: %s", backend.key, status, exc)
            return False
        finally:
            if not upstream.close_now():
                await upstream.aclose()
        if note is not None:
            note.status = upstream.status
        return True

    async def _unavailable(
        self,
        send: Send,
        route: Router,
        backend: Backend,
        generation: int,
        scope: Scope,
        head: RequestHead,
        note: _Note | None,
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
        if await self._error_page(route, 503, scope, head, note, send):
            return
        await self._answer(send, 503, f"service {backend.key} is unavailable: {reason}\n")

    def _filter_request(
        self, scope: Scope, host: str, path: str, head: RequestHead
    ) -> FilterRequest:
        return filter_request(scope, host, path, head, self.https_port, self._max_body_size)

    async def _filter_answer(
        self,
        send: Send,
        answer: Answer,
        route: Router | None = None,
        request: RequestHead | None = None,
        method: str = "GET",
    ) -> None:
        """A filter's own answer (a redirect, a refusal), as a short text/plain response,
        through the router's response filters (nginx's more_set_headers reach those too)."""
        body = answer.body.encode("latin-1", "replace")
        fields = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in answer.headers]
        if not any(k == b"content-type" for k, _ in fields):
            fields.append((b"content-type", b"text/plain; charset=utf-8"))
        fields.append((b"content-length", str(len(body)).encode("ascii")))
        if route is not None and request is not None and route.response_filters:
            edited = FilterResponse(answer.status, fields, request.headers, method)
            for edit in route.response_filters:
                edit.on_response(edited)
        head = self._rewriter.response(fields)
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": head.headers}
        )
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

    # ------------------------------------------------------------------ lifespan

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
        self.route: Router | None = None
        self.endpoint: Endpoint | None = None
        self.request_id: str | None = None
        self.upstream_error: str | None = None
