"""What the proxy reports about each finished request, and the names people see for routes.

Flow: proxy -> RequestRecord -> observers (metrics, access log). Routers and services are named
the way Traefik's Kubernetes Ingress provider names them, so the admin API, the metrics labels
and the access log all say `imagemanager-image-labeling-http` for the same thing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import UpstreamConnectError, UpstreamError, UpstreamProtocolError, UpstreamTimeout
from ..ir.model import Backend, Endpoint, Router
from ..ir.table import RouteTable
from ..manifests.model import Diagnostic, Ingress, IngressServiceBackend, ObjectRef

__all__ = [
    "CompositeObserver",
    "RequestObserver",
    "RequestRecord",
    "RouteNames",
    "UpstreamErrorKind",
    "combine",
    "diagnostic_fields",
    "error_kind",
    "logfmt",
    "names_for",
    "normalize_name",
    "router_key",
    "service_key",
    "unique",
]

log = logging.getLogger("ingressproxy.observe")

# The kinds of upstream failure the proxy maps to 502/504 (errors.py), as metric label values.
UpstreamErrorKind = str  # "connect" | "timeout" | "protocol" | "upstream"


def error_kind(exc: UpstreamError) -> UpstreamErrorKind:
    """The metric label / access log value for an upstream failure."""
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, UpstreamConnectError):
        return "connect"
    if isinstance(exc, UpstreamProtocolError):
        return "protocol"
    return "upstream"


def normalize_name(name: str) -> str:
    """Traefik's provider.Normalize: every run of characters that are neither letters nor
    digits becomes one '-', and none is left at either end."""
    out: list[str] = []
    word: list[str] = []
    for ch in name:
        if ch.isalnum():
            word.append(ch)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return "-".join(out)


def router_key(namespace: str, ingress: str, host: str | None, path: str | None) -> str:
    """Traefik's router key for an Ingress path: Normalize(namespace-ingress-host+path).

    Default backends have no path in Traefik's scheme (it names the one it supports
    `default-router`); ours are per Ingress, so they get a `default-backend` suffix.
    """
    if path is None:
        return normalize_name(f"{namespace}-{ingress}-{host or ''}-default-backend")
    return normalize_name(f"{namespace}-{ingress}-{host or ''}{path}")


def service_key(namespace: str, service: str, port: str) -> str:
    """Traefik's service name for a backend: Normalize(namespace-service-port), e.g. the
    blog's `imagemanager-image-labeling-http`."""
    return normalize_name(f"{namespace}-{service}-{port}")


def _hashed(key: str, rule: str) -> str:
    # Traefik's makeRouterKeyWithHash: key + "-" + the first 10 bytes of sha256(rule), in hex.
    return f"{key}-{hashlib.sha256(rule.encode()).hexdigest()[:20]}"


@dataclass(frozen=True, slots=True)
class _Named:
    route: Router  # kept so the id() keys below stay valid while the names are cached
    router: str
    service: str


class RouteNames:
    """Router and service names for every route of one RouteTable.

    Two routes of one Ingress can share a key (Exact and Prefix on one path, or paths that
    normalize alike such as `/a-b` and `/a/b`); like Traefik, each then gets a hash of its
    rule appended, so names stay unique and stable across reloads.
    """

    __slots__ = ("_by_id", "names", "services")

    def __init__(self, routes: Iterable[Router]) -> None:
        self._by_id: dict[int, _Named] = {}
        ordered = list(routes)
        keys = [router_key(r.ingress.namespace, r.ingress.name, r.host, r.path) for r in ordered]
        counts: dict[str, int] = {}
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
        taken: set[str] = set()
        self.services: dict[str, str] = {}  # Backend.key -> service name
        for route, key in zip(ordered, keys, strict=True):
            name = key
            if counts[key] > 1:
                name = _hashed(key, route.rule)
            name = unique(name, taken)
            taken.add(name)
            self._by_id[id(route)] = _Named(route, name, self.service_of(route.backend))
        self.names: frozenset[str] = frozenset(taken)

    def service_of(self, backend: Backend) -> str:
        got = self.services.get(backend.key)
        if got is None:
            got = unique(
                service_key(backend.namespace, backend.service, backend.port),
                set(self.services.values()),
            )
            self.services[backend.key] = got
        return got

    def router(self, route: Router) -> str | None:
        named = self._by_id.get(id(route))
        return named.router if named is not None and named.route is route else None

    def service(self, route: Router) -> str | None:
        named = self._by_id.get(id(route))
        return named.service if named is not None and named.route is route else None


def unique(name: str, taken: set[str] | frozenset[str]) -> str:
    """`name`, or `name-2`, `name-3`, ... whichever is free first."""
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"


