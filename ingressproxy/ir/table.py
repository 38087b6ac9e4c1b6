"""The IR's routers indexed for look-up: the immutable route table and its pure `match`.

Flow: a front-end's settled routers -> build_table -> RouteTable -> proxy. Matching cost
depends on the number of path elements in the request, never on the number of Ingresses: a
dict by host, then a walk up the path's elements with one dict look-up each (Kubernetes Prefix
semantics are element-wise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .conditions import RequestView
from .model import Matcher, Router, prefix_key

__all__ = [
    "EntryPoints",
    "HostMatch",
    "HostTable",
    "Match",
    "Ordering",
    "RouteTable",
    "build_table",
    "map_routers",
    "merge_tables",
    "nginx_location_rank",
    "normalize_host",
    "prefix_key",
]


class Ordering(StrEnum):
    """Which of several matching rules of one host wins."""

    # Kubernetes: the longest rule path as written; on equal length Exact beats Prefix.
    LONGEST = "longest"
    # nginx locations: an exact (`=`) location first, then the longest prefix string; a Prefix
    # rule /p is location `/p/` plus `= /p` (ingress-nginx updateServerLocations).
    EXACT_FIRST = "exact-first"
    # Traefik routers: the highest priority, by default the length of the rule text.
    RULE_LENGTH = "rule-length"


@dataclass(frozen=True, slots=True)
class HostTable:
    """All path rules merged across Ingresses for one host (or wildcard, or any host)."""

    exact: Mapping[str, Router] = field(default_factory=lambda: MappingProxyType({}))
    # Prefix and ImplementationSpecific rules keyed by prefix_key(rule path).
    prefix: Mapping[str, Router] = field(default_factory=lambda: MappingProxyType({}))
    # The defaultBackend of the oldest Ingress with rules for this host, used for unmatched
    # paths on the host and for host rules without `http`.
    default: Router | None = None
    # Plain string prefixes keyed by the rule path as written (flavors nginx and traefik).
    strings: Mapping[str, Router] = field(default_factory=lambda: MappingProxyType({}))
    # The distinct lengths of the `strings` keys, longest first (computed when not given).
    string_lengths: tuple[int, ...] = ()
    ordering: Ordering = Ordering.LONGEST
    # Regex locations in the order nginx tries them (the first that matches wins), before
    # anything else: ingress-nginx makes every location of a host a regex once one Ingress
    # of the host uses use-regex or rewrite-target.
    regex: tuple[Router, ...] = ()
    # The host is one matcher of each router's rule (Traefik): when this is the most specific
    # table for a request, every applicable table of the same kind competes by priority.
    fallthrough: bool = False
    # Path rules left out of matching because their Service is unusable (flavor traefik skips
    # them, as Traefik does); kept only so that tools can say why a request got 404.
    skipped: tuple[Router, ...] = ()

    def __post_init__(self) -> None:
        if self.strings and not self.string_lengths:
            lengths = tuple(sorted({len(k) for k in self.strings}, reverse=True))
            object.__setattr__(self, "string_lengths", lengths)

    def match_path(self, path: str, view: RequestView | None = None) -> Router | None:
        """The rule for an already canonical path, per `ordering`; None when none matches.

        A Prefix rule matches whole elements: walk the request's elements from longest to
        shortest. A string prefix is looked up once per distinct rule length. With a `view`,
        a slot whose routers have conditions gives the first of its chain that accepts the
        request, and when none does the search goes on to less specific slots (Gateway API:
        a match that fails its header condition leaves the request to the next rule); without
        one, conditions are not looked at (the proxy asks again with a view only when the
        router it got has conditions).
        """
        for r in self.regex:
            if r.matches_path(path) and (view is None or r.accepts(view)):
                return r
        exact = self.exact.get(path) if self.exact else None
        if exact is not None and view is not None and exact.conditions:
            exact = exact.chosen(view)
        if exact is not None and self.ordering is Ordering.EXACT_FIRST:
            return exact
        best: Router | None = None
        prefix = self.prefix
        if prefix:
            p = prefix_key(path)
            while True:
                best = prefix.get(p)
                if best is not None and view is not None and best.conditions:
                    best = best.chosen(view)
                if best is not None or not p:
                    break
                p = p[: p.rfind("/")]
        if self.strings:
            string = self.longest_string(path, view)
            if string is not None:
                best = string if best is None else self._better(best, string, path)
        if exact is None:
            return best
        if best is None:
            return exact
        return self._better(exact, best, path)

    def longest_string(self, path: str, view: RequestView | None = None) -> Router | None:
        strings = self.strings
        n = len(path)
        for length in self.string_lengths:
            if length <= n:
                got = strings.get(path[:length])
                if got is not None and view is not None and got.conditions:
                    got = got.chosen(view)
                if got is not None:
                    return got
        return None

    def _better(self, a: Router, b: Router, path: str) -> Router:
        """The winner of two matching routes `a` and `b`; `a` wins ties (callers pass Exact
        first, then element Prefix, then string prefixes)."""
        ordering = self.ordering
        if ordering is Ordering.RULE_LENGTH:
            return b if b.priority > a.priority else a
        if ordering is Ordering.EXACT_FIRST:
            return b if nginx_location_rank(b, path) > nginx_location_rank(a, path) else a
        return b if len(b.path or "") > len(a.path or "") else a


def nginx_location_rank(route: Router, path: str) -> tuple[int, int]:
    """How nginx ranks the location a route stands for, for a request `path` it matches.

    ingress-nginx writes a Prefix rule /p as `location /p/` plus `location = /p`; exact
    locations are tried first, then the longest prefix string wins.
    """
    rule = route.path or ""
    how = route.how
    if how is Matcher.EXACT:
        return (1, len(rule))
    if how is Matcher.PREFIX:
        key = prefix_key(rule)
        if key and path == key:
            return (1, len(rule))
        return (0, len(key) + 1)
    return (0, len(rule))


class HostMatch(StrEnum):
    EXACT = "exact"
    WILDCARD = "wildcard"
    ANY = "any"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Match:
    route: Router | None
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
    """Host first, then path; no fall-through to a less specific host (Kubernetes semantics),
    unless `fallthrough` (flavor traefik: the host is just one matcher of each router's rule, so
    every applicable host table competes by route priority)."""

    exact_hosts: Mapping[str, HostTable] = field(default_factory=lambda: MappingProxyType({}))
    # Keyed by the wildcard's suffix: "*.foo.com" -> "foo.com". Matches exactly one more label.
    wildcard_hosts: Mapping[str, HostTable] = field(default_factory=lambda: MappingProxyType({}))
    any_host: HostTable | None = None
    # The defaultBackend of an Ingress without rules: catches what nothing else matched.
    default: Router | None = None
    flavor: str = "spec"  # the compatibility flavor it was compiled for (flavors.Flavor)
    fallthrough: bool = False

    def routes(self) -> Iterator[Router]:
        """Every route in the table, each once, in a stable order (for dumps and tools)."""
        seen: set[int] = set()
        tables: list[HostTable] = [self.exact_hosts[h] for h in sorted(self.exact_hosts)]
        tables += [self.wildcard_hosts[h] for h in sorted(self.wildcard_hosts)]
        if self.any_host is not None:
            tables.append(self.any_host)
        candidates: list[Router | None] = []
        for t in tables:
            candidates += t.regex
            candidates += [t.exact[p] for p in sorted(t.exact)]
            candidates += [t.prefix[p] for p in sorted(t.prefix)]
            candidates += [t.strings[p] for p in sorted(t.strings)]
            candidates.append(t.default)
        candidates.append(self.default)
        for head in candidates:
            for r in head.chain() if head is not None else ():
                if id(r) not in seen:
                    seen.add(id(r))
                    yield r

    def host_tables(self, host: str) -> list[tuple[HostTable, HostMatch, str | None]]:
        """Every host table whose host matches `host`, most specific first."""
        found: list[tuple[HostTable, HostMatch, str | None]] = []
        table = self.exact_hosts.get(host)
        if table is not None:
            found.append((table, HostMatch.EXACT, host))
        wildcard = self._wildcard(host)
        if wildcard is not None:
            found.append((wildcard[0], HostMatch.WILDCARD, wildcard[1]))
        if self.any_host is not None:
            found.append((self.any_host, HostMatch.ANY, None))
        return found

    def select_host(self, host: str) -> tuple[HostTable | None, HostMatch, str | None]:
        """The one host table that serves `host` (no fall-through): the first of host_tables."""
        table = self.exact_hosts.get(host)
        if table is not None:
            return table, HostMatch.EXACT, host
        wildcard = self._wildcard(host)
        if wildcard is not None:
            return wildcard[0], HostMatch.WILDCARD, wildcard[1]
        if self.any_host is not None:
            return self.any_host, HostMatch.ANY, None
        return None, HostMatch.NONE, None

    def _wildcard(self, host: str) -> tuple[HostTable, str] | None:
        """The `*.suffix` table covering `host` (exactly one more label) and its key."""
        if self.wildcard_hosts:
            dot = host.find(".")
            if dot > 0:
                suffix = host[dot + 1 :]
                table = self.wildcard_hosts.get(suffix)
                if table is not None:
                    return table, "*." + suffix
        return None

    def match(self, host: str, path: str, view: RequestView | None = None) -> Match:
        """`host` as normalize_host gives it, `path` canonical (see paths.canonicalize);
        `view` to evaluate routers' conditions (HostTable.match_path)."""
        if self.fallthrough:
            return self._match_any_table(host, path, view)
        table, how, key = self.select_host(host)
        return Match(self._route_in(table, path, view), how, key)

    def route(self, host: str, path: str, view: RequestView | None = None) -> Router | None:
        """`match(host, path).route` without building the Match: the proxy's per-request
        look-up (a frozen dataclass costs more to make than the look-up itself)."""
        if self.fallthrough:
            return self._match_any_table(host, path, view).route
        return self._route_in(self.select_host(host)[0], path, view)

    def _route_in(
        self, table: HostTable | None, path: str, view: RequestView | None = None
    ) -> Router | None:
        route: Router | None = None
        if table is not None:
            route = table.match_path(path, view)
            if route is None:
                route = table.default
        return self.default if route is None else route

    def _match_any_table(self, host: str, path: str, view: RequestView | None = None) -> Match:
        tables = self.host_tables(host)
        if tables and not tables[0][0].fallthrough:
            # The most specific table is of a dialect that chooses the host first (a folder
            # of several dialects): that table alone, as without fall-through.
            table, how, key = tables[0]
            return Match(self._route_in(table, path, view), how, key)
        best: Router | None = None
        how, key = HostMatch.NONE, None
        for table, table_how, table_key in tables:
            if not table.fallthrough:
                continue  # another dialect's host: not one of the competing routers
            route = table.match_path(path, view)
            # On equal priority the more specific host table (found first) keeps it.
            if route is not None and (best is None or route.priority > best.priority):
                best, how, key = route, table_how, table_key
        if best is None:
            return Match(self.default, how, key)
        return Match(best, how, key)


