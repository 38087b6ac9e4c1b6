"""Traefik Middleware objects referenced by router.middlewares, in the traefik dialect, on
real sockets: the reference rules of traefik/traefik pkg/provider/kubernetes (ingress and
crd providers) and cases of pkg/middlewares/*/..._test.go (stripprefix, addprefix,
replacepath, headers, ipallowlist, redirect scheme, chain), ported."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e import Served, cluster, echo, run_proxy

from ingressproxy.frontends.semantics import Flavor

HOST = "mw.example"

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: apps}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def ingress(name: str, path: str, middlewares: str | None, path_type: str = "Prefix") -> str:
    notes = (
        f"\n    traefik.ingress.kubernetes.io/router.middlewares: {middlewares!r}"
        if middlewares
        else " {}"
    )
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: {name}
          namespace: apps
          annotations:{{notes}}
        spec:
          rules:
            - host: {HOST}
              http:
                paths:
                  - path: {path}
                    pathType: {path_type}
                    backend: {{service: {{name: web, port: {{number: 80}}}}}}
        """).replace("{notes}", notes)


def middleware(name: str, spec: str, namespace: str = "apps", api: str = "traefik.io") -> str:
    head = f"apiVersion: {api}/v1alpha1\nkind: Middleware\n"
    meta = f"metadata: {{name: {name}, namespace: {namespace}}}\n"
    return head + meta + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")


@contextmanager
def proxy(tmp_path: Path, *docs: str, **settings: Any) -> Iterator[Served]:
    fixture = tmp_path / "fixture"
    fixture.mkdir(parents=True)
    (fixture / "app.yaml").write_text("---\n".join([SERVICE, *docs]))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=Flavor.TRAEFIK, **settings) as served:
            yield served


def codes(served: Served) -> list[str]:
    return [d.code for d in served.app.state.holder.current.diagnostics]


# --------------------------------------------------------------------------- stripPrefix


@pytest.mark.parametrize(
    ("prefixes", "path", "upstream", "header"),
    [
        # strip_prefix_test.go, as a request on the wire sees them (an empty path is "/").
        (["/stat"], "/stat", "/", "/stat"),
        (["/stat/"], "/stat/us", "/us", "/stat/"),
        (["/stat/"], "/status", "/status", None),
        (["/stat"], "/stat/", "/", "/stat"),
        (["/stat", "/stat/us"], "/stat/us", "/us", "/stat"),
        (["/mismatch", "/stat"], "/stat", "/", "/stat"),
        (["/stat"], "/status", "/us", "/stat"),
        (["/"], "/", "/", "/"),
    ],
)
def test_strip_prefix(
    tmp_path: Path, prefixes: list[str], path: str, upstream: str, header: str | None
) -> None:
    strip = middleware("strip", f"stripPrefix:\n  prefixes: {prefixes}\n")
    with proxy(tmp_path, strip, ingress("app", "/", "apps-strip@kubernetescrd")) as served:
        got = echo(served.get(path, host=HOST))
        assert got.target == upstream
        assert got.header("x-forwarded-prefix") == header


def test_strip_prefix_refuses_a_dot_segment_it_would_leave(tmp_path: Path) -> None:
    # "dot in the path not stripped by the prefix": /api./foo without /api is /./foo: 400.
    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n")
    with proxy(tmp_path, strip, ingress("app", "/", "apps-strip@kubernetescrd")) as served:
        assert served.get("/api./foo", host=HOST).status_code == 400


# --------------------------------------------------------------------------- other kinds


def test_add_prefix_and_replace_path(tmp_path: Path) -> None:
    add = middleware("add", "addPrefix:\n  prefix: /v1\n")
    replace = middleware("replace", "replacePath:\n  path: /fixed\n")
    with proxy(
        tmp_path,
        add,
        replace,
        ingress("a", "/a", "apps-add@kubernetescrd"),
        ingress("b", "/b", "apps-replace@kubernetescrd"),
    ) as served:
        assert echo(served.get("/a/x?q=1", host=HOST)).target == "/v1/a/x?q=1"
        got = echo(served.get("/b/x?q=1", host=HOST))
        assert got.target == "/fixed?q=1"
        assert got.header("x-replaced-path") == "/b/x"


