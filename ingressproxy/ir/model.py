"""The routing IR: routers (entry points, match, priority, origin), filters, services.

Flow: every front-end (frontends/spec, nginx, traefik) compiles decoded objects into these
values; ir.table indexes the routers for look-up; the proxy executes them; explain, check, the
admin API and the dashboard read them. Pure data: frozen, no I/O, nothing Kubernetes-specific
beyond the origin a router names. The model is Traefik's dynamic configuration (routers,
middlewares, services) and Envoy Gateway's IR: many inputs, one data plane.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

from ..manifests.model import ObjectRef, PathType, Source
from .conditions import Condition, RequestView
from .filters import RESPONSE_KINDS, ErrorContext, Filter, RequestFilter, ResponseFilter
from .regex import compiled
from .service import Balance, RetryPolicy, Timeouts

__all__ = [
    "ALL_ENTRYPOINTS",
    "DEFAULT_PRIORITY",
    "Backend",
    "Endpoint",
    "EntryPoint",
    "ErrorPages",
    "ExternalAuth",
    "Matcher",
    "Overridden",
    "Router",
    "prefix_key",
]

# Priority of a rules-less Ingress's defaultBackend in priority-ordered tables: below every rule,
# like Traefik's `default-router` (math.MinInt32, pkg/provider/kubernetes/ingress).
DEFAULT_PRIORITY = -(2**31)


class EntryPoint(StrEnum):
    """The listeners a router is attached to (Traefik's names for them)."""

    WEB = "web"  # the plain HTTP listener (--port)
    WEBSECURE = "websecure"  # the TLS listener (--https-port)


ALL_ENTRYPOINTS: frozenset[EntryPoint] = frozenset(EntryPoint)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream address: an IP (or, for ExternalName/DNS backends, a host name) and port."""

    address: str
    port: int
    scheme: str = "http"
    # Precomputed once at compile time; the hot path never formats URLs.
    base_url: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.base_url:
            host = f"[{self.address}]" if ":" in self.address else self.address
            object.__setattr__(self, "base_url", f"{self.scheme}://{host}:{self.port}")

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Backend:
    """A router's service: a Service port resolved to its ready endpoints.

    `error` is set when there is nothing to send to, and says why in words a user can act on
    (e.g. 'no ready endpoints', 'Service imagemanager/login not found'); the proxy answers 503.
    `members` is a weighted service: the Backends that share its requests. Without `weights`
    they take equal turns (colliding identical Traefik routers) and `endpoints` interleaves
    theirs, so the balancer's plain round robin gives each the same share; with `weights` (one
    per member, e.g. an ingress-nginx canary-weight or Gateway API backendRef weights) the
    balancer first draws a member by weight, at random as ingress-nginx and Envoy do, then
    an endpoint of it.

    The rest are the service's options (ir.service), None for the listener's defaults.
    """

    namespace: str
    service: str
    port: str  # as the manifest referenced it: a port name or a number
    endpoints: tuple[Endpoint, ...]
    error: str | None = None
    members: tuple[Backend, ...] = ()
    weights: tuple[int, ...] = ()
    balance: Balance | None = None  # None: round robin
    timeouts: Timeouts | None = None
    retries: RetryPolicy | None = None
    # False: the endpoint's own host:port as Host, not the client's (Traefik's
    # passHostHeader: false).
    pass_host: bool = True

    @property
    def key(self) -> str:
        if self.members:
            return " + ".join(m.key for m in self.members)
        return f"{self.namespace}/{self.service}:{self.port}"


def prefix_key(path: str) -> str:
    """Key of a Prefix rule or request path: one trailing '/' dropped ('/' itself becomes '')."""
    return path[:-1] if path.endswith("/") else path


@dataclass(frozen=True, slots=True)
class ErrorPages:
    """Answers of these statuses are replaced by another service's answer (ingress-nginx's
    custom-http-errors: `proxy_intercept_errors on` and `error_page <code> =
    @custom_<upstream>_<code>`, a named location that proxies the request, method and headers
    kept, body not sent again, with its path rewritten to "/" (`rewrite (.*) / break`, so the
    query string stays) and the ErrorContext headers). The client gets that service's status
    and body. It covers the proxy's own 502, 503 and 504 too, as nginx's error_page does."""

    codes: frozenset[int]
    backend: Backend
    context: ErrorContext  # code is filled per answer


@dataclass(frozen=True, slots=True)
class ExternalAuth:
    """Ask another service before forwarding (ingress-nginx's auth-url: nginx's auth_request,
    a subrequest the proxy makes, so not a pure filter). The service gets the request's
    headers without its body, by `method` (GET) to `target`, with X-Original-URL,
    X-Original-Method, X-Sent-From, X-Real-IP, X-Forwarded-For (the client alone) and
    X-Auth-Request-Redirect; with a `method` of its own also X-Original-URI and X-Scheme. A
    2xx lets the request through, `response_headers` copied from that answer onto the
    upstream request (replacing or dropping the client's); 401 and 403 go back to the client
    (401 with the service's WWW-Authenticate, or a 302 to `signin` when set); any other
    answer, or a service that cannot be reached, is 500."""

    backend: Backend  # where the auth service runs
    target: str  # path and query of the auth URL
    host: str  # the Host header: the auth URL's host
    method: str | None = None  # auth-method; None: GET without X-Original-URI
    response_headers: tuple[str, ...] = ()
    request_redirect: str | None = None  # X-Auth-Request-Redirect; None: the request URI
    signin: str | None = None  # auth-signin URL
    signin_param: str = "rd"  # auth-signin-redirect-param
    url: str = ""  # the auth-url as written, for tools


class Matcher(StrEnum):
    """How a router's path is compared with the (canonical) request path."""

    EXACT = "exact"  # the whole path, case-sensitive
    PREFIX = "prefix"  # whole '/'-separated elements (Kubernetes Prefix)
    STRING = "string"  # a plain string prefix (nginx prefix location, Traefik PathPrefix)
    DEFAULT = "default"  # a defaultBackend: used when no path rule matches
    REGEX = "regex"  # a case-insensitive regex anchored at the start (nginx `~* "^<path>"`)


@dataclass(frozen=True, slots=True)
class Router:
    """One routing rule that won its place: match (host, path), priority, origin, filters and
    the service (Backend) it sends to.

    The host is exact (`foo.com`), a wildcard of one label (`*.foo.com`) or any (None); the
    path is matched per `how`. Which of several matching routers wins is the front-end's
    ordering (ir.table.Ordering), made explicit by `priority` where the dialect has one.
    """

    ingress: ObjectRef  # the object it came from (Kind ns/name)
    source: Source  # file:line of that object's rule
    field: str  # "spec.rules[0].http.paths[1]" or "spec.defaultBackend"
    host: str | None  # the rule's host as written (lower case); None = any host
    path: str | None  # the rule's path as written; None for a default backend
    path_type: PathType | None
    backend: Backend
    # The front-ends set these; the defaults describe a Kubernetes (dialect spec) router.
    matcher: Matcher | None = None  # None: EXACT for Exact, PREFIX for others, DEFAULT w/o path
    priority: int = 0  # Ordering.RULE_LENGTH tables only: higher wins
    # Candidates for the same slot that lost to this router, each with the reason it lost.
    overridden: tuple[Overridden, ...] = ()
    # Colliding identical rules whose Backends take turns with this one (dialect traefik).
    sharing: tuple[Router, ...] = ()
    # The rule in Traefik v3 syntax (Host(`a`) && PathPrefix(`/p`)), written once by the
    # front-end: tools show it, and Traefik's default priority is its length.
    rule: str = ""
    # Run in order before the request is forwarded (and on its response); () costs nothing.
    filters: tuple[Filter, ...] = ()
    entrypoints: frozenset[EntryPoint] = ALL_ENTRYPOINTS
    dialect: str = "spec"  # the front-end that compiled it
    dialect_reason: str = ""  # why its object got that dialect (its class, its annotations)
    # More than host and path: every condition must hold (header, query, cookie, method).
    conditions: tuple[Condition, ...] = ()
    # The named middlewares whose filters it carries, as the dialect names them (Traefik's
    # "ns-name@kubernetescrd"), for tools: the dashboard shows them as Traefik's does.
    middlewares: tuple[str, ...] = ()
    # Asked before forwarding (ingress-nginx's auth-url); None: nobody is.
    auth: ExternalAuth | None = None
    # The response phase's error pages: answers of some statuses replaced by another
    # service's (a subrequest the proxy makes, so not a pure filter).
    errors: ErrorPages | None = None
    # (`dataclasses.field` below: the attribute `field` above shadows the function here.)
    # The next router of the same path slot, tried when this one's conditions fail (set by
    # ir.table.build_table, which orders a slot's routers); None: a less specific slot.
    otherwise: Router | None = dataclasses.field(default=None, compare=False, repr=False)
    # `filters` split by phase once, so the proxy never filters a tuple per request.
    request_filters: tuple[RequestFilter, ...] = dataclasses.field(
        init=False, default=(), compare=False, repr=False
    )
    response_filters: tuple[ResponseFilter, ...] = dataclasses.field(
        init=False, default=(), compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.filters:
            request = tuple(f for f in self.filters if not isinstance(f, RESPONSE_KINDS))
            response = tuple(f for f in self.filters if isinstance(f, RESPONSE_KINDS))
            object.__setattr__(self, "request_filters", request)
            object.__setattr__(self, "response_filters", response)

    @property
    def is_default_backend(self) -> bool:
        return self.path is None

    def accepts(self, view: RequestView) -> bool:
        """Whether every condition of this router holds for the request."""
        return all(c.test(view) for c in self.conditions)

    def chosen(self, view: RequestView) -> Router | None:
        """The first router of this slot's chain whose conditions hold, None when none does."""
        route: Router | None = self
        while route is not None and not route.accepts(view):
            route = route.otherwise
        return route

    def chain(self) -> tuple[Router, ...]:
        """This router and those tried after it in its slot, in order."""
        found = [self]
        while found[-1].otherwise is not None:
            nxt = found[-1].otherwise
            assert nxt is not None
            found.append(nxt)
        return tuple(found)

    def matches_path(self, path: str) -> bool:
        """Whether this router's path match alone accepts a canonical request path. Tools ask
        it of every router (explain); the proxy asks the table, which finds the same routers
        by dict look-ups (ir.table)."""
        how = self.how
        rule = self.path or ""
        if how is Matcher.EXACT:
            return path == rule
        if how is Matcher.PREFIX:
            # Kubernetes Prefix: whole '/'-separated elements, a trailing '/' ignored on
            # either side ("/foo/" matches "/foo", "/foo" does not match "/foobar").
            key = prefix_key(rule)
            got = prefix_key(path)
            return not key or got == key or got.startswith(key + "/")
        if how is Matcher.STRING:
            return path.startswith(rule)
        if how is Matcher.REGEX:
            # nginx's `~* "^<path>"`: anchored at the start, case-insensitive.
            return compiled(rule).match(path) is not None
        return True  # a defaultBackend takes whatever reaches it

    @property
    def how(self) -> Matcher:
        if self.matcher is not None:
            return self.matcher
        if self.path is None:
            return Matcher.DEFAULT
        return Matcher.EXACT if self.path_type is PathType.EXACT else Matcher.PREFIX


@dataclass(frozen=True, slots=True)
class Overridden:
    """A candidate that lost its table slot to another router, and why it lost."""

    route: Router
    reason: str