HostKey = str | None  # a host as written ("foo.com", "*.foo.com"), None = any host


def _slots(d: Mapping[str, list[Router]]) -> Mapping[str, Router]:
    """Each slot's routers as one chain; read-only, in key order so dumps are stable."""
    return MappingProxyType({key: chain_slot(d[key]) for key in sorted(d)})


def chain_slot(routers: Sequence[Router]) -> Router:
    """The head of one slot's chain: the routers with conditions in the order given, then the
    last one without (a slot has one router without conditions; the front-ends settle
    collisions before, and the last given wins, as a dict would keep it)."""
    plain = [r for r in routers if not r.conditions]
    conditional = [r for r in routers if r.conditions]
    if not conditional:
        return plain[-1]  # the router itself: no copy when there is nothing to chain
    tail: Router | None = plain[-1] if plain else None
    for r in reversed(conditional):
        tail = dataclasses.replace(r, otherwise=tail)
    assert tail is not None
    return tail


def build_table(
    routers: Iterable[Router],
    *,
    hosts: Iterable[HostKey] = (),
    default: Router | None = None,
    skipped: Mapping[HostKey, list[Router]] | None = None,
    ordering: Ordering = Ordering.LONGEST,
    fallthrough: bool = False,
    flavor: str = "spec",
) -> RouteTable:
    """Index settled routers by host, then by how each matches its path. A slot (host,
    matcher, path) holds one router without conditions (the last given wins) and any number
    with conditions, chained in the order given before it (Router.otherwise). `hosts` are
    hosts that get a table even without routers (a rule without `http` still claims its
    host); `default` is the router for requests nothing else matches; `skipped` routers are
    kept only so tools can say why a request got 404."""
    exact: dict[HostKey, dict[str, list[Router]]] = {}
    prefix: dict[HostKey, dict[str, list[Router]]] = {}
    strings: dict[HostKey, dict[str, list[Router]]] = {}
    defaults: dict[HostKey, Router] = {}
    regexes: dict[HostKey, list[Router]] = {}
    every = dict.fromkeys(hosts)
    for r in routers:
        every.setdefault(r.host)
        how = r.how
        if how is Matcher.DEFAULT:
            defaults[r.host] = r
        elif how is Matcher.EXACT:
            exact.setdefault(r.host, {}).setdefault(r.path or "", []).append(r)
        elif how is Matcher.PREFIX:
            prefix.setdefault(r.host, {}).setdefault(prefix_key(r.path or ""), []).append(r)
        elif how is Matcher.REGEX:
            regexes.setdefault(r.host, []).append(r)  # in the order given: nginx's
        else:
            strings.setdefault(r.host, {}).setdefault(r.path or "", []).append(r)
    skipped = skipped or {}
    tables: dict[HostKey, HostTable] = {}
    for host in every:
        tables[host] = HostTable(
            exact=_slots(exact.get(host, {})),
            prefix=_slots(prefix.get(host, {})),
            default=defaults.get(host),
            strings=_slots(strings.get(host, {})),
            ordering=ordering,
            regex=tuple(regexes.get(host, ())),
            fallthrough=fallthrough,
            skipped=tuple(skipped.get(host, ())),
        )
    exact_hosts = {h: t for h, t in tables.items() if h is not None and not h.startswith("*.")}
    wildcards = {h[2:]: t for h, t in tables.items() if h is not None and h.startswith("*.")}
    return RouteTable(
        exact_hosts=MappingProxyType(dict(sorted(exact_hosts.items()))),
        wildcard_hosts=MappingProxyType(dict(sorted(wildcards.items()))),
        any_host=tables.get(None),
        default=default,
        flavor=flavor,
        fallthrough=fallthrough,
    )


