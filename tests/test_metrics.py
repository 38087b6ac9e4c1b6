"""Prometheus metrics: counters move as real traffic flows through the proxy, config gauges
follow reloads, and the exposition parses as Prometheus text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from e2e import EXAMPLES, Served, example_copy, http_client, run_proxy
from prometheus_client.parser import text_string_to_metric_families

from ingressproxy.admin.api import ConfigState
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.ir.snapshot import SnapshotHolder
from ingressproxy.observe.metrics import ProxyMetrics, status_class
from ingressproxy.observe.record import RequestRecord

HOST = "api.imagemanager.io"
LABELING = "imagemanager-imagemanager-services-api-imagemanager-io-labeling"
LABELING_SVC = "imagemanager-image-labeling-http"
TEXT = "imagemanager-imagemanager-services-api-imagemanager-io-text-extraction"
TEXT_SVC = "imagemanager-image-text-extraction-http"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(admin: httpx.Client) -> Samples:
    r = admin.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, httpx.Client]]:
    # The blog's imagemanager with image-text-extraction pointing at a port nobody listens on,
    # so the same proxy shows success, 404, 503 and an upstream connect error. In the spec
    # dialect: its Traefik annotations would otherwise make it Traefik's, which leaves the
    # unusable rule out (404), and these tests are about the metrics of each outcome.
    folder, _ = example_copy("imagemanager", tmp_path_factory.mktemp("metrics") / "imagemanager")
    with (
        run_proxy(
            folder, fake_backends=True, admin_port=0, access_log="off", flavor=Flavor.SPEC
        ) as served,
        http_client(f"http://127.0.0.1:{served.app.state.admin_port}") as admin,
    ):
        yield served, admin


def test_requests_are_counted(proxy: tuple[Served, httpx.Client]) -> None:
    served, admin = proxy
    before = scrape(admin)
    for _ in range(3):
        assert served.get("/labeling", host=HOST).status_code == 200
    assert served.request("POST", "/labeling", host=HOST).status_code == 200
    assert served.get("/nothing-here", host=HOST).status_code == 404
    after = scrape(admin)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"router": LABELING, "service": LABELING_SVC, "code": "2xx"}
    assert delta("ingressproxy_requests_total", method="GET", **ok) == 3
    assert delta("ingressproxy_requests_total", method="POST", **ok) == 1
    # Unrouted requests count too, with empty router and service.
    assert (
        delta("ingressproxy_requests_total", router="", service="", method="GET", code="4xx") == 1
    )
    hist = {"router": LABELING, "service": LABELING_SVC}
    assert delta("ingressproxy_request_duration_seconds_count", **hist) == 4
    assert delta("ingressproxy_request_duration_seconds_sum", **hist) > 0
    assert delta("ingressproxy_response_bytes_total", **hist) > 0
    # Nothing is in flight between requests.
    assert value(after, "ingressproxy_open_connections", entrypoint="web") == 0


def test_unavailable_and_upstream_errors(proxy: tuple[Served, httpx.Client]) -> None:
    served, admin = proxy
    holder = served.app.state.holder
    # Point /search at an endpoint that refuses connections: the proxy answers 502.
    before = scrape(admin)
    search = "imagemanager-image-search-http"
    # 127.0.9.9:1 is a loopback address with nothing listening.
    route = next(r for r in holder.current.table.routes() if r.path == "/search")
    dead = replace(
        route.backend,
        endpoints=(replace(route.backend.endpoints[0], address="127.0.9.9", port=1, base_url=""),),
    )
    assert dead.endpoints[0].base_url == "http://127.0.9.9:1"
    table = holder.current.table
    host_table = table.exact_hosts[HOST]
    new_prefix = dict(host_table.prefix)
    new_prefix["/search"] = replace(route, backend=dead)
    new_table = replace(table, exact_hosts={HOST: replace(host_table, prefix=new_prefix)})
    holder.swap(replace(holder.current, table=new_table))
    r = served.get("/search", host=HOST)
    assert r.status_code == 502
    after = scrape(admin)
    assert (
        value(after, "ingressproxy_upstream_errors_total", service=search, kind="connect")
        - value(before, "ingressproxy_upstream_errors_total", service=search, kind="connect")
        == 1
    )
    router = "imagemanager-imagemanager-services-api-imagemanager-io-search"
    assert (
        value(
            after,
            "ingressproxy_requests_total",
            router=router,
            service=search,
            method="GET",
            code="5xx",
        )
        == 1
    )


def test_config_gauges_follow_reloads(proxy: tuple[Served, httpx.Client]) -> None:
    served, admin = proxy
    before = scrape(admin)
    assert value(before, "ingressproxy_routers", status="enabled") == 3
    assert value(before, "ingressproxy_services", status="enabled") == 3
    assert value(before, "ingressproxy_config_objects") == served.app.state.holder.current.objects
    assert value(before, "ingressproxy_config_last_reload_success_timestamp_seconds") > 0
    reloads = value(before, "ingressproxy_config_reloads_total")
    assert reloads >= 1
    served.app.state.reloader.reload(force=True)
    after = scrape(admin)
    assert value(after, "ingressproxy_config_reloads_total") == reloads + 1
    assert (
        value(after, "ingressproxy_config_generation") == served.app.state.holder.current.generation
    )
    assert value(after, "ingressproxy_config_reloads_failed_total") == value(
        before, "ingressproxy_config_reloads_failed_total"
    )


def test_observer_counts_records() -> None:
    metrics = ProxyMetrics(ConfigState(SnapshotHolder()), open_connections=lambda: 7)
    rec = RequestRecord(
        time=0.0,
        client=None,
        method="BREW",
        host="h",
        path="/",
        status=418,
        duration=0.5,
        bytes_sent=3,
    )
    metrics(rec)
    metrics(rec)
    body, _ = metrics.render()
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    # Unknown methods share one label value, so a client cannot create series at will.
    assert (
        value(
            samples,
            "ingressproxy_requests_total",
            router="",
            service="",
            method="OTHER",
            code="4xx",
        )
        == 2
    )
    assert value(samples, "ingressproxy_open_connections", entrypoint="web") == 7
    assert value(samples, "ingressproxy_config_generation") == 0


@pytest.mark.parametrize(
    ("status", "cls"), [(200, "2xx"), (404, "4xx"), (499, "4xx"), (503, "5xx"), (99, "other")]
)
def test_status_class(status: int, cls: str) -> None:
    assert status_class(status) == cls


def test_no_observer_without_admin_and_access_log(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "notesmanager", tmp_path / "n")
    with run_proxy(tmp_path / "n", access_log="off") as served:
        proxy = served.app.state.proxy
        # The hot path then skips all per-request bookkeeping.
        assert proxy._observer is None
        assert served.app.state.metrics is None
