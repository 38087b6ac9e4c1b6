"""The filters of the routing IR: small frozen values, each with one pure method, run in order.

Flow: a front-end attaches filters to a router (ir.model.Router.filters); the proxy runs a
router's request-phase filters after matching and before forwarding, and its response-phase
filters on the upstream's response head before it goes to the client (proxy.app). A
request filter answers the request itself (a redirect, a refusal) or edits what goes
upstream; a response filter edits the response head. None does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar
from urllib.parse import quote

from .limits import zone
from .passwords import verify
from .regex import compiled

__all__ = [
    "FRAMING_FIELDS",
    "RESPONSE_KINDS",
    "AddPrefix",
    "Answer",
    "AppRoot",
    "BasicAuth",
    "BodyLimit",
    "CorsHeaders",
    "CorsPolicy",
    "CorsPreflight",
    "DefaultBackendHeaders",
    "ErrorContext",
    "Filter",
    "FilterRequest",
    "FilterResponse",
    "HeaderEdit",
    "NotFound",
    "Phase",
    "RateLimit",
    "RedirectHost",
    "RedirectScheme",
    "RedirectURL",
    "ReplacePath",
    "RequestFilter",
    "RequestHeaders",
    "ResponseFilter",
    "ResponseHeaders",
    "RewriteTarget",
    "SetUpstreamHost",
    "SourceRange",
    "StripPrefix",
    "https_url",
]


class Phase(StrEnum):
    REQUEST = "request"  # before the upstream is contacted
    RESPONSE = "response"  # on the upstream's response head


@dataclass(slots=True)
class FilterRequest:
    """One request as the filters see it, made only for a router that has filters.

    What arrived (method, listener scheme, host, the target as received) is for reading;
    `path`, `query` and `headers` are what goes upstream, and a filter may change them: the
    next filter sees the change, as in nginx's rewrite phase and Traefik's middleware chain.
    """

    method: str
    scheme: str  # "http" or "https": the listener it arrived on
    host: str  # normalized Host (lower case, no port)
    target: str  # the request target as received (path and query)
    https_port: int | None  # the TLS listener's port, None when there is none
    path: str = "/"  # the canonical path to forward (percent-encoded where it must be)
    query: str = ""  # the query string to forward, without "?"
    # The upstream request's header fields (lower-case names, X-Forwarded-* already set).
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    port: int | None = None  # the port of the listener it arrived on
    client: str | None = None  # the client's address (after --trusted-proxies), no port
    # The request body limit in bytes for this request (None: none); BodyLimit sets it, the
    # proxy enforces it while the body streams.
    max_body_size: int | None = None

    def set_header(self, name: str, value: str) -> None:
        """Replace every field `name` (case-insensitive) with one field of `value`."""
        key = name.lower().encode("latin-1")
        self.headers[:] = [(k, v) for k, v in self.headers if k != key]
        self.headers.append((key, value.encode("latin-1")))


@dataclass(slots=True)
class FilterResponse:
    """A response head as the response filters see it: `headers` (lower-case names) go to
    the client as the filters leave them. `request_headers` and `method` are the request's,
    for reading (CORS answers depend on its Origin)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    request_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    method: str = "GET"


