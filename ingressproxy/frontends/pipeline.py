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

from ..ir.filters import AppRoot, BasicAuth, Filter, NotFound, SetUpstreamHost
from ..ir.model import ALL_ENTRYPOINTS, Backend, EntryPoint, ExternalAuth, Router
from ..ir.table import EntryPoints, RouteTable, merge_tables
from ..manifests.model import Diagnostic, Ingress, Manifests, ObjectRef, Severity
from .annotations import unknown_annotations
from .backends import BackendResolver
from .certs import CertTable
from .dialects import choose_dialects
from .nginx.annotations import BACKEND_PROTOCOL, PREFIX, annotation_diagnostic
from .nginx.auth import basic_auth
from .nginx.cors import cors_filters
from .nginx.errors import apply_error_plans, error_plans
from .nginx.extauth import external_auth
from .nginx.hosts import (
    FROM_TO_WWW_REDIRECT,
    SERVER_ALIAS,
    apply_aliases,
    apply_www_redirects,
    server_aliases,
    upstream_vhost,
    www_redirects,
)
from .nginx.keys import Support, key_warnings, refusals, support_of
from .nginx.limits import limit_refusal, rate_limits
from .nginx.protocol import backend_protocol_problem, backend_scheme
from .nginx.redirects import ssl_redirects
from .nginx.returns import add_app_root_routers, app_roots, returns_of
from .nginx.rewrite import ignored_outside_nginx, rewrite_of
from .options import CompileOptions, CompileResult, IngressPolicy
from .semantics import DIALECTS, Flavor
from .spec.classes import select_ingresses
from .spec.compiler import AgeKey, age_key, compile_manifests, semantics_of
from .traefik.entrypoints import entrypoints
from .traefik.middlewares import MiddlewareIndex, router_middlewares
from .traefik.router import router_annotations
from .traefik.rules import rule_text
from .traefik.service import apply_service_annotations

__all__ = ["compile_routes", "ingress_policies", "regex_hosts", "review_annotations"]


def review_annotations(
    ingresses: list[Ingress], options: CompileOptions, diags: list[Diagnostic]
) -> frozenset[int]:
    """ingress-nginx's annotation keys of each served Ingress, in every dialect: a warning for
    each key accepted without effect or not supported yet (nginx/keys.py). In the nginx
    dialect, the ids of the Ingresses ingress-nginx would not serve at all, each error said:
    a snippet, a value with CR, LF or NUL, a redirect value its validation refuses. Elsewhere a
    snippet is only ignored, as every key of ingress-nginx's is there."""
    nginx = semantics_of(options).flavor is Flavor.NGINX
    traefik = semantics_of(options).flavor is Flavor.TRAEFIK
    refused: set[int] = set()
    for ing in ingresses:
        key_warnings(ing, diags.append)
        if traefik and router_annotations(ing, diags.append).refused:
            refused.add(id(ing))  # Traefik's "Failed to parse annotations": skipped whole
        if not nginx:
            for key in sorted(ing.meta.annotations):
                if key.startswith(PREFIX) and support_of(key) is Support.REFUSED:
                    msg = (
                        f'"{key}" is ingress-nginx\'s: in the nginx dialect (an Ingress of'
                        " ingress-nginx's class, or --flavor nginx) this Ingress is refused, as"
                        " ingress-nginx refuses snippets; it is ignored in dialect"
                        f" {options.flavor}"
                    )
                    code = "annotation-ignored-in-dialect"
                    diags.append(annotation_diagnostic(ing, code, msg, key))
            continue
        errors = refusals(ing)
        if not errors:
            refusal = returns_of(ing, diags.append).refused or limit_refusal(ing)
            errors = [refusal] if refusal is not None else []
        if errors:
            refused.add(id(ing))
            diags.extend(errors)
            # The engine never sees this Ingress: say its typos here.
            for unknown in unknown_annotations(ing.meta.annotations):
                where = f"metadata.annotations.{unknown.name}"
                diags.append(
                    Diagnostic(
                        Severity.WARNING,
                        "unknown-annotation",
                        unknown.message(),
                        ing.meta.source_of(where),
                        ing.ref,
                        where,
                    )
                )
    return frozenset(refused)


