"""How a router's service sends: balancing policy, timeouts, retries (the IR's service options).

Flow: a front-end sets these on a Backend (ir.model) from its dialect's options
(ingress-nginx's proxy-*-timeout, proxy-next-upstream-tries, affinity and upstream-hash-by;
Traefik's service.sticky.cookie and passhostheader; Gateway API's timeouts and
sessionPersistence); upstream.balancer and proxy.app read them per request. None everywhere
means the listener's settings (--connect-timeout, --read-timeout, our retry rules), so a
Backend no dialect tuned costs nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Balance", "CookieAffinity", "HashBy", "HashSource", "RetryPolicy", "Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-service timeouts in seconds (None: the listener's). nginx's proxy_connect_timeout,
    proxy_read_timeout (between two reads) and proxy_send_timeout (between two writes)."""

    connect: float | None = None
    read: float | None = None
    send: float | None = None

    def __str__(self) -> str:
        parts = [
            f"{name} {value:g}s"
            for name, value in (("connect", self.connect), ("read", self.read), ("send", self.send))
            if value is not None
        ]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many endpoints one request may try (nginx's proxy_next_upstream_tries: the first
    try included; 0 means as many as there are). Which failures are retried stays ours (a
    connect failure for any method; a connection that died before the response head for
    idempotent methods only), so a policy can only narrow it: `on_error` False turns retries
    off, as `proxy-next-upstream: off` does."""

    tries: int = 0
    on_error: bool = True

    def __str__(self) -> str:
        if not self.on_error:
            return "off"
        return f"{self.tries} tries" if self.tries else "every endpoint"


class HashSource(StrEnum):
    """What a hash policy reads of the request (nginx variables upstream-hash-by names)."""

    REMOTE_ADDR = "remote_addr"  # the client address ($remote_addr, $binary_remote_addr)
    REQUEST_URI = "request_uri"  # the request target as received ($request_uri)
    HEADER = "header"  # one header field ($http_<name>)
    COOKIE = "cookie"  # one cookie ($cookie_<name>)
    QUERY = "query"  # one query parameter ($arg_<name>)


@dataclass(frozen=True, slots=True)
class HashBy:
    """Consistent hashing on a key read from the request: the same key reaches the same
    endpoint while the set of endpoints stays the same, and few keys move when it changes."""

    source: HashSource
    name: str = ""  # the header, cookie or parameter name for those sources
    expression: str = ""  # the dialect's own spelling ($remote_addr), for tools

    def __str__(self) -> str:
        return f"hash by {self.expression or self.source}"


@dataclass(frozen=True, slots=True)
class CookieAffinity:
    """Sticky sessions by cookie: a request without the cookie gets an endpoint by the
    service's rotation and a Set-Cookie naming it; one with it goes back to that endpoint while
    it is in the service (else it is balanced anew and gets a new cookie)."""

    name: str
    path: str | None = None  # None: the cookie's Path attribute is omitted
    max_age: int | None = None
    expires: int | None = None  # seconds from now, written as an Expires date
    secure: bool | None = None  # None: Secure when the request came over HTTPS
    http_only: bool = True
    same_site: str | None = None  # "None", "Lax", "Strict"
    domain: str | None = None
    # What the cookie holds. False (ingress-nginx's balanced affinity): a random key that a
    # consistent hash maps to an endpoint. True (Traefik's sticky cookie): the endpoint's own
    # name hashed (the first 16 hex digits of SHA-256 of its URL); a cookie naming no current
    # endpoint is balanced anew and replaced.
    names_endpoint: bool = False

    def __str__(self) -> str:
        return f"cookie {self.name}"


# The balancing policy of a service; None on a Backend means round robin.
Balance = HashBy | CookieAffinity
