"""The admin API's data: routers, services, entry points and diagnostics as JSON-ready dicts.

Flow: Reloader.on_swap -> ConfigState (snapshot + the objects it was built from) -> build_view
-> admin.py serves it. Shaped like Traefik's /api so its users feel at home; pure apart from
ConfigState's bookkeeping, and sorted so the output is golden-testable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, cast

from ..ir.dump import dump_diagnostic, dump_table
from ..ir.model import Backend, Router
from ..ir.snapshot import Snapshot, SnapshotHolder
from ..manifests.lastgood import KObject
from ..manifests.model import (
    Diagnostic,
    Endpoints,
    EndpointSlice,
    Ingress,
    IngressClass,
    IngressServiceBackend,
    Manifests,
    ObjectRef,
    Service,
    Severity,
)
from ..observe.record import RouteNames, names_for, router_key, unique

if TYPE_CHECKING:
    from ..observe.metrics import TrafficReading

__all__ = [
    "ConfigState",
    "ConfigView",
    "EntryPoint",
    "KObject",
    "build_view",
    "redact",
]

ServiceRef = IngressServiceBackend
Json = dict[str, object]

PROVIDER = "kubernetes"


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """A listener, named like Traefik's (`web` for traffic; Traefik calls its own API `traefik`,
    ours is `admin`)."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class ConfigView:
    """Everything the API serves for one snapshot; built once per generation."""

    generation: int
    overview: Json
    routers: tuple[Json, ...]
    services: tuple[Json, ...]
    entrypoints: tuple[Json, ...]
    diagnostics: tuple[Json, ...]
    rawdata: Json
    router_by_name: Mapping[str, Json] = field(default_factory=lambda: MappingProxyType({}))
    service_by_name: Mapping[str, Json] = field(default_factory=lambda: MappingProxyType({}))


# --------------------------------------------------------------------------- redaction

