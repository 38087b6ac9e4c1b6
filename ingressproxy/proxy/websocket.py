"""The WebSocket side of the catch-all app: read the snapshot once, match, then open the
upstream through forward_ws and relay.

Flow: ProxyApp (scope type "websocket") -> WebSocketProxy -> paths / headers / balancer ->
forward_ws -> upstream. Same routing, header and retry rules as the HTTP path in proxy.py.
"""

from __future__ import annotations

import logging

from starlette.types import Message, Receive, Scope, Send

from ..errors import BadRequest, UpstreamError, UpstreamLoop
from ..ir.conditions import RequestView
from ..ir.model import Backend, Endpoint
from ..ir.snapshot import SnapshotHolder
from ..ir.table import normalize_host
from ..server.settings import Settings
from ..upstream.affinity import choose
from ..upstream.balancer import Balancer
from .exchange import CONNECT_RETRIES, OwnAddress, client_address, filter_request, read_request
from .forward_ws import UpstreamRefused, UpstreamWebSocket, WebSocketForwarder
from .headers import HeaderRewriter, RequestHead
from .paths import BadPath

__all__ = ["WebSocketProxy"]

# The proxy's logger, as before this path had a module of its own: users filter on it.
log = logging.getLogger("ingressproxy.proxy")


class WebSocketProxy:
    """`WebSocketProxy(...)(scope, receive, send)` proxies one WebSocket; ProxyApp shares its
    header rewriter, balancer and own-address check with it."""

    __slots__ = ("_balancer", "_holder", "_own", "_rewriter", "_ws", "https_port")

    def __init__(
        self,
        holder: SnapshotHolder,
        settings: Settings,
        *,
        rewriter: HeaderRewriter,
        balancer: Balancer,
        own: OwnAddress,
    ) -> None:
        self._holder = holder
        self._rewriter = rewriter
        self._balancer = balancer
        self._own = own
        self._ws = WebSocketForwarder(settings)
        self.https_port: int | None = None  # set with ProxyApp.https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxy a WebSocket: the same routing and header rules as HTTP, then forward_ws.

        Everything that goes wrong before the upstream accepts is answered as an HTTP response
        (uvicorn's websocket.http.response extension), never as a 101 followed by a close.
        """
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        snapshot = self._holder.current  # once: a reload never cuts an open WebSocket
        try:
            path, head = read_request(scope, self._rewriter, "ws")
        except (BadPath, BadRequest) as exc:
            await self._ws_answer(scope, send, 400, f"400 Bad Request: {exc}\n")
            return
        if head.host is None:
            await self._ws_answer(scope, send, 400, "400 Bad Request: missing Host header\n")
            return
        host = normalize_host(head.host.decode("latin-1"))
        secure = scope.get("scheme") == "wss"
        table = snapshot.entrypoints.table(snapshot.table, secure)
        route = table.route(host, path)
        query: bytes = scope.get("query_string", b"")
        if route is not None and route.conditions:
            view = RequestView("GET", head.headers, query.decode("latin-1"))
            route = table.route(host, path, view)
        if route is None:
            await self._ws_answer(scope, send, 404, f'no route for host "{host}" path "{path}"\n')
            return
        forward = path
        if route.request_filters:
            # The same filters as the HTTP path, on the handshake: a redirect or refusal is its
            # HTTP answer, and a rewrite changes what the upstream's handshake asks for.
            req = filter_request(scope, host, path, head, self.https_port, None)
            for f in route.request_filters:
                answer = f.on_request(req)
                if answer is not None:
                    fields = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
                    fields.append((b"content-type", b"text/plain; charset=utf-8"))
                    await self._ws_answer(scope, send, answer.status, answer.body, fields)
                    return
            forward, query = req.path, req.query.encode("latin-1")
        backend = route.backend
        first: Endpoint | None = None
        if not backend.error and backend.endpoints and (backend.weights or backend.balance):
            choice = choose(
                self._balancer,
                backend,
                RequestView("GET", head.headers, query.decode("latin-1")),
                client=client_address(head.headers),
                uri=forward,
                https=secure,
            )
            # A cookie policy's new session cookie cannot ride on the 101 here; the next
            # plain request of the client starts it.
            backend, first = choice.backend, choice.endpoint
        if backend.error is not None or not backend.endpoints:
            reason = backend.error or "no endpoints found"
            text = f"service {backend.key} is unavailable: {reason}\n"
            await self._ws_answer(scope, send, 503, text)
            return
        target = forward + ("?" + query.decode("latin-1") if query else "")
        try:
            upstream = await self._ws_open(backend, target, head, scope, first)
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
        self,
        backend: Backend,
        target: str,
        head: RequestHead,
        scope: Scope,
        first: Endpoint | None = None,
    ) -> UpstreamWebSocket:
        """forward_ws.open with the HTTP path's connect retries and passive health."""
        balancer = self._balancer
        server = scope.get("server")
        subprotocols: list[str] = scope.get("subprotocols") or []
        endpoint = balancer.pick(backend) if first is None else first
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
                        if len(tried) <= CONNECT_RETRIES
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
