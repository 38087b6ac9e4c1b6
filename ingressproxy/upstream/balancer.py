"""Endpoint choice: round robin per Service port plus passive health, the only mutable routing
state.

Flow: proxy -> Balancer.pick(route.backend) -> forward_http, and back: connect_failed /
connect_succeeded. Counters are keyed by `Backend.key` (`ns/service:port`) and health by
endpoint URL, so both carry over when a reload rebuilds the Backend objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from ..ir.model import Backend, Endpoint

__all__ = ["DEFAULT_EJECTION_TIME", "DEFAULT_MAX_FAILURES", "Balancer"]

log = logging.getLogger("ingressproxy.balancer")

# nginx's max_fails/fail_timeout and Envoy's outlier detection (consecutive_5xx/connect
# failures, base_ejection_time) in their simplest form: 3 consecutive connect failures take an
# endpoint out of the rotation for 10 s.
DEFAULT_MAX_FAILURES = 3
DEFAULT_EJECTION_TIME = 10.0

# Failure and ejection records are dropped wholesale beyond this many endpoints (they churn
# across reloads); forgetting one only means an endpoint gets a fresh start.
_MAX_TRACKED = 4096


class Balancer:
    """Round robin like kube-proxy's and ingress-nginx's default, skipping ejected endpoints.

    When every endpoint of a backend is ejected, all of them are tried in turn again (Envoy's
    panic mode): a guess beats a blanket 503. After its ejection an endpoint is on probation,
    like nginx's: one more connect failure ejects it again. `clock` is injectable so tests
    need not wait out the ejection time. Used from one event loop only: plain dicts, no lock.
    """

    __slots__ = ("_clock", "_ejected", "_failures", "_next", "ejection_time", "max_failures")

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = DEFAULT_MAX_FAILURES,
        ejection_time: float = DEFAULT_EJECTION_TIME,
    ) -> None:
        self._next: dict[str, int] = {}
        self._clock = clock
        self.max_failures = max_failures
        self.ejection_time = ejection_time
        self._failures: dict[str, int] = {}  # endpoint URL -> consecutive connect failures
        self._ejected: dict[str, float] = {}  # endpoint URL -> clock() when it returns

    def pick(self, backend: Backend) -> Endpoint:
        """The next endpoint of `backend`. Raises IndexError when it has none (callers check
        `backend.endpoints` first and answer 503)."""
        endpoints = backend.endpoints
        n = len(endpoints)
        if n == 1:
            return endpoints[0]  # ejecting the only endpoint would leave nothing to try
        if n == 0:
            raise IndexError(f"{backend.key} has no endpoints")
        key = backend.key
        i = self._next.get(key, 0) % n
        self._next[key] = i + 1
        endpoint = endpoints[i]
        if self._ejected and endpoint.base_url in self._ejected:
            return self._healthy_after(endpoints, i, key)
        return endpoint

    def pick_other(self, backend: Backend, tried: Sequence[Endpoint]) -> Endpoint | None:
        """An endpoint of `backend` not in `tried` (for a retry), healthy ones first, in
        rotation order; None when every endpoint has been tried."""
        endpoints = backend.endpoints
        n = len(endpoints)
        if n == 0:
            return None
        start = self._next.get(backend.key, 0)
        fallback: Endpoint | None = None
        now = self._clock()
        for k in range(n):
            candidate = endpoints[(start + k) % n]
            if candidate in tried:
                continue
            if not self._is_ejected(candidate.base_url, now):
                self._next[backend.key] = start + k + 1
                return candidate
            if fallback is None:
                fallback = candidate
        return fallback

    def _healthy_after(self, endpoints: tuple[Endpoint, ...], i: int, key: str) -> Endpoint:
        n = len(endpoints)
        now = self._clock()
        for k in range(n):
            candidate = endpoints[(i + k) % n]
            if not self._is_ejected(candidate.base_url, now):
                self._next[key] = i + k + 1
                return candidate
        return endpoints[i]  # panic: every endpoint is ejected, so plain round robin

    def _is_ejected(self, url: str, now: float) -> bool:
        until = self._ejected.get(url)
        if until is None:
            return False
        if now < until:
            return True
        del self._ejected[url]
        self._failures[url] = self.max_failures - 1  # probation: one failure ejects again
        log.info("endpoint %s is back in rotation after its ejection", url)
        return False

    def is_ejected(self, endpoint: Endpoint) -> bool:
        """Whether `endpoint` is currently out of the rotation (no side effects)."""
        until = self._ejected.get(endpoint.base_url)
        return until is not None and self._clock() < until

    def connect_failed(self, endpoint: Endpoint) -> None:
        """Record a connect failure (refused, unreachable, connect timeout)."""
        url = endpoint.base_url
        count = self._failures.get(url, 0) + 1
        if count < self.max_failures:
            if len(self._failures) >= _MAX_TRACKED:
                self._failures.clear()
            self._failures[url] = count
            return
        self._failures.pop(url, None)
        if len(self._ejected) >= _MAX_TRACKED:
            self._ejected.clear()
        self._ejected[url] = self._clock() + self.ejection_time
        log.warning(
            "endpoint %s ejected for %gs after %d consecutive connect failures",
            url,
            self.ejection_time,
            count,
        )

    def connect_succeeded(self, endpoint: Endpoint) -> None:
        """A request reached `endpoint`: its failure count starts over. Two dict checks when
        nothing ever failed, so it costs nothing on the hot path."""
        if self._failures:
            self._failures.pop(endpoint.base_url, None)
        if self._ejected and self._ejected.pop(endpoint.base_url, None) is not None:
            log.info("endpoint %s answered again: back in rotation", endpoint.base_url)
