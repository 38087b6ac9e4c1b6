"""ingress-nginx's server-alias and upstream-vhost annotations.

server-alias (internal/ingress/annotations/alias, controller.go createServers): extra names
for the servers of the Ingress's hosts; the first Ingress (in ingress-nginx's order) with a
non-empty list sets a server's aliases, later ones are skipped with a warning; an alias that
is the host itself or another server's name is ignored. upstream-vhost (annotations/
upstreamvhost, nginx.tmpl `proxy_set_header Host`): the Host sent upstream; X-Forwarded-Host
stays the client's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType

from ...ir.filters import RedirectHost, SetUpstreamHost
from ...ir.model import Backend, Router
from ...ir.table import HostTable, RouteTable
from ...manifests.model import Diagnostic, Ingress
from .annotations import PREFIX, annotation_diagnostic, flag

__all__ = [
    "FROM_TO_WWW_REDIRECT",
    "SERVER_ALIAS",
    "UPSTREAM_VHOST",
    "apply_aliases",
    "apply_www_redirects",
    "server_aliases",
    "upstream_vhost",
    "www_redirects",
]

SERVER_ALIAS = PREFIX + "server-alias"
UPSTREAM_VHOST = PREFIX + "upstream-vhost"
FROM_TO_WWW_REDIRECT = PREFIX + "from-to-www-redirect"

# A server name as nginx's server_name takes it: a DNS name, optionally with a leading "*.".
_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def upstream_vhost(ing: Ingress, report: Callable[[Diagnostic], None]) -> SetUpstreamHost | None:
    raw = ing.meta.annotations.get(UPSTREAM_VHOST)
    if raw is None:
        return None
    value = raw.strip()
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    if not _NAME.match(host.lower()):
        msg = f'"{raw}" is not a host name; ingress-nginx ignores it and the client\'s Host is sent'
        report(annotation_diagnostic(ing, "invalid-annotation", msg, UPSTREAM_VHOST))
        return None
    return SetUpstreamHost(value)


def server_aliases(
    ingresses: Iterable[Ingress], report: Callable[[Diagnostic], None]
) -> dict[str, tuple[Ingress, tuple[str, ...]]]:
    """host -> the Ingress that set its aliases and the aliases, from `ingresses` in
    ingress-nginx's order (oldest first)."""
    out: dict[str, tuple[Ingress, tuple[str, ...]]] = {}
    for ing in ingresses:
        raw = ing.meta.annotations.get(SERVER_ALIAS)
        if raw is None:
            continue
        names: list[str] = []
        for part in raw.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if not _NAME.match(name):
                msg = f'"{part.strip()}" is not a server name; this alias is ignored'
                report(annotation_diagnostic(ing, "invalid-annotation", msg, SERVER_ALIAS))
                continue
            names.append(name)
        for rule in ing.rules:
            if rule.host is None or not names:
                continue
            if rule.host in out:
                msg = (
                    f'aliases are already configured for host "{rule.host}" by an older Ingress;'
                    " these are skipped, as ingress-nginx does"
                )
                report(annotation_diagnostic(ing, "alias-ignored", msg, SERVER_ALIAS))
                continue
            out[rule.host] = (ing, tuple(dict.fromkeys(names)))
    return out


def apply_aliases(
    table: RouteTable, aliases: Mapping[str, tuple[str, ...]]
) -> tuple[RouteTable, list[tuple[str, str]]]:
    """`table` with each alias serving its host's table; (host, alias) for every alias left
    out because it is the host itself or another host of the table."""
    exact: dict[str, HostTable] = dict(table.exact_hosts)
    wildcard: dict[str, HostTable] = dict(table.wildcard_hosts)
    names = set(exact) | {"*." + s for s in wildcard}
    ignored: list[tuple[str, str]] = []
    for host, alias_list in aliases.items():
        served = exact.get(host) if not host.startswith("*.") else wildcard.get(host[2:])
        if served is None:
            continue
        for alias in alias_list:
            if alias == host or alias in names:
                ignored.append((host, alias))
                continue
            names.add(alias)
            if alias.startswith("*."):
                wildcard[alias[2:]] = served
            else:
                exact[alias] = served
    if not aliases:
        return table, ignored
    return (
        replace(
            table,
            exact_hosts=MappingProxyType(dict(sorted(exact.items()))),
            wildcard_hosts=MappingProxyType(dict(sorted(wildcard.items()))),
        ),
        ignored,
    )


def www_redirects(
    ingresses: Iterable[Ingress], report: Callable[[Diagnostic], None]
) -> dict[str, Ingress]:
    """host -> the Ingress that asks from-to-www-redirect for it (any location of the server
    sets it, controller.go); wildcard hosts have no www twin."""
    out: dict[str, Ingress] = {}
    for ing in ingresses:
        if not flag(ing, FROM_TO_WWW_REDIRECT, False, report):
            continue
        for rule in ing.rules:
            if rule.host is not None and not rule.host.startswith("*."):
                out.setdefault(rule.host, ing)
    return out


def apply_www_redirects(
    table: RouteTable, wanted: Mapping[str, Ingress]
) -> tuple[RouteTable, list[tuple[Ingress, str, str]]]:
    """`table` with a redirect server for each www twin (pkg/util/ingress BuildRedirects:
    www.foo -> foo and foo -> www.foo), skipped when the twin is a host of its own; returns
    (Ingress, from, to) for each one skipped."""
    exact = dict(table.exact_hosts)
    skipped: list[tuple[Ingress, str, str]] = []
    for to, ing in wanted.items():
        if to not in exact:
            continue
        source = to[4:] if to.startswith("www.") else f"www.{to}"
        if source in table.exact_hosts:
            skipped.append((ing, source, to))
            continue
        where = f"metadata.annotations.{FROM_TO_WWW_REDIRECT}"
        router = Router(
            ingress=ing.ref,
            source=ing.meta.source_of(where),
            field=where,
            host=source,
            path=None,
            path_type=None,
            backend=Backend(ing.meta.namespace, f"redirect to {to}", "", ()),
            rule=f"Host(`{source}`)",
            filters=(RedirectHost(to),),
            dialect="nginx",
        )
        exact[source] = HostTable(default=router)
    return replace(table, exact_hosts=MappingProxyType(dict(sorted(exact.items())))), skipped
