"""The ingress-nginx annotations this front-end honours (prefix nginx.ingress.kubernetes.io/),
and how it reads their values (Go's strconv.ParseBool for booleans, as ingress-nginx's parser)."""

from __future__ import annotations

from collections.abc import Callable

from ...manifests.model import Diagnostic, Ingress, Severity
from ..values import parse_bool

__all__ = [
    "BACKEND_PROTOCOL",
    "DIALECT_ONLY",
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

# ingress-nginx's behaviour beyond the Ingress spec: these take effect in the nginx dialect
# only (nginx/rewrite.ignored_outside_nginx says so of an Ingress of another dialect).
DIALECT_ONLY: tuple[str, ...] = tuple(
    PREFIX + name
    for name in (
        # nginx/rewrite.py
        "rewrite-target",
        "use-regex",
        "x-forwarded-prefix",
        # nginx/hosts.py
        "server-alias",
        "upstream-vhost",
        "from-to-www-redirect",
        # nginx/returns.py
        "permanent-redirect",
        "permanent-redirect-code",
        "temporal-redirect",
        "temporal-redirect-code",
        "relative-redirects",
        "app-root",
        # nginx/errors.py
        "default-backend",
        "custom-http-errors",
        # nginx/cors.py
        "enable-cors",
        "cors-allow-origin",
        "cors-allow-headers",
        "cors-allow-methods",
        "cors-allow-credentials",
        "cors-expose-headers",
        "cors-max-age",
        # nginx/limits.py
        "limit-rps",
        "limit-rpm",
        "limit-burst-multiplier",
        "limit-allowlist",
        "limit-whitelist",
        # nginx/extauth.py
        "auth-url",
        "auth-method",
        "auth-response-headers",
        "auth-request-redirect",
        "auth-signin",
        "auth-signin-redirect-param",
        # nginx/auth.py
        "auth-type",
        "auth-secret",
        "auth-secret-type",
        "auth-realm",
    )
)

# Every key this front-end honours: in every dialect the redirects (nginx/redirects.py) and
# the backend protocol, and the nginx dialect's own.
KEYS: frozenset[str] = frozenset(
    {
        SSL_REDIRECT,
        FORCE_SSL_REDIRECT,
        BACKEND_PROTOCOL,
        PREFIX + "preserve-trailing-slash",
        *DIALECT_ONLY,
    }
)


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
    value = parse_bool(raw)
    if value is not None:
        return value
    msg = f'"{raw}" is not a boolean (true or false); the default ({str(default).lower()}) applies'
    report(annotation_diagnostic(ing, "invalid-annotation", msg, name))
    return default
