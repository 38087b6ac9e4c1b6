"""Prometheus metrics: per-request counters fed by the proxy's observer, config gauges read at
scrape time.

Flow: proxy -> RequestRecord -> ProxyMetrics (counters, histogram); ConfigState -> a collector
that reads reloads, routers and services when /metrics is scraped. Each router's live traffic
for the admin API (rate, error share, latency) is read from the same counters: Traffic samples
them when /api/traffic is asked and compares them with a sample about a window earlier, as
Prometheus' rate() would. Names follow Traefik's (`traefik_router_requests_total` ...) with our
prefix; each instance has its own registry.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from ..admin.api import ConfigState
from .record import RequestRecord

__all__ = [
    "ConfigCollector",
    "ProxyMetrics",
    "RouterTotals",
    "RouterTraffic",
    "Traffic",
    "TrafficReading",
    "quantile",
    "status_class",
]

# Label values are bounded: a client can send any method, and each value is a new series.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


# prometheus_client's default buckets with 1 ms and 2.5 ms below its first (5 ms): a proxy on
# loopback or in one cluster answers within a few milliseconds, and the dashboard's quantiles
# are only as fine as these bounds.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    math.inf,
)


def status_class(status: int) -> str:
    """200 -> "2xx"; the label Traefik and most dashboards group by."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class ConfigCollector(Collector):
    """Configuration gauges, computed from the current view when scraped (nothing to keep in
    sync on reload)."""

    def __init__(self, state: ConfigState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        stats = state.stats
        view = state.view()
        snapshot = state.holder.current
        yield CounterMetricFamily(
            "ingressproxy_config_reloads",
            "Configuration reloads (a new version of the manifests was built).",
            value=stats.reloads,
        )
        yield CounterMetricFamily(
            "ingressproxy_config_reloads_failed",
            "Reloads that failed or whose configuration has errors (the last good version of "
            "each broken file or object keeps serving).",
            value=stats.failed,
        )
        yield GaugeMetricFamily(
            "ingressproxy_config_last_reload_success_timestamp_seconds",
            "When the configuration now serving was loaded (Unix time).",
            value=stats.last_success or 0.0,
        )
        yield GaugeMetricFamily(
            "ingressproxy_config_generation",
            "Generation of the configuration now serving (increases on every reload).",
            value=snapshot.generation,
        )
        yield GaugeMetricFamily(
            "ingressproxy_config_objects",
            "Kubernetes objects in the configuration now serving.",
            value=snapshot.objects,
        )
        diags = GaugeMetricFamily(
            "ingressproxy_config_diagnostics",
            "Problems found in the manifests, by severity.",
            labels=["severity"],
        )
        errors = len(snapshot.errors)
        diags.add_metric(["error"], errors)
        diags.add_metric(["warning"], len(snapshot.diagnostics) - errors)
        yield diags
        for kind, items in (("routers", view.routers), ("services", view.services)):
            family = GaugeMetricFamily(
                f"ingressproxy_{kind}",
                f"HTTP {kind} by status (enabled, warning, disabled), as /api/http/{kind} lists"
                " them.",
                labels=["status"],
            )
            for status in ("enabled", "warning", "disabled"):
                family.add_metric([status], sum(1 for i in items if i["status"] == status))
            yield family


class ProxyMetrics:
    """A request observer (`metrics(record)`) plus the /metrics exposition (`render()`).

    `open_connections` is read at scrape time (the proxy counts requests in flight).
    """

    def __init__(
        self,
        state: ConfigState | None = None,
        *,
        open_connections: Callable[[], int] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        self.requests = Counter(
            "ingressproxy_requests",
            "HTTP requests answered, by router, service, method and status class.",
            ["router", "service", "method", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "ingressproxy_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer.",
            ["router", "service"],
            registry=r,
            buckets=DURATION_BUCKETS,
        )
        self.bytes_sent = Counter(
            "ingressproxy_response_bytes",
            "Response body bytes sent to clients.",
            ["router", "service"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "ingressproxy_upstream_errors",
            "Failed exchanges with an upstream, by service and kind (connect, timeout, protocol).",
            ["service", "kind"],
            registry=r,
        )
        self.open = Gauge(
            "ingressproxy_open_connections",
            "HTTP requests in flight on the traffic entry point.",
            ["entrypoint"],
            registry=r,
        )
        if open_connections is not None:
            self.open.labels("web").set_function(lambda: float(open_connections()))
        self.traffic = Traffic(self.totals)
        if state is not None:
            r.register(ConfigCollector(state))
            state.traffic = self.traffic.read  # what /api/traffic serves
        # Label children cached by label values: .labels() takes a lock and builds a key on
        # every call, and this runs once per request.
        self._children: dict[tuple[str, str, str, str], tuple[Counter, Histogram, Counter]] = {}

    def __call__(self, record: RequestRecord) -> None:
        router = record.router or ""
        service = record.service or ""
        method = record.method if record.method in _METHODS else "OTHER"
        key = (router, service, method, status_class(record.status))
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(*key),
                self.duration.labels(router, service),
                self.bytes_sent.labels(router, service),
            )
            if len(self._children) < 10_000:
                self._children[key] = children
        requests, duration, sent = children
        requests.inc()
        duration.observe(record.duration)
        if record.bytes_sent:
            sent.inc(record.bytes_sent)
        if record.upstream_error is not None:
            self.upstream_errors.labels(service, record.upstream_error).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4

    def totals(self) -> dict[str, RouterTotals]:
        """Every router's counters so far (`""`: requests no router took), summed over
        services, methods and status classes; read from the exposition's own samples."""
        requests: dict[str, float] = {}
        errors: dict[str, float] = {}
        for family in self.requests.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    router = s.labels["router"]
                    requests[router] = requests.get(router, 0.0) + s.value
                    if s.labels["code"] == "5xx":
                        errors[router] = errors.get(router, 0.0) + s.value
        sums: dict[str, float] = {}
        buckets: dict[str, dict[float, float]] = {}
        for family in self.duration.collect():
            for s in family.samples:
                router = s.labels["router"]
                if s.name.endswith("_sum"):
                    sums[router] = sums.get(router, 0.0) + s.value
                elif s.name.endswith("_bucket"):
                    per = buckets.setdefault(router, {})
                    le = float(s.labels["le"])
                    per[le] = per.get(le, 0.0) + s.value
        return {
            router: RouterTotals(
                requests=n,
                errors=errors.get(router, 0.0),
                duration_sum=sums.get(router, 0.0),
                buckets=tuple(sorted(buckets.get(router, {}).items())),
            )
            for router, n in requests.items()
        }


# --------------------------------------------------------------------------- live traffic


@dataclass(frozen=True, slots=True)
class RouterTotals:
    """One router's counters since start: requests, 5xx answers, the summed duration and the
    duration histogram as (upper bound, cumulative count), +Inf last."""

    requests: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class RouterTraffic:
    """One router's traffic: totals since start, and over the reading's window its request
    rate, the share of 5xx answers and the latency (mean, p50, p95 in seconds); None where
    there is no window yet or no request in it."""

    requests: int
    errors: int
    rate: float | None
    error_share: float | None
    latency_mean: float | None
    latency_p50: float | None
    latency_p95: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rate": self.rate,
            "errorShare": self.error_share,
            "latency": None
            if self.latency_mean is None
            else {"mean": self.latency_mean, "p50": self.latency_p50, "p95": self.latency_p95},
        }


@dataclass(frozen=True, slots=True)
class TrafficReading:
    """Every router's traffic; `window` is the seconds the rates cover (None: first reading)."""

    window: float | None
    routers: Mapping[str, RouterTraffic] = field(default_factory=dict)


def quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated linearly inside its bucket as
    Prometheus' histogram_quantile does (the +Inf bucket answers the highest finite bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    i = bisect.bisect_left([count for _, count in buckets], rank)
    i = min(i, len(buckets) - 1)
    upper, count = buckets[i]
    if math.isinf(upper):
        return buckets[-2][0] if len(buckets) > 1 else None
    lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
    if count == below:
        return upper
    return lower + (upper - lower) * (rank - below) / (count - below)


def _minus(
    now: tuple[tuple[float, float], ...], then: tuple[tuple[float, float], ...]
) -> tuple[tuple[float, float], ...]:
    earlier = dict(then)
    return tuple((le, count - earlier.get(le, 0.0)) for le, count in now)


class Traffic:
    """Each router's request rate, error share and latency over the last `window` seconds.

    Nothing is done per request: the counters are sampled when someone reads (the dashboard
    does every two seconds), at most one kept per `step` seconds, and a reading compares the
    counters now with the newest sample at least `window` old (else the oldest one), as
    Prometheus' rate() compares two scrapes. The first reading, and the first after nobody
    read for three windows, has no window yet.
    """

    def __init__(
        self,
        totals: Callable[[], Mapping[str, RouterTotals]],
        *,
        window: float = 10.0,
        step: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._totals = totals
        self.window = window
        self.step = step
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, Mapping[str, RouterTotals]]] = deque()

    def read(self) -> TrafficReading:
        now = self._clock()
        current = self._totals()
        with self._lock:
            samples = self._samples
            # Keep one sample at least a window old (the baseline), drop the older ones.
            while len(samples) > 1 and samples[1][0] <= now - self.window:
                samples.popleft()
            if samples and samples[0][0] < now - 3 * self.window:
                samples.clear()  # nobody read for a long while: no average over all of it
            base = samples[0] if samples else None
            if not samples or now - samples[-1][0] >= self.step:
                samples.append((now, current))
        if base is None or now <= base[0]:
            return TrafficReading(
                None, {name: _traffic(t, None, None) for name, t in current.items()}
            )
        elapsed = now - base[0]
        return TrafficReading(
            elapsed,
            {name: _traffic(t, base[1].get(name), elapsed) for name, t in current.items()},
        )


def _traffic(now: RouterTotals, then: RouterTotals | None, elapsed: float | None) -> RouterTraffic:
    totals = (int(now.requests), int(now.errors))
    if elapsed is None:
        return RouterTraffic(*totals, None, None, None, None, None)
    then = then or RouterTotals()
    requests = now.requests - then.requests
    if requests <= 0:
        return RouterTraffic(*totals, 0.0, None, None, None, None)
    buckets = _minus(now.buckets, then.buckets)
    return RouterTraffic(
        *totals,
        rate=requests / elapsed,
        error_share=(now.errors - then.errors) / requests,
        latency_mean=(now.duration_sum - then.duration_sum) / requests,
        latency_p50=quantile(0.5, buckets),
        latency_p95=quantile(0.95, buckets),
    )
