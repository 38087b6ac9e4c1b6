"""The filters of the routing IR: small frozen values, each with one pure method, run in order.

Flow: a front-end attaches filters to a router (ir.model.Router.filters); the proxy runs a
router's request-phase filters after matching and before forwarding (proxy.app). A filter
answers the request itself (a redirect, a refusal) or lets it through; it does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

__all__ = ["Answer", "Filter", "FilterRequest", "Phase", "RedirectScheme", "https_url"]


class Phase(StrEnum):
    REQUEST = "request"  # before the upstream is contacted
    RESPONSE = "response"  # on the upstream's response head


@dataclass(frozen=True, slots=True)
class FilterRequest:
    """What a request-phase filter may look at: the request as matched, and where it arrived."""

    method: str
    scheme: str  # "http" or "https": the listener it arrived on
    host: str  # normalized Host (lower case, no port)
    target: str  # the request target as received (path and query)
    https_port: int | None  # the TLS listener's port, None when there is none


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

    def on_request(self, req: FilterRequest) -> Answer | None:
        if req.scheme == "https" or req.https_port is None or not _SAFE_HOST.match(req.host):
            return None
        status = self.status
        if status is None:
            status = 301 if req.method == "GET" else 308
        location = https_url(req.host, req.https_port, req.target)
        return Answer(status, (("location", location),), f"{status} redirect to {location}\n")


# The filters a router can carry; dialects add kinds here as they start to emit them.
Filter = RedirectScheme
