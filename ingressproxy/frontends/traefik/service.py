"""Traefik's Service annotations (traefik.ingress.kubernetes.io/service.*), as IR service
options for the routers of the traefik dialect.

Flow: pipeline (traefik dialect) -> apply_service_annotations(table, manifests) -> each
router whose Service carries them gets its Backend's pass_host and sticky cookie. As
Traefik v3's provider reads them (pkg/provider/kubernetes/ingress: parseServiceConfig on the
Service's annotations in loadService, label.Decode into ServiceIng):

- `service.passhostheader` (default true): false sends the server's own host:port as Host.
- `service.sticky.cookie: "true"` with `.name`, `.secure`, `.httponly`, `.samesite`, `.maxage`,
  `.path` (default "/"), `.domain`: a sticky cookie naming the server (sticky.go: the value
  is sha256Hash(server URL)); without a name, Traefik's cookie.GenerateName of the service's
  qualified name (`_` and the first 5 hex digits of SHA-1 of "_TRAEFIK_BACKEND_<ns-svc-port>
  @kubernetes").
- `service.serversscheme` is read where endpoints are resolved (frontends.backends).
- `service.serverstransport`, `service.nativelb`, `service.nodeportlb`, `service.middlewares`:
  not followed here, each said by a warning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from ...ir.model import Backend, Router
from ...ir.service import CookieAffinity
from ...ir.table import RouteTable, map_routers
from ...manifests.model import Diagnostic, Manifests, Service, Severity
from ..values import parse_bool
from .annotations import PREFIX

__all__ = ["SERVICE_KEYS", "ServiceOptions", "apply_service_annotations", "service_options"]

_SERVICE = PREFIX + "service."
PASS_HOST_HEADER = _SERVICE + "passhostheader"
STICKY = _SERVICE + "sticky.cookie"
_STICKY_FIELDS = ("name", "secure", "httponly", "samesite", "maxage", "path", "domain")
_NOT_FOLLOWED = {
    "serverstransport": "ServersTransport objects are not read: the default transport is used",
    "nativelb": "Traefik would send to the Service's ClusterIP; the EndpointSlices' endpoints"
    " are used here",
    "nodeportlb": "Traefik would send to the nodes' NodePort; the EndpointSlices' endpoints"
    " are used here",
    "middlewares": "Middleware objects are not read yet: the service's middlewares are not applied",
}
SERVICE_KEYS: frozenset[str] = frozenset(
    {
        PASS_HOST_HEADER,
        STICKY,
        _SERVICE + "serversscheme",
        *(f"{STICKY}.{f}" for f in _STICKY_FIELDS),
        *(_SERVICE + k for k in _NOT_FOLLOWED),
    }
)


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    pass_host: bool = True
    sticky: CookieAffinity | None = None


def _service_name(svc: Service, port: str) -> str:
    """Traefik's qualified service name: Normalize(ns-name-port) + "@kubernetes"."""
    normal = re.sub(r"[^0-9A-Za-z]+", "-", f"{svc.meta.namespace}-{svc.meta.name}-{port}")
    return normal.strip("-") + "@kubernetes"


def cookie_name(service_name: str) -> str:
    """cookie.GenerateName: "_" and SHA-1 of "_TRAEFIK_BACKEND_<name>", 6 characters."""
    digest = hashlib.sha1(("_TRAEFIK_BACKEND_" + service_name).encode()).hexdigest()
    return ("_" + digest)[:6]


def _sanitized(name: str) -> str:
    """cookie.sanitizeName: RFC 2616 token characters kept, the others become "_"."""
    return re.sub(r"[^0-9A-Za-z!#$%&'*+\-.^`|~]", "_", name)