@dataclass(frozen=True, slots=True)
class Answer:
    """A filter's own response: the request goes no further."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""


# A host we put in a Location header: a DNS name or IP literal, nothing that could end the
# authority (a Host header is client input).
_SAFE_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)$")


def https_url(host: str, https_port: int, target: str) -> str:
    """Where a redirect to the TLS listener points: the request's host (without its port),
    the HTTPS port unless it is 443, and the request target as received."""
    port = "" if https_port == 443 else f":{https_port}"
    return f"https://{host}{port}{target}"


@dataclass(frozen=True, slots=True)
class RedirectScheme:
    """Redirect a plain-HTTP request to the TLS listener (ingress-nginx ssl-redirect and
    force-ssl-redirect; Traefik's redirectScheme). A request already on HTTPS passes, as in
    Traefik's RedirectScheme, so one router can serve both listeners."""

    phase: ClassVar[Phase] = Phase.REQUEST
    # None: Traefik's permanent RedirectScheme, 301 for GET and 308 for every other method
    # (so the method and body are kept).
    status: int | None = 308
    # What asked for it, for tools: e.g. the annotation and its value.
    reason: str = ""
    # ingress-nginx drops one trailing "/" of the request URI unless preserve-trailing-slash
    # (lua_ingress.lua: `/` itself becomes "https://host"); Traefik keeps the target as it is.
    strip_trailing_slash: bool = False
    # With status None: Traefik's permanent redirect (301 for GET, else 308) or, False, its
    # temporary one (302 for GET, else 307), as redirect.go's moveHandler picks them.
    permanent: bool = True
    # Traefik's redirectScheme `port`: the Location's port ("443" or none: no port); None:
    # the TLS listener's port.
    port: str | None = None

    def on_request(self, req: FilterRequest) -> Answer | None:
        if req.scheme == "https" or req.https_port is None or not _SAFE_HOST.match(req.host):
            return None
        status = self.status
        if status is None:
            get = req.method == "GET"
            status = (301 if get else 308) if self.permanent else (302 if get else 307)
        target = req.target
        if self.strip_trailing_slash and target.endswith("/"):
            target = target[:-1]
        port = req.https_port if self.port is None else int(self.port or 443)
        location = https_url(req.host, port, target)
        return Answer(status, (("location", location),), f"{status} redirect to {location}\n")


# $1 .. $9 (and ${1}) in an nginx rewrite replacement: the regex's captures.
_CAPTURE = re.compile(r"\$(?:(\d)|\{(\d)\})")
# What may stand in a path we send upstream as it is; anything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class RewriteTarget:
    """ingress-nginx's rewrite-target: nginx.tmpl writes `rewrite "(?i)<path>" <target>
    break;` in the location, so the whole path is replaced by `target` with $1..$9 taken from
    the location's regex, and the query string is kept (nginx appends the original arguments
    when the replacement has none of its own). With x-forwarded-prefix set, the upstream also
    gets X-Forwarded-Prefix, only when a rewrite happens (buildProxyPass)."""

    phase: ClassVar[Phase] = Phase.REQUEST
    pattern: str  # the location's path, a regex
    target: str
    x_forwarded_prefix: str | None = None

    def on_request(self, req: FilterRequest) -> Answer | None:
        # nginx's rewrite searches (it is not anchored), case-insensitively ("(?i)").
        found = compiled(self.pattern).search(req.path)
        if found is None:
            return None
        groups = (found.group(0), *found.groups())

        def capture(m: re.Match[str]) -> str:
            n = int(m.group(1) or m.group(2))
            return (groups[n] or "") if n < len(groups) else ""

        req.path = quote(_CAPTURE.sub(capture, self.target), safe=_PATH_SAFE)
        if self.x_forwarded_prefix is not None:
            req.set_header("x-forwarded-prefix", self.x_forwarded_prefix)
        return None


@dataclass(frozen=True, slots=True)
class SetUpstreamHost:
    """The Host header sent upstream (ingress-nginx's upstream-vhost); X-Forwarded-Host keeps
    the client's, which the proxy set before the filters ran."""

    phase: ClassVar[Phase] = Phase.REQUEST
    host: str

    def on_request(self, req: FilterRequest) -> Answer | None:
        req.set_header("host", self.host)
        return None


@dataclass(frozen=True, slots=True)
class RedirectHost:
    """Redirect every request to another host, same scheme and listener port, the request URI
    without one trailing "/" (ingress-nginx's from-to-www-redirect server, whose Location
    ngx_srv_redirect.lua writes as scheme://host:port/uri)."""

    phase: ClassVar[Phase] = Phase.REQUEST
    host: str
    status: int = 308

    def on_request(self, req: FilterRequest) -> Answer | None:
        target = req.target[:-1] if req.target.endswith("/") else req.target
        port = f":{req.port}" if req.port is not None else ""
        location = f"{req.scheme}://{self.host}{port}{target}"
        return Answer(
            self.status, (("location", location),), f"{self.status} redirect to {location}\n"
        )


# The statuses for which nginx's `return <code> <text>` makes <text> the Location header
# (ngx_http_send_response); for any other code the text is the response body.
_LOCATION_STATUSES = frozenset({301, 302, 303, 307, 308})
# A Host header value we copy into a Location as it is (nginx's $http_host): a name or IP
# literal and an optional port, nothing that could end the authority.
_SAFE_HTTP_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*)(:[0-9]*)?$")