def ingress_policies(
    ingresses: list[Ingress],
    options: CompileOptions,
    tls_hosts: frozenset[str],
    diags: list[Diagnostic],
    reasons: Mapping[ObjectRef, str] | None = None,
    manifests: Manifests | None = None,
) -> dict[ObjectRef, IngressPolicy]:
    """Each served Ingress's annotations, read by the dialect that owns them: Traefik's
    router.entrypoints, ingress-nginx's ssl-redirect / force-ssl-redirect (as filters) and
    backend-protocol. Both are honoured in every dialect; the nginx dialect adds ingress-nginx's
    implicit redirect of hosts with TLS."""
    sem = semantics_of(options)
    implicit = sem.implicit_ssl_redirect
    traefik = sem.flavor is Flavor.TRAEFIK
    objects = manifests or Manifests()
    # The first definition of a name wins, as decode keeps it.
    secrets = {(x.meta.namespace, x.meta.name): x for x in reversed(objects.secrets)}
    resolver = BackendResolver(
        objects,
        allow_external_name=options.allow_external_name,
        overrides=options.backend_overrides,
        dns_pattern=options.dns_pattern,
    )
    index = MiddlewareIndex(objects, allow_cross_namespace=options.allow_cross_namespace)
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
        ext: ExternalAuth | None = None
        if sem.flavor is Flavor.NGINX:
            vhost = upstream_vhost(ing, diags.append)
            if vhost is not None:
                for host in {rule.host for rule in ing.rules} | {None}:
                    filters[host] = (*filters.get(host, ()), vhost)
            # `return <code> <url>;` comes before the ssl-redirect (rewrite_by_lua runs after
            # the rewrite module's directives) and before the rewrite and proxy directives.
            # An Ingress without rules gets none (createServers: "Redirect and rewrite can
            # affect the catch all behavior, skip for now").
            fixed = returns_of(ing, diags.append).redirect
            if fixed is not None:
                for host in {rule.host for rule in ing.rules}:
                    filters[host] = (fixed, *filters.get(host, ()))
            # nginx.tmpl's CORS block: its `if`s come before the location's `return` in the
            # rewrite phase, so a preflight is answered before any redirect (and before the
            # access phase's allow/deny and authentication).
            cors = cors_filters(ing, diags.append)
            if cors:
                for host in {rule.host for rule in ing.rules} | {None}:
                    filters[host] = (*cors, *filters.get(host, ()))
            # limit_req is nginx's preaccess phase: after the rewrite phase's answers above,
            # before the access phase's authentication below.
            limits = rate_limits(ing, diags.append)
            if limits:
                for host in {rule.host for rule in ing.rules} | {None}:
                    filters[host] = (*filters.get(host, ()), *limits)
            # auth_basic is nginx's access phase: after every rewrite-phase answer above.
            auth = basic_auth(ing, secrets, diags.append)
            if auth is not None:
                for host in {rule.host for rule in ing.rules} | {None}:
                    filters[host] = (*filters.get(host, ()), auth)
            # auth_request (auth-url): a subrequest, so a router field the proxy runs after
            # the filters; a location Parse denies gets a denying filter instead.
            asked = external_auth(ing, resolver, diags.append)
            if isinstance(asked, BasicAuth):
                for host in {rule.host for rule in ing.rules} | {None}:
                    filters[host] = (*filters.get(host, ()), asked)
            else:
                ext = asked
        router = router_annotations(ing, lambda _: None) if traefik else None  # said above
        chain = router_middlewares(ing, index, diags.append) if traefik else None
        out[ing.ref] = IngressPolicy(
            auth=ext,
            middlewares=chain.filters if chain is not None else (),
            middleware_names=chain.names if chain is not None else (),
            left_out=chain.error if chain is not None else None,
            priority=router.priority if router is not None else None,
            path_matcher=router.path_matcher if router is not None else None,
            entrypoints=eps,
            filters=MappingProxyType(filters),
            scheme=backend_scheme(ing.meta.annotations),
            # rewrite-target and use-regex change matching itself: only the nginx dialect.
            rewrite=rewrite_of(ing, diags.append) if sem.flavor is Flavor.NGINX else None,
            dialect_reason=(reasons or {}).get(ing.ref, f"--flavor {sem.flavor}"),
        )
        if sem.flavor is not Flavor.NGINX:
            ignored_outside_nginx(ing, str(sem.flavor), diags.append)
    if sem.flavor is Flavor.NGINX:
        _with_app_roots(ingresses, out, options, diags)
    return out


