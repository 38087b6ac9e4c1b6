"""Warnings found after routing is settled: annotation typos, hosts shared across
namespaces, and routers that won their slot but can never be chosen (asked of the table)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...ir.model import Matcher, Router
from ...ir.table import RouteTable, prefix_key
from ...manifests.model import Diagnostic, Ingress, Severity
from ..annotations import unknown_annotations

__all__ = ["annotation_warnings", "shadowed", "shared_host_warnings"]


def shared_host_warnings(
    hosts: Mapping[str | None, list[tuple[Ingress, str]]], age: Callable[[Ingress], Any]
) -> list[Diagnostic]:
    """Ingress does not isolate namespaces: any of them can take paths on a shared host (the
    cross-namespace /login collision). Say so once per host, at its oldest Ingress's rule."""
    out: list[Diagnostic] = []
    for host, users in hosts.items():
        namespaces = sorted({ing.meta.namespace for ing, _ in users})
        if len(namespaces) < 2:
            continue
        first, rule_field = min(users, key=lambda u: (age(u[0]), u[1]))
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


def annotation_warnings(ingresses: Iterable[Ingress]) -> list[Diagnostic]:
    """Annotations of the controllers we emulate that we do not implement (see annotations.py):
    a typo silently does nothing in every controller, so say it, with the likely intent."""
    out: list[Diagnostic] = []
    for ing in ingresses:
        for unknown in unknown_annotations(ing.meta.annotations):
            where = f"metadata.annotations.{unknown.name}"
            out.append(_diag(ing, "unknown-annotation", unknown.message(), where))
    return out


def shadowed(table: RouteTable) -> list[Diagnostic]:
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
        # Regex locations are left out: no probe path can stand for what a regex matches.
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