@dataclass(frozen=True, slots=True)
class RedirectURL:
    """Answer with a fixed redirect instead of forwarding (ingress-nginx's permanent-redirect
    and temporal-redirect: nginx.tmpl writes `return <code> <url>;` in the location).

    As nginx does it: for 301, 302, 303, 307 and 308 the URL is the Location; a URL starting
    with "/" is made absolute with the request's scheme and host, without a port (ingress-nginx
    sets `port_in_redirect off`), unless `relative` (relative-redirects: `absolute_redirect
    off`). For the other codes (300, 304, 305, 306) nginx sends the URL as the body and no
    Location. The request's query string is not appended."""

    phase: ClassVar[Phase] = Phase.REQUEST
    status: int
    url: str
    relative: bool = False
    # What asked for it, for tools: the annotation.
    reason: str = ""

    def on_request(self, req: FilterRequest) -> Answer | None:
        status = self.status
        if status not in _LOCATION_STATUSES:
            return Answer(status, (), "" if status == 304 else self.url)
        location = self.url
        if location.startswith("/") and not self.relative and _SAFE_HOST.match(req.host):
            location = f"{req.scheme}://{req.host}{location}"
        return Answer(status, (("location", location),), f"{status} redirect to {location}\n")


@dataclass(frozen=True, slots=True)
class AppRoot:
    """ingress-nginx's app-root: a request for exactly "/" gets a 302 to the application's
    root. nginx.tmpl writes it in the server block, before any location is chosen: `if ($uri
    = /) { return 302 $scheme://$http_host<root>; }`, so the Location carries the Host header
    as the client sent it (port included) and drops the query string."""

    phase: ClassVar[Phase] = Phase.REQUEST
    root: str

    def on_request(self, req: FilterRequest) -> Answer | None:
        if req.path != "/":
            return None
        # $http_host: the Host header as received (this filter runs first, before any
        # filter may change the Host that goes upstream).
        raw = next((v for k, v in req.headers if k == b"host"), b"").decode("latin-1")
        host = raw if _SAFE_HTTP_HOST.match(raw) else req.host
        location = f"{req.scheme}://{host}{self.root}"
        return Answer(302, (("location", location),), f"302 redirect to {location}\n")


# Fields no header filter may touch: the proxy owns the message's framing and hop-by-hop
# fields, and a filter that changed them could desynchronise client and upstream.
FRAMING_FIELDS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
_FRAMING = frozenset(n.encode("latin-1") for n in FRAMING_FIELDS)


def _encoded(pairs: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    fields = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in pairs]
    return [(k, v) for k, v in fields if k not in _FRAMING]


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """Header fields to set (replace every field of the name), add (append one more) and
    remove, applied in that order (Gateway API's HTTPHeaderFilter; Traefik's headers
    middleware sets, and removes where the value is empty)."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def apply(self, headers: list[tuple[bytes, bytes]]) -> None:
        # Framing and hop-by-hop fields are the proxy's (front-ends report edits of them).
        if self.set:
            fields = _encoded(self.set)
            names = {k for k, _ in fields}
            headers[:] = [(k, v) for k, v in headers if k not in names]
            headers += fields
        if self.add:
            headers += _encoded(self.add)
        if self.remove:
            gone = {n.lower().encode("latin-1") for n in self.remove} - _FRAMING
            headers[:] = [(k, v) for k, v in headers if k not in gone]

    def framing(self) -> list[str]:
        """The names this edit would touch that the proxy keeps for itself."""
        names = [n for n, _ in (*self.set, *self.add)] + list(self.remove)
        return [n for n in names if n.lower() in FRAMING_FIELDS]

    def __str__(self) -> str:
        parts = [f"set {n}: {v}" for n, v in self.set]
        parts += [f"add {n}: {v}" for n, v in self.add]
        parts += [f"remove {n}" for n in self.remove]
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class RequestHeaders:
    """Edit the request's header fields before they go upstream."""

    phase: ClassVar[Phase] = Phase.REQUEST
    edit: HeaderEdit

    def on_request(self, req: FilterRequest) -> Answer | None:
        self.edit.apply(req.headers)
        return None


@dataclass(frozen=True, slots=True)
class ResponseHeaders:
    """Edit the response's header fields before they go to the client."""

    phase: ClassVar[Phase] = Phase.RESPONSE
    edit: HeaderEdit

    def on_response(self, resp: FilterResponse) -> None:
        self.edit.apply(resp.headers)


