"""Endpoint choice: round robin per Service port, the only mutable routing state.

Flow: proxy -> Balancer.pick(route.backend) -> forward_http. Counters are keyed by
`Backend.key` (`ns/service:port`), so routes sharing a backend share its rotation, and the
rotation carries over when a reload rebuilds the Backend objects.
"""

from __future__ import annotations

from .routetable import Backend, Endpoint

__all__ = ["Balancer"]


class Balancer:
    """Round robin like kube-proxy's and ingress-nginx's default: each endpoint in turn.

    Used from one event loop only, so a plain dict needs no lock.
    """

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def pick(self, backend: Backend) -> Endpoint:
        """The next endpoint of `backend`. Raises IndexError when it has none (callers check
        `backend.endpoints` first and answer 503)."""
        endpoints = backend.endpoints
        n = len(endpoints)
        if n == 1:
            return endpoints[0]
        if n == 0:
            raise IndexError(f"{backend.key} has no endpoints")
        key = backend.key
        i = self._next.get(key, 0) % n
        self._next[key] = i + 1
        return endpoints[i]
