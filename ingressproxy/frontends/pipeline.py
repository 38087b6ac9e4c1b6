"""The front-ends' one entry: decoded manifests -> the IR's tables for each entry point.

Flow: reloader -> compile_routes(manifests, options, certs) -> the dialects' annotation passes
(policy per Ingress: entry points, filters, upstream scheme) -> the Ingress engine with the
chosen dialect's semantics, once, or once per entry point when some Ingress names only one
-> CompileResult (the `web` table) + EntryPoints (the `websecure` table when it differs).
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from ..ir.filters import Filter
from ..ir.model import ALL_ENTRYPOINTS, EntryPoint
from ..ir.table import EntryPoints
from ..manifests.model import Diagnostic, Ingress, Manifests, ObjectRef
from .certs import CertTable
from .nginx.annotations import BACKEND_PROTOCOL, annotation_diagnostic
from .nginx.protocol import backend_protocol_problem, backend_scheme
from .nginx.redirects import ssl_redirects
from .nginx.rewrite import ignored_outside_nginx, rewrite_of
from .options import CompileOptions, CompileResult, IngressPolicy
from .semantics import Flavor
from .spec.classes import select_ingresses
from .spec.compiler import compile_manifests, semantics_of
from .traefik.entrypoints import entrypoints

__all__ = ["compile_routes", "ingress_policies", "regex_hosts"]


def ingress_policies(
    ingresses: list[Ingress],
    options: CompileOptions,
    tls_hosts: frozenset[str],
    diags: list[Diagnostic],
) -> dict[ObjectRef, IngressPolicy]:
    """Each served Ingress's annotations, read by the dialect that owns them: Traefik's
    router.entrypoints, ingress-nginx's ssl-redirect / force-ssl-redirect (as filters) and
    backend-protocol. Both are honoured in every dialect; the nginx dialect adds ingress-nginx's
    implicit redirect of hosts with TLS."""
    sem = semantics_of(options)
    implicit = sem.implicit_ssl_redirect
    out: dict[ObjectRef, IngressPolicy] = {}
    for ing in ingresses:
        eps = entrypoints(ing, diags.append)
        problem = backend_protocol_problem(ing.meta.annotations)
        if problem is not None:
            code = "unsupported-backend-protocol"
            diags.append(annotation_diagnostic(ing, code, problem, BACKEND_PROTOCOL))
        filters: dict[str | None, tuple[Filter, ...]] = {}
        if EntryPoint.WEB in eps:
            # A redirect is a plain-HTTP listener's answer: routers only on websecure need none.
            for (_, host), redirect in ssl_redirects(
                ing, tls_hosts, implicit, diags.append
            ).items():
                filters[host] = (*filters.get(host, ()), redirect)
        out[ing.ref] = IngressPolicy(
            entrypoints=eps,
            filters=MappingProxyType(filters),
            scheme=backend_scheme(ing.meta.annotations),
            # rewrite-target and use-regex change matching itself: only the nginx dialect.
            rewrite=rewrite_of(ing, diags.append) if sem.flavor is Flavor.NGINX else None,
        )
        if sem.flavor is not Flavor.NGINX:
            ignored_outside_nginx(ing, str(sem.flavor), diags.append)
    return out


def regex_hosts(
    ingresses: list[Ingress], policies: Mapping[ObjectRef, IngressPolicy]
) -> frozenset[str | None]:
    """The hosts whose every location is a regex: those of an Ingress that uses use-regex or
    rewrites a path (ingress-nginx's enforceRegexModifier works per server)."""
    hosts: set[str | None] = set()
    for ing in ingresses:
        rw = policies[ing.ref].rewrite if ing.ref in policies else None
        if rw is None:
            continue
        paths = [p.path for rule in ing.rules for p in rule.paths or ()]
        if rw.enforces_regex(paths):
            hosts.update(rule.host for rule in ing.rules)
    return frozenset(hosts)


def compile_routes(
    manifests: Manifests, options: CompileOptions, certs: CertTable
) -> tuple[CompileResult, EntryPoints]:
    """Compile the `web` table (and the `websecure` one when some Ingress names only one entry
    point). The result's diagnostics cover both compiles, once each."""
    diags: list[Diagnostic] = []
    served = select_ingresses(manifests, options, [])  # the engine reports exclusions
    policies = ingress_policies(served, options, certs.tls_hosts, diags)
    regex = regex_hosts(served, policies)
    entry: Mapping[ObjectRef, frozenset[EntryPoint]] = {
        ref: p.entrypoints for ref, p in policies.items()
    }
    secure = None
    if all(eps == ALL_ENTRYPOINTS for eps in entry.values()):
        web = compile_manifests(manifests, options, policies, regex)
        routes = web.routes
        diags.extend(web.diagnostics)
    else:

        def only(ep: EntryPoint) -> Manifests:
            # Ingresses excluded by class stay in: the engine reports them in both compiles.
            kept = tuple(i for i in manifests.ingresses if ep in entry.get(i.ref, ALL_ENTRYPOINTS))
            return replace(manifests, ingresses=kept)

        web = compile_manifests(only(EntryPoint.WEB), options, policies, regex)
        tls = compile_manifests(only(EntryPoint.WEBSECURE), options, policies, regex)
        secure = tls.table
        on_web = {ref for ref, eps in entry.items() if EntryPoint.WEB in eps}
        routes = web.routes + sum(1 for r in tls.table.routes() if r.ingress not in on_web)
        diags.extend(web.diagnostics)
        diags.extend(tls.diagnostics)
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    return CompileResult(web.table, ordered, routes), EntryPoints(secure)
