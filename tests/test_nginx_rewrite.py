"""ingress-nginx's rewrite-target and use-regex in the nginx dialect, on real sockets: the
cases of kubernetes/ingress-nginx test/e2e/annotations/rewrite.go and docs/examples/rewrite,
ported. A request goes through the proxy to an echo backend, which reports the path it got.

The rule that surprises people, and holds here as in ingress-nginx: once one Ingress of a
host uses use-regex or rewrites, every location of that host is `~* "^<path>"`, tried longest
first, and the first that matches wins (template.go enforceRegexModifier, controller.go).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e import Served, cluster, echo, run_proxy

from ingressproxy.frontends.semantics import Flavor

HOST = "rewrite.bar.com"
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: http-svc, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def ingress(
    name: str,
    path: str,
    annotations: Mapping[str, str] | None = None,
    path_type: str = "Prefix",
    created: str = "2026-01-01T00:00:00Z",
) -> str:
    notes = "".join(
        f"\n    nginx.ingress.kubernetes.io/{k}: {v!r}" for k, v in (annotations or {}).items()
    )
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: {name}
          namespace: default
          creationTimestamp: "{created}"
          annotations: {{}}
        spec:
          ingressClassName: nginx
          rules:
            - host: {HOST}
              http:
                paths:
                  - path: {path}
                    pathType: {path_type}
                    backend: {{service: {{name: http-svc, port: {{number: 80}}}}}}
        """).replace("  annotations: {}", "  annotations:" + (notes or " {}"))


@contextmanager
def proxy(
    tmp_path: Path, *docs: str, flavor: Flavor = Flavor.NGINX, **settings: Any
) -> Iterator[Served]:
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    (fixture / "app.yaml").write_text("---\n".join([SERVICE, *docs]))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=flavor, **settings) as served:
            yield served


def upstream_path(served: Served, target: str) -> str:
    r = served.get(target, host=HOST)
    assert r.status_code == 200, r.text
    return echo(r).target


def test_the_docs_example_rewrites_with_captures(tmp_path: Path) -> None:
    # docs/examples/rewrite: path /something(/|$)(.*), rewrite-target /$2.
    rewrite = ingress(
        "rewrite",
        "/something(/|$)(.*)",
        {"use-regex": "true", "rewrite-target": "/$2"},
        "ImplementationSpecific",
    )
    with proxy(tmp_path, rewrite) as served:
        assert upstream_path(served, "/something") == "/"
        assert upstream_path(served, "/something/") == "/"
        assert upstream_path(served, "/something/new") == "/new"
        # The query string is kept (nginx appends the original arguments).
        assert upstream_path(served, "/something/new?a=1&b=2") == "/new?a=1&b=2"
        # `~*`: case-insensitive, and so is the rewrite's "(?i)".
        assert upstream_path(served, "/SomeThing/New") == "/New"
        assert served.get("/other", host=HOST).status_code == 404


def test_the_same_folder_in_the_spec_dialect_does_not_rewrite(tmp_path: Path) -> None:
    # Without ingress-nginx's semantics the path is a literal ImplementationSpecific prefix.
    rewrite = ingress(
        "rewrite",
        "/something(/|$)(.*)",
        {"use-regex": "true", "rewrite-target": "/$2"},
        "ImplementationSpecific",
    )
    with proxy(tmp_path, rewrite, flavor=Flavor.SPEC) as served:
        assert served.get("/something/new", host=HOST).status_code == 404


def test_correct_longest_path_match(tmp_path: Path) -> None:
    # rewrite.go "should use correct longest path match".
    lego = ingress("kube-lego", "/.well-known/acme/challenge")
    index = ingress("rewrite-index", "/", {"rewrite-target": "/new/backend"})
    with proxy(tmp_path, lego, index) as served:
        assert upstream_path(served, "/.well-known/acme/challenge") == (
            "/.well-known/acme/challenge"
        )
        assert upstream_path(served, "/anything/else") == "/new/backend"


def test_regex_modifier_applies_to_the_whole_host(tmp_path: Path) -> None:
    # rewrite.go "should use ~* location modifier if regex annotation is present".
    foo = ingress("foo", "/foo")
    regex = ingress(
        "regex",
        "/foo.+",
        {"use-regex": "true", "rewrite-target": "/new/backend"},
        created=("2026-01-02T00:00:00Z"),
    )
    with proxy(tmp_path, foo, regex) as served:
        assert upstream_path(served, "/foo") == "/foo"
        assert upstream_path(served, "/foo/bar") == "/new/backend"
        # The host's plain Prefix /foo is now `~* "^/foo"` too: /foobar was 404 before.
        assert upstream_path(served, "/FOOBAR") == "/new/backend"


def test_the_documented_longest_match_warning(tmp_path: Path) -> None:
    # rewrite.go "should fail to use longest match for documented warning": the longer regex
    # is tried first, so /foo/bar/bar is rewritten though a Prefix names it exactly.
    foo = ingress("foo", "/foo/bar/bar")
    regex = ingress(
        "regex", "/foo/bar/[a-z]{3}", {"use-regex": "true", "rewrite-target": "/new/backend"}
    )
    with proxy(tmp_path, foo, regex) as served:
        assert upstream_path(served, "/foo/bar/bar") == "/new/backend"


def test_custom_rewrite_parameters(tmp_path: Path) -> None:
    # rewrite.go "should allow for custom rewrite parameters".
    regex = ingress(
        "regex", "/foo/bar/(.+)", {"use-regex": "true", "rewrite-target": "/new/backend/$1"}
    )
    with proxy(tmp_path, regex) as served:
        assert upstream_path(served, "/foo/bar/bar") == "/new/backend/bar"


@pytest.mark.parametrize(
    ("annotations", "prefix"),
    [
        ({"rewrite-target": "/$1", "x-forwarded-prefix": "/app"}, "/app"),
        # A target equal to the path is no rewrite (buildProxyPass), so no header either.
        ({"rewrite-target": "/app/(.*)", "x-forwarded-prefix": "/app"}, None),
        ({"rewrite-target": "/$1"}, None),
    ],
)
def test_x_forwarded_prefix_only_with_a_rewrite(
    tmp_path: Path, annotations: dict[str, str], prefix: str | None
) -> None:
    # xforwardedprefix.go: the header is sent with the rewrite only.
    app = ingress(
        "app", "/app/(.*)", {"use-regex": "true", **annotations}, "ImplementationSpecific"
    )
    with proxy(tmp_path, app) as served:
        r = served.get("/app/x", host=HOST)
        assert r.status_code == 200, r.text
        assert echo(r).header("x-forwarded-prefix") == prefix


def test_an_invalid_regex_is_an_error_and_the_rest_is_served(tmp_path: Path) -> None:
    bad = ingress("bad", "/a(", {"use-regex": "true"}, "ImplementationSpecific")
    good = ingress("good", "/ok", created="2026-01-02T00:00:00Z")
    with proxy(tmp_path, bad, good) as served:
        codes = {d.code for d in served.app.state.holder.current.errors}
        assert "invalid-regex" in codes
        assert upstream_path(served, "/ok") == "/ok"
