"""What every front-end takes and gives: compile options, the per-Ingress policy that the
dialects' annotation passes produce, and the compile result (route table + diagnostics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..ir.filters import Filter
from ..ir.model import ALL_ENTRYPOINTS, EntryPoint, ExternalAuth
from ..ir.table import RouteTable
from ..manifests.model import Diagnostic
from .backends import BackendOverride
from .nginx.rewrite import Rewrite
from .semantics import Flavor

__all__ = ["CompileOptions", "CompileResult", "IngressPolicy"]


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
    # --allow-cross-namespace: Traefik's allowCrossNamespace, for references made inside
    # Middleware objects (a chain's members).
    allow_cross_namespace: bool = False
    # --default-certificate: a Secret `ns/name` (read by certs.compile_certs) or files.
    default_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class IngressPolicy:
    """What the annotations of one Ingress add to each router it gets: the entry points
    (Traefik's router.entrypoints), filters per rule host (ingress-nginx's ssl-redirect) and
    the scheme to speak to its Services (ingress-nginx's backend-protocol)."""

    entrypoints: frozenset[EntryPoint] = ALL_ENTRYPOINTS
    filters: Mapping[str | None, tuple[Filter, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    scheme: str | None = None
    # ingress-nginx's rewrite-target / use-regex / x-forwarded-prefix (nginx dialect only).
    rewrite: Rewrite | None = None
    # Why the Ingress got its dialect (frontends.dialects), shown by explain and the admin API.
    dialect_reason: str = ""
    # Traefik's router.priority (None: the rule's length) and router.pathmatcher for
    # ImplementationSpecific paths ("Path", "PathPrefix", "PathRegexp" or an invalid value).
    priority: int | None = None
    path_matcher: str | None = None
    # Traefik's router.middlewares, compiled (frontends/traefik/middlewares.py): filters run
    # before the router's own; `left_out` says why its routers are not served, when set.
    # ingress-nginx's auth-url (nginx dialect): the auth service asked before forwarding.
    auth: ExternalAuth | None = None
    middlewares: tuple[Filter, ...] = ()
    middleware_names: tuple[str, ...] = ()
    left_out: str | None = None


@dataclass(frozen=True, slots=True)
class CompileResult:
    table: RouteTable
    diagnostics: tuple[Diagnostic, ...]  # sorted by Diagnostic.sort_key()
    routes: int