def test_headers_set_and_remove_both_ways(tmp_path: Path) -> None:
    headers = middleware(
        "hdr",
        """\
        headers:
          customRequestHeaders: {X-Script-Name: test, X-Custom-Request-Header: ""}
          customResponseHeaders: {X-Custom-Response-Header: value, X-Content-Type-Options: ""}
        """,
    )
    with proxy(tmp_path, headers, ingress("app", "/", "apps-hdr@kubernetescrd")) as served:
        r = served.request("GET", "/", host=HOST, headers={"x-custom-request-header": "gone"})
        got = echo(r)
        assert got.header("x-script-name") == "test"
        assert got.header("x-custom-request-header") is None
        assert r.headers["x-custom-response-header"] == "value"
        assert "x-content-type-options" not in r.headers


def test_ip_allow_list_and_its_reject_status(tmp_path: Path) -> None:
    inside = middleware("inside", "ipAllowList:\n  sourceRange: [127.0.0.1/32]\n")
    outside = middleware(
        "outside", "ipWhiteList:\n  sourceRange: [10.0.0.0/8]\n  rejectStatusCode: 401\n"
    )
    with proxy(
        tmp_path,
        inside,
        outside,
        ingress("a", "/a", "apps-inside@kubernetescrd"),
        ingress("b", "/b", "apps-outside@kubernetescrd"),
    ) as served:
        assert served.get("/a", host=HOST).status_code == 200
        r = served.request("GET", "/b", host=HOST, headers={"x-forwarded-for": "10.1.1.1"})
        assert r.status_code == 401


def test_redirect_scheme(tmp_path: Path) -> None:
    # redirect_scheme_test.go: permanent -> 301 for GET and 308 otherwise; else 302 / 307.
    permanent = middleware("perm", "redirectScheme:\n  scheme: https\n  permanent: true\n")
    temporary = middleware("temp", "redirectScheme:\n  scheme: https\n  port: '8443'\n")
    with proxy(
        tmp_path,
        permanent,
        temporary,
        ingress("a", "/a", "apps-perm@kubernetescrd"),
        ingress("b", "/b", "apps-temp@kubernetescrd"),
        https_port=0,
    ) as served:
        port = served.app.state.https.port
        r = served.get("/a?x=1", host=HOST)
        assert (r.status_code, r.headers["location"]) == (301, f"https://{HOST}:{port}/a?x=1")
        assert served.request("POST", "/a", host=HOST).status_code == 308
        r = served.get("/b", host=HOST)
        assert (r.status_code, r.headers["location"]) == (302, f"https://{HOST}:8443/b")
        assert served.request("POST", "/b", host=HOST).status_code == 307


def test_a_chain_applies_its_members_in_order(tmp_path: Path) -> None:
    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n")
    add = middleware("add", "addPrefix:\n  prefix: /v2\n")
    chain = middleware("both", "chain:\n  middlewares: [{name: strip}, {name: add}]\n")
    with proxy(tmp_path, strip, add, chain, ingress("app", "/", "apps-both@kubernetescrd")) as s:
        assert echo(s.get("/api/users", host=HOST)).target == "/v2/users"


def test_middlewares_of_the_annotation_apply_in_order(tmp_path: Path) -> None:
    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n")
    add = middleware("add", "addPrefix:\n  prefix: /v2\n")
    refs = "apps-add@kubernetescrd,apps-strip@kubernetescrd"
    with proxy(tmp_path, strip, add, ingress("app", "/", refs)) as served:
        # addPrefix first: /v2/api/users, then stripPrefix /api does not match.
        assert echo(served.get("/api/users", host=HOST)).target == "/v2/api/users"


# --------------------------------------------------------------------------- references


def test_a_missing_middleware_leaves_the_router_out(tmp_path: Path) -> None:
    # A less specific router answers; the router with the missing middleware is not served.
    docs = (ingress("api", "/api", "apps-nope@kubernetescrd"), ingress("root", "/", None))
    with proxy(tmp_path, *docs) as served:
        assert echo(served.get("/api/x", host=HOST)).target == "/api/x"  # root's router
        assert "middleware-not-found" in codes(served)
    with proxy(tmp_path / "b", ingress("api", "/api", "strip")) as served:
        # A name without @provider is the Ingress provider's, which defines none.
        assert served.get("/api", host=HOST).status_code == 404
        diags = served.app.state.holder.current.diagnostics
        assert any("strip@kubernetes" in d.message for d in diags)


def test_the_ingress_provider_references_any_namespace(tmp_path: Path) -> None:
    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n", namespace="shared")
    with proxy(tmp_path, strip, ingress("app", "/", "shared-strip@kubernetescrd")) as served:
        assert echo(served.get("/api/x", host=HOST)).target == "/x"


