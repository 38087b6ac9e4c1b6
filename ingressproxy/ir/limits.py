"""Request rate limits: nginx's limit_req (a leaky bucket per key, `burst=N nodelay`), the
state behind the RateLimit filter.

Flow: the RateLimit filter (ir.filters) names a zone and its rate; `zone()` returns that
zone's buckets, created on first use and kept across reloads while the zone's name, rate and
burst stay the same (nginx keeps a zone's shared memory over a reload likewise). The only
mutable state a filter reaches: plain dicts used from one event loop, bounded in size.
"""

from __future__ import annotations

import time

__all__ = ["LeakyBucket", "zone"]

# Keys a zone remembers before it forgets them all (nginx's zone would evict its oldest; a
# forgotten key only starts afresh).
_MAX_KEYS = 65536


class LeakyBucket:
    """ngx_http_limit_req_module's algorithm, in milli-requests and milliseconds: each
    request adds 1000 to the key's excess, which drains at `rate` per second; a request that
    would take the excess above `burst` * 1000 is rejected and changes nothing."""

    __slots__ = ("_entries", "burst", "rate")

    def __init__(self, rate: int, burst: int) -> None:
        self.rate = rate  # milli-requests per second (10 r/s = 10000; 60 r/m = 1000)
        self.burst = burst * 1000
        self._entries: dict[str, tuple[int, int]] = {}  # key -> (excess, last ms)

    def allow(self, key: str, now_ms: int | None = None) -> bool:
        now = int(time.monotonic() * 1000) if now_ms is None else now_ms
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= _MAX_KEYS:
                self._entries.clear()
            self._entries[key] = (0, now)
            return True
        excess, last = found
        elapsed = max(now - last, 0)
        excess = max(excess - self.rate * elapsed // 1000 + 1000, 0)
        if excess > self.burst:
            return False
        self._entries[key] = (excess, now)
        return True


_ZONES: dict[tuple[str, int, int], LeakyBucket] = {}


def zone(name: str, rate: int, burst: int) -> LeakyBucket:
    """The buckets of one zone (created on first use)."""
    key = (name, rate, burst)
    found = _ZONES.get(key)
    if found is None:
        if len(_ZONES) > 4096:
            _ZONES.clear()
        found = _ZONES[key] = LeakyBucket(rate, burst)
    return found
