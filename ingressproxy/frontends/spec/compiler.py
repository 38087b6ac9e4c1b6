"""The Ingress engine: decoded Ingresses -> routers of the IR, conflicts settled -> RouteTable.

Flow: frontends.pipeline -> compile_manifests(manifests, options, policies) -> routers ->
ir.table.build_table -> CompileResult. The Kubernetes rules (Exact/Prefix, the longest path
wins, the oldest Ingress keeps a contested path) parametrized by a dialect's Semantics row, so
the nginx and traefik front-ends reuse it with their own. Pure: reads no files, clocks or
environment; the same objects in any order give the same result.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ...ir.filters import RewriteTarget
from ...ir.model import DEFAULT_PRIORITY, Backend, Endpoint, Matcher, Overridden, Router
from ...ir.regex import compiled
from ...ir.table import RouteTable, build_table, prefix_key
from ...manifests.model import (
    Diagnostic,
    Ingress,
    IngressBackend,
    Manifests,
    ObjectRef,
    PathRule,
    PathType,
    Severity,
    Source,
)
from ...proxy.paths import BadPath, canonical_rule_path
from ..backends import BackendResolver
from ..nginx.redirects import location_filters
from ..nginx.rewrite import Rewrite, nginx_locations
from ..options import CompileOptions, CompileResult, IngressPolicy
from ..semantics import Semantics
from ..traefik.rules import rule_priority, rule_text
from .classes import select_ingresses
from .lint import annotation_warnings, shadowed, shared_host_warnings

__all__ = ["AgeKey", "age_key", "compile_manifests", "semantics_of"]


def semantics_of(options: CompileOptions) -> Semantics:
    """The Semantics row of the dialect `options` ask for (from its own package)."""
    from ..dialects import SEMANTICS  # the dialect packages import this engine

    if options.flavor not in SEMANTICS:
        # AUTO picks a dialect per Ingress: frontends.pipeline.compile_routes does that.
        raise ValueError(f"the Ingress engine compiles one dialect, not {options.flavor}")
    return SEMANTICS[options.flavor]


_NO_POLICY = IngressPolicy()
_DEFAULT_OPTIONS = CompileOptions()


def compile_manifests(
    manifests: Manifests,
    options: CompileOptions = _DEFAULT_OPTIONS,
    policies: Mapping[ObjectRef, IngressPolicy] | None = None,
    regex_hosts: frozenset[str | None] | None = None,
) -> CompileResult:
    """Routers for the served Ingresses of `manifests`, in one table. `policies` are what the
    dialects' annotation passes decided per Ingress (frontends.pipeline.ingress_policies);
    without them they are read here, with no TLS hosts and their diagnostics left out (the
    pipeline reports those once for every compile)."""
    diags: list[Diagnostic] = []
    sem = semantics_of(options)
    ingresses = select_ingresses(manifests, options, diags)
    if policies is None:
        from .. import pipeline  # the pipeline runs this engine

        policies = pipeline.ingress_policies(ingresses, options, frozenset(), [])
        regex_hosts = pipeline.regex_hosts(ingresses, policies)
    diags.extend(annotation_warnings(ingresses))
    resolver = BackendResolver(
        manifests,
        allow_external_name=options.allow_external_name,
        overrides=options.backend_overrides,
        dns_pattern=options.dns_pattern,
    )
    namespaces: dict[str, set[str]] = defaultdict(set)
    for svc in manifests.services:
        namespaces[svc.meta.name].add(svc.meta.namespace)
    ctx = _Context(sem, resolver, namespaces, diags, policies, regex_hosts or frozenset())
    collected = _Collected()
    for ing in sorted(ingresses, key=ctx.age):
        _collect(ing, ctx, collected)
    table, routes = _build_table(collected, ctx)
    diags.extend(shared_host_warnings(collected.hosts, ctx.age))
    diags.extend(shadowed(table))
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    return CompileResult(table, ordered, routes)


# --------------------------------------------------------------------------- precedence


def _utc(ts: datetime) -> datetime:
    # Decoded timestamps are RFC 3339; a naive one is taken as UTC, never as local time.
    return ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


_NO_TIME = datetime.min.replace(tzinfo=UTC)


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class _NameOrder:
    """namespace/name as a sort key: ascending, or (flavor nginx) descending on the joined
    "ns/name" string, as ingress-nginx's sortIngressSlice orders equal timestamps (`in > jn`)."""

    namespace: str
    name: str
    descending: bool = False

    def __lt__(self, other: _NameOrder) -> bool:
        if self.descending:
            return f"{self.namespace}/{self.name}" > f"{other.namespace}/{other.name}"
        return (self.namespace, self.name) < (other.namespace, other.name)


