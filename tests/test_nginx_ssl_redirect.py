"""ingress-nginx's HTTP -> HTTPS redirect details, on real sockets: the cases of
kubernetes/ingress-nginx test/e2e/annotations/forcesslredirect.go and
preservetrailingslash.go, and the ConfigMap's no-tls-redirect-locations default
(/.well-known/acme-challenge) that keeps ACME HTTP-01 challenges on plain HTTP.

One known difference: ingress-nginx listens on 443 in a cluster and writes no port in the
Location (use-port-in-redirects is off); here the TLS listener's port is written unless it is
443, or the redirect would lead nowhere."""

from __future__ import annotations

from pathlib import Path

from e2e import Served
from test_nginx_rewrite import HOST, ingress, proxy


def _https_port(served: Served) -> int:
    listener = served.app.state.https
    assert listener is not None, "the HTTPS listener is not running"
    return int(listener.port)


def _with_tls(doc: str) -> str:
    # A TLS section for the host; its Secret is made in the cluster (cert-manager), so the
    # folder lacks it: a warning, and the host counts as a TLS host all the same.
    return doc.replace("  rules:", f"  tls: [{{hosts: [{HOST}], secretName: tls}}]\n  rules:", 1)


def test_force_ssl_redirect_drops_the_trailing_slash(tmp_path: Path) -> None:
    # forcesslredirect.go: GET / -> 308, Location "https://forcesslredirect.bar.com".
    app = ingress("app", "/", {"force-ssl-redirect": "true"})
    with proxy(tmp_path, app, https_port=0) as served:
        port = _https_port(served)
        r = served.get("/", host=HOST)
        assert r.status_code == 308
        assert r.headers["location"] == f"https://{HOST}:{port}"
        r = served.get("/a/b/?q=1", host=HOST)
        assert r.headers["location"] == f"https://{HOST}:{port}/a/b/?q=1"
        r = served.get("/a/b/", host=HOST)
        assert r.headers["location"] == f"https://{HOST}:{port}/a/b"


def test_preserve_trailing_slash(tmp_path: Path) -> None:
    # preservetrailingslash.go: ssl-redirect on a TLS host, GET / -> ".../".
    notes = {"ssl-redirect": "true", "preserve-trailing-slash": "true"}
    app = _with_tls(ingress("app", "/", notes))
    with proxy(tmp_path, app, https_port=0) as served:
        port = _https_port(served)
        r = served.get("/", host=HOST)
        assert r.status_code == 308
        assert r.headers["location"] == f"https://{HOST}:{port}/"


def test_acme_challenge_locations_are_not_redirected(tmp_path: Path) -> None:
    # cert-manager's HTTP-01 solver Ingress for the same TLS host: answered over plain HTTP,
    # while the host's other locations redirect (ingress-nginx's implicit ssl-redirect).
    app = _with_tls(ingress("app", "/"))
    solver = ingress("cm-acme-http-solver", "/.well-known/acme-challenge/token-123")
    with proxy(tmp_path, app, solver, https_port=0) as served:
        assert served.get("/.well-known/acme-challenge/token-123", host=HOST).status_code == 200
        assert served.get("/anything", host=HOST).status_code == 308
