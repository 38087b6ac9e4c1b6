"""ingress-nginx's basic authentication in the nginx dialect, on real sockets: the basic-auth
cases of kubernetes/ingress-nginx test/e2e/annotations/auth.go, ported, every htpasswd hash
format nginx's auth_basic reads (checked against hashes openssl and bcrypt make), and hostile
requests that must never reach the protected upstream without credentials."""

from __future__ import annotations

import base64
import socket
import subprocess
from pathlib import Path

import bcrypt
import pytest
from test_nginx_rewrite import HOST, ingress, proxy

from ingressproxy.ir.passwords import parse_htpasswd, verify


def secret(name: str, data: dict[str, str]) -> str:
    fields = "".join(f"\n  {k}: {base64.b64encode(v.encode()).decode()}" for k, v in data.items())
    meta = f"metadata: {{name: {name}, namespace: default}}\n"
    return f"apiVersion: v1\nkind: Secret\n{meta}type: Opaque\ndata:{fields}\n"


def _apr1(password: str) -> str:
    out = subprocess.run(
        ["openssl", "passwd", "-apr1", password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


PROTECTED = {"auth-type": "basic", "auth-secret": "basic-auth", "auth-realm": "test auth"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_without_credentials_401_with_the_realm(tmp_path: Path) -> None:
    # auth.go "should return status code 401 when ... Authorization header is not configured"
    users = secret("basic-auth", {"auth": f"foo:{_apr1('bar')}\n"})
    with proxy(tmp_path, users, ingress("app", "/", PROTECTED)) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="test auth"'
        # "... sent with invalid credentials"
        r = served.request("GET", "/", host=HOST, headers=basic("foo", "wrong"))
        assert r.status_code == 401
        # "should return status code 200 when ... Authorization header is sent"; the upstream
        # never sees the Authorization header (proxy_set_header Authorization "").
        r = served.request("GET", "/", host=HOST, headers=basic("foo", "bar"))
        assert r.status_code == 200
        assert "Authorization" not in r.json()["headers"]


def test_an_absent_realm_is_empty(tmp_path: Path) -> None:
    users = secret("basic-auth", {"auth": f"foo:{_apr1('bar')}\n"})
    notes = {"auth-type": "basic", "auth-secret": "basic-auth"}
    with proxy(tmp_path, users, ingress("app", "/", notes)) as served:
        assert served.get("/", host=HOST).headers["www-authenticate"] == 'Basic realm=""'


def test_an_invalid_secret_denies_the_location_with_503(tmp_path: Path) -> None:
    # "should return status code 503 when authentication is configured with an invalid secret"
    notes = {"auth-type": "basic", "auth-secret": "something", "auth-realm": "test auth"}
    with proxy(tmp_path, ingress("app", "/", notes)) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 503
        assert "503 Service Temporarily Unavailable" in r.text
        codes = [d.code for d in served.app.state.holder.current.diagnostics]
        assert "auth-denied" in codes


def test_a_secret_without_the_auth_key_or_in_another_namespace_is_denied(tmp_path: Path) -> None:
    wrong_key = secret("basic-auth", {"users": "foo:{PLAIN}bar\n"})
    with proxy(tmp_path, wrong_key, ingress("app", "/", PROTECTED)) as served:
        assert served.get("/", host=HOST).status_code == 503
    other = dict(PROTECTED, **{"auth-secret": "kube-system/basic-auth"})
    (tmp_path / "b").mkdir()
    users = secret("basic-auth", {"auth": "foo:{PLAIN}bar\n"})
    with proxy(tmp_path / "b", users, ingress("app", "/", other)) as served:
        r = served.request("GET", "/", host=HOST, headers=basic("foo", "bar"))
        assert r.status_code == 503


def test_an_auth_map_secret(tmp_path: Path) -> None:
    # "should return status code 200 when authentication is configured with a map"
    users = secret("basic-auth", {"foo": _apr1("bar")})
    notes = dict(PROTECTED, **{"auth-secret-type": "auth-map"})
    with proxy(tmp_path, users, ingress("app", "/", notes)) as served:
        assert served.request("GET", "/", host=HOST, headers=basic("foo", "bar")).status_code == 200
        assert served.get("/", host=HOST).status_code == 401


def test_invalid_secret_content_is_401(tmp_path: Path) -> None:
    # "should return status code 401 when authentication is configured with invalid content"
    users = secret("basic-auth", {"auth": "foo:"})
    with proxy(tmp_path, users, ingress("app", "/", PROTECTED)) as served:
        assert served.request("GET", "/", host=HOST, headers=basic("foo", "bar")).status_code == 401


def test_401_carries_cors_headers(tmp_path: Path) -> None:
    # "should return status code 401 and cors headers when authentication and cors is
    # configured but Authorization header is not configured"
    users = secret("basic-auth", {"auth": f"foo:{_apr1('bar')}\n"})
    notes = dict(PROTECTED, **{"enable-cors": "true"})
    with proxy(tmp_path, users, ingress("app", "/", notes)) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == "*"


# --------------------------------------------------------------------------- hash formats


def _openssl(flag: str, password: str) -> str:
    out = subprocess.run(
        ["openssl", "passwd", flag, password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.parametrize("flag", ["-apr1", "-1", "-5", "-6"])
def test_crypt_hashes_as_openssl_makes_them(flag: str) -> None:
    hashed = _openssl(flag, "s3cret pass")
    assert verify("s3cret pass", hashed)
    assert not verify("s3cret pas", hashed)


def test_sha_crypt_with_rounds_and_the_rfc2307_schemes() -> None:
    # Drepper's test vector: rounds=5000 written out, salt "saltstring".
    vector = "$5$rounds=5000$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
    assert verify("Hello world!", vector)
    sha = "{SHA}" + base64.b64encode(__import__("hashlib").sha1(b"bar").digest()).decode()
    assert verify("bar", sha) and not verify("baz", sha)
    assert verify("bar", "{PLAIN}bar") and not verify("ba", "{PLAIN}bar")
    assert not verify("bar", "xyDES1234567")  # DES crypt: not read, never matches


@pytest.mark.parametrize("prefix", ["$2y$", "$2a$", "$2b$"])
def test_bcrypt_as_htpasswd_B_makes_it(prefix: str) -> None:
    hashed = bcrypt.hashpw(b"bar", bcrypt.gensalt(4)).decode()
    assert verify("bar", prefix + hashed[4:])
    assert not verify("baz", prefix + hashed[4:])


def test_htpasswd_lines() -> None:
    users, bad = parse_htpasswd("# comment\nfoo:$apr1$x$y\n\nbroken\nbar:{PLAIN}z:extra\n")
    assert users == {"foo": "$apr1$x$y", "bar": "{PLAIN}z"}
    assert bad == [4]


# --------------------------------------------------------------------------- no bypass


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


@pytest.mark.parametrize(
    "target",
    [
        b"/private",
        b"/private/",
        b"/PRIVATE",
        b"/public/../private",
        b"/public/%2e%2e/private",
        b"/%70rivate",
        b"//private",
        b"/private%2Fx",
        b"/./private",
    ],
)
def test_no_path_reaches_the_protected_location_without_credentials(
    tmp_path: Path, target: bytes
) -> None:
    users = secret("basic-auth", {"auth": "foo:{PLAIN}bar\n"})
    protected = ingress("private", "/private", PROTECTED)
    public = ingress("public", "/public", created="2026-01-02T00:00:00Z")
    with proxy(tmp_path, users, protected, public) as served:
        port = int(served.base_url.rsplit(":", 1)[1])
        for method in (b"GET", b"HEAD"):
            answer = _raw(
                port, method + b" " + target + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
            )
            status = answer.split(b" ", 2)[1]
            # 401 (protected), 404 (no location) or 400 (refused path): never the upstream.
            assert status in (b"401", b"404", b"400"), (method, target, answer[:200])


def test_a_malformed_authorization_header_is_401(tmp_path: Path) -> None:
    users = secret("basic-auth", {"auth": "foo:{PLAIN}bar\n"})
    with proxy(tmp_path, users, ingress("app", "/", PROTECTED)) as served:
        for value in ("Basic", "Basic !!!", "Bearer Zm9vOmJhcg==", "Basic Zm9vYmFy"):
            r = served.request("GET", "/", host=HOST, headers={"authorization": value})
            assert r.status_code == 401, value
        r = served.request("GET", "/", host=HOST, headers={"authorization": "basic Zm9vOmJhcg=="})
        assert r.status_code == 200  # the scheme is case-insensitive (RFC 9110 11.1)
