"""The nginx dialect's regex locations and rewrites beside a real nginx (Debian's package).

For each case, nginx runs the server block that ingress-nginx's nginx.tmpl renders for the
Ingresses (locations `~* "^<path>"` in the controller's order, `rewrite "(?i)<path>" <target>
break;` in rewriting ones, proxy_pass to an echo backend), and ingressproxy serves the same
Ingresses in the nginx dialect. Every request must reach the backend with the same path and
query through both. What this checks that our own tests cannot: PCRE against Python's `re`,
nginx's case-insensitive matching and capture expansion, and which location nginx picks.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from e2e import cluster, echo, http_client, run_proxy
from test_nginx_rewrite import HOST, SERVICE, ingress

from ingressproxy.frontends.semantics import Flavor

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _conf(prefix: Path, port: int, backend: int, locations: str) -> str:
    return f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream upstream_balancer {{ server 127.0.0.1:{backend}; }}
    server {{
        listen 127.0.0.1:{port};
        server_name {HOST};
        {locations}
        # The server's catch-all: ingress-nginx's default backend answers 404.
        location ~* "^/" {{ return 404; }}
    }}
}}
"""


@contextmanager
def real_nginx(tmp_path: Path, backend: int, locations: str) -> Iterator[str]:
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_conf(prefix, port, backend, locations))
    proc = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise AssertionError(f"nginx did not start: {err}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def location(path: str, target: str | None = None) -> str:
    """One location as nginx.tmpl renders it under enforceRegex (buildLocation/buildProxyPass)."""
    rewrite = f'rewrite "(?i){path}" {target} break;' if target else ""
    return (
        f'location ~* "^{path}" {{ {rewrite} proxy_set_header Host $host;'
        " proxy_pass http://upstream_balancer; }\n"
    )


CASES = [
    pytest.param(
        [
            ingress(
                "rewrite",
                "/something(/|$)(.*)",
                {"use-regex": "true", "rewrite-target": "/$2"},
                "ImplementationSpecific",
            )
        ],
        location("/something(/|$)(.*)", "/$2"),
        ["/something", "/something/", "/something/new", "/SomeThing/a/b?x=1&y=%20"],
        id="docs-example",
    ),
    pytest.param(
        [
            ingress("kube-lego", "/.well-known/acme/challenge"),
            ingress("rewrite-index", "/", {"rewrite-target": "/new/backend"}),
        ],
        # controller.go's order: longest path first.
        location("/.well-known/acme/challenge/")
        + location("/.well-known/acme/challenge")
        + location("/", "/new/backend"),
        ["/.well-known/acme/challenge", "/.well-known/acme/challenge/x", "/x", "/"],
        id="longest-path-match",
    ),
    pytest.param(
        [
            ingress("foo", "/foo/bar/bar"),
            ingress(
                "regex",
                "/foo/bar/[a-z]{3}",
                {"use-regex": "true", "rewrite-target": "/new/backend"},
            ),
        ],
        location("/foo/bar/[a-z]{3}", "/new/backend")
        + location("/foo/bar/bar/")
        + location("/foo/bar/bar"),
        ["/foo/bar/bar", "/foo/bar/bar/", "/foo/bar/BAZ", "/foo/bar/ba"],
        id="documented-longest-match-warning",
    ),
    pytest.param(
        [
            ingress(
                "regex",
                "/foo/bar/(.+)",
                {"use-regex": "true", "rewrite-target": "/new/backend/$1"},
            )
        ],
        location("/foo/bar/(.+)", "/new/backend/$1"),
        ["/foo/bar/bar", "/foo/bar/a/b/c?q=1", "/FOO/BAR/Mixed"],
        id="custom-rewrite-parameters",
    ),
    pytest.param(
        [ingress("app", "/api/v(\\d+)/(.*)", {"use-regex": "true", "rewrite-target": "/v$1/$2"},
                 "ImplementationSpecific")],
        location("/api/v(\\\\d+)/(.*)", "/v$1/$2"),
        ["/api/v1/users", "/api/v22/a/b", "/api/vx/a"],
        id="backslash-class",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("docs", "locations", "requests"), CASES)
def test_routes_as_a_real_nginx(
    tmp_path: Path, docs: list[str], locations: str, requests: list[str]
) -> None:
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    (fixture / "app.yaml").write_text("---\n".join([SERVICE, *docs]))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        (pod,) = pods.pods
        with (
            run_proxy(folder, flavor=Flavor.NGINX) as ours,
            real_nginx(tmp_path, pod.port, locations) as theirs,
            http_client(theirs) as nginx,
        ):
            for target in requests:
                got = ours.get(target, host=HOST)
                want = nginx.get(target, headers={"Host": HOST})
                assert got.status_code == want.status_code, (target, got.text, want.text)
                if want.status_code == 200:
                    assert echo(got).target == echo(want).target, target


def test_nginx_accepts_the_rendered_locations(tmp_path: Path) -> None:
    # A guard on the test itself: the hand-rendered server blocks are valid nginx.
    for case in CASES:
        _, locations, _ = case.values
        conf = tmp_path / "t.conf"
        (tmp_path / "tmp").mkdir(exist_ok=True)
        conf.write_text(_conf(tmp_path, 1, 2, str(locations)))
        done = subprocess.run(
            ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
