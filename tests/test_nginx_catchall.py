"""ingress-nginx's catch-all location of a host, on real sockets: createServers gives every
server a root location `/` with the annotations of the host's first Ingress, so a request
that no rule of the host matches still meets that Ingress's redirects before the default
backend's 404 (internal/ingress/controller/controller.go, locationApplyAnnotations)."""

from __future__ import annotations

from pathlib import Path

from e2e import echo
from test_nginx_rewrite import HOST, ingress, proxy

URL = "https://www.google.com"


def test_a_permanent_redirect_covers_the_unmatched_paths_of_its_host(tmp_path: Path) -> None:
    moved = ingress("moved", "/app", {"permanent-redirect": URL})
    with proxy(tmp_path, moved) as served:
        for path in ("/app", "/elsewhere", "/"):
            r = served.get(path, host=HOST)
            assert (r.status_code, r.headers.get("location")) == (301, URL), path
        # Another host keeps its plain 404.
        assert served.get("/elsewhere", host="other.example").status_code == 404


def test_the_first_ingress_of_the_host_decides(tmp_path: Path) -> None:
    # The oldest Ingress creates the server; a later one's redirect stays on its own paths.
    plain = ingress("plain", "/plain", created="2026-01-01T00:00:00Z")
    moved = ingress("moved", "/moved", {"permanent-redirect": URL}, created="2026-01-02T00:00:00Z")
    with proxy(tmp_path, plain, moved) as served:
        assert served.get("/elsewhere", host=HOST).status_code == 404
        assert served.get("/moved", host=HOST).status_code == 301
        assert echo(served.get("/plain", host=HOST)).target == "/plain"
    (tmp_path / "b").mkdir()
    with proxy(tmp_path / "b", moved.replace("2026-01-02", "2025-12-31"), plain) as served:
        assert served.get("/elsewhere", host=HOST).status_code == 301


def test_a_force_ssl_redirect_covers_unmatched_paths_too(tmp_path: Path) -> None:
    forced = ingress("app", "/app", {"force-ssl-redirect": "true"})
    with proxy(tmp_path, forced, https_port=0) as served:
        r = served.get("/elsewhere", host=HOST)
        assert r.status_code == 308
        assert r.headers["location"].startswith(f"https://{HOST}")


def test_a_rule_for_slash_is_the_root_location_itself(tmp_path: Path) -> None:
    root = ingress("root", "/", {"upstream-vhost": "inner.example"})
    with proxy(tmp_path, root) as served:
        got = echo(served.get("/anything", host=HOST))
        assert got.host == "inner.example"
        routers = list(served.app.state.holder.current.table.routes())
        assert [r.path for r in routers] == ["/"]


def test_the_spec_dialect_has_no_catch_all(tmp_path: Path) -> None:
    from ingressproxy.frontends.semantics import Flavor

    moved = ingress("moved", "/app", {"permanent-redirect": URL})
    with proxy(tmp_path, moved, flavor=Flavor.SPEC) as served:
        assert served.get("/elsewhere", host=HOST).status_code == 404
