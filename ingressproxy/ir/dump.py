"""Compiled state -> plain JSON-ready dicts, in a stable order.

Flow: RouteTable / Diagnostic -> dump_* -> JSON for golden tests, the admin API and
`check --format json`. Pure; hosts and paths are sorted so a table always dumps the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..manifests.model import Diagnostic
from .filters import Filter
from .model import Backend, Router
from .table import HostTable, RouteTable

__all__ = ["dump_diagnostic", "dump_host", "dump_route", "dump_router", "dump_table"]


def dump_route(route: Router) -> dict[str, object]:
    backend = route.backend
    return {
        "ingress": f"{route.ingress.namespace}/{route.ingress.name}",
        "source": str(route.source),
        "field": route.field,
        "host": route.host,
        "path": route.path,
        "pathType": None if route.path_type is None else str(route.path_type),
        "backend": backend.key,
        "endpoints": [str(ep) for ep in backend.endpoints],
        "error": backend.error,
    }


def _dump_service(backend: Backend) -> dict[str, object]:
    out: dict[str, object] = {
        "key": backend.key,
        "endpoints": [f"{ep.scheme}://{ep}" for ep in backend.endpoints],
        "error": backend.error,
    }
    if backend.members:
        out["members"] = [m.key for m in backend.members]
    # The service's options only where a front-end set them (ir.service): the goldens of
    # dialects that set none stay as they are.
    if backend.weights:
        out["weights"] = list(backend.weights)
    if backend.balance is not None:
        out["balance"] = str(backend.balance)
    if backend.timeouts is not None:
        out["timeouts"] = str(backend.timeouts)
    if backend.retries is not None:
        out["retries"] = str(backend.retries)
    if not backend.pass_host:
        out["passHost"] = False
    return out


def _plain(value: object) -> object:
    """A filter field as JSON: numbers, strings and None as they are, tuples as lists, the
    rest (networks, header edits) as their text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return sorted(str(k) for k in value)  # names only: never a password hash
    return str(value)


def _dump_filter(f: Filter) -> dict[str, object]:
    fields = {k: _plain(getattr(f, k)) for k in f.__dataclass_fields__}
    return {"kind": type(f).__name__, "phase": str(f.phase), **fields}


def dump_router(router: Router) -> dict[str, object]:
    """Everything the IR says of one router: what the front-end goldens compare."""
    out: dict[str, object] = {
        "origin": f"{router.ingress} {router.field} ({router.source})",
        "dialect": router.dialect,
        "dialect_reason": router.dialect_reason,
        "entrypoints": sorted(str(e) for e in router.entrypoints),
        "match": {
            "host": router.host,
            "path": router.path,
            "pathType": None if router.path_type is None else str(router.path_type),
            "how": str(router.how),
        },
        "priority": router.priority,
        "rule": router.rule,
        "filters": [_dump_filter(f) for f in router.filters],
        "service": _dump_service(router.backend),
        "overridden": [f"{o.route.ingress} {o.route.field}: {o.reason}" for o in router.overridden],
        "sharing": [f"{s.ingress} {s.field}" for s in router.sharing],
    }
    if router.conditions:
        out["conditions"] = [str(c) for c in router.conditions]
    return out


def dump_host(table: HostTable) -> dict[str, object]:
    return {
        "exact": [dump_route(table.exact[k]) for k in sorted(table.exact)],
        # Sorted by the path as written (the prefix keys drop a trailing '/').
        "prefix": [
            dump_route(r) for r in sorted(table.prefix.values(), key=lambda r: r.path or "")
        ],
        "default": None if table.default is None else dump_route(table.default),
    }


def dump_table(table: RouteTable) -> dict[str, object]:
    return {
        "hosts": {h: dump_host(table.exact_hosts[h]) for h in sorted(table.exact_hosts)},
        "wildcard_hosts": {
            f"*.{s}": dump_host(table.wildcard_hosts[s]) for s in sorted(table.wildcard_hosts)
        },
        "any_host": None if table.any_host is None else dump_host(table.any_host),
        "default": None if table.default is None else dump_route(table.default),
    }


def dump_diagnostic(d: Diagnostic) -> dict[str, object]:
    return {
        "severity": str(d.severity),
        "code": d.code,
        "message": d.message,
        "file": None if d.source is None else d.source.file,
        "line": None if d.source is None else d.source.line,
        "object": None if d.obj is None else str(d.obj),
        "field": d.field,
    }