AgeKey = tuple[bool, datetime, _NameOrder, Source]


def age_key(ing: Ingress, descending: bool = False) -> AgeKey:
    """Oldest first, as ingress-nginx orders Ingresses; no timestamp sorts last; then
    namespace/name, then where it was written (only for duplicates of one object)."""
    ts = ing.meta.creation_timestamp
    return (
        ts is None,
        _utc(ts) if ts else _NO_TIME,
        _NameOrder(ing.meta.namespace, ing.meta.name, descending),
        ing.meta.source,
    )


def _ts_text(ts: datetime | None) -> str:
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "none"


def _decided_by(winner: Ingress, loser: Ingress, descending: bool = False) -> str:
    a, b = winner.meta.creation_timestamp, loser.meta.creation_timestamp
    if (a is None) != (b is None) or (a and b and _utc(a) != _utc(b)):
        return f"older creationTimestamp ({_ts_text(a)} vs {_ts_text(b)})"
    if descending:
        return "namespace/name order (descending on equal timestamps, as ingress-nginx sorts)"
    return "namespace/name order"


@dataclass(slots=True)
class _Context:
    """What one compilation needs everywhere: the flavor's choices, the backend resolver, the
    namespaces each Service name exists in, and the diagnostics collected so far."""

    sem: Semantics
    resolver: BackendResolver
    service_namespaces: Mapping[str, set[str]]
    diags: list[Diagnostic]
    policies: Mapping[ObjectRef, IngressPolicy]
    regex_hosts: frozenset[str | None] = frozenset()

    def age(self, ing: Ingress) -> AgeKey:
        return age_key(ing, self.sem.names_descending)

    def policy(self, ing: Ingress) -> IngressPolicy:
        return self.policies.get(ing.ref, _NO_POLICY)

    def policy_of(self, ref: ObjectRef) -> IngressPolicy:
        return self.policies.get(ref, _NO_POLICY)


