"""Pure: Traefik's `web` / `websecure` entry points per Ingress, and HTTP -> HTTPS redirects.

Flow: Manifests + CertTable (certs.py) -> compile_entrypoints -> the `web` CompileResult plus
EntryPoints (the `websecure` table when it differs, the redirects) -> Snapshot -> proxy, which
routes a request on the TLS listener with the `websecure` table and redirects on the plain one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from ..ir.model import Router
from ..ir.table import RouteTable
from ..manifests.model import Diagnostic, Ingress, Manifests, ObjectRef, Severity
from .backends import BACKEND_PROTOCOL, backend_protocol_problem
from .certs import CertTable
from .compiler import CompileOptions, CompileResult, compile_manifests, select_ingresses
from .flavors import Flavor

__all__ = [
    "ENTRYPOINTS_ANNOTATION",
    "FORCE_SSL_REDIRECT_ANNOTATION",
    "SSL_REDIRECT_ANNOTATION",
    "SSL_REDIRECT_STATUS",
    "EntryPoint",
    "EntryPoints",
    "compile_entrypoints",
    "entrypoint_redirect_status",
    "entrypoints_of",
    "https_redirect",
    "https_url",
]

ENTRYPOINTS_ANNOTATION = "traefik.ingress.kubernetes.io/router.entrypoints"
SSL_REDIRECT_ANNOTATION = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE_SSL_REDIRECT_ANNOTATION = "nginx.ingress.kubernetes.io/force-ssl-redirect"

# ingress-nginx's `http-redirect-code` default: 308 keeps the method and body.
SSL_REDIRECT_STATUS = 308


class EntryPoint(StrEnum):
    WEB = "web"  # the plain HTTP listener (--port)
    WEBSECURE = "websecure"  # the TLS listener (--https-port)


_BOTH = frozenset(EntryPoint)

RedirectKey = tuple[ObjectRef, str | None]  # an Ingress and one of its rule hosts (None: any)


@dataclass(frozen=True, slots=True)
class EntryPoints:
    """What differs between the two listeners in one snapshot."""

    # The table for requests on the TLS listener; None when it is the `web` table (no Ingress
    # restricts its entry points), so the common case compiles and stores one table.
    websecure: RouteTable | None = None
    # Routes that answer a plain-HTTP request with a redirect to HTTPS (ingress-nginx
    # ssl-redirect / force-ssl-redirect), keyed by the Router's Ingress and host.
    redirects: frozenset[RedirectKey] = frozenset()

    def table(self, web: RouteTable, secure: bool) -> RouteTable:
        return self.websecure if secure and self.websecure is not None else web


def entrypoints_of(ing: Ingress) -> tuple[frozenset[EntryPoint], tuple[str, ...]]:
    """The entry points an Ingress serves, and the names in its annotation we do not have.

    Traefik's `router.entrypoints` is a comma list (the blog writes `web, websecure`); without
    it, or with an empty one, a router is attached to every entry point.
    """
    raw = ing.meta.annotations.get(ENTRYPOINTS_ANNOTATION)
    if raw is None:
        return _BOTH, ()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        return _BOTH, ()
    known = frozenset(EntryPoint(n) for n in names if n in _BOTH)
    unknown = tuple(dict.fromkeys(n for n in names if n not in _BOTH))
    return known, unknown


def compile_entrypoints(
    manifests: Manifests, options: CompileOptions, certs: CertTable
) -> tuple[CompileResult, EntryPoints]:
    """Compile the `web` table (and the `websecure` one when some Ingress names only one entry
    point) and the HTTPS redirects. The result's diagnostics cover both compiles, once each."""
    diags: list[Diagnostic] = []
    served = select_ingresses(manifests, options, [])  # the compiler reports exclusions
    entry: dict[ObjectRef, frozenset[EntryPoint]] = {}
    for ing in served:
        entry[ing.ref] = _entrypoints(ing, diags)
        problem = backend_protocol_problem(ing.meta.annotations)
        if problem is not None:
            diags.append(_diag(ing, "unsupported-backend-protocol", problem, BACKEND_PROTOCOL))
    if all(eps == _BOTH for eps in entry.values()):
        web = compile_manifests(manifests, options)
        secure: RouteTable | None = None
        routes = web.routes
        diags.extend(web.diagnostics)
    else:

        def only(ep: EntryPoint) -> Manifests:
            # Ingresses excluded by class stay in: the compiler reports them in both compiles.
            kept = tuple(i for i in manifests.ingresses if ep in entry.get(i.ref, _BOTH))
            return replace(manifests, ingresses=kept)

        web = compile_manifests(only(EntryPoint.WEB), options)
        tls = compile_manifests(only(EntryPoint.WEBSECURE), options)
        secure = tls.table
        on_web = {ref for ref, eps in entry.items() if EntryPoint.WEB in eps}
        routes = web.routes + sum(1 for r in tls.table.routes() if r.ingress not in on_web)
        diags.extend(web.diagnostics)
        diags.extend(tls.diagnostics)
    implicit = options.flavor is Flavor.NGINX
    redirects: set[RedirectKey] = set()
    for ing in served:
        if EntryPoint.WEB in entry[ing.ref]:
            redirects.update(_redirects(ing, certs.tls_hosts, implicit, diags))
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    result = CompileResult(web.table, ordered, routes)
    return result, EntryPoints(secure, frozenset(redirects))


