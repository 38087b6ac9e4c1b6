"""ingress-nginx's server-alias and upstream-vhost in the nginx dialect, on real sockets:
kubernetes/ingress-nginx test/e2e/annotations/alias.go and upstreamvhost.go, ported."""

from __future__ import annotations

from pathlib import Path

from e2e import echo
from test_nginx_rewrite import ingress, proxy

FOO = "rewrite.bar.com"  # the host test_nginx_rewrite.ingress writes


def test_without_an_alias_another_host_is_404(tmp_path: Path) -> None:
    # alias.go "should return status code 200 for host 'foo' and 404 for 'bar'".
    with proxy(tmp_path, ingress("foo", "/")) as served:
        r = served.get("/", host=FOO)
        assert r.status_code == 200 and echo(r).host == FOO
        assert served.get("/", host="bar").status_code == 404


def test_an_alias_serves_the_host(tmp_path: Path) -> None:
    # alias.go "should return status code 200 for host 'foo' and 'bar'": the upstream sees
    # the Host the client sent.
    with proxy(tmp_path, ingress("foo", "/", {"server-alias": "bar"})) as served:
        for host in (FOO, "bar"):
            r = served.get("/", host=host)
            assert r.status_code == 200 and echo(r).host == host


def test_an_alias_of_a_later_ingress_serves_every_path_of_the_host(tmp_path: Path) -> None:
    # alias.go "... hosts defined in two ingresses, different path with one alias".
    a = ingress("app-a", "/app-a", created="2026-01-01T00:00:00Z")
    b = ingress("app-b", "/app-b", {"server-alias": "bar"}, created="2026-01-02T00:00:00Z")
    with proxy(tmp_path, a, b) as served:
        for host in (FOO, "bar"):
            r = served.get("/app-a", host=host)
            assert r.status_code == 200 and echo(r).host == host


def test_an_alias_naming_an_existing_host_is_ignored_and_reported(tmp_path: Path) -> None:
    main = ingress("main", "/main", {"server-alias": "other.bar.com"})
    other = ingress("other", "/other", created="2026-01-02T00:00:00Z").replace(FOO, "other.bar.com")
    with proxy(tmp_path, main, other) as served:
        assert served.get("/other", host="other.bar.com").status_code == 200
        assert served.get("/main", host="other.bar.com").status_code == 404
        codes = [d.code for d in served.app.state.holder.current.diagnostics]
        assert "alias-ignored" in codes


def test_upstream_vhost_sets_the_host_sent_upstream(tmp_path: Path) -> None:
    # upstreamvhost.go "set host to upstreamvhost.bar.com": proxy_set_header Host; the
    # client's Host stays in X-Forwarded-Host.
    app = ingress("app", "/", {"upstream-vhost": "upstreamvhost.bar.com"})
    with proxy(tmp_path, app) as served:
        got = echo(served.get("/x", host=FOO))
        assert got.host == "upstreamvhost.bar.com"
        assert got.header("x-forwarded-host") == FOO


def test_from_to_www_redirect(tmp_path: Path) -> None:
    # fromtowwwredirect.go "should redirect from www HTTP to HTTP": GET /foo on www.<host>
    # -> 308, Location http://<host>:<listener port>/foo (ngx_srv_redirect.lua).
    app = ingress("app", "/", {"from-to-www-redirect": "true"})
    with proxy(tmp_path, app) as served:
        port = served.base_url.rsplit(":", 1)[1]
        r = served.get("/foo", host=f"www.{FOO}")
        assert r.status_code == 308
        assert r.headers["location"] == f"http://{FOO}:{port}/foo"
        r = served.get("/foo/?a=1", host=f"www.{FOO}")
        assert r.headers["location"] == f"http://{FOO}:{port}/foo/?a=1"
        assert served.get("/foo", host=FOO).status_code == 200


def test_from_to_www_redirect_the_other_way_and_skipped_when_taken(tmp_path: Path) -> None:
    www = ingress("www", "/", {"from-to-www-redirect": "true"}).replace(FOO, f"www.{FOO}")
    with proxy(tmp_path, www) as served:
        port = served.base_url.rsplit(":", 1)[1]
        r = served.get("/", host=FOO)
        assert r.status_code == 308
        assert r.headers["location"] == f"http://www.{FOO}:{port}"
    # Both hosts have rules: no redirect server, and check says why.
    plain = ingress("plain", "/", created="2026-01-02T00:00:00Z")
    (tmp_path / "both").mkdir()
    with proxy(tmp_path / "both", www, plain) as served:
        assert served.get("/", host=FOO).status_code == 200
        codes = [d.code for d in served.app.state.holder.current.diagnostics]
        assert "redirect-skipped" in codes


def test_from_to_www_redirect_over_https(tmp_path: Path) -> None:
    # fromtowwwredirect.go "should redirect from www HTTPS to HTTPS": a TLS request for
    # www.<host> -> 308, Location https://<host>:<TLS port> (the port as the listener's; in a
    # cluster 443), and the host itself is served.
    import ssl

    import httpx

    app = ingress("app", "/", {"from-to-www-redirect": "true"}).replace(
        "  rules:", f"  tls: [{{hosts: [{FOO}, www.{FOO}], secretName: tls}}]\n  rules:", 1
    )
    with proxy(tmp_path, app, https_port=0) as served:
        listener = served.app.state.https
        assert listener is not None
        port = int(listener.port)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}", verify=insecure, trust_env=False
        ) as client:
            r = client.get("/", headers={"host": f"www.{FOO}"})
            assert r.status_code == 308
            assert r.headers["location"] == f"https://{FOO}:{port}"
            r = client.get("/", headers={"host": FOO})
            assert r.status_code == 200 and echo(r).host == FOO