def _nginx_app_roots(
    ingresses: list[Ingress], options: CompileOptions, diags: list[Diagnostic]
) -> dict[str | None, tuple[Ingress, AppRoot]]:
    """host -> the Ingress whose app-root its server applies, and that app-root."""
    descending = semantics_of(options).names_descending
    ordered = sorted(ingresses, key=lambda i: age_key(i, descending))
    pairs: list[tuple[Ingress, AppRoot]] = []
    for ing in ordered:
        root = returns_of(ing, diags.append).app_root
        if root is not None:
            pairs.append((ing, root))
    return app_roots(pairs, diags.append)


def _with_app_roots(
    ingresses: list[Ingress],
    policies: dict[ObjectRef, IngressPolicy],
    options: CompileOptions,
    diags: list[Diagnostic],
) -> None:
    """ingress-nginx's app-root is a server's (nginx.tmpl writes its `if ($uri = /)` in the
    server block, before locations): every router of the host gets it, first."""
    roots = _nginx_app_roots(ingresses, options, diags)
    if not roots:
        return
    for ing in ingresses:
        policy = policies.get(ing.ref)
        if policy is None:
            continue
        filters = dict(policy.filters)
        for host in {rule.host for rule in ing.rules}:
            if host in roots:
                filters[host] = (roots[host][1], *filters.get(host, ()))
        policies[ing.ref] = replace(policy, filters=MappingProxyType(filters))


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
    point), each Ingress in its dialect. The result's diagnostics cover every compile once."""
    choices = choose_dialects(manifests, options.flavor)
    groups: dict[Flavor, list[Ingress]] = {}
    for ing in manifests.ingresses:
        groups.setdefault(choices[id(ing)].dialect, []).append(ing)
    reasons = {ing.ref: choices[id(ing)].reason for ing in manifests.ingresses}
    if len(groups) <= 1:
        dialect = next(
            iter(groups), Flavor.SPEC if options.flavor is Flavor.AUTO else options.flavor
        )
        return _compile_dialect(manifests, replace(options, flavor=dialect), certs, reasons)
    return _compile_mixed(manifests, options, certs, groups, reasons)


def _compile_mixed(
    manifests: Manifests,
    options: CompileOptions,
    certs: CertTable,
    groups: Mapping[Flavor, list[Ingress]],
    reasons: Mapping[ObjectRef, str],
) -> tuple[CompileResult, EntryPoints]:
    """Each dialect's Ingresses compiled apart, then one table per entry point: a host named
    by several dialects goes to the dialect of its oldest Ingress (in a cluster, two
    controllers would both claim it and DNS would pick one), the others are told so."""
    diags: list[Diagnostic] = []
    parts: list[tuple[Flavor, list[Ingress], CompileResult, EntryPoints]] = []
    for dialect in sorted(groups, key=DIALECTS.index):
        ings = groups[dialect]
        part = replace(manifests, ingresses=tuple(ings))
        result, eps = _compile_dialect(part, replace(options, flavor=dialect), certs, reasons)
        parts.append((dialect, ings, result, eps))
        diags.extend(result.diagnostics)
    ranks: list[dict[str | None, AgeKey]] = []
    for _, ings, _, _ in parts:
        oldest: dict[str | None, AgeKey] = {}
        for ing in ings:
            age = age_key(ing)
            for rule in ing.rules:
                if rule.host not in oldest or age < oldest[rule.host]:
                    oldest[rule.host] = age
        ranks.append(oldest)
    # The rules-less defaultBackend: the oldest Ingress's, whatever its dialect.
    defaults = [
        (age_key(ing), result.table.default)
        for (_, ings, result, _) in parts
        for ing in ings
        if result.table.default is not None and result.table.default.ingress == ing.ref
    ]
    default = min(defaults, key=lambda d: d[0])[1] if defaults else None
    web, lost = merge_tables(
        [(r.table, rk) for (_, _, r, _), rk in zip(parts, ranks, strict=True)], default
    )
    secure = None
    if any(eps.websecure is not None for *_, eps in parts):
        secure, _ = merge_tables(
            [
                (eps.table(r.table, True), rk)
                for (_, _, r, eps), rk in zip(parts, ranks, strict=True)
            ],
            default,
        )
    for loser, host, winner in lost:
        diags.extend(_dialect_conflict(parts[loser][0], parts[loser][1], host, parts[winner]))
    routes = sum(1 for _ in web.routes())
    if secure is not None:
        on_web = {id(r) for r in web.routes()}
        routes += sum(1 for r in secure.routes() if id(r) not in on_web)
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    return CompileResult(web, ordered, routes), EntryPoints(secure)


