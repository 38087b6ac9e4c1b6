"""Admin API: golden answers for the examples/ folders, the HTTP routes on a real admin
listener, /ping draining, live events on reload, redaction, structured config log lines.

`pytest --update-golden` rewrites tests/golden/admin/*.json (review the diff like code).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e import EXAMPLES, Served, http_client, run_proxy

from ingressproxy.admin.api import ConfigState, EntryPoint, ReloadStats, build_view, redact
from ingressproxy.admin.server import create_admin_app
from ingressproxy.ir.snapshot import Snapshot, SnapshotHolder
from ingressproxy.ir.table import RouteTable
from ingressproxy.manifests.model import Diagnostic, Severity, Source
from ingressproxy.observe.metrics import RouterTotals, Traffic, quantile
from ingressproxy.observe.record import normalize_name, router_key, service_key
from ingressproxy.server.reloader import build_snapshot, compile_options
from ingressproxy.server.settings import Settings
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import serve_in_thread

GOLDEN = Path(__file__).resolve().parent / "golden" / "admin"
CASES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
ENTRYPOINTS = (EntryPoint("web", "127.0.0.1:8080"), EntryPoint("admin", "127.0.0.1:9000"))


def _view_of(folder: Path) -> dict[str, Any]:
    built = build_snapshot(folder, compile_options(Settings(manifests=folder)))
    assert built is not None
    snap, good = built
    holder = SnapshotHolder()
    # loaded_at is the clock: leave it out so the answer is the same on every run.
    installed = holder.swap(dataclasses.replace(snap, loaded_at=0.0))
    view = build_view(installed, good.objects, entrypoints=ENTRYPOINTS, stats=ReloadStats(1))
    return {
        "overview": view.overview,
        "routers": list(view.routers),
        "services": list(view.services),
        "entrypoints": list(view.entrypoints),
        "diagnostics": list(view.diagnostics),
    }


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative to examples/, so sources read "imagemanager/ingress.yaml:13" on every machine.
    monkeypatch.chdir(EXAMPLES)
    got = _view_of(Path(case))
    golden = GOLDEN / f"{case}.json"
    text = json.dumps(got, indent=2, sort_keys=False) + "\n"
    if request.config.getoption("--update-golden"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden for {case}: run pytest --update-golden and review it"
    assert json.loads(golden.read_text(encoding="utf-8")) == got


def test_output_is_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES)
    first = json.dumps(_view_of(Path("login-collision")))
    assert json.dumps(_view_of(Path("login-collision"))) == first


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("imagemanager-image-labeling-http", "imagemanager-image-labeling-http"),
        ("ns-ing-api.foo.io/a/b", "ns-ing-api-foo-io-a-b"),
        ("-ns--ing-/", "ns-ing"),
        ("ns-ing-*.foo.com/", "ns-ing-foo-com"),
        ("ns-ing-café.io/ü", "ns-ing-café-io-ü"),  # Go's unicode.IsLetter keeps these
    ],
)
def test_normalize_like_traefik(raw: str, want: str) -> None:
    assert normalize_name(raw) == want


def test_names_follow_traefik() -> None:
    # The blog's dashboard shows the service as imagemanager-image-labeling-http.
    assert service_key("imagemanager", "image-labeling", "http") == (
        "imagemanager-image-labeling-http"
    )
    assert router_key(
        "imagemanager", "imagemanager-services", "api.imagemanager.io", "/search"
    ) == ("imagemanager-imagemanager-services-api-imagemanager-io-search")
    assert router_key("ns", "web", None, "/") == "ns-web"
    assert router_key("ns", "web", None, None) == "ns-web-default-backend"


def test_colliding_router_keys_get_a_rule_hash(tmp_path: Path) -> None:
    # `/a-b` and `/a/b` normalize alike; Exact and Prefix on one path share a key too.
    (tmp_path / "x.yaml").write_text(
        _ingress(
            "ns",
            "web",
            [("/a-b", "Prefix"), ("/a/b", "Prefix"), ("/c", "Exact"), ("/c", "Prefix")],
        )
        + _service("ns", "svc"),
        encoding="utf-8",
    )
    built = build_snapshot(tmp_path, compile_options(Settings(manifests=tmp_path)))
    assert built is not None
    names = [r["name"] for r in build_view(built[0], built[1].objects).routers]
    assert len(names) == len(set(names)) == 4
    for name in names:
        base, _, digest = str(name).rpartition("-")
        assert base in ("ns-web-a-io-a-b", "ns-web-a-io-c") and len(digest) == 20, names


# --------------------------------------------------------------------------- redaction


def test_redact() -> None:
    assert redact("nginx.ingress.kubernetes.io/auth-url", "https://x/") == "<redacted>"
    assert redact("example.com/api-key", "k") == "<redacted>"
    assert redact("note", "see https://bob:hunter2@db.example/x") == (
        "see https://<redacted>@db.example/x"
    )
    assert redact("app", "image-labeling") == "image-labeling"


def test_rawdata_redacts_credentials(tmp_path: Path) -> None:
    text = _ingress(
        "ns",
        "web",
        [("/", "Prefix")],
        annotations={
            "nginx.ingress.kubernetes.io/auth-url": "https://user:s3cret@auth.example/check",
            "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"x"}}',
            "example.com/upstream": "http://admin:hunter2@backend.example/",
            "example.com/team": "images",
        },
    )
    (tmp_path / "x.yaml").write_text(text + _service("ns", "svc"), encoding="utf-8")
    built = build_snapshot(tmp_path, compile_options(Settings(manifests=tmp_path)))
    assert built is not None
    raw = json.dumps(build_view(built[0], built[1].objects).rawdata)
    for secret in ("s3cret", "hunter2", "password"):
        assert secret not in raw
    ingress = next(
        o
        for o in build_view(built[0], built[1].objects).rawdata["objects"]  # type: ignore[attr-defined]
        if o["kind"] == "Ingress"
    )
    annotations = ingress["metadata"]["annotations"]
    assert annotations["example.com/team"] == "images"
    assert annotations["example.com/upstream"] == "http://<redacted>@backend.example/"
    assert annotations["nginx.ingress.kubernetes.io/auth-url"] == "<redacted>"


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def collision(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, httpx.Client]]:
    folder = tmp_path_factory.mktemp("collision") / "login-collision"
    shutil.copytree(EXAMPLES / "login-collision", folder)
    with (
        run_proxy(folder, watch=True, admin_port=0) as served,
        http_client(f"http://127.0.0.1:{served.app.state.admin_port}") as admin,
    ):
        yield served, admin


def test_routers_over_http(collision: tuple[Served, httpx.Client]) -> None:
    _, admin = collision
    r = admin.get("/api/http/routers")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    routers = {x["name"]: x for x in r.json()}
    win = routers["imagemanager-imagemanager-login-apps-apigateway-awesomecompany-io-login"]
    lose = routers["notesmanager-notesmanager-login-apps-apigateway-awesomecompany-io-login"]
    # The blog's collision: the older Ingress wins; the other is listed, disabled, with why.
    assert win["status"] == "warning" and "several namespaces" in win["warnings"][0]
    assert lose["status"] == "disabled"
    assert "imagemanager/imagemanager-login" in lose["error"][0], lose
    conflict = next(d for d in admin.get("/api/diagnostics").json() if d["code"] == "conflict")
    assert lose["source"] == f"{conflict['file']}:{conflict['line']}"

    one = admin.get(f"/api/http/routers/{lose['name']}")
    assert one.json() == lose
    # Traefik spells names name@provider; both work.
    assert admin.get(f"/api/http/routers/{lose['name']}@kubernetes").json() == lose
    missing = admin.get("/api/http/routers/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_router_filters(collision: tuple[Served, httpx.Client]) -> None:
    _, admin = collision
    disabled = admin.get("/api/http/routers", params={"status": "disabled"}).json()
    assert [r["ingress"] for r in disabled] == ["notesmanager/notesmanager-login"]
    found = admin.get("/api/http/routers", params={"search": "NOTESMANAGER-LOGIN"}).json()
    assert [r["ingress"] for r in found] == ["notesmanager/notesmanager-login"]
    assert admin.get("/api/http/routers", params={"search": "zzz"}).json() == []


def test_services_over_http(collision: tuple[Served, httpx.Client]) -> None:
    _, admin = collision
    services = {s["name"]: s for s in admin.get("/api/http/services").json()}
    assert set(services) == {"imagemanager-login-http", "notesmanager-login-http"}
    image = admin.get("/api/http/services/imagemanager-login-http").json()
    assert image == services["imagemanager-login-http"]
    assert image["usedBy"] == [
        "imagemanager-imagemanager-login-apps-apigateway-awesomecompany-io-login"
    ]
    assert [e["state"] for e in image["endpoints"]] == ["ready"] * len(image["endpoints"])
    assert admin.get("/api/http/services/nope").status_code == 404


def test_overview_entrypoints_diagnostics_rawdata(collision: tuple[Served, httpx.Client]) -> None:
    served, admin = collision
    overview = admin.get("/api/overview").json()
    assert overview["http"]["routers"] == {"total": 2, "warnings": 1, "errors": 1}
    assert overview["config"]["generation"] == served.app.state.holder.current.generation
    assert overview["config"]["loadedAt"].endswith("Z")
    eps = admin.get("/api/entrypoints").json()
    # The admin port was asked as 0: the entry point shows the port it got.
    assert eps[1] == {"name": "admin", "address": f"127.0.0.1:{served.app.state.admin_port}"}
    assert admin.get("/api/entrypoints/web").json() == eps[0] and eps[0]["name"] == "web"
    assert admin.get("/api/entrypoints/nope").status_code == 404
    codes = [d["code"] for d in admin.get("/api/diagnostics").json()]
    assert sorted(codes) == ["conflict", "shared-host"]
    raw = admin.get("/api/rawdata").json()
    assert set(raw) >= {"routers", "services", "entryPoints", "objects", "table", "diagnostics"}
    assert {o["kind"] for o in raw["objects"]} == {"Ingress", "Service", "EndpointSlice"}


def test_dashboard_is_served(collision: tuple[Served, httpx.Client]) -> None:
    _, admin = collision
    assert admin.get("/").headers["location"] == "/dashboard/"
    page = admin.get("/dashboard/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("dashboard.js", "dashboard.css"):
        assert f'"{asset}"' in page.text
        assert admin.get(f"/dashboard/{asset}").status_code == 200
    # No CDN: nothing on the page is fetched from another origin.
    assert "http://" not in page.text.replace("../", "") and "https://" not in page.text


def test_events_announce_reloads(collision: tuple[Served, httpx.Client]) -> None:
    served, admin = collision
    reloader = served.app.state.reloader
    with admin.stream("GET", "/api/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        first = _next_event(lines)
        assert first["generation"] == served.app.state.holder.current.generation
        reloader.reload(force=True)  # as SIGHUP does
        second = _next_event(lines)
    assert second["generation"] == first["generation"] + 1
    assert second["reloads"] == first["reloads"] + 1


def _next_event(lines: Iterator[str]) -> dict[str, Any]:
    event = None
    for line in lines:  # bounded by the stream's read timeout
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event == "config":
            data: dict[str, Any] = json.loads(line[len("data: ") :])
            return data
    raise AssertionError("event stream ended")


def test_metrics_route_needs_metrics() -> None:
    app = create_admin_app(SnapshotHolder(), asyncio.Event())
    assert all(getattr(r, "path", "") != "/metrics" for r in app.routes)


# --------------------------------------------------------------------------- /ping


def test_ping_drains() -> None:
    async def run() -> list[tuple[int, str]]:
        draining = asyncio.Event()
        app = create_admin_app(SnapshotHolder(), draining)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            before = await client.get("/ping")
            draining.set()  # what app.py's lifespan and cli's uvicorn shutdown do
            after = await client.get("/ping")
            head = await client.head("/ping")
        return [
            (before.status_code, before.text),
            (after.status_code, after.text),
            (head.status_code, ""),
        ]

    assert asyncio.run(run()) == [(200, "OK"), (503, "draining"), (503, "")]


def test_app_sets_draining_on_shutdown(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "notesmanager", tmp_path / "n")
    with run_proxy(tmp_path / "n", admin_port=0) as served:
        draining = served.app.state.draining
        with http_client(f"http://127.0.0.1:{served.app.state.admin_port}") as admin:
            assert admin.get("/ping").status_code == 200
        assert not draining.is_set()
    assert draining.is_set()


# --------------------------------------------------------------------------- config logs


def test_config_log_lines_carry_fields(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The blog's scale-to-zero: Traefik logs `Skipping service: no endpoints found
    # namespace=imagemanager ingress=imagemanager-services serviceName=... servicePort=...`.
    folder = tmp_path / "imagemanager"
    shutil.copytree(EXAMPLES / "imagemanager", folder)
    workloads = folder / "workloads.yaml"
    text = workloads.read_text(encoding="utf-8")
    head, sep, tail = text.partition("name: image-text-extraction-abc12")
    workloads.write_text(head + sep + tail.replace("ready: true", "ready: false"), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="ingressproxy.reload")
    with run_proxy(folder):
        pass
    lines = [r for r in caplog.records if "no endpoints found" in r.getMessage()]
    assert len(lines) == 1, caplog.messages
    message = lines[0].getMessage()
    for part in (
        "code=no-endpoints",
        "namespace=imagemanager",
        "ingress=imagemanager-services",
        "service=image-text-extraction",
        "port=http",
        f"file={folder}/ingress.yaml",
        "field=spec.rules[0].http.paths[2].backend",
    ):
        assert part in message, message
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields["service"] == "image-text-extraction" and isinstance(fields["line"], int)


def test_state_counts_failed_reloads() -> None:
    state = ConfigState(SnapshotHolder())
    state.on_failure("RuntimeError: boom")
    assert (state.stats.reloads, state.stats.failed, state.stats.last_error) == (
        1,
        1,
        "RuntimeError: boom",
    )
    assert state.view().overview["config"]["failedReloads"] == 1  # type: ignore[index]


# --------------------------------------------------------------------------- helpers


def _ingress(
    ns: str,
    name: str,
    paths: list[tuple[str, str]],
    *,
    host: str = "a.io",
    annotations: dict[str, str] | None = None,
) -> str:
    notes = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in (annotations or {}).items())
    rules = "".join(
        f"          - path: {p}\n            pathType: {t}\n            backend:\n"
        "              service: {name: svc, port: {number: 80}}\n"
        for p, t in paths
    )
    return (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
        f"metadata:\n  name: {name}\n  namespace: {ns}\n"
        + (f"  annotations:\n{notes}" if notes else "")
        + f"spec:\n  rules:\n    - host: {host}\n      http:\n        paths:\n{rules}---\n"
    )


def _service(ns: str, name: str) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        "spec:\n  ports:\n    - port: 80\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        f"metadata:\n  name: {name}-1\n  namespace: {ns}\n"
        f"  labels: {{kubernetes.io/service-name: {name}}}\n"
        "addressType: IPv4\nports:\n  - port: 8080\n"
        'endpoints:\n  - addresses: ["127.0.0.9"]\n'
    )


def test_explain_over_http(collision: tuple[Served, httpx.Client]) -> None:
    _, admin = collision
    r = admin.get(
        "/api/explain",
        params={"url": "http://apps.apigateway.awesomecompany.io/login/x", "method": "POST"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["method"] == "POST"
    assert body["status"] == 200
    assert body["route"]["ingress"] == "imagemanager/imagemanager-login"  # the oldest wins
    r = admin.get("/api/explain", params={"url": "http://apps.apigateway.awesomecompany.io/x"})
    assert r.json()["status"] == 404
    assert admin.get("/api/explain").status_code == 400  # url is required


def test_explain_validates_its_input(collision: tuple[Served, httpx.Client]) -> None:
    _, admin = collision
    url = "http://apps.apigateway.awesomecompany.io/login"
    refused = {
        "no url": {},
        "blank url": {"url": "  "},
        "url too long": {"url": "http://a.io/" + "x" * 5000},
        "space in url": {"url": "http://a.io/a b"},
        "control character": {"url": "http://a.io/\x01"},
        "bad method": {"url": url, "method": "GE T"},
        "long method": {"url": url, "method": "X" * 40},
        "bad header name": {"url": url, "header.X Y": "1"},
        "header with CR LF": {"url": url, "header.X-A": "1\r\nX-B: 2"},
        "header too long": {"url": url, "header.X-A": "v" * 5000},
        "too many headers": {"url": url, **{f"header.X-{i}": "1" for i in range(40)}},
        "unreadable URL": {"url": "http://[::1/x"},
    }
    for why, params in refused.items():
        r = admin.get("/api/explain", params=params)
        assert r.status_code == 400, (why, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json", why
        message = r.json()["message"]
        assert message and "Traceback" not in message, (why, message)
    twice = admin.get("/api/explain?url=/a&url=/b")
    assert twice.status_code == 400 and "twice" in twice.json()["message"]
    huge = admin.get(
        "/api/explain",
        params={"url": url, "header.X-Pad": "p" * 4000}
        | {f"header.X-{i}": "p" * 4000 for i in range(4)},
    )
    assert huge.status_code == 414


def test_explain_names_routers_as_written_and_by_id(
    collision: tuple[Served, httpx.Client],
) -> None:
    _, admin = collision
    # A path and a Host header instead of an absolute URL, as with curl -H 'Host: ...'.
    r = admin.get(
        "/api/explain",
        params={"url": "/login/x", "header.Host": "apps.apigateway.awesomecompany.io"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200
    route = body["route"]
    assert (route["ingress"], route["host"], route["path"]) == (
        "imagemanager/imagemanager-login",
        "apps.apigateway.awesomecompany.io",
        "/login",
    )
    routers = {x["name"] for x in admin.get("/api/http/routers").json()}
    assert route["name"] in routers
    assert body["backend"]["endpoints"], body["backend"]
    assert all(rule["name"] in routers for rule in body["rules"]), body["rules"]
    r = admin.get("/api/explain", params={"url": "nobody.example/x", "method": "delete"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["method"], r.json()["route"]) == (404, "DELETE", None)


def test_explain_never_shows_a_traceback(
    collision: tuple[Served, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin = collision

    def broken(*args: object) -> object:
        raise RuntimeError("a bug with /secret/internals")

    monkeypatch.setattr("ingressproxy.admin.server.explain_request", broken)
    r = admin.get("/api/explain", params={"url": "/login"})
    assert r.status_code == 500
    assert r.json() == {"message": "explain failed; the proxy's log says why"}


def test_skipped_router_is_described_by_the_ir(tmp_path: Path) -> None:
    # The blog's scale-to-zero: Traefik leaves the rule out, and the IR keeps it as skipped;
    # the API lists it disabled with the dialect, entry points and rule the IR gave it.
    folder = tmp_path / "imagemanager"
    shutil.copytree(EXAMPLES / "imagemanager", folder)
    workloads = folder / "workloads.yaml"
    text = workloads.read_text(encoding="utf-8")
    head, sep, tail = text.partition("name: image-text-extraction-abc12")
    workloads.write_text(head + sep + tail.replace("ready: true", "ready: false"), encoding="utf-8")
    built = build_snapshot(folder, compile_options(Settings(manifests=folder)))
    assert built is not None
    view = build_view(built[0], built[1].objects)
    text_router = next(r for r in view.routers if r["path"] == "/text-extraction")
    assert text_router["status"] == "disabled"
    assert text_router["dialect"] == "traefik"
    assert text_router["entryPoints"] == ["web", "websecure"]
    assert text_router["rule"] == "Host(`api.imagemanager.io`) && PathPrefix(`/text-extraction`)"


# --------------------------------------------------------------------------- reloads


def _error(message: str, line: int = 3, file: str = "a.yaml") -> Diagnostic:
    return Diagnostic(Severity.ERROR, "yaml", message, Source(file, line))


def test_failed_reloads_are_the_ones_that_brought_errors() -> None:
    state = ConfigState(SnapshotHolder())
    table = RouteTable()

    def swap(*errors: Diagnostic, at: float) -> dict[str, Any]:
        state.on_swap(Snapshot(table, diagnostics=errors, loaded_at=at), None)
        config: dict[str, Any] = state.view().overview["config"]  # type: ignore[assignment]
        return config

    ok = swap(at=100.0)
    assert (ok["reloads"], ok["failedReloads"], ok["lastError"]) == (1, 0, None)
    broken = swap(_error("cannot parse YAML"), at=101.0)
    assert (broken["reloads"], broken["failedReloads"]) == (2, 1)
    assert broken["lastError"] == "a.yaml:3: error: cannot parse YAML"
    assert broken["lastFailedReload"] == "1970-01-01T00:01:41.000Z"
    assert broken["lastSuccessfulReload"] == "1970-01-01T00:01:40.000Z"
    # Another file edited; the broken one is still broken (its error moved down two lines):
    # this reload brought nothing new, so it succeeded.
    again = swap(_error("cannot parse YAML", line=5), at=102.0)
    assert (again["reloads"], again["failedReloads"], again["lastError"]) == (3, 1, None)
    assert again["lastSuccessfulReload"] == "1970-01-01T00:01:42.000Z"
    worse = swap(_error("cannot parse YAML"), _error("bad port", file="b.yaml"), at=103.0)
    assert (worse["failedReloads"], worse["lastError"]) == (2, "b.yaml:3: error: bad port")
    state.on_failure("RuntimeError: boom")
    assert (state.stats.reloads, state.stats.failed, state.stats.last_error) == (
        5,
        3,
        "RuntimeError: boom",
    )
    fixed = swap(at=104.0)
    assert (fixed["reloads"], fixed["failedReloads"], fixed["lastError"]) == (6, 3, None)


# --------------------------------------------------------------------------- traffic


def test_traffic_rates_over_a_window() -> None:
    now = [0.0]
    counters: dict[str, RouterTotals] = {}
    traffic = Traffic(lambda: dict(counters), window=10.0, step=1.0, clock=lambda: now[0])
    first = traffic.read()
    assert first.window is None and first.routers == {}
    buckets = ((0.001, 2.0), (0.0025, 6.0), (0.005, 10.0), (math.inf, 10.0))
    counters["r"] = RouterTotals(requests=10, errors=1, duration_sum=0.03, buckets=buckets)
    now[0] = 2.0
    got = traffic.read()
    assert got.window == 2.0
    r = got.routers["r"]
    assert (r.requests, r.errors, r.rate, r.error_share) == (10, 1, 5.0, 0.1)
    assert r.latency_mean == pytest.approx(0.003)
    assert r.latency_p50 == pytest.approx(0.001 + 0.0015 * 3 / 4)
    assert r.latency_p95 == pytest.approx(0.0025 + 0.0025 * 3.5 / 4)
    assert r.to_json()["errorShare"] == 0.1
    # Read again before a step has passed: compared with the same baseline.
    now[0] = 2.5
    assert traffic.read().window == 2.5
    # Twelve seconds on, the baseline is the newest sample at least a window old (t=2).
    counters["r"] = RouterTotals(requests=10, errors=1, duration_sum=0.03, buckets=buckets)
    now[0] = 13.0
    quiet = traffic.read()
    assert quiet.window == 11.0
    assert (quiet.routers["r"].rate, quiet.routers["r"].error_share) == (0.0, None)
    assert quiet.routers["r"].to_json()["latency"] is None
    # Nobody read for minutes: no average over all of it, a fresh start.
    now[0] = 300.0
    assert traffic.read().window is None


@pytest.mark.parametrize(
    ("q", "buckets", "want"),
    [
        (0.5, ((0.1, 0.0), (0.2, 4.0), (math.inf, 4.0)), 0.15),
        (0.5, ((0.1, 4.0), (math.inf, 4.0)), 0.05),
        # In the +Inf bucket: the highest finite bound, as histogram_quantile answers.
        (0.99, ((0.1, 1.0), (math.inf, 4.0)), 0.1),
        (0.5, ((0.1, 0.0), (math.inf, 0.0)), None),
        (0.5, (), None),
    ],
)
def test_quantile(q: float, buckets: tuple[tuple[float, float], ...], want: float | None) -> None:
    assert quantile(q, buckets) == (want if want is None else pytest.approx(want))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, httpx.Client]]:
    """A proxy in front of one echo backend (`/status/NNN` answers NNN), admin on."""
    folder = tmp_path_factory.mktemp("shop")
    with serve_in_thread(create_echo_app("web", pod="web-0", namespace="shop")) as backend:
        (folder / "shop.yaml").write_text(
            _ingress("shop", "web", [("/status", "Prefix")], host="shop.test")
            + "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: shop}\n"
            "spec:\n  ports:\n    - port: 80\n---\n"
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
            "metadata:\n  name: svc-1\n  namespace: shop\n"
            "  labels: {kubernetes.io/service-name: svc}\n"
            f"addressType: IPv4\nports:\n  - port: {backend.port}\n"
            'endpoints:\n  - addresses: ["127.0.0.1"]\n',
            encoding="utf-8",
        )
        with (
            run_proxy(folder, admin_port=0, access_log="off") as served,
            http_client(f"http://127.0.0.1:{served.app.state.admin_port}") as admin,
        ):
            yield served, admin


def test_traffic_over_http(shop: tuple[Served, httpx.Client]) -> None:
    served, admin = shop
    first = admin.get("/api/traffic")
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.json()["window"] is None  # nothing to compare with yet
    for _ in range(3):
        assert served.get("/status/200", host="shop.test").status_code == 200
    assert served.get("/status/503", host="shop.test").status_code == 503
    assert served.get("/nope", host="elsewhere.test").status_code == 404
    body = admin.get("/api/traffic").json()
    assert body["window"] > 0
    (router,) = body["routers"]
    assert (router["ingress"], router["host"], router["path"]) == (
        "shop/web",
        "shop.test",
        "/status",
    )
    assert router["name"] == "shop-web-shop-test-status"
    assert (router["requests"], router["errors"], router["errorShare"]) == (4, 1, 0.25)
    assert router["rate"] > 0
    latency = router["latency"]
    assert 0 < latency["mean"] < 10 and 0 < latency["p50"] <= latency["p95"]
    assert (body["unrouted"]["requests"], body["unrouted"]["errorShare"]) == (1, 0.0)


def test_traffic_needs_metrics() -> None:
    async def run() -> int:
        app = create_admin_app(SnapshotHolder(), asyncio.Event())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            return (await client.get("/api/traffic")).status_code

    assert asyncio.run(run()) == 404
