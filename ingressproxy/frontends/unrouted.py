"""The routers the manifests ask for that are not in the route table, as IR values.

Flow: reloader -> compile_routes -> unrouted(manifests, table) -> Snapshot.unrouted -> the
admin API and the dashboard, which show them as disabled with the diagnostics that say why.
An Ingress path left out (its Service is unusable), lost to a conflict, excluded by its class,
or unsupported still gets a Router here, with the rule its router would have (the one rule
builder the front-ends use), so no tool re-derives rules from the manifests.
"""

from __future__ import annotations

from ..ir.model import Backend, Router
from ..ir.table import RouteTable
from ..manifests.model import IngressServiceBackend, Manifests, ObjectRef, PathType
from .backends import BackendResolver
from .traefik.rules import rule_text

__all__ = ["unrouted"]

Slot = tuple[ObjectRef, str, str | None]  # (Ingress, field, host): one router of the manifests


def _placed(table: RouteTable) -> tuple[set[Slot], dict[Slot, Router]]:
    """The slots the table routes, and the routers it keeps aside as skipped."""
    routed = {(r.ingress, r.field, r.host) for r in table.routes()}
    hosts = [*table.exact_hosts.values(), *table.wildcard_hosts.values()]
    if table.any_host is not None:
        hosts.append(table.any_host)
    skipped = {(r.ingress, r.field, r.host): r for t in hosts for r in t.skipped}
    return routed, skipped


def unrouted(manifests: Manifests, table: RouteTable) -> tuple[Router, ...]:
    """Every router of every Ingress that `table` does not route, in Ingress order."""
    routed, skipped = _placed(table)
    resolver = BackendResolver(manifests, allow_external_name=True)
    out: list[Router] = []
    for ing in sorted(manifests.ingresses, key=lambda i: (i.meta.namespace, i.meta.name)):
        ref = ing.ref
        wanted: list[
            tuple[str, str | None, str | None, PathType | None, IngressServiceBackend | None]
        ]
        wanted = [
            (p.field, rule.host, p.path, p.path_type, p.backend.service)
            for rule in ing.rules
            for p in rule.paths or ()
        ]
        if ing.default_backend is not None:
            for host in list(dict.fromkeys(r.host for r in ing.rules)) or [None]:
                wanted.append(
                    ("spec.defaultBackend", host, None, None, ing.default_backend.service)
                )
        for field, host, path, path_type, svc in wanted:
            slot = (ref, field, host)
            if slot in routed:
                continue
            kept = skipped.get(slot)
            if kept is not None:
                out.append(kept)
                continue
            if svc is not None:
                backend = resolver.resolve(ing.meta.namespace, svc).backend
            else:
                backend = Backend(
                    ing.meta.namespace, "", "", (), error="a resource backend, not a Service"
                )
            out.append(
                Router(
                    ingress=ref,
                    source=ing.meta.source_of(field),
                    field=field,
                    host=host,
                    path=path,
                    path_type=path_type,
                    backend=backend,
                    rule=rule_text(host, path, path_type),
                    # No front-end placed it: no dialect, no entry points of its own.
                    dialect="",
                )
            )
    return tuple(out)
