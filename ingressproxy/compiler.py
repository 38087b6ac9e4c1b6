"""Compile decoded manifests into the immutable RouteTable, with Diagnostics.

Flow: decode -> Manifests -> compile_manifests -> RouteTable + Diagnostics -> snapshot.
Pure: reads no files, clocks or environment; the same objects in any order give the same result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TypeVar

from .backends import BackendOverride, BackendResolver
from .model import (
    Diagnostic,
    Ingress,
    IngressBackend,
    Manifests,
    PathType,
    Severity,
    Source,
)
from .routetable import Backend, HostTable, Route, RouteTable, prefix_key

__all__ = ["CompileOptions", "CompileResult", "compile_manifests", "select_ingresses"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CompileOptions:
    # Empty = serve every Ingress whatever its class.
    ingress_classes: tuple[str, ...] = ()
    allow_external_name: bool = False
    # Where Services live when the manifests do not say (--backend, --backends FILE); these
    # beat the folder's endpoints. A DNS pattern ("{service}") for Services without any.
    backend_overrides: tuple[BackendOverride, ...] = ()
    dns_pattern: str | None = None


@dataclass(frozen=True, slots=True)
class CompileResult:
    table: RouteTable
    diagnostics: tuple[Diagnostic, ...]  # sorted by Diagnostic.sort_key()
    routes: int


def compile_manifests(
    manifests: Manifests, options: CompileOptions = CompileOptions()
) -> CompileResult:
    diags: list[Diagnostic] = []
    ingresses = select_ingresses(manifests, options, diags)
    resolver = BackendResolver(
        manifests,
        allow_external_name=options.allow_external_name,
        overrides=options.backend_overrides,
        dns_pattern=options.dns_pattern,
    )
    collected = _Collected()
    for ing in sorted(ingresses, key=_age_key):
        _collect(ing, resolver, collected, diags)
    table, routes = _build_table(collected, diags)
    diags.extend(_shared_host_warnings(collected))
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


AgeKey = tuple[bool, datetime, str, str, Source]


def _age_key(ing: Ingress) -> AgeKey:
    """Oldest first, as ingress-nginx orders Ingresses; no timestamp sorts last; then
    namespace/name, then where it was written (only for duplicates of one object)."""
    ts = ing.meta.creation_timestamp
    return (
        ts is None,
        _utc(ts) if ts else _NO_TIME,
        ing.meta.namespace,
        ing.meta.name,
        ing.meta.source,
    )


def _ts_text(ts: datetime | None) -> str:
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "none"


def _decided_by(winner: Ingress, loser: Ingress) -> str:
    a, b = winner.meta.creation_timestamp, loser.meta.creation_timestamp
    if (a is None) != (b is None) or (a and b and _utc(a) != _utc(b)):
        return f"older creationTimestamp ({_ts_text(a)} vs {_ts_text(b)})"
    return "namespace/name order"


# --------------------------------------------------------------------------- collection


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A route an Ingress asks for, before conflicts between Ingresses are settled."""

    route: Route
    ingress: Ingress
    order: int  # position among its Ingress's paths: within one Ingress the first wins


HostKey = str | None  # a host as written ("foo.com", "*.foo.com"), None = any host


