"""The compiled, immutable route table and its pure `match(host, path)`.

Flow: compiler -> RouteTable -> proxy. Matching cost depends on the number of path elements in
the request, never on the number of Ingresses: a dict by host, then a walk up the path's
elements with one dict look-up each (Kubernetes Prefix semantics are element-wise).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from .model import ObjectRef, PathType, Source

__all__ = [
    "Backend",
    "Endpoint",
    "HostMatch",
    "HostTable",
    "Match",
    "Route",
    "RouteTable",
    "normalize_host",
    "prefix_key",
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream address: an IP (or, for ExternalName/DNS backends, a host name) and port."""

    address: str
    port: int
    scheme: str = "http"
    # Precomputed once at compile time; the hot path never formats URLs.
    base_url: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.base_url:
            host = f"[{self.address}]" if ":" in self.address else self.address
            object.__setattr__(self, "base_url", f"{self.scheme}://{host}:{self.port}")

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service port resolved to its ready endpoints.

    `error` is set when there is nothing to send to, and says why in words a user can act on
    (e.g. 'no ready endpoints', 'Service imagemanager/login not found'); the proxy answers 503.
    """

    namespace: str
    service: str
    port: str  # as the Ingress referenced it: a port name or a number
    endpoints: tuple[Endpoint, ...]
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True, slots=True)
class Route:
    """One Ingress path rule (or default backend) that won its place in the table."""

    ingress: ObjectRef
    source: Source
    field: str  # "spec.rules[0].http.paths[1]" or "spec.defaultBackend"
    host: str | None  # the rule's host as written (lower case); None = any host
    path: str | None  # the rule's path as written; None for a default backend
    path_type: PathType | None
    backend: Backend

    @property
    def is_default_backend(self) -> bool:
        return self.path is None


def prefix_key(path: str) -> str:
    """Key of a Prefix rule or request path: one trailing '/' dropped ('/' itself becomes '')."""
    return path[:-1] if path.endswith("/") else path


@dataclass(frozen=True, slots=True)
class HostTable:
    """All path rules merged across Ingresses for one host (or wildcard, or any host)."""

    exact: Mapping[str, Route] = field(default_factory=lambda: MappingProxyType({}))
    # Prefix and ImplementationSpecific rules keyed by prefix_key(rule path).
    prefix: Mapping[str, Route] = field(default_factory=lambda: MappingProxyType({}))
    # The defaultBackend of the oldest Ingress with rules for this host, used for unmatched
    # paths on the host and for host rules without `http`.
    default: Route | None = None

    def match_path(self, path: str) -> Route | None:
        """Kubernetes path matching on an already canonical path.

        Longest rule path as written wins; on equal length Exact beats Prefix. A Prefix rule
        matches whole elements: walk the request's elements from longest to shortest.
        """
        exact = self.exact.get(path) if self.exact else None
        best: Route | None = None
        prefix = self.prefix
        if prefix:
            p = prefix_key(path)
            while True:
                best = prefix.get(p)
                if best is not None or not p:
                    break
                p = p[: p.rfind("/")]
        if exact is None:
            return best
        if best is not None and len(best.path or "") > len(exact.path or ""):
            return best
        return exact


class HostMatch(StrEnum):
    EXACT = "exact"
    WILDCARD = "wildcard"
    ANY = "any"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Match:
    route: Route | None
    host_match: HostMatch
    host_key: str | None  # the host table chosen: "foo.com", "*.foo.com", or None


def normalize_host(raw: str) -> str:
    """Host header -> the name rules are compared with: lower case, no port, no final dot."""
    h = raw.strip().lower()
    if h.startswith("["):  # IPv6 literal, possibly with a port
        end = h.find("]")
        return h[: end + 1] if end > 0 else h
    colon = h.rfind(":")
    if colon >= 0:
        h = h[:colon]
    return h[:-1] if h.endswith(".") else h


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Host first, then path; no fall-through to a less specific host (Kubernetes semantics)."""

    exact_hosts: Mapping[str, HostTable] = field(default_factory=lambda: MappingProxyType({}))
    # Keyed by the wildcard's suffix: "*.foo.com" -> "foo.com". Matches exactly one more label.
    wildcard_hosts: Mapping[str, HostTable] = field(default_factory=lambda: MappingProxyType({}))
    any_host: HostTable | None = None
    # The defaultBackend of an Ingress without rules: catches what nothing else matched.
    default: Route | None = None

    def routes(self) -> Iterator[Route]:
        """Every route in the table, each once, in a stable order (for dumps and tools)."""
        seen: set[int] = set()
        tables: list[HostTable] = [self.exact_hosts[h] for h in sorted(self.exact_hosts)]
        tables += [self.wildcard_hosts[h] for h in sorted(self.wildcard_hosts)]
        if self.any_host is not None:
            tables.append(self.any_host)
        candidates: list[Route | None] = []
        for t in tables:
            candidates += [t.exact[p] for p in sorted(t.exact)]
            candidates += [t.prefix[p] for p in sorted(t.prefix)]
            candidates.append(t.default)
        candidates.append(self.default)
        for r in candidates:
            if r is not None and id(r) not in seen:
                seen.add(id(r))
                yield r

    def select_host(self, host: str) -> tuple[HostTable | None, HostMatch, str | None]:
        table = self.exact_hosts.get(host)
        if table is not None:
            return table, HostMatch.EXACT, host
        if self.wildcard_hosts:
            dot = host.find(".")
            if dot > 0:
                suffix = host[dot + 1 :]
                table = self.wildcard_hosts.get(suffix)
                if table is not None:
                    return table, HostMatch.WILDCARD, "*." + suffix
        if self.any_host is not None:
            return self.any_host, HostMatch.ANY, None
        return None, HostMatch.NONE, None

    def match(self, host: str, path: str) -> Match:
        """`host` as normalize_host gives it, `path` canonical (see paths.canonicalize)."""
        table, how, key = self.select_host(host)
        route: Route | None = None
        if table is not None:
            route = table.match_path(path)
            if route is None:
                route = table.default
        if route is None:
            route = self.default
        return Match(route, how, key)
