"""The ingress-nginx annotations this front-end honours (prefix nginx.ingress.kubernetes.io/),
and how it reads their values (Go's strconv.ParseBool for booleans, as ingress-nginx's parser)."""

from __future__ import annotations

from collections.abc import Callable

from ...manifests.model import Diagnostic, Ingress, Severity

__all__ = [
    "BACKEND_PROTOCOL",
    "FORCE_SSL_REDIRECT",
    "KEYS",
    "PREFIX",
    "SSL_REDIRECT",
    "annotation_diagnostic",
    "flag",
]

PREFIX = "nginx.ingress.kubernetes.io/"
SSL_REDIRECT = PREFIX + "ssl-redirect"
FORCE_SSL_REDIRECT = PREFIX + "force-ssl-redirect"
BACKEND_PROTOCOL = PREFIX + "backend-protocol"

KEYS: frozenset[str] = frozenset(
    {
        SSL_REDIRECT,
        FORCE_SSL_REDIRECT,
        BACKEND_PROTOCOL,
        # nginx/rewrite.py (the nginx dialect only)
        PREFIX + "rewrite-target",
        PREFIX + "use-regex",
        PREFIX + "x-forwarded-prefix",
        # nginx/redirects.py
        PREFIX + "preserve-trailing-slash",
        # nginx/hosts.py (the nginx dialect only)
        PREFIX + "server-alias",
        PREFIX + "upstream-vhost",
        PREFIX + "from-to-www-redirect",
        # nginx/returns.py (the nginx dialect only)
        PREFIX + "permanent-redirect",
        PREFIX + "permanent-redirect-code",
        PREFIX + "temporal-redirect",
        PREFIX + "temporal-redirect-code",
        PREFIX + "relative-redirects",
        PREFIX + "app-root",
        # nginx/cors.py (the nginx dialect only)
        PREFIX + "enable-cors",
        PREFIX + "cors-allow-origin",
        PREFIX + "cors-allow-headers",
        PREFIX + "cors-allow-methods",
        PREFIX + "cors-allow-credentials",
        PREFIX + "cors-expose-headers",
        PREFIX + "cors-max-age",
        # nginx/auth.py (the nginx dialect only)
        PREFIX + "auth-type",
        PREFIX + "auth-secret",
        PREFIX + "auth-secret-type",
        PREFIX + "auth-realm",
        # nginx/errors.py (the nginx dialect only)
        PREFIX + "default-backend",
        PREFIX + "custom-http-errors",
    }
)

# Go's strconv.ParseBool, which ingress-nginx uses for boolean annotations.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def annotation_diagnostic(
    ing: Ingress, code: str, message: str, annotation: str, severity: Severity = Severity.WARNING
) -> Diagnostic:
    """A diagnostic on one annotation of `ing`, at the annotation's line."""
    where = f"metadata.annotations.{annotation}"
    return Diagnostic(severity, code, message, ing.meta.source_of(where), ing.ref, where)


def flag(ing: Ingress, name: str, default: bool, report: Callable[[Diagnostic], None]) -> bool:
    """A boolean annotation; a value ParseBool refuses is reported and the default applies."""
    raw = ing.meta.annotations.get(name)
    if raw is None:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    msg = f'"{raw}" is not a boolean (true or false); the default ({str(default).lower()}) applies'
    report(annotation_diagnostic(ing, "invalid-annotation", msg, name))
    return default