# Annotation and label keys whose values may hold credentials (auth URLs, tokens, basic-auth
# users); the Kubernetes last-applied annotation can embed whole Secrets.
_SECRET_KEY = re.compile(
    r"(passw|secret|token|credential|auth|api-?key|private|last-applied-configuration)", re.I
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
REDACTED = "<redacted>"


def redact(key: str, value: str) -> str:
    """The value as the admin API may show it: credentials in URLs and sensitive keys hidden."""
    if _SECRET_KEY.search(key):
        return REDACTED
    return _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", value)


def _plain(value: object) -> object:
    """A model value as JSON data (dataclasses by field, enums by value, times in RFC 3339)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: Json = {}
        for f in dataclasses.fields(value):
            if f.name == "lines":
                continue  # field -> line maps are for diagnostics, not for people
            item = getattr(value, f.name)
            if f.name in ("annotations", "labels") and isinstance(item, Mapping):
                out[f.name] = {str(k): redact(str(k), str(v)) for k, v in sorted(item.items())}
            else:
                out[f.name] = _plain(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", value)
    return value


def dump_object(obj: KObject) -> Json:
    body = cast(Json, _plain(obj))  # a dataclass always dumps to a dict
    meta = cast(Json, body.pop("meta"))
    meta.pop("source", None)
    return {
        "kind": obj.ref.kind,
        "namespace": obj.meta.namespace,
        "name": obj.meta.name,
        "source": str(obj.meta.source),
        "metadata": meta,
        **body,
    }


# --------------------------------------------------------------------------- routers


def _manifests(objects: Mapping[ObjectRef, KObject]) -> Manifests:
    ordered = [objects[k] for k in sorted(objects)]
    return Manifests(
        ingresses=tuple(o for o in ordered if isinstance(o, Ingress)),
        ingress_classes=tuple(o for o in ordered if isinstance(o, IngressClass)),
        services=tuple(o for o in ordered if isinstance(o, Service)),
        endpoints=tuple(o for o in ordered if isinstance(o, Endpoints)),
        endpoint_slices=tuple(o for o in ordered if isinstance(o, EndpointSlice)),
    )


def _within(field_: str, scope: str) -> bool:
    return field_ == scope or field_.startswith((scope + ".", scope + "["))


def _rule_of(path_field: str) -> str:
    """`spec.rules[0].http.paths[1]` -> `spec.rules[0]`."""
    cut = path_field.find(".http")
    return path_field[:cut] if cut > 0 else path_field


def _applies(d: Diagnostic, ingress: ObjectRef, path_field: str) -> bool:
    """Does diagnostic `d` say something about the router written at `path_field`?"""
    if d.obj != ingress:
        return False
    f = d.field
    if not f or not f.startswith("spec.") or f.startswith("spec.ingressClassName"):
        return True  # about the whole Ingress: its class, metadata, its last good version
    if _within(f, path_field) or _within(path_field, f):
        return True
    if path_field.startswith("spec.rules["):
        rule = _rule_of(path_field)
        return f in (rule, rule + ".host")
    return False


@dataclass(slots=True)
class _Router:
    name: str
    ingress: ObjectRef
    source: str
    field: str
    host: str | None
    path: str | None
    path_type: str | None
    backend: Backend | None
    in_table: bool
    diagnostics: list[Diagnostic]
    rule: str
    service: str | None = None
    # From the IR for routers in the table and those the table keeps as skipped (flavor
    # traefik's unusable Services); None for routers the IR does not have.
    router: Router | None = None

    def to_json(self) -> Json:
        errors = [d.message for d in self.diagnostics if d.severity is Severity.ERROR]
        warnings = [d.message for d in self.diagnostics if d.severity is Severity.WARNING]
        backend = self.backend
        if not self.in_table:
            status = "disabled"
            if not errors:
                # Losing a conflict is a warning about the manifests, but for this router it
                # means it never sees a request.
                errors, warnings = warnings, []
            if not errors:
                errors = ["not in the route table"]
        elif backend is not None and backend.error is not None:
            status = "disabled"
            reason = f"answers 503: {backend.error}"
            if reason not in errors:
                errors = [reason, *errors]
        elif errors or warnings:
            status = "warning"
        else:
            status = "enabled"
        return {
            "name": self.name,
            "provider": PROVIDER,
            "entryPoints": (
                sorted(str(e) for e in self.router.entrypoints) if self.router else ["web"]
            ),
            "rule": self.rule,
            "dialect": self.router.dialect if self.router else None,
            "dialectReason": (self.router.dialect_reason or None) if self.router else None,
            "filters": [type(f).__name__ for f in self.router.filters] if self.router else [],
            "middlewares": list(self.router.middlewares) if self.router else [],
            "host": self.host,
            "path": self.path,
            "pathType": self.path_type,
            "ingress": f"{self.ingress.namespace}/{self.ingress.name}",
            "namespace": self.ingress.namespace,
            "source": self.source,
            "field": self.field,
            "service": self.service,
            "backend": None if backend is None else backend.key,
            "status": status,
            "error": errors,
            "warnings": warnings,
        }


DiagsByObject = Mapping[ObjectRef | None, list[Diagnostic]]


def _by_object(diagnostics: tuple[Diagnostic, ...]) -> DiagsByObject:
    out: dict[ObjectRef | None, list[Diagnostic]] = {}
    for d in diagnostics:
        out.setdefault(d.obj, []).append(d)
    return out


def _table_routers(snapshot: Snapshot, names: RouteNames, diags: DiagsByObject) -> list[_Router]:
    out: list[_Router] = []
    for route in snapshot.table.routes():
        out.append(
            _Router(
                name=names.router(route) or "",
                ingress=route.ingress,
                source=str(route.source),
                field=route.field,
                host=route.host,
                path=route.path,
                path_type=None if route.path_type is None else str(route.path_type),
                backend=route.backend,
                rule=route.rule,
                router=route,
                in_table=True,
                diagnostics=[
                    d
                    for d in diags.get(route.ingress, ())
                    if _applies(d, route.ingress, route.field)
                ],
                service=names.service(route),
            )
        )
    return out


def _unrouted_routers(snapshot: Snapshot, diags: DiagsByObject, taken: set[str]) -> list[_Router]:
    """The routers the manifests ask for that the table does not route (Snapshot.unrouted,
    made by the front-ends): left out, lost a conflict, excluded by class, or unsupported;
    each with the diagnostics that say why."""
    out: list[_Router] = []
    for router in snapshot.unrouted:
        ref = router.ingress
        name = unique(router_key(ref.namespace, ref.name, router.host, router.path), taken)
        taken.add(name)
        backend = router.backend
        out.append(
            _Router(
                name=name,
                ingress=ref,
                source=str(router.source),
                field=router.field,
                host=router.host,
                path=router.path,
                path_type=None if router.path_type is None else str(router.path_type),
                # A resource backend has no Service to show.
                backend=backend if backend.service else None,
                rule=router.rule,
                in_table=False,
                diagnostics=[d for d in diags.get(ref, ()) if _applies(d, ref, router.field)],
                # Only a router a front-end compiled (and the table keeps aside) has a
                # dialect, entry points and filters to show.
                router=router if router.dialect else None,
            )
        )
    return out


# --------------------------------------------------------------------------- services


def _port_matches(port_name: str | None, port_number: int, wanted: str) -> bool:
    return wanted == port_name or wanted == str(port_number)


@dataclass(frozen=True, slots=True)
class _Index:
    """The objects of one view keyed for look-ups, so a view costs O(objects), not O(n^2)."""

    services: Mapping[tuple[str, str], Service]
    slices: Mapping[tuple[str, str], tuple[EndpointSlice, ...]]
    endpoints: Mapping[tuple[str, str], Endpoints]

    @classmethod
    def of(cls, manifests: Manifests) -> _Index:
        slices: dict[tuple[str, str], list[EndpointSlice]] = {}
        for sl in manifests.endpoint_slices:
            if sl.service_name is not None:
                slices.setdefault((sl.meta.namespace, sl.service_name), []).append(sl)
        return cls(
            services={(o.meta.namespace, o.meta.name): o for o in manifests.services},
            slices={k: tuple(v) for k, v in slices.items()},
            endpoints={(o.meta.namespace, o.meta.name): o for o in manifests.endpoints},
        )


def _not_ready(index: _Index | None, backend: Backend) -> list[str]:
    """Addresses of the backend's endpoints that exist but are not ready (never sent to)."""
    if index is None:
        return []
    key = (backend.namespace, backend.service)
    svc = index.services.get(key)
    if svc is None:
        return []
    sp = next((p for p in svc.ports if _port_matches(p.name, p.port, backend.port)), None)
    if sp is None:
        return []
    found: list[str] = []
    # As the resolver does: EndpointSlices, when any names the Service, else v1 Endpoints.
    slices = index.slices.get(key, ())
    for sl in slices:
        port = next((p for p in sl.ports if p.name == sp.name), None)
        if port is None:
            continue
        for ep in sl.endpoints:
            if ep.ready is False:
                found.extend(_addr(a, port.port) for a in ep.addresses)
    eps = index.endpoints.get(key)
    if not slices and eps is not None:
        for subset in eps.subsets:
            port = next((p for p in subset.ports if p.name == sp.name), None)
            if port is not None:
                found.extend(_addr(a, port.port) for a in subset.not_ready_addresses)
    return sorted(set(found))


def _addr(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _service_json(name: str, backend: Backend, used_by: list[str], index: _Index | None) -> Json:
    endpoints: list[Json] = [
        {"address": str(ep), "url": ep.base_url, "state": "ready"} for ep in backend.endpoints
    ]
    endpoints += [
        {"address": a, "url": None, "state": "not ready"} for a in _not_ready(index, backend)
    ]
    svc = None if index is None else index.services.get((backend.namespace, backend.service))
    source = None if svc is None else str(svc.meta.source)
    return {
        "name": name,
        "provider": PROVIDER,
        "type": "loadbalancer",
        "namespace": backend.namespace,
        "serviceName": backend.service,
        "port": backend.port,
        "backend": backend.key,
        "source": source,
        "status": "enabled" if backend.endpoints else "disabled",
        "error": [] if backend.error is None else [backend.error],
        "loadBalancer": {
            "servers": [{"url": ep.base_url} for ep in backend.endpoints],
            "passHostHeader": True,
        },
        "endpoints": endpoints,
        "usedBy": sorted(used_by),
    }


# --------------------------------------------------------------------------- view


def _rfc3339(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ReloadStats:
    """Reloads so far. A reload failed when it raised, or when it brought errors the
    configuration before it did not have (the last good version of each broken file or object
    keeps serving); one that leaves an older error in place succeeded. `last_error` says why
    the latest reload failed, and is None once one succeeds."""

    reloads: int = 0
    failed: int = 0
    last_success: float | None = None
    last_error: str | None = None
    last_failure: float | None = None


def build_view(
    snapshot: Snapshot,
    objects: Mapping[ObjectRef, KObject] | None = None,
    *,
    entrypoints: tuple[EntryPoint, ...] = (),
    stats: ReloadStats = ReloadStats(),
) -> ConfigView:
    """Every API answer for `snapshot`. `objects` (what it was compiled from) adds the routers
    that are not in the table and the endpoints that are not ready."""
    names = names_for(snapshot.table)
    by_obj = _by_object(snapshot.diagnostics)
    routers = _table_routers(snapshot, names, by_obj)
    manifests = _manifests(objects) if objects is not None else None
    index = None if manifests is None else _Index.of(manifests)
    routers += _unrouted_routers(snapshot, by_obj, set(names.names))
    backends: dict[str, Backend] = {}
    for r in routers:
        if r.backend is not None:
            if r.service is None:
                r.service = names.service_of(r.backend)
            backends.setdefault(r.service, r.backend)
    routers.sort(key=lambda r: r.name)
    router_json = tuple(r.to_json() for r in routers)
    used_by: dict[str, list[str]] = {}
    for r in routers:
        if r.service is not None:
            used_by.setdefault(r.service, []).append(r.name)
    service_json = tuple(
        _service_json(n, backends[n], used_by.get(n, []), index) for n in sorted(backends)
    )
    eps: tuple[Json, ...] = tuple({"name": e.name, "address": e.address} for e in entrypoints)
    diags = tuple(dump_diagnostic(d) for d in snapshot.diagnostics)

    def counts(items: tuple[Json, ...]) -> Json:
        return {
            "total": len(items),
            "warnings": sum(1 for i in items if i["status"] == "warning"),
            "errors": sum(1 for i in items if i["status"] == "disabled"),
        }

    errors = len(snapshot.errors)
    overview: Json = {
        "http": {"routers": counts(router_json), "services": counts(service_json)},
        "diagnostics": {"errors": errors, "warnings": len(snapshot.warnings)},
        "config": {
            "generation": snapshot.generation,
            "loadedAt": _rfc3339(snapshot.loaded_at),
            "objects": snapshot.objects,
            "routes": snapshot.routes,
            "reloads": stats.reloads,
            "failedReloads": stats.failed,
            "lastSuccessfulReload": _rfc3339(stats.last_success),
            "lastFailedReload": _rfc3339(stats.last_failure),
            "lastError": stats.last_error,
        },
        "entryPoints": [e.name for e in entrypoints],
        "providers": ["KubernetesIngress"],
    }
    raw_objects = [] if objects is None else [dump_object(objects[k]) for k in sorted(objects)]
    rawdata: Json = {
        "routers": {r["name"]: r for r in router_json},
        "services": {s["name"]: s for s in service_json},
        "entryPoints": {e["name"]: e for e in eps},
        "objects": raw_objects,
        "table": dump_table(snapshot.table),
        "diagnostics": list(diags),
    }
    return ConfigView(
        generation=snapshot.generation,
        overview=overview,
        routers=router_json,
        services=service_json,
        entrypoints=eps,
        diagnostics=diags,
        rawdata=rawdata,
        router_by_name=MappingProxyType({str(r["name"]): r for r in router_json}),
        service_by_name=MappingProxyType({str(s["name"]): s for s in service_json}),
    )


# --------------------------------------------------------------------------- live state


def _error_key(d: Diagnostic) -> tuple[str, str, str, str, str]:
    # Without the line: an edit above a broken object moves its error, it does not add one.
    return (d.code, str(d.obj or ""), d.field, d.message, "" if d.source is None else d.source.file)


class ConfigState:
    """The admin side's view of the configuration: the holder, the objects of the installed
    snapshot (from the reloader), reload counters, wake-ups for live dashboards, and the
    traffic reader (observe.metrics sets `traffic` when metrics are on).

    `on_swap` / `on_failure` are called from the reloader's thread; everything else from the
    event loop.
    """

    def __init__(self, holder: SnapshotHolder, entrypoints: tuple[EntryPoint, ...] = ()) -> None:
        self.holder = holder
        self.entrypoints = entrypoints
        self._lock = threading.Lock()
        self._objects: tuple[int, Mapping[ObjectRef, KObject]] | None = None
        self._stats = ReloadStats()
        self._errors: frozenset[tuple[str, str, str, str, str]] = frozenset()
        self._view: ConfigView | None = None
        self._view_key: tuple[int, int, ReloadStats] | None = None
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.traffic: Callable[[], TrafficReading] | None = None

    def set_entrypoints(self, entrypoints: tuple[EntryPoint, ...]) -> None:
        """Once the listeners are bound (a port given as 0 is known only then)."""
        self.entrypoints = entrypoints
        self._view = None

    @property
    def stats(self) -> ReloadStats:
        return self._stats

    def on_swap(self, snapshot: Snapshot, objects: Mapping[ObjectRef, KObject] | None) -> None:
        """A new snapshot is installed (`objects`: what it was built from)."""
        when = snapshot.loaded_at or time.time()
        with self._lock:
            if objects is not None:
                self._objects = (snapshot.generation, objects)
            errors = {_error_key(d): d for d in snapshot.errors}
            new = [d for key, d in errors.items() if key not in self._errors]
            self._errors = frozenset(errors)
            s = self._stats
            if new:
                self._stats = dataclasses.replace(
                    s,
                    reloads=s.reloads + 1,
                    failed=s.failed + 1,
                    last_error=str(new[0]),
                    last_failure=when,
                )
            else:
                self._stats = dataclasses.replace(
                    s, reloads=s.reloads + 1, last_success=when, last_error=None
                )
        self._wake()

    def on_failure(self, message: str) -> None:
        """A rebuild failed outright; the last good snapshot keeps serving."""
        with self._lock:
            s = self._stats
            self._stats = dataclasses.replace(
                s,
                reloads=s.reloads + 1,
                failed=s.failed + 1,
                last_error=message,
                last_failure=time.time(),
            )
        self._wake()

    def objects(self, generation: int) -> Mapping[ObjectRef, KObject] | None:
        got = self._objects
        return got[1] if got is not None and got[0] == generation else None

    def view(self) -> ConfigView:
        """The view of the current snapshot, built at most once per generation."""
        snapshot = self.holder.current
        stats = self._stats
        objects = self.objects(snapshot.generation)
        key = (snapshot.generation, 0 if objects is None else id(objects), stats)
        view = self._view
        if view is None or self._view_key != key:
            view = build_view(snapshot, objects, entrypoints=self.entrypoints, stats=stats)
            self._view, self._view_key = view, key
        return view

    # ------------------------------------------------------------------ live refresh

    def subscribe(self) -> asyncio.Event:
        """An event set whenever the configuration changes (call from the event loop)."""
        event = asyncio.Event()
        self._listeners.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._listeners = {(lp, ev) for lp, ev in self._listeners if ev is not event}

    def _wake(self) -> None:
        for loop, event in list(self._listeners):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its listener is gone
                self._listeners.discard((loop, event))