def service_options(
    svc: Service, port: str, report: Callable[[Diagnostic], None]
) -> ServiceOptions | None:
    """The options `svc`'s annotations ask for (None: none), reporting what is not followed
    and values label.Decode would refuse (the provider then skips the service; here the
    value is ignored, with an error saying so)."""
    notes = {k: v for k, v in svc.meta.annotations.items() if k.startswith(_SERVICE)}
    if not notes:
        return None

    def where(key: str) -> str:
        return f"metadata.annotations.{key}"

    def problem(key: str, message: str, severity: Severity = Severity.WARNING) -> None:
        report(
            Diagnostic(
                severity,
                "service-annotation",
                message,
                svc.meta.source_of(where(key)),
                svc.ref,
                where(key),
            )
        )

    def flag(key: str, default: bool) -> bool:
        raw = notes.get(key)
        if raw is None:
            return default
        value = parse_bool(raw)  # label.Decode reads booleans as strconv.ParseBool
        if value is not None:
            return value
        problem(
            key,
            f'"{raw}" is not a boolean (Go\'s ParseBool); Traefik refuses the service'
            f" configuration; here {str(default).lower()} applies",
            Severity.ERROR,
        )
        return default

    for key in sorted(notes):
        if key not in SERVICE_KEYS:
            problem(key, f'"{key}" is not an annotation Traefik reads on a Service; ignored')
    for name, why in _NOT_FOLLOWED.items():
        if _SERVICE + name in notes:
            problem(_SERVICE + name, f'"{_SERVICE + name}" is not followed: {why}')
    pass_host = flag(PASS_HOST_HEADER, True)
    sticky: CookieAffinity | None = None
    if flag(STICKY, False) or any(f"{STICKY}.{f}" in notes for f in _STICKY_FIELDS):
        # label.Decode makes the Cookie as soon as any of its keys is given.
        name = notes.get(f"{STICKY}.name", "").strip()
        max_age_raw = notes.get(f"{STICKY}.maxage")
        max_age: int | None = None
        if max_age_raw is not None:
            try:
                max_age = int(max_age_raw)
            except ValueError:
                problem(
                    f"{STICKY}.maxage",
                    f'"{max_age_raw}" is not an integer; ignored',
                    Severity.ERROR,
                )
        same_site = notes.get(f"{STICKY}.samesite", "").strip().lower()
        sticky = CookieAffinity(
            name=_sanitized(name) if name else cookie_name(_service_name(svc, port)),
            path=notes.get(f"{STICKY}.path", "/"),
            # Go's http.Cookie: MaxAge 0 writes no Max-Age, a negative one "Max-Age=0".
            max_age=None if not max_age else max(max_age, 0),
            secure=flag(f"{STICKY}.secure", False),
            http_only=flag(f"{STICKY}.httponly", False),
            same_site={"none": "None", "lax": "Lax", "strict": "Strict"}.get(same_site),
            domain=notes.get(f"{STICKY}.domain") or None,
            names_endpoint=True,
        )
    if pass_host and sticky is None:
        return None
    return ServiceOptions(pass_host, sticky)


def apply_service_annotations(
    table: RouteTable, manifests: Manifests, report: Callable[[Diagnostic], None]
) -> RouteTable:
    """`table` with the traefik-dialect routers' Backends given their Service's options."""
    services: dict[tuple[str, str], Service] = {}
    for svc in manifests.services:
        services.setdefault((svc.meta.namespace, svc.meta.name), svc)
    options: dict[tuple[str, str, str], ServiceOptions | None] = {}
    reported: set[tuple[str, str]] = set()

    def of(backend: Backend) -> ServiceOptions | None:
        key = (backend.namespace, backend.service, backend.port)
        if key not in options:
            svc = services.get(key[:2])
            once = report if key[:2] not in reported else (lambda d: None)
            reported.add(key[:2])
            options[key] = None if svc is None else service_options(svc, backend.port, once)
        return options[key]

    def configured(backend: Backend) -> Backend:
        if backend.members:
            members = tuple(configured(m) for m in backend.members)
            if all(a is b for a, b in zip(members, backend.members, strict=True)):
                return backend
            return replace(backend, members=members)
        found = of(backend)
        if found is None:
            return backend
        return replace(backend, pass_host=found.pass_host, balance=found.sticky)

    def change(router: Router) -> Router:
        if router.dialect != "traefik":
            return router
        backend = configured(router.backend)
        return router if backend is router.backend else replace(router, backend=backend)

    return map_routers(table, change)
