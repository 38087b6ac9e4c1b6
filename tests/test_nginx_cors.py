"""ingress-nginx's CORS annotations in the nginx dialect, on real sockets: the cases of
kubernetes/ingress-nginx test/e2e/annotations/cors.go, ported, and the preflight answer of
nginx.tmpl's CORS block (204, no upstream call) with cors/main.go's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_nginx_rewrite import HOST, ingress, proxy

DEFAULT_HEADERS = (
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
    "Content-Type,Range,Authorization"
)


def cors(**notes: str) -> str:
    return ingress("app", "/", {"enable-cors": "true", **notes})


def test_enable_cors_with_the_defaults(tmp_path: Path) -> None:
    # cors.go "should enable cors": the defaults of cors/main.go, every origin allowed.
    with proxy(tmp_path, cors()) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == "GET, PUT, POST, DELETE, PATCH, OPTIONS"
        assert r.headers["access-control-allow-headers"] == DEFAULT_HEADERS
        assert r.headers["access-control-max-age"] == "1728000"
        assert "access-control-expose-headers" not in r.headers


def test_a_preflight_is_answered_without_the_upstream(tmp_path: Path) -> None:
    with proxy(tmp_path, cors(**{"cors-allow-origin": "https://origin.cors.com"})) as served:
        r = served.request(
            "OPTIONS",
            "/",
            host=HOST,
            headers={"origin": "https://origin.cors.com", "access-control-request-method": "PUT"},
        )
        assert r.status_code == 204
        assert r.content == b""
        assert r.headers["access-control-allow-origin"] == "https://origin.cors.com"
        assert r.headers["content-type"] == "text/plain charset=UTF-8"
        assert r.headers["content-length"] == "0"
        # From an origin that is not allowed, the preflight goes upstream (the echo answers).
        r = served.request("OPTIONS", "/", host=HOST, headers={"origin": "https://evil.com"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        assert r.json()["method"] == "OPTIONS"


@pytest.mark.parametrize(
    ("notes", "header", "value"),
    [
        # "should set cors methods to only allow POST, GET"
        ({"cors-allow-methods": "POST, GET"}, "access-control-allow-methods", "POST, GET"),
        # "should set cors max-age"
        ({"cors-max-age": "200"}, "access-control-max-age", "200"),
        # "should allow headers for cors"
        (
            {"cors-allow-headers": "DNT, User-Agent"},
            "access-control-allow-headers",
            "DNT, User-Agent",
        ),
        # "should expose headers for cors"
        (
            {"cors-expose-headers": "X-CustomResponseHeader, X-CustomSecondHeader"},
            "access-control-expose-headers",
            "X-CustomResponseHeader, X-CustomSecondHeader",
        ),
    ],
)
def test_cors_values(tmp_path: Path, notes: dict[str, str], header: str, value: str) -> None:
    with proxy(tmp_path, cors(**notes)) as served:
        assert served.get("/", host=HOST).headers[header] == value


def test_cors_allow_credentials_false_drops_the_header(tmp_path: Path) -> None:
    # "should disable cors allow credentials"
    with proxy(tmp_path, cors(**{"cors-allow-credentials": "false"})) as served:
        assert "access-control-allow-credentials" not in served.get("/", host=HOST).headers


@pytest.mark.parametrize(
    ("allowed", "origin", "matches"),
    [
        # "should allow origin for cors"
        ("https://origin.cors.com:8080", "https://origin.cors.com:8080", True),
        # "should allow - single origin for multiple cors values"
        (
            "https://origin.cors.com:8080, https://origin2.cors.com",
            "https://origin.cors.com:8080",
            True,
        ),
        # "should not allow - single origin for multiple cors values"
        ("http://origin2.cors.com, https://origin.com", "http://no.origin.com", False),
        # "should allow correct origins": a bad entry is skipped, the others work
        (
            "origin.cors.com:8080, https://origin2.cors.com, https://origin.com",
            "origin.cors.com:8080",
            False,
        ),
        (
            "origin.cors.com:8080, https://origin2.cors.com, https://origin.com",
            "https://origin2.cors.com",
            True,
        ),
        (
            "origin.cors.com:8080, https://origin2.cors.com, https://origin.com",
            "https://origin.com",
            True,
        ),
        # "should not match": the dot is literal
        ("https://foo.bar.com", "https://fooxbar.com", False),
        # "should allow - single origin with required port"
        ("http://origin.cors.com:8080, http://origin.com:8080", "http://origin.com:8080", True),
        # "should not allow - single origin with port and origin without port"
        ("https://origin2.cors.com, http://origin.com", "http://origin.com:8080", False),
        # "should not allow - single origin without port and origin with required port"
        ("http://origin.cors.com:8080, http://origin.com:8080", "http://origin.com", False),
        # "should allow - matching origin with wildcard origin (2 subdomains)"
        ("http://*.origin.cors.com, http://*.origin.com:8080", "http://foo.origin.cors.com", True),
        (
            "http://*.origin.cors.com, http://*.origin.com:8080",
            "http://bar-foo.origin.com:8080",
            True,
        ),
        # the wildcard is one label ([A-Za-z0-9-]+), not several
        ("http://*.origin.cors.com", "http://a.b.origin.cors.com", False),
        ("http://*.origin.cors.com", "http://origin.cors.com", False),
    ],
)
def test_allowed_origins(tmp_path: Path, allowed: str, origin: str, matches: bool) -> None:
    with proxy(tmp_path, cors(**{"cors-allow-origin": allowed})) as served:
        r = served.request("GET", "/", host=HOST, headers={"origin": origin})
        assert r.status_code == 200
        if matches:
            assert r.headers["access-control-allow-origin"] == origin
        else:
            assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("allowed", ["*", "*, foo.bar.com"])
def test_a_star_allows_every_origin_and_no_origin(tmp_path: Path, allowed: str) -> None:
    # "should not break functionality" / "... with extra domain": Allow-Origin is "*".
    with proxy(tmp_path, cors(**{"cors-allow-origin": allowed})) as served:
        assert served.get("/", host=HOST).headers["access-control-allow-origin"] == "*"
        r = served.request("GET", "/", host=HOST, headers={"origin": "https://any.example"})
        assert r.headers["access-control-allow-origin"] == "*"


def test_cors_headers_replace_the_upstreams_and_reach_error_answers(tmp_path: Path) -> None:
    with proxy(tmp_path, cors(**{"cors-allow-origin": "https://a.example"})) as served:
        r = served.request("GET", "/status/500", host=HOST, headers={"origin": "https://a.example"})
        assert r.status_code == 500
        assert r.headers["access-control-allow-origin"] == "https://a.example"


def test_a_preflight_comes_before_a_permanent_redirect(tmp_path: Path) -> None:
    app = ingress(
        "app",
        "/",
        {
            "enable-cors": "true",
            "cors-allow-origin": "https://a.example",
            "permanent-redirect": "https://elsewhere.example",
        },
    )
    with proxy(tmp_path, app) as served:
        r = served.request("OPTIONS", "/", host=HOST, headers={"origin": "https://a.example"})
        assert r.status_code == 204
        assert served.get("/", host=HOST).status_code == 301


def test_invalid_values_fall_back_to_the_defaults_with_a_warning(tmp_path: Path) -> None:
    app = cors(**{"cors-allow-methods": "GET;rm", "cors-max-age": "soon"})
    with proxy(tmp_path, app) as served:
        r = served.get("/", host=HOST)
        assert r.headers["access-control-allow-methods"] == "GET, PUT, POST, DELETE, PATCH, OPTIONS"
        assert r.headers["access-control-max-age"] == "1728000"
        diags = served.app.state.holder.current.diagnostics
        assert sum(d.code == "invalid-annotation" for d in diags) == 2


def test_without_enable_cors_nothing_changes(tmp_path: Path) -> None:
    app = ingress("app", "/", {"cors-allow-origin": "https://a.example"})
    with proxy(tmp_path, app) as served:
        r = served.request("GET", "/", host=HOST, headers={"origin": "https://a.example"})
        assert "access-control-allow-origin" not in r.headers
