"""Per-request helpers shared by the HTTP and WebSocket paths of the proxy (proxy.py,
proxy_ws.py): the client-disconnect watch, the own-address loop check, the request id and the
`--debug-headers` value. No routing, no I/O beyond the watch's one `receive` task.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import quote

from starlette.types import Receive, Scope

from ..ir.filters import FilterRequest
from ..ir.model import Endpoint, Router
from ..upstream.deadlines import Sweep
from .forward_http import RequestBody
from .headers import HeaderRewriter, RequestHead
from .paths import canonicalize

__all__ = [
    "CONNECT_RETRIES",
    "DEBUG_HEADER",
    "PATH_SAFE",
    "ClientWatch",
    "OwnAddress",
    "client_address",
    "client_watches",
    "debug_value",
    "filter_request",
    "read_request",
    "request_id",
]

# Characters left alone when re-quoting a decoded scope["path"] (servers without raw_path).
PATH_SAFE = "/:@!$&'()*+,;=~"

# A failed connect (nothing sent) is retried on at most this many other endpoints, all within
# one --connect-timeout from the first try (nginx's proxy_next_upstream_tries/_timeout).
CONNECT_RETRIES = 2
# A request still waiting after this long starts watching for the client leaving, so a stalled
# upstream is cancelled well within a second of a disconnect; quicker exchanges never pay for
# the watcher task (Starlette's per-response listener costs ~25%, PERF-NOTES.md).
_WATCH_AFTER = 0.25

# `serve --debug-headers`: which Ingress rule and endpoint answered ("why did my request go
# there?", the question `explain` answers offline).
DEBUG_HEADER = b"x-ingressproxy-route"


def read_request(
    scope: Scope, rewriter: HeaderRewriter, default_scheme: str
) -> tuple[str, RequestHead]:
    """The canonical path (matched and forwarded) and the rewritten head of an HTTP or
    WebSocket request. Raises paths.BadPath or errors.BadRequest (both answered 400)."""
    raw_path = scope.get("raw_path")
    client = scope.get("client")
    server = scope.get("server")
    path = canonicalize(raw_path if raw_path is not None else quote(scope["path"], safe=PATH_SAFE))
    head = rewriter.request(
        scope["headers"],
        client=client[0] if client else None,
        scheme=scope.get("scheme", default_scheme),
        server_port=server[1] if server else None,
    )
    return path, head


def filter_request(
    scope: Scope,
    host: str,
    path: str,
    head: RequestHead,
    https_port: int | None,
    max_body_size: int | None,
) -> FilterRequest:
    """The request as a router's filters see it (HTTP and WebSocket alike)."""
    qs = scope.get("query_string", b"").decode("latin-1")
    target = (scope.get("raw_path") or path.encode()).decode("latin-1")
    server = scope.get("server")
    return FilterRequest(
        method=scope.get("method", "GET"),
        scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
        host=host,
        target=target + ("?" + qs if qs else ""),
        https_port=https_port,
        path=path,
        query=qs,
        headers=head.headers,
        port=server[1] if server else None,
        client=client_address(head.headers),
        max_body_size=max_body_size,
    )


def client_address(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The client's address as --trusted-proxies resolves it: the X-Real-IP the rewriter
    set (a client's own X-Real-IP is dropped before), so never a forgeable header."""
    for name, value in reversed(headers):
        if name == b"x-real-ip":
            return value.decode("latin-1")
    return None


def request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    # The rewriter appends X-Request-Id last; search from the end.
    for name, value in reversed(headers):
        if name == b"x-request-id":
            return value.decode("latin-1")
    return None


def debug_value(route: Router, endpoint: Endpoint) -> bytes:
    rule = (
        "spec.defaultBackend"
        if route.path is None
        else f"{route.field} {route.path_type} {route.host or '*'}{route.path}"
    )
    ingress = f"{route.ingress.namespace}/{route.ingress.name}"
    text = f"{ingress} {rule} -> {route.backend.key} {endpoint}"
    return text.encode("latin-1", "replace")


class ClientWatch:
    """Cancels the request's task when the client goes away mid-exchange (uvicorn's send()
    drops data silently once the client is gone, and a stalled upstream would otherwise hold
    the request until --read-timeout).

    A request still running after _WATCH_AFTER to twice that starts one task reading `receive`
    (only once the body is fully read: until then RequestBody sees a disconnect itself).
    `gone` tells the request that a CancelledError is ours to turn into a 499. The watches of
    one loop share a Sweep (`client_watches()`), so a quick request costs a set add and two set
    discards, no timer.
    """

    __slots__ = ("_body", "_receive", "_sweep", "_task", "_watcher", "active", "gone")

    def __init__(self, receive: Receive, body: RequestBody | None, sweep: Sweep) -> None:
        self._receive = receive
        self._body = body
        self._sweep = sweep
        self._watcher: asyncio.Task[None] | None = None
        self.active = True
        self.gone = False
        sweep.add(self)
        # With the loop named: asyncio.current_task() alone costs a getpid() syscall on 3.11.
        self._task = asyncio.current_task(sweep.loop)

    def _start(self) -> None:
        if not self.active:
            return
        if self._body is not None and not self._body.done:
            self._sweep.add(self)  # looked at again a period later
            return
        loop = self._sweep.loop
        assert loop is not None  # added, so bound
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
        if not self.active:
            return
        self.active = False
        self._sweep.discard(self)
        if self._watcher is not None:
            # Not awaited: awaiting a cancelled task here could swallow our own cancellation.
            self._watcher.cancel()
            self._watcher = None


def client_watches() -> Sweep:
    """The Sweep the ClientWatches of one event loop share (ProxyApp makes one per loop)."""
    return Sweep(_WATCH_AFTER, ClientWatch._start)


class OwnAddress:
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
