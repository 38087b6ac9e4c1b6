"""Prometheus metrics: per-request counters fed by the proxy's observer, config gauges read at
scrape time.

Flow: proxy -> RequestRecord -> ProxyMetrics (counters, histogram); ConfigState -> a collector
that reads reloads, routers and services when /metrics is scraped. Names follow Traefik's
(`traefik_router_requests_total` ...) with our prefix; each instance has its own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from ..admin.api import ConfigState
from .record import RequestRecord

__all__ = ["ConfigCollector", "ProxyMetrics", "status_class"]

# Label values are bounded: a client can send any method, and each value is a new series.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
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
        if state is not None:
            r.register(ConfigCollector(state))
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
