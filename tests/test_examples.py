"""The blog post's scenarios (examples/), run as a user would: `serve --fake-backends` on the
bundled folders, requests through real sockets, and `ingressproxy check` as a subprocess.

The fake backends bind the examples' loopback endpoints 127.0.N.x, on a port free there
(e2e.example_copy): the examples' own 8080 may be held by `make run` or another test run.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import EXAMPLES, Served, echo, example_copy, http_client, run_proxy
from ruamel.yaml import YAML

from ingressproxy.frontends.semantics import Flavor

IMAGEMANAGER_HOST = "api.imagemanager.io"
IMAGEMANAGER_SERVICES = [
    ("/labeling", "image-labeling"),
    ("/search", "image-search"),
    ("/text-extraction", "image-text-extraction"),
]


@pytest.fixture(scope="module")
def imagemanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # As `ingressproxy serve examples/imagemanager --fake-backends`, with an ephemeral admin port.
    folder, _ = example_copy("imagemanager", tmp_path_factory.mktemp("examples") / "im")
    with run_proxy(folder, fake_backends=True, watch=True, admin_port=0) as served:
        yield served


@pytest.mark.parametrize(("path", "service"), IMAGEMANAGER_SERVICES)
def test_imagemanager_routes_round_robin(imagemanager: Served, path: str, service: str) -> None:
    answers = [imagemanager.get(path, host=IMAGEMANAGER_HOST) for _ in range(9)]
    assert [r.status_code for r in answers] == [200] * 9
    echoes = [echo(r) for r in answers]
    assert {(e.namespace, e.service, e.path) for e in echoes} == {("imagemanager", service, path)}
    # Three ready Pods behind each Service, taken in turn.
    assert Counter(e.pod for e in echoes) == {f"{service}-{i}": 3 for i in range(3)}


def test_imagemanager_subpath_and_query(imagemanager: Served) -> None:
    r = imagemanager.get("/search/cats?q=tabby", host=IMAGEMANAGER_HOST)
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.service, e.path, e.query) == ("image-search", "/search/cats", "q=tabby")


def test_imagemanager_unknown_path_is_404(imagemanager: Served) -> None:
    r = imagemanager.get("/nope", host=IMAGEMANAGER_HOST)
    assert r.status_code == 404
    # docs/routing.md "Statuses": the body names the host and path.
    assert IMAGEMANAGER_HOST in r.text and "/nope" in r.text, r.text


def test_imagemanager_other_host_is_404(imagemanager: Served) -> None:
    assert imagemanager.get("/labeling", host="api.notesmanager.io").status_code == 404


def test_admin_ping(imagemanager: Served) -> None:
    port = imagemanager.app.state.admin_port
    assert isinstance(port, int) and port > 0
    with http_client(f"http://127.0.0.1:{port}") as admin:
        r = admin.get("/ping")
    assert (r.status_code, r.text) == (200, "OK")


def test_notesmanager_search(tmp_path: Path) -> None:
    folder, _ = example_copy("notesmanager", tmp_path / "notesmanager")
    with run_proxy(folder, fake_backends=True, watch=True) as served:
        answers = [served.get("/search", host="api.notesmanager.io") for _ in range(3)]
        missing = served.get("/search", host=IMAGEMANAGER_HOST)
    assert [r.status_code for r in answers] == [200] * 3
    assert {(echo(r).namespace, echo(r).service) for r in answers} == {
        ("notesmanager", "notes-search")
    }
    assert {echo(r).pod for r in answers} == {f"notes-search-{i}" for i in range(3)}
    assert missing.status_code == 404


def test_login_collision_oldest_wins(tmp_path: Path) -> None:
    # Traefik alternates between the two teams' login Services; the older Ingress
    # (imagemanager, created 16:20 vs 16:25) takes every request here.
    folder, _ = example_copy("login-collision", tmp_path / "login-collision")
    with run_proxy(folder, fake_backends=True, watch=True) as served:
        answers = [
            served.get("/login", host="apps.apigateway.awesomecompany.io") for _ in range(10)
        ]
    assert [r.status_code for r in answers] == [200] * 10
    assert {(echo(r).namespace, echo(r).service) for r in answers} == {("imagemanager", "login")}


def test_check_reports_login_collision() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(EXAMPLES / "login-collision")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLES.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The loser is the object of a warning that names the winner (docs/routing.md "Conflicts").
    conflict_lines = [
        line
        for line in proc.stdout.splitlines()
        if "warning: Ingress notesmanager/notesmanager-login:" in line
        and "/login" in line
        and "imagemanager/imagemanager-login" in line
    ]
    assert conflict_lines, proc.stdout


# --------------------------------------------------------------------------- scale to zero
# The blog's "scale to zero": image-text-extraction's Deployment is scaled to 0, so its
# EndpointSlice lists no endpoints. Its path answers 503 naming the backend; the rest still work.


def scale_to_zero(folder: Path, service: str) -> None:
    """Empty the endpoint list of every EndpointSlice of `service` in folder/workloads.yaml."""
    path = folder / "workloads.yaml"
    yaml = YAML()  # round-trip: keeps the rest of the file as the user wrote it
    yaml.preserve_quotes = True
    docs = list(yaml.load_all(path.read_text(encoding="utf-8")))
    edited = 0
    for doc in docs:
        labels = (doc.get("metadata") or {}).get("labels") or {}
        if (
            doc.get("kind") == "EndpointSlice"
            and labels.get("kubernetes.io/service-name") == service
        ):
            doc["endpoints"] = []
            edited += 1
    assert edited == 1, f"expected one EndpointSlice of {service} in {path}"
    out = io.StringIO()
    yaml.dump_all(docs, out)
    path.write_text(out.getvalue(), encoding="utf-8")


def test_scale_to_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The blog post's story: its Ingress carries Traefik annotations, so (--flavor auto) it
    # is served as Traefik serves it: "in Traefik's case, the Controller simply returns HTTP
    # 404", and its log says "Skipping service".
    folder, _ = example_copy("imagemanager", tmp_path / "imagemanager")
    scale_to_zero(folder, "image-text-extraction")
    with run_proxy(folder, fake_backends=True) as served:
        gone = served.get("/text-extraction", host=IMAGEMANAGER_HOST)
        others = [served.get(p, host=IMAGEMANAGER_HOST) for p in ("/labeling", "/search")]
    assert gone.status_code == 404, gone.text
    assert [r.status_code for r in others] == [200, 200]
    assert [echo(r).service for r in others] == ["image-labeling", "image-search"]
    skipped = [m for m in caplog.messages if "Skipping service" in m]
    assert any("image-text-extraction" in m for m in skipped), caplog.messages


def test_scale_to_zero_in_the_spec_dialect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # --flavor spec keeps the rule and answers 503 (docs/routing.md), with a log line like
    # Traefik's "Skipping service: ..." at the first request.
    folder, _ = example_copy("imagemanager", tmp_path / "imagemanager")
    scale_to_zero(folder, "image-text-extraction")
    with run_proxy(folder, fake_backends=True, flavor=Flavor.SPEC) as served:
        gone = served.get("/text-extraction", host=IMAGEMANAGER_HOST)
    assert gone.status_code == 503, gone.text
    assert "imagemanager/image-text-extraction:http" in gone.text
    skipped = [m for m in caplog.messages if m.startswith("Skipping service")]
    assert any("serviceName=image-text-extraction" in m for m in skipped), caplog.messages


def test_debug_headers_name_the_rule_and_endpoint(tmp_path: Path) -> None:
    """`serve --debug-headers`: one header per proxied response saying which Ingress rule and
    endpoint answered."""
    folder, port = example_copy("imagemanager", tmp_path / "imagemanager")
    with run_proxy(folder, fake_backends=True, debug_headers=True) as served:
        r = served.get("/search/x", host="api.imagemanager.io")
        assert r.status_code == 200
        pod = echo(r)
        route = r.headers.get_list("x-ingressproxy-route")
        assert len(route) == 1
        assert route[0].startswith(
            "imagemanager/imagemanager-services spec.rules[0].http.paths[1] Prefix "
            "api.imagemanager.io/search -> imagemanager/image-search:http 127.0.2."
        ), route
        assert route[0].endswith(f":{port}")
        assert pod.service == "image-search"
    with run_proxy(folder, fake_backends=True) as served:
        assert (
            "x-ingressproxy-route" not in served.get("/search", host="api.imagemanager.io").headers
        )


# ingress-nginx's docs/examples/rewrite, served as ingress-nginx serves it (class nginx).
@pytest.mark.parametrize(
    ("path", "upstream"),
    [("/something", "/"), ("/something/", "/"), ("/something/new", "/new")],
)
def test_nginx_rewrite_example(tmp_path: Path, path: str, upstream: str) -> None:
    folder, _ = example_copy("nginx-rewrite", tmp_path / "nginx-rewrite")
    with run_proxy(folder, fake_backends=True) as served:
        r = served.get(path, host="rewrite.bar.com")
    assert r.status_code == 200, r.text
    assert (echo(r).service, echo(r).path) == ("http-svc", upstream)


def test_nginx_app_root_example(tmp_path: Path) -> None:
    folder, _ = example_copy("nginx-rewrite", tmp_path / "nginx-rewrite")
    with run_proxy(folder, fake_backends=True) as served:
        root = served.get("/", host="approot.bar.com")
        app = served.get("/app1", host="approot.bar.com")
    # The example's own `curl -I`: 302 with Location http://approot.bar.com/app1.
    assert root.status_code == 302
    assert root.headers["location"] == "http://approot.bar.com/app1"
    assert app.status_code == 200 and echo(app).path == "/app1"


def test_explain_compare_shows_what_the_nginx_annotations_change() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingressproxy",
            "explain",
            str(EXAMPLES / "nginx-rewrite"),
            "http://rewrite.bar.com/something/new",
            "--compare",
            "spec,nginx",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "spec, nginx route GET http://rewrite.bar.com/something/new differently:" in lines
    outcome = {
        line.split()[0]: line
        for line in lines
        if line.startswith("  spec ") or line.startswith("  nginx ")
    }
    # Without the annotations the regex path is a literal Prefix that matches nothing here.
    assert "404" in outcome["spec"]
    assert "default/http-svc:80 as /new Host rewrite.bar.com" in outcome["nginx"]
    assert "upstream request: GET /new  Host: rewrite.bar.com" in proc.stdout
