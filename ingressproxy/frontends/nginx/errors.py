"""ingress-nginx's default-backend and custom-http-errors annotations, as IR.

Flow: pipeline (nginx dialect) -> error_plans(served Ingresses) -> apply_error_plans(table)
-> routers whose Service has no endpoints sent to the default-backend Service
(DefaultBackendHeaders), and routers with ErrorPages. As ingress-nginx builds it:

- `default-backend: NAME` names a Service of the Ingress's namespace (defaultbackend.Parse:
  GetService(ns/NAME), an error when it does not exist); the controller uses its first port
  (`location.DefaultBackend.Spec.Ports[0]`) and only when that port has endpoints ("custom
  backend is valid only if contains at least one endpoint", controller.go
  createUpstreams). A location whose own upstream has no endpoints is then sent there
  (`location.Backend = name`), with the X-Code: 503, X-Format, X-Namespace, X-Ingress-Name,
  X-Service-Name, X-Service-Port headers (nginx.tmpl, custom-default-backend-).
- `custom-http-errors: 404,503` (codes 4xx/5xx, customhttperrors.Parse and its validator
  `^(?:[4,5]\\d{2},?)*$`) turns on proxy_intercept_errors with `error_page <code> =
  @custom_<upstream>_<code>`; the upstream is the default-backend Service when it is valid,
  else the controller's global default backend, which ingressproxy does not have.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from ...ir.filters import DefaultBackendHeaders, ErrorContext
from ...ir.model import Backend, ErrorPages, Router
from ...ir.table import RouteTable, map_routers
from ...manifests.model import (
    Diagnostic,
    Ingress,
    IngressServiceBackend,
    Manifests,
    ObjectRef,
    Service,
    ServiceBackendPort,
    Severity,
)
from ..backends import BackendResolver
from .annotations import PREFIX, annotation_diagnostic

__all__ = ["CUSTOM_HTTP_ERRORS", "DEFAULT_BACKEND", "ErrorPlan", "apply_error_plans", "error_plans"]

DEFAULT_BACKEND = PREFIX + "default-backend"
CUSTOM_HTTP_ERRORS = PREFIX + "custom-http-errors"

# customhttperrors.arrayOfHTTPErrors
_CODES = re.compile(r"^(?:[4,5]\d{2},?)*$")


@dataclass(frozen=True, slots=True)
class ErrorPlan:
    """What the two annotations of one Ingress ask for."""

    fallback: Backend | None  # the default-backend Service's first port, when it has endpoints
    codes: frozenset[int]  # custom-http-errors (empty: none)


def _codes(ing: Ingress, report: Callable[[Diagnostic], None]) -> frozenset[int]:
    raw = ing.meta.annotations.get(CUSTOM_HTTP_ERRORS)
    if raw is None:
        return frozenset()
    if not _CODES.match(raw.replace(" ", "")):
        msg = (
            f'"{raw}" is not a comma-separated list of 4xx/5xx codes (ingress-nginx validates'
            " it with ^(?:[4,5]\\d{2},?)*$ and ignores the annotation); ignored"
        )
        report(annotation_diagnostic(ing, "invalid-annotation", msg, CUSTOM_HTTP_ERRORS))
        return frozenset()
    return frozenset(int(c) for c in raw.replace(" ", "").split(",") if c)


def _fallback(
    ing: Ingress,
    services: Mapping[tuple[str, str], Service],
    resolver: BackendResolver,
    report: Callable[[Diagnostic], None],
) -> Backend | None:
    name = ing.meta.annotations.get(DEFAULT_BACKEND)
    if name is None:
        return None
    namespace = ing.meta.namespace
    service = services.get((namespace, name.strip()))
    if service is None:
        msg = (
            f'Service "{namespace}/{name}" does not exist; ingress-nginx ignores the annotation'
            " (defaultbackend.Parse: unexpected error reading service)"
        )
        report(annotation_diagnostic(ing, "default-backend-missing", msg, DEFAULT_BACKEND))
        return None
    if not service.ports:
        msg = f'Service "{namespace}/{name}" has no ports; ingress-nginx ignores it'
        report(annotation_diagnostic(ing, "default-backend-missing", msg, DEFAULT_BACKEND))
        return None
    first = service.ports[0]
    port = ServiceBackendPort(number=first.port)
    backend = resolver.resolve(namespace, IngressServiceBackend(service.meta.name, port)).backend
    if backend.error is not None or not backend.endpoints:
        msg = (
            f'Service "{namespace}/{name}" port {first.port} has no ready endpoints; ingress-nginx'
            " uses a default backend only when it has some"
        )
        report(annotation_diagnostic(ing, "default-backend-missing", msg, DEFAULT_BACKEND))
        return None
    return backend


def error_plans(
    served: list[Ingress],
    manifests: Manifests,
    resolver: BackendResolver,
    report: Callable[[Diagnostic], None],
) -> dict[ObjectRef, ErrorPlan]:
    """The plan of each Ingress that uses either annotation."""
    out: dict[ObjectRef, ErrorPlan] = {}
    services: dict[tuple[str, str], Service] = {}
    for svc in manifests.services:
        services.setdefault((svc.meta.namespace, svc.meta.name), svc)  # the first one wins
    for ing in served:
        annotations = ing.meta.annotations
        if DEFAULT_BACKEND not in annotations and CUSTOM_HTTP_ERRORS not in annotations:
            continue
        fallback = _fallback(ing, services, resolver, report)
        codes = _codes(ing, report)
        if codes and fallback is None:
            msg = (
                "without a usable default-backend annotation ingress-nginx sends these codes to"
                " its global default backend, which ingressproxy does not have: the upstream's"
                " own answers pass unchanged"
            )
            report(
                annotation_diagnostic(
                    ing, "custom-errors-no-backend", msg, CUSTOM_HTTP_ERRORS, Severity.WARNING
                )
            )
        out[ing.ref] = ErrorPlan(fallback, codes)
    return out


def apply_error_plans(table: RouteTable, plans: Mapping[ObjectRef, ErrorPlan]) -> RouteTable:
    """`table` with each planned Ingress's routers sent to the default backend when their own
    Service has no endpoints, and given their error pages."""
    if not plans:
        return table

    def change(router: Router) -> Router:
        plan = plans.get(router.ingress)
        if plan is None or router.dialect != "nginx":
            return router
        own = router.backend
        context = ErrorContext(503, own.namespace, router.ingress.name, own.service, own.port)
        if plan.fallback is not None and (own.error is not None or not own.endpoints):
            router = replace(
                router,
                backend=plan.fallback,
                filters=(*router.filters, DefaultBackendHeaders(context)),
            )
        if plan.codes and plan.fallback is not None:
            router = replace(router, errors=ErrorPages(plan.codes, plan.fallback, context))
        return router

    return map_routers(table, change)