# --------------------------------------------------------------------------- collection


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A route an Ingress asks for, before conflicts between Ingresses are settled."""

    route: Router
    ingress: Ingress
    order: int  # position among its Ingress's paths: within one Ingress the first wins


HostKey = str | None  # a host as written ("foo.com", "*.foo.com"), None = any host


@dataclass(slots=True)
class _Collected:
    exact: dict[HostKey, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    prefix: dict[HostKey, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    # Plain string prefixes (flavors nginx and traefik), keyed by the path as written.
    strings: dict[HostKey, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    host_defaults: dict[HostKey, list[_Candidate]] = field(
        default_factory=lambda: defaultdict(list)
    )
    defaults: list[_Candidate] = field(default_factory=list)
    # Path rules left out because their Service is unusable (flavor traefik), for explanations.
    skipped: dict[HostKey, list[Router]] = field(default_factory=lambda: defaultdict(list))
    # Hosts whose locations are all regexes (ingress-nginx enforceRegexModifier): their path
    # candidates, keyed by pathType and path as written.
    regex: dict[HostKey, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    # Every host some served Ingress has a rule for (creates its HostTable), with its users.
    hosts: dict[HostKey, list[tuple[Ingress, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _matcher(path_type: PathType, sem: Semantics) -> Matcher:
    if path_type is PathType.EXACT:
        return Matcher.EXACT
    if path_type is PathType.PREFIX:
        return sem.prefix
    # ImplementationSpecific: its meaning is the controller's. Ours (spec) is Prefix, as the
    # API allows; ingress-nginx and Traefik match it as a plain string prefix.
    return sem.implementation_specific


def _priority(sem: Semantics, host: str | None, path: str | None, pt: PathType | None) -> int:
    if not sem.priority_from_rule:
        return 0
    if path is None:
        return DEFAULT_PRIORITY
    return rule_priority(host, path, pt)


def _collect(ing: Ingress, ctx: _Context, out: _Collected) -> None:
    sem = ctx.sem
    policy = ctx.policy(ing)
    if policy.left_out is not None:
        return  # Traefik builds no router for it (a middleware is missing or invalid)
    dialect = str(sem.flavor)
    order = 0
    for rule in ing.rules:
        out.hosts[rule.host].append((ing, rule.field))
        for path_rule in rule.paths or ():
            backend = _backend(ing, path_rule.backend, f"{path_rule.field}.backend", ctx)
            order += 1
            if backend is None:
                continue
            if rule.host in ctx.regex_hosts:
                regex_route = _regex_candidate(ing, rule.host, path_rule, backend, ctx)
                if regex_route is not None:
                    out.regex[rule.host].append(_Candidate(regex_route, ing, order))
                continue
            # Requests are matched in canonical form (paths.canonicalize), so the rule must be
            # too: `/%7Euser` must match a request for `/~user`.
            try:
                path = canonical_rule_path(path_rule.path)
            except BadPath as exc:
                msg = f'path "{path_rule.path}" can never match a request: {exc}'
                ctx.diags.append(
                    _diag(ing, "unmatchable-path", msg, f"{path_rule.field}.path", Severity.ERROR)
                )
                continue
            matcher = _matcher(path_rule.path_type, sem)
            rule_type = path_rule.path_type
            chosen = policy.path_matcher
            if chosen is not None and path_rule.path_type is PathType.IMPLEMENTATION_SPECIFIC:
                # Traefik's router.pathmatcher: Path or PathPrefix; PathRegexp (unsupported)
                # and invalid values leave the path out (frontends/traefik/router.py says so).
                if chosen not in ("Path", "PathPrefix"):
                    continue
                if chosen == "Path":
                    matcher, rule_type = Matcher.EXACT, PathType.EXACT
            priority = _priority(sem, rule.host, path, rule_type)
            if policy.priority:
                priority = policy.priority  # Traefik's router.priority (0 keeps the default)
            route = Router(
                ingress=ing.ref,
                source=ing.meta.source_of(path_rule.field),
                field=path_rule.field,
                host=rule.host,
                path=path,
                path_type=path_rule.path_type,
                backend=backend,
                matcher=None if matcher is _default_matcher(path_rule.path_type) else matcher,
                priority=priority,
                rule=rule_text(rule.host, path, rule_type),
                filters=location_filters(
                    path, (*policy.filters.get(rule.host, ()), *policy.middlewares)
                ),
                middlewares=policy.middleware_names,
                entrypoints=policy.entrypoints,
                auth=policy.auth,
                dialect=dialect,
                dialect_reason=policy.dialect_reason,
            )
            if sem.skip_unusable_backends and _unusable(backend):
                out.skipped[rule.host].append(route)
                continue
            # ImplementationSpecific is matched as Prefix in flavor spec (ingress-nginx and
            # Traefik also treat a plain path as a prefix); Prefix still wins a tie on the same
            # path (see _rank).
            bucket = {Matcher.EXACT: out.exact, Matcher.PREFIX: out.prefix}.get(matcher)
            (out.strings if bucket is None else bucket)[rule.host].append(
                _Candidate(route, ing, order)
            )
    if ing.default_backend is None:
        return
    field_ = "spec.defaultBackend"
    if ing.rules and not sem.host_default_backends:
        # Traefik's provider reads spec.defaultBackend only from an Ingress without rules
        # (`len(ingress.Spec.Rules) == 0 && ingress.Spec.DefaultBackend != nil`).
        msg = (
            f"ignored in flavor {sem.flavor}: Traefik uses spec.defaultBackend only from an"
            " Ingress without rules, so unmatched paths of these hosts get 404"
        )
        ctx.diags.append(_diag(ing, "default-backend-ignored", msg, field_))
        return
    backend = _backend(ing, ing.default_backend, field_, ctx)
    if backend is None or (sem.skip_unusable_backends and _unusable(backend)):
        return
    source = ing.meta.source_of(field_)
    if not ing.rules:
        route = Router(
            ing.ref,
            source,
            field_,
            None,
            None,
            None,
            backend,
            priority=_priority(sem, None, None, None),
            rule=rule_text(None, None, None),
            filters=(*policy.filters.get(None, ()), *policy.middlewares),
            middlewares=policy.middleware_names,
            entrypoints=policy.entrypoints,
            auth=policy.auth,
            dialect=dialect,
            dialect_reason=policy.dialect_reason,
        )
        out.defaults.append(_Candidate(route, ing, 0))
        return
    # With rules, the defaultBackend serves the unmatched paths of this Ingress's hosts only.
    for host in dict.fromkeys(rule.host for rule in ing.rules):
        route = Router(
            ing.ref,
            source,
            field_,
            host,
            None,
            None,
            backend,
            rule=rule_text(host, None, None),
            filters=policy.filters.get(host, ()),
            entrypoints=policy.entrypoints,
            auth=policy.auth,
            dialect=dialect,
            dialect_reason=policy.dialect_reason,
        )
        out.host_defaults[host].append(_Candidate(route, ing, 0))


def _regex_candidate(
    ing: Ingress, host: str | None, path_rule: PathRule, backend: Backend, ctx: _Context
) -> Router | None:
    """A path of a host whose locations are regexes (nginx dialect): kept as written (a
    regex is not a path to canonicalise), refused when Python's `re` cannot compile it."""
    where = f"{path_rule.field}.path"
    try:
        compiled(path_rule.path)
    except re.error as exc:
        msg = (
            f'path "{path_rule.path}" is a regex location on this host (use-regex or'
            f" rewrite-target), but not a valid regular expression: {exc}; this path is left out"
        )
        ctx.diags.append(_diag(ing, "invalid-regex", msg, where, Severity.ERROR))
        return None
    policy = ctx.policy(ing)
    return Router(
        ingress=ing.ref,
        source=ing.meta.source_of(path_rule.field),
        field=path_rule.field,
        host=host,
        path=path_rule.path,
        path_type=path_rule.path_type,
        backend=backend,
        matcher=Matcher.REGEX,
        rule=rule_text(host, path_rule.path, path_rule.path_type),
        filters=location_filters(path_rule.path, policy.filters.get(host, ())),
        entrypoints=policy.entrypoints,
        auth=policy.auth,
        dialect=str(ctx.sem.flavor),
        dialect_reason=policy.dialect_reason,
    )