@dataclass(frozen=True, slots=True)
class StripPrefix:
    """Remove the first matching prefix from the path that goes upstream (Traefik's
    stripPrefix: the removed prefix goes in X-Forwarded-Prefix, and the path keeps a
    leading "/")."""

    phase: ClassVar[Phase] = Phase.REQUEST
    prefixes: tuple[str, ...]
    forwarded_prefix: bool = True  # set X-Forwarded-Prefix to what was removed
    # Traefik adds X-Forwarded-Prefix (req.Header.Add) rather than replacing it.
    add_header: bool = False
    # Traefik answers 400 when the stripped path is not clean (a "." or ".." segment left
    # by the cut, e.g. /api./foo without /api): the upstream would resolve it elsewhere.
    reject_dot_segments: bool = False

    def on_request(self, req: FilterRequest) -> Answer | None:
        for prefix in self.prefixes:
            if req.path.startswith(prefix):
                rest = req.path[len(prefix) :]
                req.path = rest if rest.startswith("/") else "/" + rest
                if self.reject_dot_segments and _DOT_SEGMENT.search(req.path):
                    return Answer(400, (), "400 Bad Request\n")
                if self.forwarded_prefix:
                    if self.add_header:
                        req.headers.append((b"x-forwarded-prefix", prefix.encode("latin-1")))
                    else:
                        req.set_header("x-forwarded-prefix", prefix)
                break
        return None


# A "." or ".." path segment.
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")


@dataclass(frozen=True, slots=True)
class ReplacePath:
    """Replace the whole path that goes upstream (Traefik's replacePath): the previous path
    goes in X-Replaced-Path (req.Header.Add), the query string stays."""

    phase: ClassVar[Phase] = Phase.REQUEST
    path: str

    def on_request(self, req: FilterRequest) -> Answer | None:
        req.headers.append((b"x-replaced-path", req.path.encode("latin-1")))
        req.path = quote(self.path, safe=_PATH_SAFE)
        return None


@dataclass(frozen=True, slots=True)
class AddPrefix:
    """Put a prefix in front of the path that goes upstream (Traefik's addPrefix)."""

    phase: ClassVar[Phase] = Phase.REQUEST
    prefix: str

    def on_request(self, req: FilterRequest) -> Answer | None:
        req.path = self.prefix + req.path
        return None


IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class SourceRange:
    """Allow or deny by the client's address: a client in `deny` is refused first, then one
    outside a non-empty `allow` (ingress-nginx's denylist-/allowlist-source-range, Traefik's
    ipAllowList). The address is the one --trusted-proxies resolved, never a header a client
    could forge."""

    phase: ClassVar[Phase] = Phase.REQUEST
    allow: tuple[IPNet, ...] = ()
    deny: tuple[IPNet, ...] = ()
    status: int = 403

    def on_request(self, req: FilterRequest) -> Answer | None:
        try:
            address = ipaddress.ip_address((req.client or "").strip("[]"))
        except ValueError:
            return self._refuse()  # no usable address (a Unix socket): nothing to allow
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self.deny):
            return self._refuse()
        if self.allow and not any(address in net for net in self.allow):
            return self._refuse()
        return None

    def _refuse(self) -> Answer:
        return Answer(self.status, (), f"{self.status} Forbidden\n")

    def __str__(self) -> str:
        parts = []
        if self.allow:
            parts.append("allow " + ",".join(map(str, self.allow)))
        if self.deny:
            parts.append("deny " + ",".join(map(str, self.deny)))
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The largest request body this router takes (nginx's client_max_body_size per
    location; 0 or None means no limit): a declared Content-Length above it is a 413 before
    the upstream is contacted, and a chunked body is cut with a 413 when it passes it."""

    phase: ClassVar[Phase] = Phase.REQUEST
    max_bytes: int | None

    def on_request(self, req: FilterRequest) -> Answer | None:
        req.max_body_size = self.max_bytes or None
        return None


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """The headers ingress-nginx sends an error backend, naming the request's route (nginx.tmpl:
    the custom-default-backend location and the CUSTOM_ERRORS one): X-Code, X-Format (the
    client's Accept), X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port, and, for an
    intercepted error, X-Original-URI. X-Request-ID is the proxy's, already set."""

    code: int
    namespace: str
    ingress: str
    service: str
    port: str

    def apply(self, headers: list[tuple[bytes, bytes]], original_uri: str | None = None) -> None:
        accept = next((v for k, v in headers if k == b"accept"), b"")
        edit = [
            ("x-code", str(self.code)),
            ("x-namespace", self.namespace),
            ("x-ingress-name", self.ingress),
            ("x-service-name", self.service),
            ("x-service-port", self.port),
        ]
        if original_uri is not None:
            edit.append(("x-original-uri", original_uri))
        HeaderEdit(set=tuple(edit)).apply(headers)
        headers[:] = [(k, v) for k, v in headers if k != b"x-format"]
        headers.append((b"x-format", accept))


@dataclass(frozen=True, slots=True)
class DefaultBackendHeaders:
    """A route sent to ingress-nginx's default-backend annotation's Service because its own
    has no endpoints: that Service gets the X-Code: 503 ... headers (ErrorContext)."""

    phase: ClassVar[Phase] = Phase.REQUEST
    context: ErrorContext

    def on_request(self, req: FilterRequest) -> Answer | None:
        self.context.apply(req.headers)
        return None


@dataclass(frozen=True, slots=True)
class NotFound:
    """Answer 404, as the proxy does when no rule matches: the end of a router that exists
    only to run its other filters first (ingress-nginx's catch-all location of a host, which
    carries the annotations of the host's first Ingress and then reaches the controller's
    default backend, a 404)."""

    phase: ClassVar[Phase] = Phase.REQUEST
    reason: str = ""  # for tools: why the router exists

    def on_request(self, req: FilterRequest) -> Answer | None:
        return Answer(404, (), f'no route for host "{req.host}" path "{req.path}"\n')


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """ingress-nginx's CORS (the cors annotations, nginx.tmpl's CORS block): which Origins
    are allowed and the Access-Control-* values. `pattern` is buildCorsOriginRegex's
    alternation, compared case-insensitively and anchored at the end only (`$http_origin ~*
    (...)$`), as nginx does; "" allows any origin, and then every answer says
    `Access-Control-Allow-Origin: *`, Origin header or not (`set $http_origin *`)."""

    pattern: str = ""
    allow_methods: str = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    allow_headers: str = (
        "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
        "Content-Type,Range,Authorization"
    )
    expose_headers: str = ""
    allow_credentials: bool = True
    max_age: int = 1728000

    def origin(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The Access-Control-Allow-Origin value for a request, None when it gets no CORS."""
        if not self.pattern:
            return "*"
        got = next((v for k, v in headers if k == b"origin"), None)
        if got is None:
            return None
        text = got.decode("latin-1")
        if "\r" in text or "\n" in text:
            return None
        return text if compiled(f"({self.pattern})$").search(text) else None

    def fields(self, origin: str) -> list[tuple[bytes, bytes]]:
        out = [(b"access-control-allow-origin", origin)]
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", "true"))
        out.append((b"access-control-allow-methods", self.allow_methods))
        out.append((b"access-control-allow-headers", self.allow_headers))
        if self.expose_headers:
            out.append((b"access-control-expose-headers", self.expose_headers))
        out.append((b"access-control-max-age", str(self.max_age)))
        return [(k, v.encode("latin-1")) for k, v in out]


@dataclass(frozen=True, slots=True)
class CorsPreflight:
    """An OPTIONS request from an allowed Origin is answered here, 204 with the CORS headers
    and no upstream call (nginx.tmpl: `if ($cors = "trueoptions") { ... return 204; }`, in
    the rewrite phase, so before authentication); other OPTIONS requests go upstream."""

    phase: ClassVar[Phase] = Phase.REQUEST
    policy: CorsPolicy

    def on_request(self, req: FilterRequest) -> Answer | None:
        if req.method != "OPTIONS":
            return None
        origin = self.policy.origin(req.headers)
        if origin is None:
            return None
        fields = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.policy.fields(origin)]
        fields.append(("content-type", "text/plain charset=UTF-8"))
        return Answer(204, tuple(fields), "")


@dataclass(frozen=True, slots=True)
class CorsHeaders:
    """The CORS headers on every answer to a request from an allowed Origin (more_set_headers:
    set, replacing the upstream's, whatever the status)."""

    phase: ClassVar[Phase] = Phase.RESPONSE
    policy: CorsPolicy

    def on_response(self, resp: FilterResponse) -> None:
        origin = self.policy.origin(resp.request_headers)
        if origin is None:
            return
        fields = self.policy.fields(origin)
        names = {k for k, _ in fields}
        resp.headers[:] = [(k, v) for k, v in resp.headers if k not in names]
        resp.headers += fields


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests per client address limited as nginx's `limit_req zone=... burst=N nodelay`
    (ingress-nginx's limit-rps / limit-rpm with limit-burst-multiplier): past the burst a
    request is answered `status` (limit-req-status-code, 503) without reaching the upstream;
    clients in `exempt` (limit-allowlist) are not counted. The zone (ir.limits) is shared by
    every router that names it: ingress-nginx makes one per Ingress."""

    phase: ClassVar[Phase] = Phase.REQUEST
    zone: str
    rate: int  # milli-requests per second
    burst: int  # requests
    status: int = 503
    exempt: tuple[IPNet, ...] = ()

    def on_request(self, req: FilterRequest) -> Answer | None:
        client = req.client or ""
        if self.exempt:
            try:
                address = ipaddress.ip_address(client.strip("[]"))
            except ValueError:
                address = None
            if address is not None and any(address in net for net in self.exempt):
                return None
        if zone(self.zone, self.rate, self.burst).allow(client):
            return None
        return Answer(self.status, (), f"{self.status} Service Temporarily Unavailable\n")


# Checked credentials (a digest of user, password and stored hash): a bcrypt check costs
# tens of milliseconds of the event loop, so a client's repeated requests pay it once.
_VERIFIED: dict[bytes, bool] = {}


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic authentication against htpasswd users (ingress-nginx's auth-type basic:
    nginx's auth_basic, in the access phase; Traefik's basicAuth). A request without valid
    credentials (none, a malformed header, an unknown user, a wrong password; HEAD too) gets
    401 with `WWW-Authenticate: Basic realm="<realm>"`. With `denied` the location fails
    closed: 503 for every request (ingress-nginx's LocationDenied, e.g. a missing Secret)."""

    phase: ClassVar[Phase] = Phase.REQUEST
    # user -> hash (ir.passwords formats); kept out of reprs and dumps (ir.dump shows names).
    users: Mapping[str, str] = field(repr=False)
    realm: str = ""
    denied: str | None = None
    # nginx.tmpl sets `proxy_set_header Authorization "";`: the upstream never sees it.
    remove_header: bool = True
    # Traefik's headerField: this request header carries the authenticated user upstream.
    user_header: str | None = None

    def on_request(self, req: FilterRequest) -> Answer | None:
        if self.denied is not None:
            return Answer(503, (), "503 Service Temporarily Unavailable\n")
        raw = next((v for k, v in req.headers if k == b"authorization"), None)
        user = self._valid(raw) if raw is not None else None
        if user is not None:
            if self.remove_header:
                req.headers[:] = [(k, v) for k, v in req.headers if k != b"authorization"]
            if self.user_header:
                req.set_header(self.user_header, user)
            return None
        challenge = f'Basic realm="{self.realm}"'
        return Answer(401, (("www-authenticate", challenge),), "401 Authorization Required\n")

    def _valid(self, raw: bytes) -> str | None:
        """The user the credentials prove, None when they prove none."""
        scheme, _, token = raw.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        hashed = self.users.get(user) if sep else None
        if hashed is None:
            return None
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        known = _VERIFIED.get(key)
        if known is None:
            known = verify(password, hashed)
            if len(_VERIFIED) > 4096:
                _VERIFIED.clear()
            _VERIFIED[key] = known
        return user if known else None


# The filters a router can carry; dialects add kinds here as they start to emit them.
RequestFilter = (
    AddPrefix
    | AppRoot
    | BasicAuth
    | BodyLimit
    | CorsPreflight
    | DefaultBackendHeaders
    | NotFound
    | RateLimit
    | RedirectHost
    | RedirectScheme
    | RedirectURL
    | ReplacePath
    | RequestHeaders
    | RewriteTarget
    | SetUpstreamHost
    | SourceRange
    | StripPrefix
)
ResponseFilter = ResponseHeaders | CorsHeaders
RESPONSE_KINDS = (ResponseHeaders, CorsHeaders)
Filter = RequestFilter | ResponseFilter
