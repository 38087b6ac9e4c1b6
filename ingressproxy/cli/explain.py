"""Why a request goes where it goes: one routing decision, step by step, as a value.

Flow: Snapshot (or RouteTable) + request -> explain() -> Explanation -> to_text() for
`ingressproxy explain`, to_json() for `--format json` and the admin API. Pure: the decision
itself comes from RouteTable.match, the proxy's own code; this module only adds the reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..ir.conditions import RequestView
from ..ir.dump import dump_diagnostic, dump_route
from ..ir.filters import FilterRequest
from ..ir.model import Matcher, Router
from ..ir.snapshot import Snapshot
from ..ir.table import (
    HostMatch,
    HostTable,
    Ordering,
    RouteTable,
    nginx_location_rank,
    normalize_host,
    prefix_key,
)
from ..manifests.model import Diagnostic
from ..proxy.paths import BadPath, canonicalize

__all__ = ["Explanation", "HostCandidate", "RuleCheck", "explain", "route_label"]


@dataclass(frozen=True, slots=True)
class HostCandidate:
    """One way the request's host could select rules: exact, one-label wildcard, or any."""

    kind: HostMatch
    host: str | None  # "foo.com", "*.foo.com", None for rules without a host
    exists: bool  # some rule is written for it
    chosen: bool  # its rules were consulted
    note: str


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One path rule of a consulted host, compared with the request path."""

    route: Router
    matched: bool
    chosen: bool
    reason: str
    rank: str  # what it is compared by when several rules match ("" when not matched)
    skipped: bool = False  # left out of the table: its Service is unusable (flavor traefik)


@dataclass(frozen=True, slots=True)
class Explanation:
    method: str
    url: str
    flavor: str
    host: str  # as compared with rules: lower case, no port, no final dot
    raw_path: str
    path: str | None  # canonical; None when the path is refused (400)
    query: str
    hosts: tuple[HostCandidate, ...]
    host_decision: str
    rules: tuple[RuleCheck, ...]
    tie_breaks: tuple[str, ...]
    route: Router | None
    status: int  # 200 = forwarded to an endpoint (the upstream's status is passed through)
    reason: str
    diagnostics: tuple[Diagnostic, ...]
    notes: tuple[str, ...]
    # What the route's request filters do to it (they are pure, so explain runs them): the
    # request that goes upstream, or the answer a filter gives instead.
    upstream: UpstreamRequest | None = None

    def outcome(self) -> str:
        """One line: what the client gets (for `explain --compare`)."""
        route = self.route
        up = self.upstream
        if up is not None and up.answer is not None:
            where = f" Location {up.location}" if up.location else ""
            return f"{self.status} from {up.answered_by}{where}"
        if route is None or self.status != 200:
            return f"{self.status} ({self.reason})"
        sent = f" as {up.target} Host {up.host}" if up is not None else ""
        return f"{route.backend.key}{sent} ({route_label(route)}, {route.dialect})"

    def to_json(self) -> dict[str, object]:
        route = self.route
        backend = None if route is None else route.backend
        return {
            "method": self.method,
            "url": self.url,
            "flavor": self.flavor,
            "host": self.host,
            "path": {"raw": self.raw_path, "canonical": self.path, "query": self.query},
            "hosts": [
                {
                    "kind": str(c.kind),
                    "host": c.host,
                    "exists": c.exists,
                    "chosen": c.chosen,
                    "note": c.note,
                }
                for c in self.hosts
            ],
            "hostDecision": self.host_decision,
            "rules": [
                {
                    **_dump_rule(r.route),
                    "matched": r.matched,
                    "chosen": r.chosen,
                    "reason": r.reason,
                    "rank": r.rank,
                    "skipped": r.skipped,
                }
                for r in self.rules
            ],
            "tieBreaks": list(self.tie_breaks),
            "route": None if route is None else _dump_rule(route),
            "backend": None
            if backend is None
            else {
                "key": backend.key,
                "endpoints": [str(ep) for ep in backend.endpoints],
                "error": backend.error,
                "services": [m.key for m in backend.members] or [backend.key],
            },
            "status": self.status,
            "reason": self.reason,
            "upstream": None if self.upstream is None else self.upstream.to_json(),
            "diagnostics": [dump_diagnostic(d) for d in self.diagnostics],
            "notes": list(self.notes),
        }

    def to_text(self) -> str:
        lines = [f"{self.method} {self.url}  (flavor {self.flavor})"]
        if self.path is None:
            lines.append(f"path: {self.raw_path}")
        elif self.path == self.raw_path:
            lines.append(f"path: {self.path} (already canonical)")
        else:
            lines.append(f"path: {self.raw_path} -> canonical {self.path}")
        if self.path is not None:
            lines.append(f"host: {self.host or '(none)'}")
            width = max((len(_host_label(c)) for c in self.hosts), default=0)
            for c in self.hosts:
                lines.append(f"  {c.kind!s:<8} {_host_label(c):<{width}}  {c.note}")
            lines.append(f"  -> {self.host_decision}")
        if self.rules:
            lines.append("rules:")
            for r in self.rules:
                mark = "chosen" if r.chosen else ("match" if r.matched else "no")
                mark = "skipped" if r.skipped else mark
                rank = f" [{r.rank}]" if r.rank else ""
                lines.append(f"  {mark:<8}{r.reason}{rank}")
                lines.append(f"          {_where(r.route)}")
        if self.tie_breaks:
            lines.append("tie-breaks:")
            lines += [f"  {t}" for t in self.tie_breaks]
        route = self.route
        if route is not None:
            what = "the defaultBackend" if route.path is None else _rule_name(route)
            lines.append(f"decision: {what} ({_where(route)})")
            why = f" ({route.dialect_reason})" if route.dialect_reason else ""
            lines.append(f"dialect: {route.dialect}{why}")
            if route.filters:
                lines.append("filters: " + ", ".join(type(f).__name__ for f in route.filters))
            backend = route.backend
            if backend.members:
                lines.append(f"backend: {backend.key} (in turn)")
            else:
                lines.append(f"backend: {backend.key}")
            eps = ", ".join(str(ep) for ep in dict.fromkeys(backend.endpoints)) or "none"
            lines.append(f"  endpoints: {eps}")
        up = self.upstream
        if up is not None and up.answer is not None:
            where = f", Location {up.location}" if up.location else ""
            lines.append(f"answered by filter {up.answered_by}: {up.answer}{where}")
        elif up is not None:
            lines.append(f"upstream request: {self.method} {up.target}  Host: {up.host}")
        lines.append(f"status: {self.status} - {self.reason}")
        lines += [f"  {d}" for d in self.diagnostics]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """The request after the route's filters: what goes upstream, or a filter's answer."""

    target: str  # path and query sent upstream
    host: str  # the Host header sent upstream
    answer: int | None = None  # the status a filter answered with instead
    answered_by: str = ""
    location: str = ""

    def to_json(self) -> dict[str, object]:
        if self.answer is not None:
            return {"answer": self.answer, "filter": self.answered_by, "location": self.location}
        return {"target": self.target, "host": self.host}


def run_filters(
    route: Router,
    method: str,
    host: str,
    path: str,
    query: str,
    raw: str,
    headers: list[tuple[bytes, bytes]],
) -> UpstreamRequest:
    """Run `route`'s request filters on the request as the proxy would (they are pure), on
    the plain-HTTP listener with the HTTPS one on 443."""
    req = FilterRequest(
        method=method,
        scheme="http",
        host=host,
        target=raw + ("?" + query if query else ""),
        https_port=443,
        path=path,
        query=query,
        headers=list(headers),
        port=80,
    )
    for f in route.request_filters:
        answer = f.on_request(req)
        if answer is not None:
            location = next((v for k, v in answer.headers if k == "location"), "")
            return UpstreamRequest("", "", answer.status, type(f).__name__, location)
    sent_host = next((v for k, v in req.headers if k == b"host"), b"").decode("latin-1")
    if not route.backend.pass_host and route.backend.endpoints:
        sent_host = str(route.backend.endpoints[0])
    return UpstreamRequest(req.path + ("?" + req.query if req.query else ""), sent_host)


def route_label(route: Router) -> str:
    """`Prefix /login of Ingress ns/name`, or `the defaultBackend of Ingress ns/name`."""
    if route.path is None:
        return f"the defaultBackend of {route.ingress}"
    return f"{route.path_type} {route.path} of {route.ingress}"


def explain(
    snapshot_or_table: Snapshot | RouteTable,
    url: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> Explanation:
    """Explain how the proxy would route `method url` (with `headers`; a `Host` header wins
    over the URL's host, as with `curl -H 'Host: ...'`).

    `url` is absolute (`http://host/path?q`), host and path without a scheme, or a path
    (`/path?q`, host from `headers`). Nothing is sent anywhere.
    """
    if isinstance(snapshot_or_table, Snapshot):
        table, diagnostics = snapshot_or_table.table, snapshot_or_table.diagnostics
    else:
        table, diagnostics = snapshot_or_table, ()
    url_host, raw_path, query = _split(url)
    header_host = next((v for k, v in (headers or {}).items() if k.lower() == "host"), None)
    host = normalize_host(header_host if header_host is not None else url_host)
    method = method.upper()
    notes = ["the method does not take part in Ingress routing"]
    if not host:
        notes.append(
            "the request has no host: over HTTP/1.1 the proxy answers 400 (RFC 9112 3.2);"
            " this explains an HTTP/1.0 request"
        )
    try:
        path = canonicalize(raw_path)
    except BadPath as exc:
        refused = f"the path is refused before routing: {exc}"
        return Explanation(
            method=method,
            url=url,
            flavor=table.flavor,
            host=host,
            raw_path=raw_path,
            path=None,
            query=query,
            hosts=(),
            host_decision="",
            rules=(),
            tie_breaks=(),
            route=None,
            status=400,
            reason=refused,
            diagnostics=(),
            notes=tuple(notes),
        )
    view = RequestView(
        method,
        [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
        query,
    )
    route = table.route(host, path, view)
    if any(r.conditions for r in table.routes()):
        notes[0] = "the method, headers and query take part where a rule has conditions"
    hosts, consulted, host_decision = _hosts(table, host)
    rules = tuple(
        check
        for t in consulted
        for check in (
            *(
                _check(r, path, r is route, table, view)
                for r in sorted(_path_routes(t), key=_rule_order)
            ),
            *(_skipped(r, path, table) for r in sorted(t.skipped, key=_rule_order)),
        )
    )
    tie_breaks = _tie_breaks(table, rules, route, consulted, path)
    status, reason = _status(route, host, path, bool(consulted))
    if route is None and any(r.skipped and r.matched for r in rules):
        reason = (
            f"the rules that match {path} were left out (their Services are unusable; Traefik"
            ' logs "Skipping service"), and no other rule or defaultBackend matches'
        )
    related = _related(diagnostics, route, rules)
    upstream = None
    if route is not None:
        # The Host header as the client would send it, then the other headers given.
        sent = header_host if header_host is not None else url_host
        fields = [(b"host", sent.encode("latin-1")), *(f for f in view.headers if f[0] != b"host")]
        upstream = run_filters(route, method, host, path, query, raw_path, fields)
        if upstream.answer is not None:
            status, reason = upstream.answer, f"the route's filter {upstream.answered_by} answers"
    return Explanation(
        method=method,
        url=url,
        flavor=table.flavor,
        host=host,
        raw_path=raw_path,
        path=path,
        query=query,
        hosts=hosts,
        host_decision=host_decision,
        rules=rules,
        tie_breaks=tie_breaks,
        route=route,
        status=status,
        reason=reason,
        diagnostics=related,
        notes=tuple(notes),
        upstream=upstream,
    )


def _related(
    diagnostics: tuple[Diagnostic, ...], route: Router | None, rules: tuple[RuleCheck, ...]
) -> tuple[Diagnostic, ...]:
    """The diagnostics about the chosen rule, and about matching rules that were left out."""
    about = [r.route for r in rules if r.skipped and r.matched]
    if route is not None:
        about.insert(0, route)
    return tuple(
        d
        for d in diagnostics
        if any(d.obj == r.ingress and d.field.startswith(r.field) for r in about)
    )


# --------------------------------------------------------------------------- request


def _split(url: str) -> tuple[str, str, str]:
    """(host[:port], raw path, query) of what the user typed."""
    url = url.partition("#")[0]
    if url.startswith("/"):
        # A bare path: taken as is, so `//a/b` is a path, not a network location.
        path, _, query = url.partition("?")
        return "", path, query
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2], parts.path or "/", parts.query


# --------------------------------------------------------------------------- hosts


def _hosts(table: RouteTable, host: str) -> tuple[tuple[HostCandidate, ...], list[HostTable], str]:
    dot = host.find(".")
    suffix = host[dot + 1 :] if dot > 0 else None
    found = {how: (t, key) for t, how, key in table.host_tables(host)}
    consulted: list[HostTable] = []
    if table.fallthrough:
        consulted = [t for t, _ in found.values()]
    elif found:
        consulted = [next(iter(found.values()))[0]]
    shapes: list[tuple[HostMatch, str | None, bool]] = [
        (HostMatch.EXACT, host, HostMatch.EXACT in found),
        (
            HostMatch.WILDCARD,
            None if suffix is None else f"*.{suffix}",
            HostMatch.WILDCARD in found,
        ),
        (HostMatch.ANY, None, HostMatch.ANY in found),
    ]
    candidates: list[HostCandidate] = []
    chosen_any = False
    for how, key, exists in shapes:
        chosen = exists and found[how][0] in consulted
        candidates.append(
            HostCandidate(
                how, key, exists, chosen, _host_note(how, exists, chosen, chosen_any, table)
            )
        )
        chosen_any = chosen_any or chosen
    if not consulted:
        decision = f'no rule is written for host "{host}" and there are no rules without a host'
    elif table.fallthrough:
        kinds = ", ".join(str(c.kind) for c in candidates if c.chosen)
        decision = (
            f"all matching hosts are consulted ({kinds}): in flavor {table.flavor} the host is one"
            " matcher of each router rule, and the rules compete by priority"
        )
    else:
        first = next(c for c in candidates if c.chosen)
        decision = f"{first.kind} host chosen; only its rules are consulted"
    return tuple(candidates), consulted, decision


def _host_note(
    how: HostMatch, exists: bool, chosen: bool, earlier_chosen: bool, table: RouteTable
) -> str:
    if not exists:
        return "no rules"
    if chosen and table.fallthrough:
        return "consulted"
    if chosen:
        return {
            HostMatch.EXACT: "chosen: a rule names this host exactly (the most specific wins)",
            HostMatch.WILDCARD: "chosen: the wildcard matches exactly one more label",
            HostMatch.ANY: "chosen: rules without a host take any host not matched above",
        }.get(how, "chosen")
    if earlier_chosen:
        return (
            "not consulted: a more specific host was chosen, and Kubernetes chooses the host"
            " before the path (no fall-through)"
        )
    return "not consulted"


def _host_label(c: HostCandidate) -> str:
    if c.kind is HostMatch.ANY:
        return "(rules without a host)"
    return c.host or "(no wildcard for this host)"


# --------------------------------------------------------------------------- rules


def _path_routes(t: HostTable) -> list[Router]:
    heads = [*t.regex, *t.exact.values(), *t.prefix.values(), *t.strings.values()]
    # Each slot's whole chain: the routers with conditions tried before the plain one.
    return list({id(r): r for head in heads for r in head.chain()}.values())


def _rule_order(r: Router) -> tuple[str, str, str]:
    return (r.host or "", r.path or "", str(r.path_type))


def _rule_name(r: Router) -> str:
    if r.how is Matcher.STRING:
        return f"{r.path_type} {r.path} (string prefix)"
    if r.how is Matcher.REGEX:
        return f'{r.path_type} {r.path} (regex location ~* "^{r.path}")'
    return f"{r.path_type} {r.path}"


def _where(r: Router) -> str:
    return f"{r.ingress}, {r.source} {r.field}"


def _check(
    r: Router, path: str, chosen: bool, table: RouteTable, view: RequestView | None = None
) -> RuleCheck:
    rule = r.path or ""
    name = _rule_name(r)
    how = r.how
    if how is Matcher.EXACT:
        matched = r.matches_path(path)
        if matched:
            why = f"{name} matches {path}"
        elif rule.lower() == path.lower():
            why = f"{name} does not match {path}: Exact is case-sensitive"
        else:
            why = f"{name} does not match {path}: Exact compares the whole path"
    elif how is Matcher.PREFIX:
        matched = r.matches_path(path)
        detail = _elements(rule, path)
        verb = "matches" if matched else "does not match"
        why = f"{name} {verb} {path}: {detail}"
    elif how is Matcher.REGEX:
        matched = r.matches_path(path)
        verb = "matches" if matched else "does not match"
        why = f"{name} {verb} {path}: a case-insensitive regex from the start of the path"
    else:
        matched = r.matches_path(path)
        if matched:
            why = f"{name} matches {path}: a plain string prefix, path elements do not matter"
        else:
            why = f"{name} does not match {path}: the path does not start with {rule!r}"
    if matched and r.conditions and view is not None:
        failed = [str(c) for c in r.conditions if not c.test(view)]
        if failed:
            matched = False
            why = f"{why}; but its condition {', '.join(failed)} does not hold"
        else:
            why = f"{why}, and its conditions hold ({', '.join(map(str, r.conditions))})"
    rank = _rank(r, path, table) if matched else ""
    return RuleCheck(r, matched, chosen, why, rank)


def _skipped(r: Router, path: str, table: RouteTable) -> RuleCheck:
    check = _check(r, path, False, table)
    why = r.backend.error or "no ready endpoints"
    reason = (
        f"{check.reason}; left out in flavor {table.flavor}: service {r.backend.key} is"
        f" unusable ({why})"
    )
    return RuleCheck(r, check.matched, False, reason, "", skipped=True)


def _elements(rule: str, path: str) -> str:
    """Why a Kubernetes Prefix rule does or does not match, element by element, in words
    (whether it matches is the router's own answer: Router.matches_path)."""
    want = prefix_key(rule).split("/")[1:]
    got = prefix_key(path).split("/")[1:]
    if not want:
        return "it matches every path"
    for i, element in enumerate(want):
        if i >= len(got):
            return f"the path ends before element {element!r}"
        if got[i] != element:
            return f"element {element!r} != {got[i]!r}"
    shared = "/".join(want)
    return f"element by element ({shared!r})"


def _rank(r: Router, path: str, table: RouteTable) -> str:
    if r.how is Matcher.REGEX:
        return (
            "regex locations are tried in ingress-nginx's order (longest path first, then"
            " reverse string order) and the first that matches wins"
        )
    ordering = _ordering(table)
    if ordering is Ordering.RULE_LENGTH:
        return f"priority {r.priority} = length of {r.rule}"
    if ordering is Ordering.EXACT_FIRST:
        exact, length = nginx_location_rank(r, path)
        if exact:
            return "exact location (= " + (r.path or "") + ")"
        return f"prefix location of length {length}"
    return f"path length {len(r.path or '')}"


def _ordering(table: RouteTable) -> Ordering:
    for t in (*table.exact_hosts.values(), *table.wildcard_hosts.values(), table.any_host):
        if t is not None:
            return t.ordering
    return Ordering.LONGEST


def _tie_breaks(
    table: RouteTable,
    rules: tuple[RuleCheck, ...],
    route: Router | None,
    consulted: list[HostTable],
    path: str,
) -> tuple[str, ...]:
    out: list[str] = []
    matched = [r for r in rules if r.matched]
    winner = next((r for r in matched if r.chosen), None)
    if winner is not None and len(matched) > 1:
        others = ", ".join(f"{_rule_name(r.route)} [{r.rank}]" for r in matched if not r.chosen)
        rule = {
            Ordering.LONGEST: "the longest rule path as written wins (on equal length Exact beats"
            " Prefix)",
            Ordering.EXACT_FIRST: "nginx tries exact locations first, then the longest prefix"
            " location",
            Ordering.RULE_LENGTH: "the router with the highest priority (the longest rule) wins",
        }[_ordering(table)]
        out.append(f"{len(matched)} rules match; {rule}: {_rule_name(winner.route)} over {others}")
    if route is not None:
        for o in route.overridden:
            out.append(
                f"{route_label(o.route)} ({o.route.source}) claims the same slot and lost:"
                f" {o.reason}"
            )
        if route.sharing:
            names = ", ".join(str(s.ingress) for s in route.sharing)
            out.append(
                f"the same rule is also written by {names}: in flavor {table.flavor} requests go"
                f" to {route.backend.key} in turn"
            )
        if route.path is None and not matched:
            if any(t.default is route for t in consulted):
                out.append("no path rule matches: the host's defaultBackend answers")
            else:
                out.append(
                    "no path rule matches: the defaultBackend of an Ingress without rules"
                    " catches what nothing else matched"
                )
    return tuple(out)


# --------------------------------------------------------------------------- status


def _status(route: Router | None, host: str, path: str, any_host_rules: bool) -> tuple[int, str]:
    if route is None:
        if not any_host_rules:
            return 404, f'no rule for host "{host}" and no defaultBackend'
        return 404, f'no rule of host "{host}" matches {path} and there is no defaultBackend'
    backend = route.backend
    if backend.error is not None or not backend.endpoints:
        return 503, f"service {backend.key} is unavailable: {backend.error or 'no endpoints'}"
    n = len(dict.fromkeys(backend.endpoints))
    if backend.members:
        services = ", ".join(m.key for m in backend.members)
        return 200, f"proxied in turn to the Services {services} ({n} endpoints)"
    if n == 1:
        return 200, "proxied to its only ready endpoint"
    return 200, f"proxied to one of {n} ready endpoints (round robin)"


def _dump_rule(route: Router) -> dict[str, object]:
    return {
        **dump_route(route),
        "matcher": str(route.how),
        "priority": route.priority,
        "dialect": route.dialect,
        "dialectReason": route.dialect_reason or None,
        "filters": [type(f).__name__ for f in route.filters],
    }
