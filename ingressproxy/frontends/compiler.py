"""Compile decoded manifests into the immutable RouteTable, with Diagnostics.

Flow: decode -> Manifests -> compile_manifests -> RouteTable + Diagnostics -> snapshot.
Pure: reads no files, clocks or environment; the same objects in any order give the same result.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TypeVar

from ..ir.model import DEFAULT_PRIORITY, Backend, Endpoint, Matcher, Overridden, Router
from ..ir.table import HostTable, Ordering, RouteTable, prefix_key
from ..manifests.model import (
    Diagnostic,
    Ingress,
    IngressBackend,
    Manifests,
    PathType,
    Severity,
    Source,
)
from ..proxy.paths import BadPath, canonical_rule_path
from .annotations import unknown_annotations
from .backends import BackendOverride, BackendResolver, ingress_backend_scheme
from .flavors import SEMANTICS, Flavor, Semantics, traefik_rule

__all__ = ["CompileOptions", "CompileResult", "compile_manifests", "select_ingresses"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CompileOptions:
    # Empty = serve every Ingress whatever its class.
    ingress_classes: tuple[str, ...] = ()
    allow_external_name: bool = False
    flavor: Flavor = Flavor.SPEC
    # Where Services live when the manifests do not say (--backend, --backends FILE); these
    # beat the folder's endpoints. A DNS pattern ("{service}") for Services without any.
    backend_overrides: tuple[BackendOverride, ...] = ()
    dns_pattern: str | None = None
    # --default-certificate: a Secret `ns/name` (read by certs.compile_certs) or files.
    default_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class CompileResult:
    table: RouteTable
    diagnostics: tuple[Diagnostic, ...]  # sorted by Diagnostic.sort_key()
    routes: int


def compile_manifests(
    manifests: Manifests, options: CompileOptions = CompileOptions()
) -> CompileResult:
    diags: list[Diagnostic] = []
    sem = SEMANTICS[options.flavor]
    ingresses = select_ingresses(manifests, options, diags)
    diags.extend(_annotation_warnings(ingresses))
    resolver = BackendResolver(
        manifests,
        allow_external_name=options.allow_external_name,
        overrides=options.backend_overrides,
        dns_pattern=options.dns_pattern,
    )
    namespaces: dict[str, set[str]] = defaultdict(set)
    for svc in manifests.services:
        namespaces[svc.meta.name].add(svc.meta.namespace)
    ctx = _Context(sem, resolver, namespaces, diags)
    collected = _Collected()
    for ing in sorted(ingresses, key=ctx.age):
        _collect(ing, ctx, collected)
    table, routes = _build_table(collected, ctx)
    diags.extend(_shared_host_warnings(collected, ctx))
    diags.extend(_shadowed(table))
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    return CompileResult(table, ordered, routes)


# --------------------------------------------------------------------------- class filter


def select_ingresses(
    manifests: Manifests, options: CompileOptions, diags: list[Diagnostic]
) -> list[Ingress]:
    """The Ingresses this proxy serves, per IngressClass (kubernetes.io ingress docs).

    An Ingress names its class with spec.ingressClassName or the deprecated
    kubernetes.io/ingress.class annotation; one without a class belongs to the IngressClass
    marked ingressclass.kubernetes.io/is-default-class, if that is one of ours.
    """
    if not options.ingress_classes:
        return list(manifests.ingresses)
    served = set(options.ingress_classes)
    default_served = any(c.is_default and c.meta.name in served for c in manifests.ingress_classes)
    names = ", ".join(options.ingress_classes)
    kept: list[Ingress] = []
    for ing in manifests.ingresses:
        cls = ing.ingress_class
        if cls in served or (cls is None and default_served):
            kept.append(ing)
            continue
        if cls is None:
            where = ""
            why = (
                f"it has no ingress class and none of the served classes ({names}) is an"
                " IngressClass marked as the default class"
            )
        else:
            where = (
                "spec.ingressClassName"
                if ing.ingress_class_name is not None
                else "metadata.annotations.kubernetes.io/ingress.class"  # as decode names it
            )
            why = f'its ingress class "{cls}" is not served here (served: {names})'
        diags.append(_diag(ing, "excluded-by-class", f"ignored: {why}", where))
    return kept


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


def _age_key(ing: Ingress, descending: bool = False) -> AgeKey:
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

    def age(self, ing: Ingress) -> AgeKey:
        return _age_key(ing, self.sem.names_descending)


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
    if sem.ordering is not Ordering.RULE_LENGTH:
        return 0
    if path is None:
        return DEFAULT_PRIORITY
    return len(traefik_rule(host, path, pt))


def _collect(ing: Ingress, ctx: _Context, out: _Collected) -> None:
    sem = ctx.sem
    order = 0
    for rule in ing.rules:
        out.hosts[rule.host].append((ing, rule.field))
        for path_rule in rule.paths or ():
            backend = _backend(ing, path_rule.backend, f"{path_rule.field}.backend", ctx)
            order += 1
            if backend is None:
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
            route = Router(
                ingress=ing.ref,
                source=ing.meta.source_of(path_rule.field),
                field=path_rule.field,
                host=rule.host,
                path=path,
                path_type=path_rule.path_type,
                backend=backend,
                matcher=None if matcher is _default_matcher(path_rule.path_type) else matcher,
                priority=_priority(sem, rule.host, path, path_rule.path_type),
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
        priority = _priority(sem, None, None, None)
        route = Router(ing.ref, source, field_, None, None, None, backend, priority=priority)
        out.defaults.append(_Candidate(route, ing, 0))
        return
    # With rules, the defaultBackend serves the unmatched paths of this Ingress's hosts only.
    for host in dict.fromkeys(rule.host for rule in ing.rules):
        route = Router(ing.ref, source, field_, host, None, None, backend)
        out.host_defaults[host].append(_Candidate(route, ing, 0))


def _default_matcher(path_type: PathType) -> Matcher:
    """What Router.how assumes when Router.matcher is None (flavor spec's matchers)."""
    return Matcher.EXACT if path_type is PathType.EXACT else Matcher.PREFIX


def _backend(ing: Ingress, spec: IngressBackend, field_: str, ctx: _Context) -> Backend | None:
    if spec.service is None:
        msg = "resource backends are not supported (only Services); no route for this rule"
        ctx.diags.append(_diag(ing, "resource-backend-unsupported", msg, f"{field_}.resource"))
        return None
    namespace = ing.meta.namespace
    resolved = ctx.resolver.resolve(
        namespace, spec.service, ingress_backend_scheme(ing.meta.annotations)
    )
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
) -> Mapping[str, Router]:
    """Group path candidates by table key (`slot` of the path) and settle each group."""
    groups: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        groups[slot(c.route.path or "")].append(c)
    return _frozen({key: _settle(group, ctx, share) for key, group in groups.items()})


