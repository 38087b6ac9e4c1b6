"""ingress-nginx's default-backend and custom-http-errors in the nginx dialect, on real
sockets: kubernetes/ingress-nginx test/e2e/annotations/default_backend.go and
customhttperrors.go, ported, plus what nginx.tmpl's CUSTOM_ERRORS location sends.

Echo backends stand in for the Services: the error backend's JSON answer shows the request
it got (path, X-Code, X-Original-URI...)."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e import Served, cluster, echo, run_proxy
from test_nginx_rewrite import HOST, SERVICE, ingress

from ingressproxy.frontends.semantics import Flavor

ERRORS = """\
apiVersion: v1
kind: Service
metadata: {name: from-annotation, namespace: default}
spec:
  ports: [{name: http, port: 8080, targetPort: 8080}]
"""

# A Service with no EndpointSlice at all: nothing ready behind it.
EMPTY = """\
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def to_service(doc: str, name: str, port: str = "80") -> str:
    return doc.replace("name: http-svc", f"name: {name}").replace("number: 80", f"number: {port}")


@contextmanager
def proxy(
    tmp_path: Path, *docs: str, raw: tuple[str, ...] = (), **settings: Any
) -> Iterator[Served]:
    """`docs` with echo Pods behind http-svc and from-annotation; `raw` documents (and the
    Service `empty`) go in as they are, with no Pods started for them."""
    fixture = tmp_path / "fixture"
    fixture.mkdir(parents=True)
    (fixture / "app.yaml").write_text("---\n".join([SERVICE, ERRORS, *docs]))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        (folder / "empty.yaml").write_text("---\n".join([EMPTY, *raw]))
        with run_proxy(folder, flavor=Flavor.NGINX, **settings) as served:
            yield served


def codes(served: Served) -> list[str]:
    return [d.code for d in served.app.state.holder.current.diagnostics]


def test_default_backend_takes_a_route_whose_service_has_no_endpoints(tmp_path: Path) -> None:
    # default_backend.go "should use a custom default backend as upstream": the Ingress names
    # Service "invalid" (which does not exist); requests go to the annotation's Service with
    # X-Code 503, the Ingress's name, the missing Service's name and the client's request id.
    app = to_service(
        ingress("default-backend", "/", {"default-backend": "from-annotation"}), "invalid"
    )
    with proxy(tmp_path, app) as served:
        r = served.request(
            "GET",
            "/alma/armud",
            host=HOST,
            headers={"x-request-id": "something-unique", "accept": "text/html"},
        )
        assert r.status_code == 200, r.text
        got = echo(r)
        assert got.service == "from-annotation"
        assert got.target == "/alma/armud"
        assert got.header("x-code") == "503"
        assert got.header("x-ingress-name") == "default-backend"
        assert got.header("x-service-name") == "invalid"
        assert got.header("x-service-port") == "80"
        assert got.header("x-namespace") == "default"
        assert got.header("x-format") == "text/html"
        assert got.header("x-request-id") == "something-unique"


def test_default_backend_is_not_for_unmatched_paths_or_served_routes(tmp_path: Path) -> None:
    app = ingress("app", "/app", {"default-backend": "from-annotation"})
    with proxy(tmp_path, app) as served:
        assert echo(served.get("/app", host=HOST)).service == "http-svc"
        assert served.get("/other", host=HOST).status_code == 404


def test_a_route_to_a_service_without_ready_endpoints_uses_it_too(tmp_path: Path) -> None:
    app = to_service(ingress("app", "/", {"default-backend": "from-annotation"}), "empty")
    with proxy(tmp_path, app) as served:
        got = echo(served.get("/x", host=HOST))
        assert got.service == "from-annotation"
        assert got.header("x-service-name") == "empty"


def test_custom_http_errors_replace_the_listed_codes_with_the_error_backends_answer(
    tmp_path: Path,
) -> None:
    # customhttperrors.go: error_page 404 and 500 to the default-backend annotation's Service.
    app = ingress(
        "app", "/", {"custom-http-errors": "404,500", "default-backend": "from-annotation"}
    )
    with proxy(tmp_path, app) as served:
        r = served.request(
            "GET", "/status/404?q=1", host=HOST, headers={"accept": "application/json"}
        )
        assert r.status_code == 200, r.text  # the error backend's own answer
        got = echo(r)
        assert got.service == "from-annotation"
        # `rewrite (.*) / break;`: the path is "/", the query string stays.
        assert got.target == "/?q=1"
        assert got.header("x-code") == "404"
        assert got.header("x-original-uri") == "/status/404?q=1"
        assert got.header("x-format") == "application/json"
        assert got.header("x-service-name") == "http-svc"
        assert got.header("x-ingress-name") == "app"
        assert got.header("host") in ("", None) or got.host == HOST
        assert echo(served.get("/status/500", host=HOST)).header("x-code") == "500"
        # A code that is not listed passes unchanged.
        assert served.get("/status/503", host=HOST).status_code == 503
        assert served.get("/ok", host=HOST).status_code == 200


def test_custom_http_errors_cover_the_proxys_own_502(tmp_path: Path) -> None:
    # nginx's error_page applies to the errors nginx makes itself (a refused upstream: 502).
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = sock.getsockname()[1]
    sock.close()
    slice_ = textwrap.dedent(f"""\
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: gone-1
          namespace: default
          labels: {{kubernetes.io/service-name: gone}}
        addressType: IPv4
        ports: [{{name: http, port: {dead}}}]
        endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
        """)
    gone = EMPTY.replace("name: empty", "name: gone")
    app = to_service(
        ingress("app", "/", {"custom-http-errors": "502", "default-backend": "from-annotation"}),
        "gone",
    )
    with proxy(tmp_path, app, raw=(gone, slice_)) as served:
        r = served.get("/x", host=HOST)
        assert r.status_code == 200, r.text
        assert echo(r).header("x-code") == "502"


def test_custom_http_errors_without_a_default_backend_pass_answers_and_say_why(
    tmp_path: Path,
) -> None:
    app = ingress("app", "/", {"custom-http-errors": "404"})
    with proxy(tmp_path, app) as served:
        assert served.get("/status/404", host=HOST).status_code == 404
        assert "custom-errors-no-backend" in codes(served)


def test_invalid_values_are_reported_and_ignored(tmp_path: Path) -> None:
    bad_codes = ingress(
        "app", "/", {"custom-http-errors": "404,abc", "default-backend": "from-annotation"}
    )
    with proxy(tmp_path, bad_codes) as served:
        assert served.get("/status/404", host=HOST).status_code == 404
        assert "invalid-annotation" in codes(served)
    missing = to_service(ingress("app", "/", {"default-backend": "nope"}), "invalid")
    with proxy(tmp_path / "b", missing) as served:
        assert served.get("/x", host=HOST).status_code == 503
        assert "default-backend-missing" in codes(served)


def test_other_dialects_ignore_them(tmp_path: Path) -> None:
    app = to_service(ingress("app", "/", {"default-backend": "from-annotation"}), "invalid")
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    (fixture / "app.yaml").write_text("---\n".join([SERVICE, ERRORS, app]))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=Flavor.SPEC) as served:
            assert served.get("/x", host=HOST).status_code == 503
