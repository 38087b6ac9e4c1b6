"""The pytest plugin (ingressproxy.pytest_plugin, entry point pytest11) as users meet it.

Users' test suites are run with pytester in a subprocess, so the plugin is found through its
entry point exactly as after `pip install ingressproxy`; and our own example tests below use
the same fixtures, so the fixtures stay honest.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e import example_copy

from ingressproxy.testing.server import Proxy

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOST = "api.imagemanager.io"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's repository: the imagemanager manifests in k8s/, configured in pytest.ini; their
    EndpointSlices name a port free on their addresses, where nothing listens (a `make run`
    beside us serves the example's own 8080)."""
    example_copy("imagemanager", pytester.path / "k8s")
    pytester.makeini(
        """
        [pytest]
        ingressproxy_manifests = k8s
        ingressproxy_fake =
            imagemanager/image-search
            image-labeling
        """
    )
    return pytester


def test_fixture_from_ini_with_fakes(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import httpx

        def test_search(ingressproxy):
            r = ingressproxy.get("/search/cats?q=1", host="api.imagemanager.io")
            assert r.status_code == 200
            body = r.json()
            assert (body["service"], body["namespace"]) == ("image-search", "imagemanager")
            assert body["path"] == "/search/cats?q=1"
            route = ingressproxy.explain("http://api.imagemanager.io/search/cats")
            assert route.status == 200
            assert route.route.backend.service == "image-search"
            assert route.route.backend.endpoints[0].base_url == (
                ingressproxy.fakes["imagemanager/image-search"].url
            )

        def test_namespace_found_for_a_bare_service_name(ingressproxy):
            r = ingressproxy.get("/labeling", host="api.imagemanager.io")
            assert r.json()["namespace"] == "imagemanager"
            assert set(ingressproxy.fakes) == {"imagemanager/image-search", "image-labeling"}

        def test_not_faked_keeps_the_folder_endpoints(ingressproxy):
            # the EndpointSlice addresses 127.0.3.x, on a free port: nothing listens there
            r = ingressproxy.get("/text-extraction", host="api.imagemanager.io")
            assert r.status_code == 502

        def test_admin_and_snapshot(ingressproxy):
            assert httpx.get(ingressproxy.admin_url + "/ping", trust_env=False).text == "OK"
            assert ingressproxy.snapshot.routes == 3
            assert [d for d in ingressproxy.diagnostics if d.severity == "error"] == []
            assert ingressproxy.get("/nope", host="api.imagemanager.io").status_code == 404
        """
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_marker_and_factory_and_clean_stop(project: pytest.Pytester) -> None:
    ports = project.path / "ports.txt"
    project.makepyfile(
        f"""
        import pytest

        @pytest.mark.ingressproxy(fake="*", admin=False)
        def test_every_service_faked(ingressproxy):
            got = [
                ingressproxy.get(p, host="api.imagemanager.io").json()["service"]
                for p in ("/search", "/labeling", "/text-extraction")
            ]
            assert got == ["image-search", "image-labeling", "image-text-extraction"]
            assert ingressproxy.admin_url is None

        def test_two_proxies(ingressproxy_factory, tmp_path):
            first = ingressproxy_factory("k8s", fake=["image-search"])
            second = ingressproxy_factory(
                "k8s", backends={{"image-search": first.fakes["image-search"].url}}
            )
            r = second.get("/search", host="api.imagemanager.io")
            assert r.json()["service"] == "image-search"
            ports = [first.port, second.port, int(first.fakes["image-search"].url.split(":")[-1])]
            open({str(ports)!r}, "w").write(" ".join(map(str, ports)))
        """
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    # Everything the fixtures started was stopped with the test: nothing listens any more.
    for port in map(int, ports.read_text().split()):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, port


def test_overriding_the_manifests_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        f"""
        import shutil
        import pytest

        @pytest.fixture
        def ingressproxy_manifests(tmp_path):
            shutil.copytree({str(EXAMPLES / "login-collision")!r}, tmp_path / "m")
            return tmp_path / "m"

        @pytest.fixture
        def ingressproxy_fake():
            return ["*"]
        """
    )
    pytester.makepyfile(
        """
        def test_oldest_ingress_wins(ingressproxy):
            r = ingressproxy.get("/login", host="apps.apigateway.awesomecompany.io")
            assert (r.json()["namespace"], r.json()["service"]) == ("imagemanager", "login")
            assert "conflict" in [d.code for d in ingressproxy.diagnostics]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_manifests_the_error_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_x(ingressproxy):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set `ingressproxy_manifests = k8s`*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.ingressproxy(manifests=None, fake=()*"])


# --------------------------------------------------------------------------- our own use


@pytest.mark.ingressproxy(manifests=EXAMPLES / "imagemanager", fake="*")
@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/labeling", "image-labeling"),
        ("/search", "image-search"),
        ("/text-extraction/page/1", "image-text-extraction"),
    ],
)
def test_imagemanager_with_every_service_faked(
    ingressproxy: Proxy, path: str, service: str
) -> None:
    r = ingressproxy.get(path, host=HOST)
    assert r.status_code == 200, r.text
    assert (r.json()["service"], r.json()["path"]) == (service, path)


@pytest.mark.ingressproxy(manifests=EXAMPLES / "notesmanager", fake=["notes-search"])
def test_notesmanager_other_host_is_404(ingressproxy: Proxy) -> None:
    assert ingressproxy.get("/search", host="api.notesmanager.io").json()["service"] == (
        "notes-search"
    )
    assert ingressproxy.get("/search", host=HOST).status_code == 404


def test_factory_proxy_follows_edits(
    ingressproxy_factory: Callable[..., Proxy], tmp_path: Path
) -> None:
    folder = tmp_path / "k8s"
    shutil.copytree(EXAMPLES / "imagemanager", folder)
    proxy = ingressproxy_factory(folder, fake=["image-search"], watch=True, admin=False)
    assert proxy.get("/search", host=HOST).status_code == 200
    generation = proxy.snapshot.generation
    ingress = folder / "ingress.yaml"
    ingress.write_text(ingress.read_text().replace("path: /search", "path: /find"))
    holder = proxy.app.state.holder
    assert holder.wait_for_generation(generation + 1, timeout=20), "no reload after the edit"
    assert proxy.get("/search", host=HOST).status_code == 404
    assert proxy.get("/find", host=HOST).json()["service"] == "image-search"


@pytest.mark.ingressproxy(manifests=EXAMPLES / "imagemanager", fake="*", max_headers=6)
def test_the_fixture_runs_the_server_serve_runs(ingressproxy: Proxy) -> None:
    """The request guard `serve` puts in front, with the marker's limits: httpx sends five
    header fields, and a seventh is refused before the proxy sees the request
    (tests/test_stack.py compares more)."""
    from ingressproxy.server.guard import GuardedHttpToolsProtocol
    from ingressproxy.server.stack import ProxyServer

    assert isinstance(ingressproxy.server.server, ProxyServer)
    assert issubclass(ingressproxy.server.config.http, GuardedHttpToolsProtocol)  # type: ignore[arg-type]
    assert ingressproxy.get("/search", host=HOST, headers={"A": "1"}).status_code == 200
    refused = ingressproxy.get("/search", host=HOST, headers={"A": "1", "B": "2"})
    assert refused.status_code == 431
