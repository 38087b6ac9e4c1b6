"""Endpoint choice for services with a policy (ir.service): weighted members, hashing by a
request key, cookie affinity. Plain round robin stays in balancer.Balancer.pick.

Flow: proxy.app -> choose(balancer, backend, ...) -> Choice (the endpoint, and a Set-Cookie
for the response when affinity starts a session). Pure but for the weighted draw's random
numbers and the balancer's rotation state.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass
from email.utils import formatdate

from ..ir.conditions import RequestView
from ..ir.model import Backend, Endpoint
from ..ir.service import CookieAffinity, HashBy, HashSource
from .balancer import Balancer

__all__ = ["Choice", "choose", "endpoint_hash", "member", "rendezvous", "set_cookie"]


@dataclass(frozen=True, slots=True)
class Choice:
    backend: Backend  # the member that takes the request (the service itself unweighted)
    endpoint: Endpoint | None  # None: that member has no ready endpoint (the proxy's 503)
    set_cookie: str | None = None  # a Set-Cookie field value for the response


def member(backend: Backend, draw: float | None = None) -> Backend:
    """The member of a weighted service that takes this request: drawn at random by weight,
    as ingress-nginx's canary-weight (math.random against the weight) and Envoy's weighted
    clusters do. A member of weight 0 never gets a request; all at 0 leaves the first."""
    total = sum(backend.weights)
    if total <= 0:
        return backend.members[0]
    point = (random.random() if draw is None else draw) * total
    for m, weight in zip(backend.members, backend.weights, strict=True):
        if point < weight:
            return m
        point -= weight
    return backend.members[-1]


def rendezvous(endpoints: tuple[Endpoint, ...], key: str) -> Endpoint:
    """Highest-random-weight hashing: each key goes to the endpoint whose hash with it is
    largest, so adding or removing an endpoint moves only the keys that were (or will be) on
    it, the property nginx's `hash ... consistent` and ingress-nginx's chash give."""
    best: Endpoint = endpoints[0]
    top = -1
    raw = key.encode("utf-8", "surrogateescape")
    for e in endpoints:
        score = int.from_bytes(hashlib.md5(raw + b"\0" + e.base_url.encode()).digest()[:8])
        if score > top:
            best, top = e, score
    return best


def endpoint_hash(endpoint: Endpoint) -> str:
    """Traefik's sticky cookie value for a server: sha256Hash(server URL), 16 hex digits
    (pkg/server/service/loadbalancer/sticky.go)."""
    return hashlib.sha256(endpoint.base_url.encode()).hexdigest()[:16]


def _hash_key(policy: HashBy, view: RequestView, client: str | None, uri: str) -> str:
    source = policy.source
    if source is HashSource.REMOTE_ADDR:
        return client or ""
    if source is HashSource.REQUEST_URI:
        return uri
    if source is HashSource.HEADER:
        return ",".join(view.header_values(policy.name.lower().encode("latin-1")))
    if source is HashSource.COOKIE:
        return view.cookies().get(policy.name, "")
    return next((v for k, v in view.params() if k == policy.name), "")


def set_cookie(policy: CookieAffinity, value: str, *, https: bool, now: float | None) -> str:
    """The Set-Cookie value that starts a sticky session."""
    parts = [f"{policy.name}={value}"]
    if policy.path is not None:
        parts.append(f"Path={policy.path}")
    if policy.expires is not None and now is not None:
        parts.append("Expires=" + formatdate(now + policy.expires, usegmt=True))
    if policy.max_age is not None:
        parts.append(f"Max-Age={policy.max_age}")
    if policy.domain:
        parts.append(f"Domain={policy.domain}")
    if policy.secure if policy.secure is not None else https:
        parts.append("Secure")
    if policy.http_only:
        parts.append("HttpOnly")
    if policy.same_site:
        parts.append(f"SameSite={policy.same_site}")
    return "; ".join(parts)


def choose(
    balancer: Balancer,
    backend: Backend,
    view: RequestView,
    *,
    client: str | None,
    uri: str,
    https: bool,
    now: float | None = None,
) -> Choice:
    """The endpoint for a request to a service with weights or a policy (the caller has
    checked that the service has endpoints). A weighted member without ready endpoints gets
    no endpoint: the request is not moved to another member (nginx answers 503 from a
    canary's empty upstream; Gateway API: a backend that cannot be reached gets 500s for its
    share), and the caller answers for that member."""
    if backend.weights:
        backend = member(backend)
        if backend.error is not None or not backend.endpoints:
            return Choice(backend, None)
    policy = backend.balance
    endpoints = backend.endpoints
    if isinstance(policy, HashBy):
        return Choice(backend, rendezvous(endpoints, _hash_key(policy, view, client, uri)))
    if isinstance(policy, CookieAffinity) and policy.names_endpoint:
        held = view.cookies().get(policy.name)
        if held:
            for endpoint in endpoints:
                if endpoint_hash(endpoint) == held:
                    return Choice(backend, endpoint)
        endpoint = balancer.pick(backend)
        cookie = set_cookie(policy, endpoint_hash(endpoint), https=https, now=now)
        return Choice(backend, endpoint, cookie)
    if isinstance(policy, CookieAffinity):
        held = view.cookies().get(policy.name)
        if held:
            return Choice(backend, rendezvous(endpoints, held))
        key = secrets.token_hex(16)
        cookie = set_cookie(policy, key, https=https, now=now)
        return Choice(backend, rendezvous(endpoints, key), cookie)
    return Choice(backend, balancer.pick(backend))