def _entrypoints(ing: Ingress, diags: list[Diagnostic]) -> frozenset[EntryPoint]:
    eps, unknown = entrypoints_of(ing)
    if unknown:
        names = ", ".join(f'"{n}"' for n in unknown)
        served = " and ".join(sorted(eps)) if eps else "no entry point: it gets no traffic"
        msg = (
            f"entry point {names} does not exist here (only web = --port and websecure ="
            f" --https-port); this Ingress is served on {served}"
        )
        diags.append(_diag(ing, "unknown-entrypoint", msg, ENTRYPOINTS_ANNOTATION))
    return eps


# Go's strconv.ParseBool, which ingress-nginx uses for boolean annotations.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _flag(ing: Ingress, name: str, default: bool, diags: list[Diagnostic]) -> bool:
    raw = ing.meta.annotations.get(name)
    if raw is None:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    msg = f'"{raw}" is not a boolean (true or false); the default ({str(default).lower()}) applies'
    diags.append(_diag(ing, "invalid-annotation", msg, name))
    return default


def _redirects(
    ing: Ingress, tls_hosts: frozenset[str], implicit: bool, diags: list[Diagnostic]
) -> set[RedirectKey]:
    """ingress-nginx redirects a plain-HTTP request to HTTPS when force-ssl-redirect is true, or
    when ssl-redirect is (its default: true) and the host has a TLS section (nginx.tmpl: "redirect
    to HTTPS can be achieved forcing the redirect or having a SSL Certificate configured for the
    server"). `implicit` is that default; it is true only in flavor nginx, since neither the
    Ingress spec nor Traefik redirect on their own."""
    force = _flag(ing, FORCE_SSL_REDIRECT_ANNOTATION, False, diags)
    ssl = _flag(ing, SSL_REDIRECT_ANNOTATION, implicit, diags)
    if not force and not ssl:
        return set()
    hosts: list[str | None] = [rule.host for rule in ing.rules] or [None]
    return {(ing.ref, host) for host in hosts if force or (host is not None and host in tls_hosts)}


# A host we put in a Location header: a DNS name or IP literal, nothing that could end the
# authority (a Host header is client input).
_SAFE_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)$")


def https_redirect(
    entrypoints: EntryPoints,
    route: Router | None,
    *,
    redirect_all: bool,
    method: str,
    host: str,
    https_port: int,
    target: str,
) -> tuple[int, str] | None:
    """(status, Location) when a plain-HTTP request must go to the TLS listener, else None.

    `redirect_all` is --redirect-to-https (every request, before routing, as Traefik's entry
    point redirection); otherwise the matched route's Ingress and host decide (ssl-redirect).
    `host` is the normalized Host header, `target` the request target as received.
    """
    if not _SAFE_HOST.match(host):
        return None
    if redirect_all:
        status = entrypoint_redirect_status(method)
    elif route is not None and (route.ingress, route.host) in entrypoints.redirects:
        status = SSL_REDIRECT_STATUS
    else:
        return None
    return status, https_url(host, https_port, target)


def https_url(host: str, https_port: int, target: str) -> str:
    """Where a redirect to the TLS listener points: the request's host (without its port),
    the HTTPS port unless it is 443, and the request target as received."""
    port = "" if https_port == 443 else f":{https_port}"
    return f"https://{host}{port}{target}"


def entrypoint_redirect_status(method: str) -> int:
    """Traefik's permanent RedirectScheme, which its entry point redirection uses: 301 for GET,
    308 for every other method (so the method and body are kept)."""
    return 301 if method == "GET" else 308


def _diag(ing: Ingress, code: str, message: str, annotation: str) -> Diagnostic:
    where = f"metadata.annotations.{annotation}"
    return Diagnostic(Severity.WARNING, code, message, ing.meta.source_of(where), ing.ref, where)
