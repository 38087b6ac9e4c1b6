"""ingress-nginx's HTTP -> HTTPS redirect (ssl-redirect, force-ssl-redirect) as IR filters.

nginx.tmpl: "redirect to HTTPS can be achieved forcing the redirect or having a SSL
Certificate configured for the server"; the status is `http-redirect-code`'s default, 308,
which keeps the method and body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...ir.filters import Filter, RedirectScheme
from ...manifests.model import Diagnostic, Ingress, ObjectRef
from .annotations import FORCE_SSL_REDIRECT, PREFIX, SSL_REDIRECT, flag

__all__ = [
    "NO_TLS_REDIRECT_LOCATIONS",
    "PRESERVE_TRAILING_SLASH",
    "SSL_REDIRECT_STATUS",
    "RedirectKey",
    "location_filters",
    "ssl_redirects",
]

SSL_REDIRECT_STATUS = 308
PRESERVE_TRAILING_SLASH = PREFIX + "preserve-trailing-slash"
# The ConfigMap's no-tls-redirect-locations default: a location whose path starts with one of
# these is never redirected (template.go isLocationInLocationList), so ACME HTTP-01
# challenges of cert-manager's own Ingress are answered over plain HTTP.
NO_TLS_REDIRECT_LOCATIONS = ("/.well-known/acme-challenge",)

RedirectKey = tuple[ObjectRef, str | None]  # an Ingress and one of its rule hosts (None: any)


def ssl_redirects(
    ing: Ingress,
    tls_hosts: frozenset[str],
    implicit: bool,
    report: Callable[[Diagnostic], None],
) -> Mapping[RedirectKey, RedirectScheme]:
    """The redirect filter for each (Ingress, host) whose plain-HTTP requests go to HTTPS.

    ingress-nginx redirects when force-ssl-redirect is true, or when ssl-redirect is (its
    default: true) and the host has a TLS section. `implicit` is that default; it is true only
    in the nginx dialect, since neither the Ingress spec nor Traefik redirect on their own.
    """
    force = flag(ing, FORCE_SSL_REDIRECT, False, report)
    ssl = flag(ing, SSL_REDIRECT, implicit, report)
    if not force and not ssl:
        return {}
    strip = not flag(ing, PRESERVE_TRAILING_SLASH, False, report)
    hosts: list[str | None] = [rule.host for rule in ing.rules] or [None]
    out: dict[RedirectKey, RedirectScheme] = {}
    for host in hosts:
        if force:
            out[(ing.ref, host)] = RedirectScheme(SSL_REDIRECT_STATUS, FORCE_SSL_REDIRECT, strip)
        elif host is not None and host in tls_hosts:
            reason = f"{SSL_REDIRECT} (TLS host)"
            out[(ing.ref, host)] = RedirectScheme(SSL_REDIRECT_STATUS, reason, strip)
    return out


def location_filters(path: str | None, filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """A location's filters: an ssl-redirect dropped where no-tls-redirect-locations says."""
    if path is None or not path.startswith(NO_TLS_REDIRECT_LOCATIONS):
        return filters
    return tuple(f for f in filters if not isinstance(f, RedirectScheme))