@dataclass(slots=True)
class _Collected:
    exact: dict[HostKey, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    prefix: dict[HostKey, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    host_defaults: dict[HostKey, list[_Candidate]] = field(
        default_factory=lambda: defaultdict(list)
    )
    defaults: list[_Candidate] = field(default_factory=list)
    # Every host some served Ingress has a rule for (creates its HostTable), with its users.
    hosts: dict[HostKey, list[tuple[Ingress, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _collect(
    ing: Ingress, resolver: BackendResolver, out: _Collected, diags: list[Diagnostic]
) -> None:
    order = 0
    for rule in ing.rules:
        out.hosts[rule.host].append((ing, rule.field))
        for path_rule in rule.paths or ():
            backend = _backend(
                ing, path_rule.backend, f"{path_rule.field}.backend", resolver, diags
            )
            order += 1
            if backend is None:
                continue
            route = Route(
                ingress=ing.ref,
                source=ing.meta.source_of(path_rule.field),
                field=path_rule.field,
                host=rule.host,
                path=path_rule.path,
                path_type=path_rule.path_type,
                backend=backend,
            )
            # ImplementationSpecific is matched as Prefix (ingress-nginx and Traefik also treat
            # a plain path as a prefix); Prefix still wins a tie on the same path (see _rank).
            bucket = out.exact if path_rule.path_type is PathType.EXACT else out.prefix
            bucket[rule.host].append(_Candidate(route, ing, order))
    if ing.default_backend is None:
        return
    field_ = "spec.defaultBackend"
    backend = _backend(ing, ing.default_backend, field_, resolver, diags)
    if backend is None:
        return
    source = ing.meta.source_of(field_)
    if not ing.rules:
        out.defaults.append(
            _Candidate(Route(ing.ref, source, field_, None, None, None, backend), ing, 0)
        )
        return
    # With rules, the defaultBackend serves the unmatched paths of this Ingress's hosts only.
    for host in dict.fromkeys(rule.host for rule in ing.rules):
        route = Route(ing.ref, source, field_, host, None, None, backend)
        out.host_defaults[host].append(_Candidate(route, ing, 0))


def _backend(
    ing: Ingress,
    spec: IngressBackend,
    field_: str,
    resolver: BackendResolver,
    diags: list[Diagnostic],
) -> Backend | None:
    if spec.service is None:
        msg = "resource backends are not supported (only Services); no route for this rule"
        diags.append(_diag(ing, "resource-backend-unsupported", msg, f"{field_}.resource"))
        return None
    resolved = resolver.resolve(ing.meta.namespace, spec.service)
    problem = resolved.problem
    if problem is not None:
        where = f"{field_}.service" + (f".{problem.field}" if problem.field else "")
        diags.append(_diag(ing, problem.code, problem.message, where, problem.severity))
    return resolved.backend


# --------------------------------------------------------------------------- conflicts


def _rank(c: _Candidate) -> tuple[int, bool, AgeKey, int]:
    """Lower wins among candidates for one table slot (one path, or one default).

    `/foo` and `/foo/` (Prefix) match the same requests and share a slot: the longer as
    written wins, being the longer matching path of the Kubernetes precedence rule. On one
    path, Prefix beats ImplementationSpecific (whose meaning is ours, not the API's). Then the
    oldest Ingress wins, as in ingress-nginx; within one Ingress, the first definition.
    """
    r = c.route
    return (-len(r.path or ""), r.path_type is not PathType.PREFIX, _age_key(c.ingress), c.order)


def _describe(c: _Candidate) -> str:
    r = c.route
    host = f'host "{r.host}"' if r.host is not None else "any host"
    if r.path is not None:
        return f'{r.path_type} path "{r.path}" on {host}'
    if not c.ingress.rules:
        return "the defaultBackend for requests no rule matches"
    return f"the defaultBackend for {host}"


def _settle(candidates: list[_Candidate], diags: list[Diagnostic]) -> Route:
    """The best candidate wins the slot; every other one gets a diagnostic saying why."""
    win, *losers = sorted(candidates, key=_rank)
    diags.extend(_loser_diagnostic(win, lose) for lose in losers)
    return win.route


def _loser_diagnostic(win: _Candidate, lose: _Candidate) -> Diagnostic:
    w, lo, what = win.route, lose.route, _describe(lose)
    at = f"{w.field}, {w.source}"
    if w.path != lo.path:
        msg = (
            f'{what} is shadowed by "{w.path}" of {w.ingress} ({at}): both match the same'
            " requests and the longer path as written wins"
        )
        return _diag(lose.ingress, "shadowed", msg, lo.field)
    if w.path_type != lo.path_type:
        msg = f"{what} conflicts with the {w.path_type} path of {w.ingress} ({at}), which wins"
        return _diag(lose.ingress, "conflict", msg + "; this one is ignored", lo.field)
    if win.ingress is lose.ingress:
        msg = f"{what} is defined twice in this Ingress; the first ({at}) wins"
        return _diag(lose.ingress, "duplicate-path", msg + "; this one is ignored", lo.field)
    reason = _decided_by(win.ingress, lose.ingress)
    msg = f"{what} is also defined by {w.ingress} ({at}), which wins by {reason}"
    return _diag(lose.ingress, "conflict", msg + "; this one is ignored", lo.field)


def _settle_slots(
    candidates: Iterable[_Candidate], slot: Callable[[str], str], diags: list[Diagnostic]
) -> Mapping[str, Route]:
    """Group path candidates by table key (`slot` of the path) and settle each group."""
    groups: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        groups[slot(c.route.path or "")].append(c)
    return _frozen({key: _settle(group, diags) for key, group in groups.items()})


# --------------------------------------------------------------------------- table


def _frozen(d: Mapping[str, V]) -> Mapping[str, V]:
    """Read-only, in key order so dumps and iteration are stable."""
    return MappingProxyType(dict(sorted(d.items())))


def _build_table(got: _Collected, diags: list[Diagnostic]) -> tuple[RouteTable, int]:
    tables: dict[HostKey, HostTable] = {}
    routes = 0
    for host in got.hosts:
        exact = _settle_slots(got.exact.get(host, ()), str, diags)
        prefix = _settle_slots(got.prefix.get(host, ()), prefix_key, diags)
        cands = got.host_defaults.get(host)
        default = _settle(cands, diags) if cands else None
        tables[host] = HostTable(exact=exact, prefix=prefix, default=default)
        routes += len(exact) + len(prefix) + (default is not None)
    default = _settle(got.defaults, diags) if got.defaults else None
    routes += default is not None
    exact_hosts = {h: t for h, t in tables.items() if h is not None and not h.startswith("*.")}
    wildcards = {h[2:]: t for h, t in tables.items() if h is not None and h.startswith("*.")}
    table = RouteTable(
        exact_hosts=_frozen(exact_hosts),
        wildcard_hosts=_frozen(wildcards),
        any_host=tables.get(None),
        default=default,
    )
    return table, routes


def _shared_host_warnings(got: _Collected) -> list[Diagnostic]:
    """Ingress does not isolate namespaces: any of them can take paths on a shared host (the
    cross-namespace /login collision). Say so once per host, at its oldest Ingress's rule."""
    out: list[Diagnostic] = []
    for host, users in got.hosts.items():
        namespaces = sorted({ing.meta.namespace for ing, _ in users})
        if len(namespaces) < 2:
            continue
        first, rule_field = min(users, key=lambda u: (_age_key(u[0]), u[1]))
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


def _diag(
    ing: Ingress, code: str, message: str, where: str, severity: Severity = Severity.WARNING
) -> Diagnostic:
    return Diagnostic(severity, code, message, ing.meta.source_of(where), ing.ref, where)
