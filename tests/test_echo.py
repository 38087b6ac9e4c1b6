"""The echo backend, served by a real uvicorn via testing.serve_in_thread."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import ServerThread, serve_in_thread


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with serve_in_thread(create_echo_app("web", pod="web-0", namespace="shop")) as server:
        yield server.url


@pytest.fixture
def client(echo_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=echo_url, trust_env=False) as c:
        yield c


def test_echo_reports_the_request(client: httpx.Client) -> None:
    r = client.get(
        "/a/b?x=1+2",  # not params=: httpx 0.27 writes a space as %20, 0.28 as +
        headers=[("Host", "foo.com"), ("X-Multi", "one"), ("x-multi", "two"), ("x_under", "u")],
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["service"] == "web"
    assert data["pod"] == "web-0"
    assert data["namespace"] == "shop"
    assert data["method"] == "GET"
    assert data["path"] == "/a/b?x=1+2"
    assert data["query"] == "x=1+2"
    assert data["host"] == "foo.com"
    assert data["proto"] == "HTTP/1.1"
    headers = data["headers"]
    assert headers["X-Multi"] == ["one", "two"]
    assert headers["X_under"] == ["u"]
    assert "Host" not in headers  # as Go's r.Header: the host is its own field
    assert headers["User-Agent"] == [client.headers["user-agent"]]


def test_echo_path_is_the_raw_target(client: httpx.Client) -> None:
    r = client.get("/", extensions={"target": b"/a/./b/%7e/%2F?q=%20&&z"})
    assert r.json()["path"] == "/a/./b/%7e/%2F?q=%20&&z"


def test_echo_without_pod_and_namespace() -> None:
    with (
        serve_in_thread(create_echo_app("api")) as server,
        httpx.Client(trust_env=False) as client,
    ):
        data = client.get(server.url + "/").json()
    assert (data["service"], data["pod"], data["namespace"]) == ("api", "", "")


@pytest.mark.parametrize(("path", "status"), [("/status/418", 418), ("/status/503", 503)])
def test_status_paths(client: httpx.Client, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert r.content == b""


@pytest.mark.parametrize("path", ["/status/099", "/status/600"])
def test_status_out_of_range_is_a_bad_request(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 400


def test_health(client: httpx.Client) -> None:
    r = client.get("/health")
    assert (r.status_code, r.text) == (200, "OK")


def test_request_body_is_read_before_answering(client: httpx.Client) -> None:
    body = b"x" * (3 * 1024 * 1024)
    r = client.post("/upload", content=body)
    assert r.status_code == 200
    assert r.json()["headers"]["Content-Length"] == [str(len(body))]


def test_server_thread_releases_its_port() -> None:
    server = ServerThread(create_echo_app("web"), http="h11")
    with server:
        port = server.port
        assert server.url == f"http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
