"""ingress-nginx's external authentication (auth-url) in the nginx dialect, on real sockets:
the scenarios of kubernetes/ingress-nginx test/e2e/annotations/auth.go's external auth
cases (signed in / not, auth-signin redirect, auth-response-headers overwriting the client's,
a 403, an auth service that fails), with a small auth service of our own that records what it
was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e import echo
from starlette.types import Receive, Scope, Send
from test_nginx_rewrite import HOST, ingress, proxy

from ingressproxy.testing.server import serve_in_thread


class AuthService:
    """Answers /auth by the request's `x-user` header: "alice" 200 (with X-Auth-User and
    Foo), "mallory" 403, "down" 502, anyone else 401 with a challenge. Records each request."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": headers,
            }
        )
        user = headers.get("x-user", "")
        status, extra = 401, [(b"www-authenticate", b'Basic realm="ext"')]
        if user == "alice":
            status, extra = 200, [(b"x-auth-user", b"alice"), (b"foo", b"from-auth")]
        elif user == "mallory":
            status, extra = 403, []
        elif user == "down":
            status, extra = 502, []
        body = json.dumps({"user": user}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextmanager
def auth_service() -> Iterator[tuple[AuthService, int]]:
    service = AuthService()
    with serve_in_thread(service) as server:
        yield service, server.port


def test_signed_in_or_not(tmp_path: Path) -> None:
    with auth_service() as (service, port):
        notes = {"auth-url": f"http://127.0.0.1:{port}/auth?tenant=t1"}
        with proxy(tmp_path, ingress("app", "/", notes)) as served:
            # "should return status code 200 when signed in"
            r = served.request("POST", "/api/x?q=1", host=HOST, headers={"x-user": "alice"})
            assert r.status_code == 200
            asked = service.seen[-1]
            assert (asked["method"], asked["path"], asked["query"]) == ("GET", "/auth", "tenant=t1")
            sent = asked["headers"]
            assert sent["host"] == f"127.0.0.1:{port}"
            assert sent["x-original-url"] == f"http://{HOST}/api/x?q=1"
            assert sent["x-original-method"] == "POST"
            assert sent["x-sent-from"] == "nginx-ingress-controller"
            assert sent["x-auth-request-redirect"] == "/api/x?q=1"
            assert sent["x-forwarded-for"] == "127.0.0.1"
            assert "content-length" not in sent and "x-original-uri" not in sent
            # Not signed in: the service's 401 and its challenge; the backend is never called.
            r = served.get("/api/x", host=HOST)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Basic realm="ext"'
            r = served.request("GET", "/", host=HOST, headers={"x-user": "mallory"})
            assert r.status_code == 403
            # Any other answer is 500, as auth_request makes it.
            r = served.request("GET", "/", host=HOST, headers={"x-user": "down"})
            assert r.status_code == 500


def test_auth_signin_redirects_on_401_only(tmp_path: Path) -> None:
    # "should redirect to signin url when not signed in"
    with auth_service() as (_, port):
        notes = {
            "auth-url": f"http://127.0.0.1:{port}/auth",
            "auth-signin": "http://signin.example/start",
        }
        with proxy(tmp_path, ingress("app", "/", notes)) as served:
            r = served.get("/a/b?x=1", host=HOST)
            assert r.status_code == 302
            assert r.headers["location"] == (
                f"http://signin.example/start?rd=http%3A%2F%2F{HOST}%2Fa%2Fb%3Fx%3D1"
            )
            r = served.request("GET", "/", host=HOST, headers={"x-user": "mallory"})
            assert r.status_code == 403


def test_auth_response_headers_replace_the_clients(tmp_path: Path) -> None:
    # "should overwrite Foo header with auth response"
    with auth_service() as (_, port):
        notes = {
            "auth-url": f"http://127.0.0.1:{port}/auth",
            "auth-response-headers": "Foo, X-Auth-User, X-Missing",
        }
        with proxy(tmp_path, ingress("app", "/", notes)) as served:
            r = served.request(
                "GET",
                "/",
                host=HOST,
                headers={"x-user": "alice", "foo": "from-client", "x-missing": "client"},
            )
            got = echo(r)
            assert got.header("foo") == "from-auth"
            assert got.header("x-auth-user") == "alice"
            # Not in the auth answer: the client's copy is dropped, not passed.
            assert got.header("x-missing") is None


def test_auth_method_adds_the_original_uri(tmp_path: Path) -> None:
    with auth_service() as (service, port):
        notes = {"auth-url": f"http://127.0.0.1:{port}/auth", "auth-method": "POST"}
        with proxy(tmp_path, ingress("app", "/", notes)) as served:
            served.request("GET", "/p?x=1", host=HOST, headers={"x-user": "alice"})
            asked = service.seen[-1]
            assert asked["method"] == "POST"
            assert asked["headers"]["x-original-uri"] == "/p?x=1"
            assert asked["headers"]["x-scheme"] == "http"


def test_an_unreachable_service_is_500_and_a_bad_url_denies(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = sock.getsockname()[1]
    sock.close()
    with proxy(tmp_path, ingress("app", "/", {"auth-url": f"http://127.0.0.1:{dead}/a"})) as s:
        assert s.get("/", host=HOST).status_code == 500
    (tmp_path / "b").mkdir()
    with proxy(tmp_path / "b", ingress("app", "/", {"auth-url": "not a url"})) as served:
        assert served.get("/", host=HOST).status_code == 503
        codes = [d.code for d in served.app.state.holder.current.diagnostics]
        assert "auth-denied" in codes


def test_an_auth_url_naming_a_service_of_the_folder_reaches_its_endpoints(tmp_path: Path) -> None:
    # http://<service>.<namespace>.svc.cluster.local/... leads to that Service's endpoints,
    # as cluster DNS would: here an echo backend, which answers 200 to anything.
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: authsvc, namespace: default}\n"
        "spec:\n  ports: [{name: http, port: 80, targetPort: 8080}]\n"
    )
    notes = {"auth-url": "http://authsvc.default.svc.cluster.local/auth"}
    with proxy(tmp_path, service, ingress("app", "/", notes)) as served:
        got = echo(served.get("/x", host=HOST))
        assert got.service == "http-svc"