# --------------------------------------------------------------------------- table


def _frozen(d: Mapping[str, V]) -> Mapping[str, V]:
    """Read-only, in key order so dumps and iteration are stable."""
    return MappingProxyType(dict(sorted(d.items())))


def _build_table(got: _Collected, ctx: _Context) -> tuple[RouteTable, int]:
    sem = ctx.sem
    share = sem.share_collisions
    tables: dict[HostKey, HostTable] = {}
    routes = 0
    for host in got.hosts:
        exact = _settle_slots(got.exact.get(host, ()), str, ctx, share)
        prefix = _settle_slots(got.prefix.get(host, ()), prefix_key, ctx, share)
        strings = _settle_slots(got.strings.get(host, ()), str, ctx, share)
        cands = got.host_defaults.get(host)
        default = _settle(cands, ctx) if cands else None
        tables[host] = HostTable(
            exact=exact,
            prefix=prefix,
            default=default,
            strings=strings,
            ordering=sem.ordering,
            skipped=tuple(got.skipped.get(host, ())),
        )
        routes += len(exact) + len(prefix) + len(strings) + (default is not None)
    # Traefik too keeps a single default-router ("The default backend already exists").
    default = _settle(got.defaults, ctx) if got.defaults else None
    routes += default is not None
    exact_hosts = {h: t for h, t in tables.items() if h is not None and not h.startswith("*.")}
    wildcards = {h[2:]: t for h, t in tables.items() if h is not None and h.startswith("*.")}
    table = RouteTable(
        exact_hosts=_frozen(exact_hosts),
        wildcard_hosts=_frozen(wildcards),
        any_host=tables.get(None),
        default=default,
        flavor=str(sem.flavor),
        fallthrough=sem.host_fallthrough,
    )
    return table, routes


def _shared_host_warnings(got: _Collected, ctx: _Context) -> list[Diagnostic]:
    """Ingress does not isolate namespaces: any of them can take paths on a shared host (the
    cross-namespace /login collision). Say so once per host, at its oldest Ingress's rule."""
    out: list[Diagnostic] = []
    for host, users in got.hosts.items():
        namespaces = sorted({ing.meta.namespace for ing, _ in users})
        if len(namespaces) < 2:
            continue
        first, rule_field = min(users, key=lambda u: (ctx.age(u[0]), u[1]))
        names = ", ".join(
            sorted(dict.fromkeys(f"{i.meta.namespace}/{i.meta.name}" for i, _ in users))
        )
        what = f'host "{host}"' if host is not None else "rules without a host (any host)"
        msg = (
            f"{what} has rules in several namespaces ({', '.join(namespaces)}: Ingresses {names});"
            " Ingress does not isolate namespaces, so each can take paths the others expect"
        )
        where = f"{rule_field}.host" if host is not None else rule_field
        out.append(_diag(first, "shared-host", msg, where))
    return out


# --------------------------------------------------------------------------- lint