def _regex_routers(candidates: list[_Candidate], ctx: _Context) -> list[Router]:
    """One host's regex locations as routers, in the order nginx tries them: contested
    paths settled first (the oldest Ingress keeps one pathType + path), then ingress-nginx's
    location building (frontends/nginx/rewrite.nginx_locations), each rewriting location
    with its RewriteTarget filter."""
    groups: dict[tuple[str, str], list[_Candidate]] = defaultdict(list)
    for c in candidates:
        groups[(str(c.route.path_type), c.route.path or "")].append(c)
    age_of = {c.route.ingress: ctx.age(c.ingress) for c in candidates}
    # In Ingress order (oldest first), as ingress-nginx lists a server's locations before
    # sorting them: equal location paths keep that order.
    winners = sorted((_settle(g, ctx) for g in groups.values()), key=lambda r: age_of[r.ingress])
    rewrites = [ctx.policy_of(r.ingress).rewrite or Rewrite() for r in winners]
    located = nginx_locations(
        [(r.path or "", str(r.path_type), rw) for r, rw in zip(winners, rewrites, strict=True)]
    )
    out: list[Router] = []
    for loc in located:
        base = winners[loc.index]
        rw = rewrites[loc.index]
        filters = base.filters
        if rw.target and rw.rewrites(loc.ingress_path):
            rewrite = RewriteTarget(loc.path, rw.target, rw.x_forwarded_prefix)
            filters = (*filters, rewrite)
        out.append(
            replace(
                base,
                path=loc.path,
                path_type=PathType.EXACT if loc.exact else base.path_type,
                rule=rule_text(base.host, loc.path, base.path_type),
                filters=filters,
            )
        )
    return out


def _default_matcher(path_type: PathType) -> Matcher:
    """What Router.how assumes when Router.matcher is None (flavor spec's matchers)."""
    return Matcher.EXACT if path_type is PathType.EXACT else Matcher.PREFIX