def _dialect_conflict(
    dialect: Flavor,
    ings: list[Ingress],
    host: str | None,
    winner: tuple[Flavor, list[Ingress], CompileResult, EntryPoints],
) -> list[Diagnostic]:
    named = [i for i in winner[1] if any(r.host == host for r in i.rules)]
    oldest = min(named, key=age_key).ref if named else None
    what = f'host "{host}"' if host is not None else "rules without a host (any host)"
    out: list[Diagnostic] = []
    for ing in ings:
        for rule in ing.rules:
            if rule.host != host:
                continue
            where = f"{rule.field}.host" if host is not None else rule.field
            msg = (
                f"{what} is also served in dialect {winner[0]} by {oldest}, an older Ingress: one"
                f" folder serves a host in one dialect, so this Ingress's rules for it (dialect"
                f" {dialect}) are ignored"
            )
            out.append(
                Diagnostic(
                    Severity.WARNING,
                    "dialect-conflict",
                    msg,
                    ing.meta.source_of(where),
                    ing.ref,
                    where,
                )
            )
    return out


def _compile_dialect(
    manifests: Manifests,
    options: CompileOptions,
    certs: CertTable,
    reasons: Mapping[ObjectRef, str],
) -> tuple[CompileResult, EntryPoints]:
    """Every Ingress of `manifests` in the one dialect `options` name."""
    diags: list[Diagnostic] = []
    served = select_ingresses(manifests, options, [])  # the engine reports exclusions
    refused = review_annotations(served, options, diags)
    if refused:
        # Not served at all, as ingress-nginx skips an Ingress whose annotations it refuses.
        served = [i for i in served if id(i) not in refused]
        kept = tuple(i for i in manifests.ingresses if id(i) not in refused)
        manifests = replace(manifests, ingresses=kept)
    policies = ingress_policies(served, options, certs.tls_hosts, diags, reasons, manifests)
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
    web_table = web.table
    if options.flavor is Flavor.NGINX:
        roots = _nginx_app_roots(served, options, [])  # ingress_policies said its warnings
        if roots:
            web_table, added = add_app_root_routers(web_table, roots, policies, EntryPoint.WEB)
            routes += added
            if secure is not None:
                secure, _ = add_app_root_routers(secure, roots, policies, EntryPoint.WEBSECURE)
        web_table, secure = _with_aliases(served, web_table, secure, diags)
        web_table, secure = _with_error_pages(served, manifests, options, web_table, secure, diags)
        web_table = host_catch_alls(web_table, served, policies, EntryPoint.WEB, options)
        if secure is not None:
            secure = host_catch_alls(secure, served, policies, EntryPoint.WEBSECURE, options)
    if options.flavor is Flavor.TRAEFIK:
        web_table = apply_service_annotations(web_table, manifests, diags.append)
        if secure is not None:
            secure = apply_service_annotations(secure, manifests, lambda _: None)
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    return CompileResult(web_table, ordered, routes), EntryPoints(secure)