def _annotation_warnings(ingresses: Iterable[Ingress]) -> list[Diagnostic]:
    """Annotations of the controllers we emulate that we do not implement (see annotations.py):
    a typo silently does nothing in every controller, so say it, with the likely intent."""
    out: list[Diagnostic] = []
    for ing in ingresses:
        for unknown in unknown_annotations(ing.meta.annotations):
            where = f"metadata.annotations.{unknown.name}"
            out.append(_diag(ing, "unknown-annotation", unknown.message(), where))
    return out


def _shadowed(table: RouteTable) -> list[Diagnostic]:
    """Routes that won their slot but can still never be chosen, found by asking the table
    itself: an Exact rule for its own path, a prefix rule for a path below it that no rule
    names, a defaultBackend for a path no rule names. Whatever answers instead shadows it."""
    probe = _Probe.for_table(table)
    out: list[Diagnostic] = []
    tables = [(h, t) for h, t in table.exact_hosts.items()]
    tables += [(probe.wildcard_host(s), t) for s, t in table.wildcard_hosts.items()]
    if table.any_host is not None:
        tables.append((probe.unknown_host, table.any_host))
    for host, t in tables:
        for route in (*t.exact.values(), *t.prefix.values(), *t.strings.values()):
            path = probe.path_for(route)
            winner = table.route(host, path)
            if winner is not None and winner is not route:
                out.append(_shadow_diagnostic(route, winner, path, table))
        if t.default is not None:
            winner = table.route(host, probe.unmatched)
            if winner is not None and winner is not t.default:
                out.append(_shadow_diagnostic(t.default, winner, probe.unmatched, table))
    if table.default is not None:
        hosts = [h for h, _ in tables] + [probe.unknown_host]
        winners = [table.route(h, probe.unmatched) for h in hosts]
        if all(w is not table.default for w in winners):
            msg = (
                "the defaultBackend for requests no rule matches is never used: every host has"
                " a rule or a defaultBackend that takes every path"
            )
            r = table.default
            out.append(Diagnostic(Severity.WARNING, "shadowed", msg, r.source, r.ingress, r.field))
    return out


@dataclass(frozen=True, slots=True)
class _Probe:
    """Request hosts and path elements that no rule of the table names."""

    token: str  # a path element no rule path contains
    unknown_host: str  # matches no exact or wildcard host
    taken: frozenset[str]

    @classmethod
    def for_table(cls, table: RouteTable) -> _Probe:
        paths = [r.path or "" for r in table.routes()]
        i = 0
        while any(f"~{i}" in p for p in paths):
            i += 1
        taken = frozenset(table.exact_hosts)
        host = "ingressproxy-probe.invalid"
        while host in taken or host.split(".", 1)[1] in table.wildcard_hosts:
            host = "x" + host
        return cls(f"~{i}", host, taken)

    @property
    def unmatched(self) -> str:
        return "/" + self.token

    def wildcard_host(self, suffix: str) -> str:
        label = "ingressproxy-probe"
        while f"{label}.{suffix}" in self.taken:
            label = "x" + label
        return f"{label}.{suffix}"

    def path_for(self, route: Router) -> str:
        path = route.path or "/"
        how = route.how
        if how is Matcher.EXACT:
            return path
        if how is Matcher.PREFIX:
            return prefix_key(path) + "/" + self.token
        return path + self.token  # a plain string prefix: any continuation matches


def _shadow_diagnostic(route: Router, winner: Router, path: str, table: RouteTable) -> Diagnostic:
    where = f'host "{route.host}"' if route.host is not None else "any host"
    by = f"{_route_name(winner)} of {winner.ingress} ({winner.field}, {winner.source})"
    if route.path is None:
        msg = f"the defaultBackend for {where} is never used: {by} takes every path"
    else:
        if route.how is Matcher.EXACT:
            requests = f'a request for "{path}" goes'
        else:
            requests = f'requests it matches (e.g. "{path}") go'
        why = _why_wins(winner, route, table)
        msg = (
            f'{route.path_type} path "{route.path}" on {where} can never match: {requests}'
            f" to {by}{why}"
        )
    return Diagnostic(Severity.WARNING, "shadowed", msg, route.source, route.ingress, route.field)


def _route_name(r: Router) -> str:
    if r.path is None:
        return "the defaultBackend"
    return f'{r.path_type} path "{r.path}"'


def _why_wins(winner: Router, loser: Router, table: RouteTable) -> str:
    if table.fallthrough:
        return (
            f", whose Traefik rule is longer ({winner.priority} > {loser.priority} characters,"
            " the router priority)"
        )
    if len(winner.path or "") > len(loser.path or ""):
        return ", the longer path as written"
    return ""


def _diag(
    ing: Ingress, code: str, message: str, where: str, severity: Severity = Severity.WARNING
) -> Diagnostic:
    return Diagnostic(severity, code, message, ing.meta.source_of(where), ing.ref, where)