def _backend(ing: Ingress, spec: IngressBackend, field_: str, ctx: _Context) -> Backend | None:
    if spec.service is None:
        msg = "resource backends are not supported (only Services); no route for this rule"
        ctx.diags.append(_diag(ing, "resource-backend-unsupported", msg, f"{field_}.resource"))
        return None
    namespace = ing.meta.namespace
    resolved = ctx.resolver.resolve(namespace, spec.service, ctx.policy(ing).scheme)
    problem = resolved.problem
    if problem is None:
        return resolved.backend
    where = f"{field_}.service" + (f".{problem.field}" if problem.field else "")
    code, message = problem.code, problem.message
    if code == "missing-service" and ctx.service_namespaces.get(spec.service.name):
        # IngressServiceBackend has no namespace field: the Service of that name in another
        # namespace (the blog's teams each have a `login`) can never be used from here.
        code = "service-in-other-namespace"
    skip = ctx.sem.skip_unusable_backends
    if skip:
        # Traefik logs "Skipping service: no endpoints found" (or "Cannot create service")
        # and creates no router for the path, so the request falls to other rules or 404.
        message = (
            f"Skipping service: {message}; flavor {ctx.sem.flavor} leaves this rule out, so"
            " its requests get 404 (or a less specific rule)"
        )
    ctx.diags.append(_diag(ing, code, message, where, problem.severity))
    return resolved.backend


def _unusable(backend: Backend) -> bool:
    return backend.error is not None or not backend.endpoints


# --------------------------------------------------------------------------- conflicts


def _rank(c: _Candidate, ctx: _Context) -> tuple[int, bool, AgeKey, int]:
    """Lower wins among candidates for one table slot (one path, or one default).

    `/foo` and `/foo/` (Prefix) match the same requests and share a slot: the longer as
    written wins, being the longer matching path of the Kubernetes precedence rule. On one
    path, Prefix beats ImplementationSpecific (whose meaning is ours, not the API's). Then the
    oldest Ingress wins, as in ingress-nginx; within one Ingress, the first definition.
    """
    r = c.route
    return (-len(r.path or ""), r.path_type is not PathType.PREFIX, ctx.age(c.ingress), c.order)


def _describe(c: _Candidate) -> str:
    r = c.route
    host = f'host "{r.host}"' if r.host is not None else "any host"
    if r.path is not None:
        return f'{r.path_type} path "{r.path}" on {host}'
    if not c.ingress.rules:
        return "the defaultBackend for requests no rule matches"
    return f"the defaultBackend for {host}"


def _settle(candidates: list[_Candidate], ctx: _Context, share: bool = False) -> Router:
    """The best candidate wins the slot; every other one gets a diagnostic saying why.

    With `share` (flavor traefik, path slots), identical rules of different Ingresses keep
    their routers side by side and the request goes to their Backends in turn.
    """
    if share:
        return _share(candidates, ctx)
    win, *losers = sorted(candidates, key=lambda c: _rank(c, ctx))
    overridden: list[Overridden] = []
    for lose in losers:
        diag, reason = _loser_diagnostic(win, lose, ctx)
        ctx.diags.append(diag)
        overridden.append(Overridden(lose.route, reason))
    if not overridden:
        return win.route
    return replace(win.route, overridden=tuple(overridden))


def _loser_diagnostic(win: _Candidate, lose: _Candidate, ctx: _Context) -> tuple[Diagnostic, str]:
    w, lo, what = win.route, lose.route, _describe(lose)
    at = f"{w.field}, {w.source}"
    if w.path != lo.path:
        reason = "both match the same requests and the longer path as written wins"
        msg = f'{what} is shadowed by "{w.path}" of {w.ingress} ({at}): {reason}'
        return _diag(lose.ingress, "shadowed", msg, lo.field), reason
    if w.path_type != lo.path_type:
        msg = f"{what} conflicts with the {w.path_type} path of {w.ingress} ({at}), which wins"
        reason = f"{w.path_type} wins over {lo.path_type} on the same path"
        return _diag(lose.ingress, "conflict", msg + "; this one is ignored", lo.field), reason
    if win.ingress is lose.ingress:
        msg = f"{what} is defined twice in this Ingress; the first ({at}) wins"
        reason = "defined twice in one Ingress: the first definition wins"
        return _diag(
            lose.ingress, "duplicate-path", msg + "; this one is ignored", lo.field
        ), reason
    reason = _decided_by(win.ingress, lose.ingress, ctx.sem.names_descending)
    msg = f"{what} is also defined by {w.ingress} ({at}), which wins by {reason}"
    return _diag(lose.ingress, "conflict", msg + "; this one is ignored", lo.field), reason