def test_a_chain_across_namespaces_needs_allow_cross_namespace(tmp_path: Path) -> None:
    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n", namespace="shared")
    chain = middleware("c", "chain:\n  middlewares: [{name: strip, namespace: shared}]\n")
    docs = (strip, chain, ingress("app", "/", "apps-c@kubernetescrd"))
    with proxy(tmp_path, *docs) as served:
        assert served.get("/api/x", host=HOST).status_code == 404
        assert "invalid-middleware" in codes(served)
    with proxy(tmp_path / "b", *docs, allow_cross_namespace=True) as served:
        assert echo(served.get("/api/x", host=HOST)).target == "/x"


def test_an_unsupported_auth_kind_fails_closed_and_others_are_skipped(tmp_path: Path) -> None:
    auth = middleware("auth", "forwardAuth:\n  address: http://auth.example\n")
    gzip = middleware("gzip", "compress: {}\n")
    with proxy(
        tmp_path,
        auth,
        gzip,
        ingress("a", "/a", "apps-auth@kubernetescrd"),
        ingress("b", "/b", "apps-gzip@kubernetescrd"),
    ) as served:
        assert served.get("/a", host=HOST).status_code == 404
        assert served.get("/b", host=HOST).status_code == 200
        assert {"invalid-middleware", "unsupported-middleware"} <= set(codes(served))


def test_the_v2_group_is_read_with_a_warning(tmp_path: Path) -> None:
    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n", api="traefik.containo.us")
    with proxy(tmp_path, strip, ingress("app", "/", "apps-strip@kubernetescrd")) as served:
        assert echo(served.get("/api/x", host=HOST)).target == "/x"
        assert "deprecated-api-group" in codes(served)


def test_the_admin_api_names_each_routers_middlewares(tmp_path: Path) -> None:
    from ingressproxy.admin.api import build_view

    strip = middleware("strip", "stripPrefix:\n  prefixes: [/api]\n")
    add = middleware("add", "addPrefix:\n  prefix: /v2\n")
    refs = "apps-strip@kubernetescrd, apps-add@kubernetescrd"
    with proxy(tmp_path, strip, add, ingress("app", "/", refs)) as served:
        view = build_view(served.app.state.holder.current)
        (router,) = view.routers
        assert router["middlewares"] == ["apps-strip@kubernetescrd", "apps-add@kubernetescrd"]
        assert router["filters"] == ["StripPrefix", "AddPrefix"]


# --------------------------------------------------------------------------- basicAuth


def _secret(name: str, data: dict[str, str], kind: str = "Opaque") -> str:
    lines = "".join(f"\n  {k}: {base64.b64encode(v.encode()).decode()}" for k, v in data.items())
    meta = f"metadata: {{name: {name}, namespace: apps}}\n"
    return f"apiVersion: v1\nkind: Secret\n{meta}type: {kind}\ndata:{lines}\n"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_with_htpasswd_users(tmp_path: Path) -> None:
    # basic_auth_test.go: users from a Secret of one key; realm "traefik" by default; the
    # Authorization header reaches the upstream unless removeHeader.
    users = _secret("users", {"users": "test:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n"})
    auth = middleware("auth", "basicAuth:\n  secret: users\n")
    with proxy(tmp_path, users, auth, ingress("app", "/", "apps-auth@kubernetescrd")) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="traefik"'
        r = served.request("GET", "/", host=HOST, headers=_basic("test", "test"))
        assert r.status_code == 200
        assert echo(r).header("authorization") is not None
        assert served.request("GET", "/", host=HOST, headers=_basic("test", "x")).status_code == 401


def test_basic_auth_from_a_basic_auth_secret_with_its_options(tmp_path: Path) -> None:
    users = _secret(
        "creds", {"username": "alice", "password": "wonder"}, kind="kubernetes.io/basic-auth"
    )
    auth = middleware(
        "auth",
        "basicAuth:\n  secret: creds\n  realm: shop\n  removeHeader: true\n"
        "  headerField: X-WebAuth-User\n",
    )
    with proxy(tmp_path, users, auth, ingress("app", "/", "apps-auth@kubernetescrd")) as served:
        assert served.get("/", host=HOST).headers["www-authenticate"] == 'Basic realm="shop"'
        got = echo(served.request("GET", "/", host=HOST, headers=_basic("alice", "wonder")))
        assert got.header("authorization") is None
        assert got.header("x-webauth-user") == "alice"


def test_basic_auth_without_its_secret_leaves_the_router_out(tmp_path: Path) -> None:
    auth = middleware("auth", "basicAuth:\n  secret: missing\n")
    with proxy(tmp_path, auth, ingress("app", "/", "apps-auth@kubernetescrd")) as served:
        assert served.get("/", host=HOST).status_code == 404
        assert "invalid-middleware" in codes(served)