def map_routers(table: RouteTable, change: Callable[[Router], Router]) -> RouteTable:
    """`table` with every router replaced by `change(router)` (chains, defaults and skipped
    routers included): for a front-end's passes that refine routers already placed (e.g.
    ingress-nginx's error pages). Routers `change` returns as they are keep their identity."""

    def chain(r: Router) -> Router:
        new = change(r)
        if r.otherwise is None:
            return new
        rest = chain(r.otherwise)
        if rest is r.otherwise and new is r:
            return r
        return dataclasses.replace(new, otherwise=rest)

    def one(r: Router | None) -> Router | None:
        return None if r is None else chain(r)

    def mapping(d: Mapping[str, Router]) -> Mapping[str, Router]:
        return MappingProxyType({k: chain(v) for k, v in d.items()})

    def host(t: HostTable) -> HostTable:
        return dataclasses.replace(
            t,
            exact=mapping(t.exact),
            prefix=mapping(t.prefix),
            strings=mapping(t.strings),
            default=one(t.default),
            regex=tuple(change(r) for r in t.regex),
            skipped=tuple(change(r) for r in t.skipped),
        )

    return dataclasses.replace(
        table,
        exact_hosts=MappingProxyType({h: host(t) for h, t in table.exact_hosts.items()}),
        wildcard_hosts=MappingProxyType({h: host(t) for h, t in table.wildcard_hosts.items()}),
        any_host=None if table.any_host is None else host(table.any_host),
        default=one(table.default),
    )