def host_catch_alls(
    table: RouteTable,
    served: list[Ingress],
    policies: Mapping[ObjectRef, IngressPolicy],
    entrypoint: EntryPoint,
    options: CompileOptions,
) -> RouteTable:
    """ingress-nginx's catch-all location of each host: createServers gives every server a
    root location `/` built from the host's first Ingress (`locationApplyAnnotations(loc,
    anns)`), so a request no rule of the host matches still goes through that Ingress's
    annotations (its redirects, ssl-redirect...) before reaching the default backend (404).
    Here: a host default router running that Ingress's filters, then NotFound; only where the
    host has no default router of its own and those filters could answer something."""
    descending = semantics_of(options).names_descending
    first: dict[str, Ingress] = {}
    for ing in sorted(served, key=lambda i: age_key(i, descending)):
        for rule in ing.rules:
            if rule.host is not None:  # rules without a host are the default server's
                first.setdefault(rule.host, ing)
    exact = dict(table.exact_hosts)
    wildcard = dict(table.wildcard_hosts)
    changed = False
    for host, ing in first.items():
        key = host[2:] if host.startswith("*.") else host
        hosts = wildcard if host.startswith("*.") else exact
        current = hosts.get(key)
        policy = policies.get(ing.ref)
        if current is None or current.default is not None or policy is None:
            continue
        if (
            "" in current.prefix
            or "/" in current.strings
            or any(r.path == "/" for r in current.regex)
        ):
            continue  # a rule for "/" is the root location itself: nothing is left to catch
        if entrypoint not in policy.entrypoints:
            continue
        filters = tuple(
            f for f in policy.filters.get(host, ()) if not isinstance(f, SetUpstreamHost)
        )
        if not filters:
            continue  # nothing would answer before the 404: the table's own 404 is the same
        field_ = next(r.field for r in ing.rules if r.host == host)
        catch_all = Router(
            ingress=ing.ref,
            source=ing.meta.source_of(field_),
            field=field_,
            host=host,
            path=None,
            path_type=None,
            backend=Backend(
                ing.meta.namespace,
                "default-backend",
                "",
                (),
                error="the controller's default backend: 404 for every request",
            ),
            rule=rule_text(host, None, None),
            filters=(*filters, NotFound("the host's catch-all location")),
            entrypoints=policy.entrypoints,
            dialect="nginx",
            dialect_reason=policy.dialect_reason,
        )
        hosts[key] = replace(current, default=catch_all)
        changed = True
    if not changed:
        return table
    return replace(
        table,
        exact_hosts=MappingProxyType(exact),
        wildcard_hosts=MappingProxyType(wildcard),
    )


def _with_error_pages(
    served: list[Ingress],
    manifests: Manifests,
    options: CompileOptions,
    web: RouteTable,
    secure: RouteTable | None,
    diags: list[Diagnostic],
) -> tuple[RouteTable, RouteTable | None]:
    """ingress-nginx's default-backend and custom-http-errors (frontends/nginx/errors.py)."""
    resolver = BackendResolver(
        manifests,
        allow_external_name=options.allow_external_name,
        overrides=options.backend_overrides,
        dns_pattern=options.dns_pattern,
    )
    plans = error_plans(served, manifests, resolver, diags.append)
    web = apply_error_plans(web, plans)
    return web, None if secure is None else apply_error_plans(secure, plans)


def _with_aliases(
    served: list[Ingress], web: RouteTable, secure: RouteTable | None, diags: list[Diagnostic]
) -> tuple[RouteTable, RouteTable | None]:
    """ingress-nginx's host-level annotations: from-to-www-redirect servers, then server-alias
    (each alias serves its host's table)."""
    ordered = sorted(served, key=age_key)
    wanted = www_redirects(ordered, diags.append)
    if wanted:
        web, skipped = apply_www_redirects(web, wanted)
        if secure is not None:
            secure, _ = apply_www_redirects(secure, wanted)
        for ing, source, to in skipped:
            msg = (
                f'host "{source}" has rules of its own, so no redirect from it to "{to}" is made,'
                " as ingress-nginx skips it"
            )
            diags.append(annotation_diagnostic(ing, "redirect-skipped", msg, FROM_TO_WWW_REDIRECT))
    aliases = server_aliases(ordered, diags.append)
    if not aliases:
        return web, secure
    names = {host: names for host, (_, names) in aliases.items()}
    web, ignored = apply_aliases(web, names)
    if secure is not None:
        secure, _ = apply_aliases(secure, names)
    for host, alias in ignored:
        ing = aliases[host][0]
        why = "the host itself" if alias == host else "another host of these manifests"
        msg = f'alias "{alias}" of host "{host}" is {why}; ingress-nginx ignores it'
        diags.append(annotation_diagnostic(ing, "alias-ignored", msg, SERVER_ALIAS))
    return web, secure
