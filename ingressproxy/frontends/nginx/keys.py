"""Every annotation key ingress-nginx v1.11 to v1.13 knows, and what this front-end does with
each: honoured, accepted with a note (it tunes nginx itself), not yet supported, or refused
(snippets). frontends.pipeline reports them per Ingress; frontends.annotations uses the names
to tell a typo from a key we lack.

The names are those of the parsers' AnnotationFields (kubernetes/ingress-nginx
internal/ingress/annotations/*/main.go, as listed by docs/user-guide/nginx-configuration/
annotations-risk.md from v1.12) in the tags controller-v1.11.0 to controller-v1.13.9, plus
their AnnotationAliases. Whether a key is honoured is read from nginx/annotations.KEYS, the
keys the front-end's passes read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from ...manifests.model import Diagnostic, Ingress, Severity
from .annotations import KEYS, PREFIX, annotation_diagnostic

__all__ = [
    "KNOWN",
    "KnownKey",
    "Support",
    "key_warnings",
    "refusals",
    "support_of",
]


class Support(StrEnum):
    SUPPORTED = "supported"  # honoured (nginx/annotations.KEYS)
    ACCEPTED = "accepted"  # tunes nginx itself: no effect here, said once as a warning
    NOT_YET = "not-yet-supported"  # changes what clients get; ingressproxy lacks it so far
    REFUSED = "refused"  # a snippet: the Ingress is refused


@dataclass(frozen=True, slots=True)
class KnownKey:
    name: str  # without the prefix
    group: str  # ingress-nginx's parser package (internal/ingress/annotations/<group>)
    fallback: Support  # what it is when nginx/annotations.KEYS does not list it
    note: str  # what ingress-nginx does with it, or why it changes nothing here
    versions: str = ""  # "" = every release from v1.11 to v1.13
    test: str = ""  # honoured keys: the test that shows it (tests/<file>::<function>)

    @property
    def key(self) -> str:
        return PREFIX + self.name


_A, _N, _R = Support.ACCEPTED, Support.NOT_YET, Support.REFUSED


def _keys(
    group: str, fallback: Support, note: str, *names: str, versions: str = ""
) -> tuple[KnownKey, ...]:
    return tuple(KnownKey(name, group, fallback, note, versions) for name in names)


def _honoured(name: str, group: str, note: str, test: str, versions: str = "") -> KnownKey:
    return KnownKey(name, group, Support.NOT_YET, note, versions, test)


_SSL = "tests/test_nginx_ssl_redirect.py::"
_REWRITE = "tests/test_nginx_rewrite.py::"
_HOSTS = "tests/test_nginx_hosts.py::"
_OURS = "tests/test_nginx_annotations.py::"
_ERRORS = "tests/test_nginx_errors.py::"
_CORS = "tests/test_nginx_cors.py::"
_AUTH = "tests/test_nginx_auth.py::"
_LIMITS = "tests/test_nginx_limits.py::"
_EXTAUTH = "tests/test_nginx_extauth.py::"
_BUFFERS = "nginx's buffering of bodies; the proxy streams them both ways"
_TIMEOUTS = "upstream timeouts of the location (504); the proxy's are global settings"
_RATE = "rate limiting per client address (503 when exceeded)"
_MEMCACHED = _RATE + ", shared through memcached"
_OTEL = "OpenTelemetry tracing in nginx; the proxy exports no traces"
_SNIPPET = "raw nginx configuration"
_SERVER_TLS = "the TLS settings of the server; the proxy's are its own"
_UPSTREAM_TLS = "TLS to HTTPS upstreams (client certificate, verification, SNI)"

_TABLE: tuple[KnownKey, ...] = (
    # Honoured (nginx/annotations.KEYS): the note says what they do, the test shows it.
    _honoured("app-root", "rewrite", "302 from / to the app's root", _OURS + "test_app_root"),
    _honoured(
        "backend-protocol",
        "backendprotocol",
        "how to speak to the endpoints: HTTP and HTTPS (not GRPC, GRPCS, AUTO_HTTP, FCGI)",
        "tests/test_tls.py::test_https_upstream",
    ),
    _honoured(
        "force-ssl-redirect",
        "rewrite",
        "308 from HTTP to HTTPS, TLS section or not",
        _SSL + "test_force_ssl_redirect_drops_the_trailing_slash",
    ),
    _honoured(
        "from-to-www-redirect",
        "redirect",
        "308 between www.host and host",
        _HOSTS + "test_from_to_www_redirect",
    ),
    _honoured(
        "permanent-redirect",
        "redirect",
        "a redirect (301) instead of forwarding",
        _OURS + "test_permanent_redirect_standard_code",
    ),
    _honoured(
        "permanent-redirect-code",
        "redirect",
        "the status of permanent-redirect (300-308, else 301)",
        _OURS + "test_permanent_redirect_custom_code",
    ),
    _honoured(
        "preserve-trailing-slash",
        "rewrite",
        "keeps the trailing / in the HTTPS redirect",
        _SSL + "test_preserve_trailing_slash",
    ),
    _honoured(
        "relative-redirects",
        "redirect",
        "a relative Location in redirects (absolute_redirect off)",
        _OURS + "test_relative_redirects",
        "v1.13",
    ),
    _honoured(
        "rewrite-target",
        "rewrite",
        "rewrites the path sent upstream",
        _REWRITE + "test_the_docs_example_rewrites_with_captures",
    ),
    _honoured(
        "server-alias",
        "alias",
        "more names for the Ingress's hosts",
        _HOSTS + "test_an_alias_serves_the_host",
    ),
    _honoured(
        "ssl-redirect",
        "rewrite",
        "308 from HTTP to HTTPS for hosts with a TLS section (default true)",
        "tests/test_tls.py::test_ssl_redirect",
    ),
    _honoured(
        "temporal-redirect",
        "redirect",
        "a redirect (302) instead of forwarding; wins over permanent-redirect",
        _OURS + "test_temporal_redirect_wins_over_permanent",
    ),
    _honoured(
        "temporal-redirect-code",
        "redirect",
        "the status of temporal-redirect (300-307, else 302)",
        _OURS + "test_temporal_redirect_code",
        "v1.12, v1.13",
    ),
    _honoured(
        "upstream-vhost",
        "upstreamvhost",
        "the Host header sent upstream",
        _HOSTS + "test_upstream_vhost_sets_the_host_sent_upstream",
    ),
    _honoured(
        "use-regex",
        "rewrite",
        "the host's paths are regular expressions",
        _REWRITE + "test_the_docs_example_rewrites_with_captures",
    ),
    _honoured(
        "x-forwarded-prefix",
        "xforwardedprefix",
        "X-Forwarded-Prefix sent upstream with a rewrite",
        _REWRITE + "test_x_forwarded_prefix_only_with_a_rewrite",
    ),
    # Snippets: refused (and any other "-snippet" key, see support_of).
    KnownKey("auth-snippet", "authreq", _R, _SNIPPET + " in the external auth location"),
    KnownKey("configuration-snippet", "snippet", _R, _SNIPPET + " in each location"),
    KnownKey("modsecurity-snippet", "modsecurity", _R, _SNIPPET + " for ModSecurity"),
    KnownKey("server-snippet", "serversnippet", _R, _SNIPPET + " in the server"),
    KnownKey("stream-snippet", "streamsnippet", _R, _SNIPPET + " in the stream block"),
    # Accepted: they tune nginx itself; what a client gets is the same without them.
    *_keys("clientbodybuffersize", _A, _BUFFERS, "client-body-buffer-size"),
    *_keys(
        "proxy",
        _A,
        _BUFFERS,
        "proxy-buffer-size",
        "proxy-buffering",
        "proxy-buffers-number",
        "proxy-max-temp-file-size",
        "proxy-request-buffering",
    ),
    *_keys("proxy", _A, _BUFFERS, "proxy-busy-buffers-size", versions="v1.13"),
    *_keys("proxy", _A, "the HTTP version spoken upstream (1.1 here)", "proxy-http-version"),
    *_keys(
        "connection",
        _A,
        "the Connection header sent upstream; the proxy manages its connections",
        "connection-proxy-header",
    ),
    *_keys(
        "disableproxyintercepterrors",
        _A,
        "upstream errors pass through unchanged, as they always do here",
        "disable-proxy-intercept-errors",
    ),
    *_keys("log", _A, "nginx's logs of the location", "enable-access-log", "enable-rewrite-log"),
    *_keys(
        "authreqglobal",
        _A,
        "opts out of the ConfigMap's global-auth-url; there is none here",
        "enable-global-auth",
    ),
    *_keys(
        "opentelemetry",
        _A,
        _OTEL,
        "enable-opentelemetry",
        "opentelemetry-operation-name",
        "opentelemetry-trust-incoming-span",
    ),
    *_keys("http2pushpreload", _A, "HTTP/2 server push (gone from nginx)", "http2-push-preload"),
    *_keys(
        "ratelimit",
        _A,
        "response bandwidth; never throttled here",
        "limit-rate",
        "limit-rate-after",
    ),
    *_keys("loadbalancing", _A, "the balancing algorithm; round robin here", "load-balance"),
    *_keys("proxyssl", _A, _UPSTREAM_TLS, "proxy-ssl-ciphers", "proxy-ssl-protocols"),
    *_keys(
        "serviceupstream",
        _A,
        "the Service's cluster IP instead of its endpoints; sent where the endpoints say here",
        "service-upstream",
    ),
    *_keys("sslcipher", _A, _SERVER_TLS, "ssl-ciphers", "ssl-prefer-server-ciphers"),
    *_keys(
        "sslpassthrough",
        _A,
        "TLS passed to the endpoints, only with --enable-ssl-passthrough (off by default)",
        "ssl-passthrough",
    ),
    # Not supported yet: each changes what some clients get.
    *_keys(
        "sessionaffinity",
        _N,
        "sticky sessions (a cookie pins a client to an endpoint)",
        "affinity",
        "affinity-canary-behavior",
        "affinity-mode",
        "session-cookie-change-on-failure",
        "session-cookie-conditional-samesite-none",
        "session-cookie-domain",
        "session-cookie-expires",
        "session-cookie-max-age",
        "session-cookie-name",
        "session-cookie-path",
        "session-cookie-samesite",
        "session-cookie-secure",
    ),
    *_keys(
        "ipallowlist",
        _N,
        "client address allow list (403)",
        "allowlist-source-range",
        "whitelist-source-range",  # the AnnotationAliases of allowlist-source-range
    ),
    *_keys("ipdenylist", _N, "client address deny list (403)", "denylist-source-range"),
    _honoured(
        "auth-type",
        "auth",
        "basic authentication (401); digest fails closed here (503, an error)",
        _AUTH + "test_without_credentials_401_with_the_realm",
    ),
    _honoured(
        "auth-secret",
        "auth",
        "the Secret with the htpasswd users (missing: 503)",
        _AUTH + "test_an_invalid_secret_denies_the_location_with_503",
    ),
    _honoured(
        "auth-secret-type",
        "auth",
        "auth-file (key auth, htpasswd lines) or auth-map (a key per user)",
        _AUTH + "test_an_auth_map_secret",
    ),
    _honoured(
        "auth-realm",
        "auth",
        "the realm of WWW-Authenticate",
        _AUTH + "test_an_absent_realm_is_empty",
    ),
    _honoured(
        "auth-url",
        "authreq",
        "external authentication: a subrequest to this URL decides (2xx, 401, 403, else 500)",
        _EXTAUTH + "test_signed_in_or_not",
    ),
    _honoured(
        "auth-method",
        "authreq",
        "the auth subrequest's method (adds X-Original-URI and X-Scheme)",
        _EXTAUTH + "test_auth_method_adds_the_original_uri",
    ),
    _honoured(
        "auth-response-headers",
        "authreq",
        "headers of the auth answer copied onto the upstream request",
        _EXTAUTH + "test_auth_response_headers_replace_the_clients",
    ),
    _honoured(
        "auth-request-redirect",
        "authreq",
        "X-Auth-Request-Redirect sent to the auth service",
        _EXTAUTH + "test_signed_in_or_not",
    ),
    _honoured(
        "auth-signin",
        "authreq",
        "a 302 there (with rd=) instead of the auth service's 401",
        _EXTAUTH + "test_auth_signin_redirects_on_401_only",
    ),
    _honoured(
        "auth-signin-redirect-param",
        "authreq",
        "the name of auth-signin's redirect parameter (rd)",
        _EXTAUTH + "test_auth_signin_redirects_on_401_only",
    ),
    *_keys(
        "authreq",
        _A,
        "nginx's handling of the auth subrequest (its cache, keep-alive, cookies)",
        "auth-always-set-cookie",
        "auth-cache-duration",
        "auth-cache-key",
        "auth-keepalive",
        "auth-keepalive-requests",
        "auth-keepalive-share-vars",
        "auth-keepalive-timeout",
    ),
    *_keys(
        "authreq",
        _N,
        "headers added to the auth subrequest, from a ConfigMap",
        "auth-proxy-set-headers",
    ),
    *_keys(
        "authtls",
        _N,
        "client certificate authentication (mutual TLS)",
        "auth-tls-error-page",
        "auth-tls-match-cn",
        "auth-tls-pass-certificate-to-upstream",
        "auth-tls-secret",
        "auth-tls-verify-client",
        "auth-tls-verify-depth",
    ),
    *_keys(
        "canary",
        _N,
        "canary releases (a share of requests to another Service)",
        "canary",
        "canary-by-cookie",
        "canary-by-header",
        "canary-by-header-pattern",
        "canary-by-header-value",
        "canary-weight",
        "canary-weight-total",
    ),
    _honoured(
        "enable-cors",
        "cors",
        "CORS: preflight answers (204) and Access-Control-* headers for allowed origins",
        _CORS + "test_enable_cors_with_the_defaults",
    ),
    _honoured(
        "cors-allow-origin",
        "cors",
        "the origins CORS allows (a list; *.domain is one label; * any)",
        _CORS + "test_allowed_origins",
    ),
    _honoured(
        "cors-allow-headers", "cors", "Access-Control-Allow-Headers", _CORS + "test_cors_values"
    ),
    _honoured(
        "cors-allow-methods", "cors", "Access-Control-Allow-Methods", _CORS + "test_cors_values"
    ),
    _honoured(
        "cors-allow-credentials",
        "cors",
        "Access-Control-Allow-Credentials (default true)",
        _CORS + "test_cors_allow_credentials_false_drops_the_header",
    ),
    _honoured(
        "cors-expose-headers",
        "cors",
        "Access-Control-Expose-Headers",
        _CORS + "test_cors_values",
    ),
    _honoured(
        "cors-max-age",
        "cors",
        "Access-Control-Max-Age (default 1728000)",
        _CORS + "test_cors_values",
    ),
    *_keys("customheaders", _N, "response headers from a ConfigMap", "custom-headers"),
    _honoured(
        "custom-http-errors",
        "customhttperrors",
        "answers of these codes replaced by the default-backend Service's (error pages)",
        _ERRORS + "test_custom_http_errors_replace_the_listed_codes_with_the_error_backends_answer",
    ),
    _honoured(
        "default-backend",
        "defaultbackend",
        "a Service for the routes whose own Service has no endpoints, and for error pages",
        _ERRORS + "test_default_backend_takes_a_route_whose_service_has_no_endpoints",
    ),
    *_keys(
        "modsecurity",
        _N,
        "the ModSecurity web application firewall",
        "enable-modsecurity",
        "enable-owasp-core-rules",
        "modsecurity-transaction-id",
    ),
    *_keys(
        "fastcgi",
        _N,
        "FastCGI upstreams (backend-protocol FCGI)",
        "fastcgi-index",
        "fastcgi-params-configmap",
    ),
    *_keys(
        "globalratelimit",
        _N,
        _MEMCACHED,
        "global-rate-limit",
        "global-rate-limit-ignored-cidrs",
        "global-rate-limit-key",
        "global-rate-limit-window",
        versions="v1.11",
    ),
    _honoured(
        "limit-rps",
        "ratelimit",
        _RATE + ", per second",
        _LIMITS + "test_limit_rps_with_its_burst_then_503",
    ),
    _honoured("limit-rpm", "ratelimit", _RATE + ", per minute", _LIMITS + "test_limit_rpm"),
    _honoured(
        "limit-burst-multiplier",
        "ratelimit",
        "the burst of limit-rps/-rpm (default 5 times the rate)",
        _LIMITS + "test_limit_rps_with_its_burst_then_503",
    ),
    _honoured(
        "limit-allowlist",
        "ratelimit",
        "client addresses the rate limits skip",
        _LIMITS + "test_the_allowlist_is_not_limited",
    ),
    _honoured(
        "limit-whitelist",  # the AnnotationAliases of limit-allowlist
        "ratelimit",
        "client addresses the rate limits skip",
        _LIMITS + "test_the_allowlist_is_not_limited",
    ),
    *_keys("ratelimit", _N, "concurrent connections per client address (503)", "limit-connections"),
    *_keys(
        "mirror",
        _N,
        "copies of each request sent elsewhere",
        "mirror-host",
        "mirror-request-body",
        "mirror-target",
    ),
    *_keys("proxy", _N, "the request body limit (413)", "proxy-body-size"),
    *_keys(
        "proxy",
        _N,
        _TIMEOUTS,
        "proxy-connect-timeout",
        "proxy-read-timeout",
        "proxy-send-timeout",
    ),
    *_keys(
        "proxy",
        _N,
        "rewrites Set-Cookie in responses",
        "proxy-cookie-domain",
        "proxy-cookie-path",
    ),
    *_keys(
        "proxy",
        _N,
        "retries on another endpoint",
        "proxy-next-upstream",
        "proxy-next-upstream-timeout",
        "proxy-next-upstream-tries",
    ),
    *_keys(
        "proxy",
        _N,
        "rewrites the Location of responses",
        "proxy-redirect-from",
        "proxy-redirect-to",
    ),
    *_keys(
        "proxyssl",
        _N,
        _UPSTREAM_TLS,
        "proxy-ssl-name",
        "proxy-ssl-secret",
        "proxy-ssl-server-name",
        "proxy-ssl-verify",
        "proxy-ssl-verify-depth",
    ),
    *_keys("satisfy", _N, "whether auth and address lists must both pass", "satisfy"),
    *_keys(
        "upstreamhashby",
        _N,
        "consistent hashing of requests to endpoints",
        "upstream-hash-by",
        "upstream-hash-by-subset",
        "upstream-hash-by-subset-size",
    ),
    *_keys("portinredirect", _N, "the port in nginx's own redirects", "use-port-in-redirects"),
)
KNOWN: Mapping[str, KnownKey] = MappingProxyType({k.key: k for k in _TABLE})


def support_of(key: str) -> Support | None:
    """What this front-end does with an nginx annotation key; None when ingress-nginx does
    not know it (a typo). Any key ending in "-snippet" is a snippet: the admission webhook
    refuses them all (controller.go CheckIngress: `strings.HasSuffix(key, "-snippet")`)."""
    if key in KEYS:
        return Support.SUPPORTED
    if key.startswith(PREFIX) and key.endswith("-snippet"):
        return Support.REFUSED
    known = KNOWN.get(key)
    return None if known is None else known.fallback


def refusals(ing: Ingress) -> list[Diagnostic]:
    """Why ingress-nginx v1.12+ would not serve this Ingress at all, one error per key: a
    snippet, or a value with CR, LF or NUL. Empty when it is served."""
    out: list[Diagnostic] = []
    for key in sorted(ing.meta.annotations):
        if not key.startswith(PREFIX):
            continue
        value = ing.meta.annotations[key]
        if support_of(key) is Support.REFUSED:
            msg = (
                f'"{key}" is {_SNIPPET}, which ingressproxy never interprets; ingress-nginx'
                " refuses it by default since v1.12 (snippets are Critical risk, above the"
                " default annotations-risk-level High, and allow-snippet-annotations is false),"
                " so this Ingress is not served"
            )
            out.append(annotation_diagnostic(ing, "snippet-annotation", msg, key, Severity.ERROR))
        elif any(c in value for c in "\r\n\x00"):
            msg = (
                f'the value of "{key}" contains a line break or NUL character, which could'
                " inject configuration or headers; this Ingress is not served"
            )
            out.append(
                annotation_diagnostic(ing, "unsafe-annotation-value", msg, key, Severity.ERROR)
            )
    return out


def key_warnings(ing: Ingress, report: Callable[[Diagnostic], None]) -> None:
    """One warning per ingress-nginx key that is accepted without effect or not supported yet.
    Honoured keys, snippets (refusals) and typos (frontends.annotations) are said elsewhere."""
    for key in sorted(ing.meta.annotations):
        support = support_of(key)
        if support is Support.ACCEPTED:
            msg = (
                f'"{key}" is accepted: it tunes nginx itself ({KNOWN[key].note}); it has no'
                " effect here"
            )
            # Info, not a warning: nothing a client gets changes (check --strict passes).
            report(annotation_diagnostic(ing, "annotation-no-effect", msg, key, Severity.INFO))
        elif support is Support.NOT_YET:
            msg = (
                f'"{key}" is not supported yet by ingressproxy and has no effect (in'
                f" ingress-nginx: {KNOWN[key].note})"
            )
            report(annotation_diagnostic(ing, "unsupported-annotation", msg, key))