@dataclass(frozen=True, slots=True)
class EntryPoints:
    """What differs between the two listeners in one snapshot: the table for requests on the
    TLS listener, None when it is the `web` table (no router restricts its entry points), so
    the common case compiles and stores one table."""

    websecure: RouteTable | None = None

    def table(self, web: RouteTable, secure: bool) -> RouteTable:
        return self.websecure if secure and self.websecure is not None else web


def merge_tables(
    parts: Sequence[tuple[RouteTable, Mapping[HostKey, Any]]],
    default: Router | None,
) -> tuple[RouteTable, list[tuple[int, HostKey, int]]]:
    """One table from tables of several dialects. `parts` pairs each table with the rank of
    each of its hosts (lower wins: the age of the oldest Ingress naming the host); a host in
    several tables goes to the lowest rank. Returns the table and (loser part, host, winner
    part) for every host a part lost, so the front-end can say so."""
    won: dict[HostKey, tuple[Any, int, HostTable]] = {}
    lost: list[tuple[int, HostKey, int]] = []
    for index, (table, ranks) in enumerate(parts):
        own: list[tuple[HostKey, HostTable]] = [(h, ht) for h, ht in table.exact_hosts.items()]
        own += [("*." + s, ht) for s, ht in table.wildcard_hosts.items()]
        if table.any_host is not None:
            own.append((None, table.any_host))
        for host, ht in own:
            rank = ranks[host]
            held = won.get(host)
            if held is None or rank < held[0]:
                if held is not None:
                    lost.append((held[1], host, index))
                won[host] = (rank, index, ht)
            else:
                lost.append((index, host, held[1]))
    exact = {h: v[2] for h, v in won.items() if h is not None and not h.startswith("*.")}
    wildcards = {h[2:]: v[2] for h, v in won.items() if h is not None and h.startswith("*.")}
    any_host = won[None][2] if None in won else None
    merged = RouteTable(
        exact_hosts=MappingProxyType(dict(sorted(exact.items()))),
        wildcard_hosts=MappingProxyType(dict(sorted(wildcards.items()))),
        any_host=any_host,
        default=default,
        flavor="auto",
        fallthrough=any(v[2].fallthrough for v in won.values())
        or any(t.fallthrough for t, _ in parts),
    )
    return merged, lost
