"""ingress-nginx's external authentication (auth-url and its companions), as IR.

As internal/ingress/annotations/authreq Parse and nginx.tmpl build it (ir.model.ExternalAuth
says what the proxy sends and how it reads the answer). The auth URL's host is a Service of
the folder when it names one (`<service>.<namespace>.svc[.cluster.local]`, or
`<service>.<namespace>`): its endpoints (or a --backend override) are used, as cluster DNS
would lead there; any other host is connected to as written. What Parse refuses once
auth-url is given (a URL that does not parse, an invalid auth-method, an invalid
auth-response-headers list) denies the location: 503 for every request (fail closed).
auth-cache-key/-duration (nginx's cache of answers) is accepted and not cached here;
auth-proxy-set-headers (a ConfigMap) is not read yet: a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from ...ir.filters import BasicAuth
from ...ir.model import Backend, Endpoint, ExternalAuth
from ...manifests.model import (
    Diagnostic,
    Ingress,
    IngressServiceBackend,
    ServiceBackendPort,
    Severity,
)
from ..backends import BackendResolver
from .annotations import PREFIX, annotation_diagnostic

__all__ = ["EXTAUTH_KEYS", "external_auth"]

URL = PREFIX + "auth-url"
METHOD = PREFIX + "auth-method"
RESPONSE_HEADERS = PREFIX + "auth-response-headers"
REQUEST_REDIRECT = PREFIX + "auth-request-redirect"
SIGNIN = PREFIX + "auth-signin"
SIGNIN_PARAM = PREFIX + "auth-signin-redirect-param"
CACHE_KEY = PREFIX + "auth-cache-key"
CACHE_DURATION = PREFIX + "auth-cache-duration"
PROXY_SET_HEADERS = PREFIX + "auth-proxy-set-headers"
EXTAUTH_KEYS = frozenset(
    {
        URL,
        METHOD,
        RESPONSE_HEADERS,
        REQUEST_REDIRECT,
        SIGNIN,
        SIGNIN_PARAM,
        CACHE_KEY,
        CACHE_DURATION,
        PROXY_SET_HEADERS,
    }
)

# authreq's methods (methodsRegex) and ValidHeader.
_METHODS = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE)$")
_HEADER = re.compile(r"^[a-zA-Z\d\-_]+$")
# A Service's cluster DNS name: <service>.<namespace>[.svc[.cluster.local]].
_SERVICE_HOST = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?\.?$")


def external_auth(
    ing: Ingress, resolver: BackendResolver, report: Callable[[Diagnostic], None]
) -> ExternalAuth | BasicAuth | None:
    """The external auth of `ing`'s locations; a denying BasicAuth (503) when Parse would
    deny the location; None without auth-url."""
    notes = ing.meta.annotations
    url = notes.get(URL)
    if url is None:
        return None

    def denied(key: str, why: str) -> BasicAuth:
        msg = f"{why}: ingress-nginx denies the location, every request gets 503"
        report(annotation_diagnostic(ing, "auth-denied", msg, key, Severity.ERROR))
        return BasicAuth({}, "", denied=why)

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return denied(URL, f'could not parse auth-url "{url}" (an http or https URL)')
    method = notes.get(METHOD)
    if method is not None and not _METHODS.match(method):
        return denied(METHOD, f'invalid HTTP method "{method}"')
    headers: list[str] = []
    for header in (h.strip() for h in notes.get(RESPONSE_HEADERS, "").split(",")):
        if header and not _HEADER.match(header):
            return denied(RESPONSE_HEADERS, "invalid headers list")
        if header:
            headers.append(header)
    if PROXY_SET_HEADERS in notes:
        msg = "the ConfigMap of headers for the auth request is not read yet: none is added"
        report(annotation_diagnostic(ing, "unsupported-annotation", msg, PROXY_SET_HEADERS))
    for key in (CACHE_KEY, CACHE_DURATION):
        if key in notes:
            msg = "accepted: answers of the auth service are not cached here, each request asks"
            report(annotation_diagnostic(ing, "annotation-no-effect", msg, key, Severity.INFO))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    backend = _service_backend(host, port, resolver) or Backend(
        ing.meta.namespace, host, str(port), (Endpoint(host, port, parts.scheme),)
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ExternalAuth(
        backend=backend,
        target=target,
        host=parts.netloc.rpartition("@")[2],
        method=method,
        response_headers=tuple(headers),
        request_redirect=notes.get(REQUEST_REDIRECT) or None,
        signin=notes.get(SIGNIN) or None,
        signin_param=notes.get(SIGNIN_PARAM) or "rd",
        url=url,
    )


def _service_backend(host: str, port: int, resolver: BackendResolver) -> Backend | None:
    found = _SERVICE_HOST.match(host)
    if found is None:
        return None
    name, namespace = found.groups()
    ref = IngressServiceBackend(name, ServiceBackendPort(number=port))
    resolved = resolver.resolve(namespace, ref).backend
    return resolved if resolved.endpoints else None