# One RouteNames per recent table: a request keeps the snapshot it started with, so names for
# the previous generation are still asked for during a reload.
_NAMES_CACHE: dict[int, tuple[RouteTable, RouteNames]] = {}
_NAMES_LOCK = threading.Lock()
_NAMES_KEEP = 4


def names_for(table: RouteTable) -> RouteNames:
    """The (cached) RouteNames of `table`."""
    got = _NAMES_CACHE.get(id(table))
    if got is not None and got[0] is table:
        return got[1]
    with _NAMES_LOCK:
        got = _NAMES_CACHE.get(id(table))
        if got is not None and got[0] is table:
            return got[1]
        names = RouteNames(table.routes())
        while len(_NAMES_CACHE) >= _NAMES_KEEP:
            _NAMES_CACHE.pop(next(iter(_NAMES_CACHE)))
        _NAMES_CACHE[id(table)] = (table, names)
        return names


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished HTTP exchange, as the proxy saw it.

    Built once per request and only when someone observes; the names are derived on demand
    from `route` and the `table` the request was routed with.
    """

    time: float  # time.time() when the request arrived
    client: str | None  # the peer's address
    method: str
    host: str  # as routed (normalized: lower case, no port)
    path: str  # canonical path, without the query
    status: int  # what the client got; 499 when it went away before an answer
    duration: float  # seconds from arrival to the last byte sent
    bytes_sent: int  # response body bytes sent to the client
    table: RouteTable | None = None
    route: Router | None = None  # None: no route matched (404) or the request was refused
    endpoint: Endpoint | None = None  # the upstream chosen, if one was
    request_id: str | None = None  # the X-Request-Id sent upstream
    upstream_error: UpstreamErrorKind | None = None  # why the upstream exchange failed

    @property
    def router(self) -> str | None:
        if self.route is None or self.table is None:
            return None
        return names_for(self.table).router(self.route)

    @property
    def service(self) -> str | None:
        if self.route is None or self.table is None:
            return None
        return names_for(self.table).service(self.route)

    @property
    def backend(self) -> str | None:
        """`ns/service:port`, as diagnostics name a backend."""
        return None if self.route is None else self.route.backend.key


class RequestObserver(Protocol):
    """Called once per finished request, on the event loop: must not block."""

    def __call__(self, record: RequestRecord) -> None: ...


class CompositeObserver:
    """Several observers behind one call; one failing never hides the record from the others
    nor breaks the request (an observer's bug must not become a 500)."""

    __slots__ = ("observers",)

    def __init__(self, observers: Sequence[RequestObserver]) -> None:
        self.observers = tuple(observers)

    def __call__(self, record: RequestRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except Exception:
                log.exception("request observer %r failed", observer)


def combine(*observers: RequestObserver | None) -> RequestObserver | None:
    """The observers that are set, as one; None when there are none (the proxy then does no
    per-request bookkeeping at all)."""
    present = [o for o in observers if o is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return CompositeObserver(present)


# --------------------------------------------------------------------------- structured logs


def _backend_at(ing: Ingress, field_: str) -> IngressServiceBackend | None:
    """The Service backend an Ingress diagnostic's field points into, if any."""
    if field_.startswith("spec.defaultBackend"):
        return None if ing.default_backend is None else ing.default_backend.service
    for rule in ing.rules:
        for p in rule.paths or ():
            if field_ == p.field or field_.startswith(p.field + "."):
                return p.backend.service
    return None


def diagnostic_fields(
    d: Diagnostic, objects: Mapping[ObjectRef, object] | None = None
) -> dict[str, str | int]:
    """The fields a log line about `d` carries, named like Traefik's provider log
    (`namespace=imagemanager ingress=imagemanager-services ...`), plus where it was written.

    With `objects` (what the snapshot was built from), a diagnostic about an Ingress backend
    also names the Service and port.
    """
    fields: dict[str, str | int] = {"code": d.code}
    if d.obj is not None:
        if d.obj.namespace:
            fields["namespace"] = d.obj.namespace
        fields[d.obj.kind.lower()] = d.obj.name
        ing = objects.get(d.obj) if objects is not None else None
        if isinstance(ing, Ingress) and d.field:
            svc = _backend_at(ing, d.field)
            if svc is not None:
                fields["service"] = svc.name
                fields["port"] = str(svc.port)
    if d.source is not None:
        fields["file"] = d.source.file
        if d.source.line:
            fields["line"] = d.source.line
    if d.field:
        fields["field"] = d.field
    return fields


_BARE = re.compile(r"[A-Za-z0-9_./:@*+\[\]-]+")


def logfmt(fields: Mapping[str, str | int]) -> str:
    """`key=value key="quoted value"`, the logfmt style of Traefik's text logs."""
    parts: list[str] = []
    for key, value in fields.items():
        text = str(value)
        if not _BARE.fullmatch(text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)
