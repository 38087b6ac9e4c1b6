"""Admin API: golden answers for the examples/ folders, the HTTP routes on a real admin
listener, /ping draining, live events on reload, redaction, structured config log lines.

`pytest --update-golden` rewrites tests/golden/admin/*.json (review the diff like code).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e import EXAMPLES, Served, http_client, run_proxy

from ingressproxy.admin.api import ConfigState, EntryPoint, ReloadStats, build_view, redact
from ingressproxy.admin.server import create_admin_app
from ingressproxy.ir.snapshot import SnapshotHolder
from ingressproxy.observe.record import normalize_name, router_key, service_key
from ingressproxy.server.reloader import build_snapshot, compile_options
from ingressproxy.server.settings import Settings

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