def _share(candidates: list[_Candidate], ctx: _Context) -> Router:
    """Traefik keeps one router per Ingress for the same rule, all of equal priority; which
    one serves is not defined (their order changes with each configuration rebuild, the
    blog's alternation). We send each request to the next of their Backends in turn."""
    # Within one Ingress the routers share a name, and the later definition replaces the
    # earlier (makeRouterKeyWithHash of the same rule gives the same key).
    per_ingress: dict[int, _Candidate] = {}
    for c in sorted(candidates, key=lambda c: c.order):
        earlier = per_ingress.get(id(c.ingress))
        if earlier is not None:
            at = f"{c.route.field}, {c.route.source}"
            msg = (
                f"{_describe(earlier)} is defined twice in this Ingress; in flavor"
                f" {ctx.sem.flavor} the last definition ({at}) wins; this one is ignored"
            )
            ctx.diags.append(_diag(earlier.ingress, "duplicate-path", msg, earlier.route.field))
        per_ingress[id(c.ingress)] = c
    head, *others = sorted(per_ingress.values(), key=lambda c: ctx.age(c.ingress))
    if not others:
        return head.route
    at = f"{head.route.field}, {head.route.source}"
    for o in others:
        msg = (
            f"{_describe(o)} is also defined by {head.route.ingress} ({at}); in flavor"
            f" {ctx.sem.flavor} both routers have the same rule and priority, and requests go"
            " to their Services in turn"
        )
        ctx.diags.append(_diag(o.ingress, "conflict", msg, o.route.field))
    # One Service port referenced by name in one Ingress and by number in another is one
    # Backend: what takes turns is Services, not spellings.
    unique = {_same_backend(c.route.backend): c.route.backend for c in reversed((head, *others))}
    members = tuple(reversed(unique.values()))
    backend = head.route.backend if len(members) == 1 else _interleave(members)
    return replace(head.route, backend=backend, sharing=tuple(o.route for o in others))


def _same_backend(b: Backend) -> tuple[str, str, tuple[Endpoint, ...]]:
    return (b.namespace, b.service, b.endpoints)


def _interleave(members: tuple[Backend, ...]) -> Backend:
    """One Backend whose endpoint list alternates between `members` (and round-robins within
    each), so the proxy's plain round robin gives each Service the same share of requests."""
    sizes = [len(m.endpoints) for m in members]
    rounds = math.lcm(*sizes)
    if rounds > 64:  # keep the list small; shares are then only roughly equal
        rounds = max(sizes)
    endpoints: list[Endpoint] = [
        m.endpoints[i % len(m.endpoints)] for i in range(rounds) for m in members
    ]
    first = members[0]
    return Backend(first.namespace, first.service, first.port, tuple(endpoints), members=members)


def _settle_slots(
    candidates: Iterable[_Candidate], slot: Callable[[str], str], ctx: _Context, share: bool
) -> list[Router]:
    """Group path candidates by table key (`slot` of the path) and settle each group."""
    groups: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        groups[slot(c.route.path or "")].append(c)
    return [_settle(group, ctx, share) for group in groups.values()]


# --------------------------------------------------------------------------- table


def _build_table(got: _Collected, ctx: _Context) -> tuple[RouteTable, int]:
    """Settle every slot, then index the winning routers (ir.table.build_table)."""
    share = ctx.sem.share_collisions
    winners: list[Router] = []
    for host in got.hosts:
        if host in got.regex:
            winners.extend(_regex_routers(got.regex[host], ctx))
        winners.extend(_settle_slots(got.exact.get(host, ()), str, ctx, share))
        winners.extend(_settle_slots(got.prefix.get(host, ()), prefix_key, ctx, share))
        winners.extend(_settle_slots(got.strings.get(host, ()), str, ctx, share))
        cands = got.host_defaults.get(host)
        if cands:
            winners.append(_settle(cands, ctx))
    # Traefik too keeps a single default-router ("The default backend already exists").
    default = _settle(got.defaults, ctx) if got.defaults else None
    table = build_table(
        winners,
        hosts=got.hosts,
        default=default,
        skipped=got.skipped,
        ordering=ctx.sem.ordering,
        fallthrough=ctx.sem.host_fallthrough,
        flavor=str(ctx.sem.flavor),
    )
    return table, len(winners) + (default is not None)


def _diag(
    ing: Ingress, code: str, message: str, where: str, severity: Severity = Severity.WARNING
) -> Diagnostic:
    return Diagnostic(severity, code, message, ing.meta.source_of(where), ing.ref, where)
