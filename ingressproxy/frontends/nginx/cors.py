"""ingress-nginx's CORS annotations (enable-cors, cors-allow-*), as IR filters.

As internal/ingress/annotations/cors Parse and nginx.tmpl's CORS block build them: with
`enable-cors: "true"`, a preflight (OPTIONS) from an allowed Origin is answered 204 with the
Access-Control-* headers, and every other answer to an allowed Origin carries them. Values
that fail ingress-nginx's validation fall back to its defaults (an invalid origin list to
"*", as Parse does), each with a warning; an origin entry that does not parse is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ...ir.filters import CorsHeaders, CorsPolicy, CorsPreflight, Filter
from ...manifests.model import Diagnostic, Ingress
from .annotations import PREFIX, annotation_diagnostic, flag

__all__ = ["CORS_KEYS", "cors_filters", "cors_policy", "origin_pattern"]

ENABLE = PREFIX + "enable-cors"
ORIGIN = PREFIX + "cors-allow-origin"
HEADERS = PREFIX + "cors-allow-headers"
METHODS = PREFIX + "cors-allow-methods"
CREDENTIALS = PREFIX + "cors-allow-credentials"
EXPOSE = PREFIX + "cors-expose-headers"
MAX_AGE = PREFIX + "cors-max-age"
CORS_KEYS = frozenset({ENABLE, ORIGIN, HEADERS, METHODS, CREDENTIALS, EXPOSE, MAX_AGE})

# cors/main.go's validators and Parse's own checks.
_ORIGIN_LIST = re.compile(r"^((((([a-z]+://)?(\*\.)?[A-Za-z0-9\-.]*(:\d+)?,?)|null)+)|\*)?$")
_ORIGIN = re.compile(r"^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$")
_METHODS = re.compile(r"^([A-Za-z]+,?\s?)+$")
_EXPOSE = re.compile(r"^(([A-Za-z0-9\-\_]+|\*),?\s?)+$")
_HEADERS = re.compile(r"^[A-Za-z0-9-_, ]*$")  # parser.HeadersVariable


def origin_pattern(origins: list[str]) -> str:
    """template.go buildCorsOriginRegex/buildOriginRegex: each origin quoted, its first `*`
    one label of [A-Za-z0-9-]; "" when any origin is allowed."""
    if origins == ["*"]:
        return ""
    parts = []
    for origin in origins:
        quoted = re.escape(origin.strip()).replace(r"\*", r"[A-Za-z0-9\-]+", 1)
        parts.append(f"({quoted})")
    return "|".join(parts)


def cors_policy(ing: Ingress, report: Callable[[Diagnostic], None]) -> CorsPolicy | None:
    """The CORS an Ingress asks for, None when enable-cors is not true."""
    if not flag(ing, ENABLE, False, report):
        return None
    notes = ing.meta.annotations
    defaults = CorsPolicy()

    def fallback(key: str, raw: str, default: str) -> None:
        msg = f'"{raw}" is not a valid value (ingress-nginx falls back to {default}); ignored'
        report(annotation_diagnostic(ing, "invalid-annotation", msg, key))

    origins: list[str] = ["*"]
    raw = notes.get(ORIGIN)
    if raw is not None:
        if not _ORIGIN_LIST.match(raw.replace(" ", "")):
            fallback(ORIGIN, raw, '"*", every origin')
        else:
            origins = []
            for origin in (o.strip() for o in raw.split(",")):
                if not origin:
                    continue
                if origin == "*":
                    origins = ["*"]
                    break
                if not _ORIGIN.match(origin):
                    msg = f'origin "{origin}" does not parse (scheme://host[:port]); skipped'
                    report(annotation_diagnostic(ing, "invalid-annotation", msg, ORIGIN))
                    continue
                origins.append(origin)
    headers = notes.get(HEADERS, defaults.allow_headers)
    if not _HEADERS.match(headers):
        fallback(HEADERS, headers, "the default list")
        headers = defaults.allow_headers
    methods = notes.get(METHODS, defaults.allow_methods)
    if not _METHODS.match(methods):
        fallback(METHODS, methods, "the default list")
        methods = defaults.allow_methods
    expose = notes.get(EXPOSE, "")
    if expose and not _EXPOSE.match(expose):
        fallback(EXPOSE, expose, "none")
        expose = ""
    max_age = defaults.max_age
    raw_age = notes.get(MAX_AGE)
    if raw_age is not None:
        try:
            max_age = int(raw_age)
        except ValueError:
            fallback(MAX_AGE, raw_age, str(defaults.max_age))
    return CorsPolicy(
        pattern=origin_pattern(origins) if origins else "(?!)",
        allow_methods=methods,
        allow_headers=headers,
        expose_headers=expose,
        allow_credentials=flag(ing, CREDENTIALS, True, report),
        max_age=max_age,
    )


def cors_filters(ing: Ingress, report: Callable[[Diagnostic], None]) -> tuple[Filter, ...]:
    policy = cors_policy(ing, report)
    if policy is None:
        return ()
    return (CorsPreflight(policy), CorsHeaders(policy))
