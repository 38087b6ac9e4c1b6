"""server/stack.py: `serve`, its HTTPS listener, testing.start_proxy and the pytest plugin run
one server stack, whose protocol the uvicorn factory can load too. Proved on what runs (the
protocol class serving a client's connection, the bytes a request only the guard refuses gets
back), not on which function was called."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from ingressproxy.cli.main import main
from ingressproxy.server.guard import GuardedHttpToolsProtocol, RequestLimits
from ingressproxy.server.settings import Settings, env_name
from ingressproxy.server.stack import ProxyServer, listener_config
from ingressproxy.testing.server import LoggedProcess, start_proxy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "imagemanager"
HOST = b"api.imagemanager.io"
WAIT = 20.0

# Limits given to both, as flags to `serve` and as Settings fields to start_proxy.
FLAGS = ["--max-headers", "5", "--max-uri-length", "1000", "--header-timeout", "3"]
LIMITS = {"max_headers": 5, "max_uri_length": 1000, "header_timeout": 3.0}


def built_by_serve(monkeypatch: pytest.MonkeyPatch, *args: str) -> ProxyServer:
    """The server `ingressproxy serve ARGS` builds, caught where it would start running."""
    built: list[ProxyServer] = []
    with monkeypatch.context() as m:
        m.setattr(ProxyServer, "run", lambda self, sockets=None: built.append(self))
        m.setattr(signal, "signal", lambda signum, handler: None)  # pytest keeps its handlers
        m.setattr(logging, "basicConfig", lambda **kwargs: None)
        main(["serve", *args])
    (server,) = built
    return server


def shape(config: uvicorn.Config) -> dict[str, object]:
    """What a listener's clients can tell apart: the protocol (the guard and the parser under
    it; the class itself is made per server), its limits, the headers uvicorn adds or trusts,
    and how the server starts and stops. Not logging, which the test harness keeps quiet."""
    http = config.http
    assert isinstance(http, type)
    names = (
        "proxy_headers",
        "server_header",
        "date_header",
        "access_log",
        "ws",
        "lifespan",
        "timeout_keep_alive",
        "timeout_graceful_shutdown",
        "h11_max_incomplete_event_size",
        "limit_concurrency",
    )
    return {
        "protocol": http.__mro__[1:],
        "limits": getattr(http, "limits", None),
        **{name: getattr(config, name) for name in names},
    }


def test_start_proxy_runs_the_server_serve_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    served = built_by_serve(monkeypatch, str(EXAMPLE), "--port", "0", "--admin-port", "off", *FLAGS)
    assert issubclass(served.config.http, GuardedHttpToolsProtocol)  # type: ignore[arg-type]
    assert served.config.http.limits == RequestLimits(  # type: ignore[union-attr]
        max_headers=5, max_uri_length=1000, header_timeout=3.0
    )
    with start_proxy(EXAMPLE, admin=False, **LIMITS) as proxy:
        running = proxy.server.server
        assert isinstance(running, ProxyServer)  # /ping drains from the start of shutdown
        assert shape(running.config) == shape(served.config)
        # The connection a client opens is served by exactly that protocol class.
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock:
            sock.sendall(b"GET /nope HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 404 ")
            protocols = {type(c) for c in list(running.server_state.connections)}
        assert protocols == {running.config.http}


def test_the_https_listener_speaks_as_the_plain_one(tmp_path: Path) -> None:
    with start_proxy(EXAMPLE, admin=False, https_port=0, **LIMITS) as proxy:
        https = proxy.app.state.https
        assert https is not None
        web, secure = shape(proxy.server.config), shape(https.server.config)
    for embedded in ("lifespan", "timeout_graceful_shutdown"):  # the main server's jobs
        del web[embedded], secure[embedded]
    assert secure == web


def test_the_admin_listener_is_uvicorns_own() -> None:
    config = listener_config(lambda *a: None, Settings(admin_port=0), "admin")
    assert (config.http, config.proxy_headers, config.lifespan) == ("auto", True, "off")
    with pytest.raises(ValueError, match="admin listener is off"):
        listener_config(lambda *a: None, Settings(admin_port=None), "admin")


# --------------------------------------------------------------------------- by the bytes
# Requests only the guard refuses (plain uvicorn would pass the first and third to the app,
# and words its refusal of the second differently), sent to a real `serve` process and to
# start_proxy with the same limits: the same bytes come back.

REFUSED = [
    pytest.param(
        b"GET /labeling HTTP/1.1\r\nHost: "
        + HOST
        + b"\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
        431,
        id="too-many-header-fields",
    ),
    pytest.param(
        b"POST /labeling HTTP/1.1\r\nHost: " + HOST + b"\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        id="length-and-chunked",
    ),
    pytest.param(
        b"GET /" + b"a" * 1200 + b" HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n",
        414,
        id="target-too-long",
    ),
]


def listening(proc: LoggedProcess) -> int:
    return int(proc.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))


@pytest.fixture(scope="module")
def serve_port() -> Iterator[int]:
    proc = LoggedProcess(
        "serve", str(EXAMPLE), "--port", "0", "--admin-port", "off", "--https-port", "off",
        "--access-log", "off", *FLAGS,
        wait=WAIT,
    )  # fmt: skip
    try:
        yield listening(proc)
    finally:
        assert proc.stop() == 0, "\n".join(proc.drain())


@pytest.fixture(scope="module")
def factory_port() -> Iterator[int]:
    """The uvicorn factory with the protocol of ingressproxy.app (docs/cli.md), the same
    limits given as variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGRESSPROXY_")}
    env.update(
        PYTHONUNBUFFERED="1",
        INGRESSPROXY_MANIFESTS=str(EXAMPLE),
        INGRESSPROXY_ADMIN_PORT="off",
        INGRESSPROXY_HTTPS_PORT="off",
        INGRESSPROXY_ACCESS_LOG="off",
        **{env_name(flag): value for flag, value in zip(FLAGS[::2], FLAGS[1::2], strict=True)},
    )
    proc = LoggedProcess(
        argv=[sys.executable, "-m", "uvicorn", "--factory", "ingressproxy.app:create_app",
              "--http", "ingressproxy.app:http_protocol", "--port", "0",
              "--no-proxy-headers", "--no-server-header", "--no-date-header"],
        env=env,
        wait=WAIT,
    )  # fmt: skip
    try:
        yield listening(proc)
    finally:
        proc.stop()


def exchange(port: int, request: bytes) -> bytes:
    """Everything the server writes back before it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(("request_bytes", "status"), REFUSED)
def test_a_request_only_the_guard_refuses_gets_the_same_bytes(
    serve_port: int, factory_port: int, request_bytes: bytes, status: int
) -> None:
    from_serve = exchange(serve_port, request_bytes)
    assert from_serve.startswith(b"HTTP/1.1 %d " % status), from_serve
    with start_proxy(EXAMPLE, admin=False, https_port=None, **LIMITS) as proxy:
        assert exchange(proxy.port, request_bytes) == from_serve
    assert exchange(factory_port, request_bytes) == from_serve
