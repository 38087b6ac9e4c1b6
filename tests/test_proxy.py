"""End to end: ProxyApp under a real uvicorn (h11 and httptools), real backends on 127.0.0.1,
driven by httpx and, where the check is about framing or exact bytes, by a raw socket."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h11
import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from proxykit import make_table, route
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from ingressproxy.ir.model import Backend, Endpoint
from ingressproxy.ir.snapshot import Snapshot, SnapshotHolder
from ingressproxy.ir.table import RouteTable
from ingressproxy.proxy.app import PROXY_UVICORN_OPTIONS, ProxyApp
from ingressproxy.server.settings import Settings
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import ServerThread, serve_in_thread

HTTP_IMPLS = ["h11", "httptools"]
GZIPPED = gzip.compress(b"hello, compressed world\n" * 500)
LONG_AGO = b"Sun, 06 Nov 1994 08:49:37 GMT"
COOKIES = [
    b"a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/",
    b"b=2; HttpOnly",
    b"c=3",
]

# --------------------------------------------------------------------------- backends


@dataclass
class Signals:
    """Cross-thread handshakes between a test and the `special` backend."""

    go: threading.Event = field(default_factory=threading.Event)
    first_chunk: threading.Event = field(default_factory=threading.Event)
    upstream_gone: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        for event in (self.go, self.first_chunk, self.upstream_gone):
            event.clear()


class BackendDies(Exception):
    """Raised by the backend after its response started, so uvicorn drops the connection."""


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


def special_app(signals: Signals) -> ASGIApp:
    """One backend with a behaviour per path (see each branch)."""

    async def start(send: Send, headers: list[tuple[bytes, bytes]], status: int = 200) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(send: Send, data: bytes, more: bool = False) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": more})

    def length(data: bytes) -> tuple[bytes, bytes]:
        return (b"content-length", str(len(data)).encode())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/upload":
            size = chunks = 0
            digest = hashlib.sha256()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                data = message.get("body", b"")
                if data:
                    size += len(data)
                    chunks += 1
                    digest.update(data)
                    signals.first_chunk.set()
                if not message.get("more_body", False):
                    break
            headers = dict(scope["headers"])
            report = json.dumps(
                {
                    "bytes": size,
                    "chunks": chunks,
                    "sha256": digest.hexdigest(),
                    "content-length": headers.get(b"content-length", b"").decode(),
                    "transfer-encoding": headers.get(b"transfer-encoding", b"").decode(),
                }
            ).encode()
            await start(send, [length(report)])
            await body(send, report)
            return

        await _drain(receive)
        if path == "/cookies":
            await start(send, [*((b"set-cookie", c) for c in COOKIES), length(b"ok")])
            await body(send, b"ok")
        elif path == "/hop":
            await start(
                send,
                [
                    (b"connection", b"X-Private"),
                    (b"keep-alive", b"timeout=5"),
                    (b"proxy-connection", b"keep-alive"),
                    (b"trailer", b"X-Checksum"),
                    (b"upgrade", b"h2c"),
                    (b"x-private", b"secret"),
                    (b"x-kept", b"yes"),
                    length(b"ok"),
                ],
            )
            await body(send, b"ok")
        elif path == "/with-server":
            await start(send, [(b"server", b"backend/1.0"), (b"date", LONG_AGO), length(b"ok")])
            await body(send, b"ok")
        elif path == "/no-server":
            await start(send, [length(b"ok")])
            await body(send, b"ok")
        elif path == "/gzip":
            encoding = [(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")]
            await start(send, [*encoding, length(GZIPPED)])
            await body(send, GZIPPED)
        elif path == "/stream":
            # The second chunk is only sent once the test has received the first one through
            # the proxy: a proxy that buffers the response would deadlock here (bounded).
            await start(send, [(b"content-type", b"text/plain")])
            await body(send, b"first", more=True)
            received = await asyncio.to_thread(signals.go.wait, 10)
            await body(send, b"second" if received else b"-buffered")
        elif path == "/die":
            await start(send, [(b"content-length", b"1000")])
            await body(send, b"x" * 10, more=True)
            raise BackendDies("declared 1000 bytes, sent 10")
        elif path == "/die-chunked":
            await start(send, [(b"content-type", b"text/plain")])
            await body(send, b"partial", more=True)
            raise BackendDies("chunked body cut short")
        elif path == "/forever":
            gone = asyncio.Event()

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone.set()

            watcher = asyncio.create_task(watch())
            await start(send, [(b"content-type", b"application/octet-stream")])
            while not gone.is_set():
                await body(send, b"z" * 16384, more=True)
                await asyncio.sleep(0)  # a yield, so the watcher runs once sends stop blocking
            await watcher
            signals.upstream_gone.set()
        else:
            await start(send, [length(b"?")], status=404)
            await body(send, b"?")

    return app


@dataclass
class Backends:
    table: RouteTable
    signals: Signals


def _service(name: str, *ports: int) -> Backend:
    """Service shop/<name>, port "http", with an endpoint on 127.0.0.1 per port."""
    return Backend("shop", name, "http", tuple(Endpoint("127.0.0.1", p) for p in ports))


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    signals = Signals()
    with contextlib.ExitStack() as stack:
        web = [
            stack.enter_context(serve_in_thread(create_echo_app("web", f"web-{i}", "shop")))
            for i in range(3)
        ]
        api = stack.enter_context(serve_in_thread(create_echo_app("api", "api-0", "shop")))
        special = stack.enter_context(
            serve_in_thread(
                special_app(signals), lifespan="off", server_header=False, date_header=False
            )
        )
        # Accepts connections (the kernel's backlog does) but never answers.
        silent = stack.enter_context(socket.socket())
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        # A port with nothing listening: connection refused.
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]

        table = make_table(
            [
                route("echo.test", "/", _service("web", *(s.port for s in web))),
                route("echo.test", "/api", _service("api", api.port)),
                route("special.test", "/", _service("special", special.port)),
                route("silent.test", "/", _service("silent", silent.getsockname()[1])),
                route("closed.test", "/", _service("gone", closed_port)),
                route("down.test", "/", _service("down")),
                route(
                    "broken.test",
                    "/",
                    Backend("shop", "login", "8080", (), error="Service shop/login not found"),
                ),
            ]
        )
        yield Backends(table, signals)


@contextlib.contextmanager
def run_proxy(table: RouteTable, http: str, **settings: Any) -> Iterator[ServerThread]:
    holder = SnapshotHolder()
    holder.swap(Snapshot(table))
    settings.setdefault("connect_timeout", 5.0)
    settings.setdefault("read_timeout", 10.0)
    config = Settings(**settings)
    app = ProxyApp(holder, config)
    # The server `ingressproxy serve` runs (server/stack.py), on the parser asked for.
    with serve_in_thread(app, settings=config, parser=http) as server:
        yield server


@pytest.fixture(scope="module", params=HTTP_IMPLS)
def proxy(request: pytest.FixtureRequest, backends: Backends) -> Iterator[ServerThread]:
    with run_proxy(backends.table, request.param) as server:
        yield server


@pytest.fixture
def signals(backends: Backends) -> Signals:
    backends.signals.reset()
    return backends.signals


@pytest.fixture
def client(proxy: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=10.0) as c:
        yield c


def get(client: httpx.Client, host: str, target: bytes, **kwargs: Any) -> httpx.Response:
    """GET with an exact request target (httpx's "target" extension: no client-side quoting
    or dot-segment removal)."""
    headers = {"host": host, **kwargs.pop("headers", {})}
    return client.get("/", headers=headers, extensions={"target": target}, **kwargs)


def echoed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool  # False when the connection closed before the end of the message


def raw_exchange(port: int, request: bytes, method: bytes = b"GET") -> RawResponse:
    """Send `request` bytes as they are, read until the server closes, parse with h11."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
    status, body = 0, bytearray()
    headers: list[tuple[bytes, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return RawResponse(status, headers, bytes(body), complete=False)
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return RawResponse(status, headers, bytes(body), complete=True)


# --------------------------------------------------------------------------- routing


def test_routes_by_host_and_path(client: httpx.Client) -> None:
    assert echoed(get(client, "echo.test", b"/api/users"))["service"] == "api"
    assert echoed(get(client, "echo.test", b"/api"))["service"] == "api"
    # Prefix matching is element-wise: /apix is not under /api.
    assert echoed(get(client, "echo.test", b"/apix"))["service"] == "web"
    assert echoed(get(client, "echo.test", b"/"))["service"] == "web"


def test_round_robin_across_three_endpoints(client: httpx.Client) -> None:
    pods = [echoed(get(client, "echo.test", b"/rr"))["pod"] for _ in range(6)]
    assert set(pods[:3]) == {"web-0", "web-1", "web-2"}
    assert pods[3:] == pods[:3]


def test_unknown_host_is_404_naming_host_and_path(client: httpx.Client) -> None:
    r = get(client, "Nope.Test:8080", b"/x/y?q=1")
    assert r.status_code == 404
    assert r.text == 'no route for host "nope.test" path "/x/y"\n'
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("down.test", "service shop/down:http is unavailable: no endpoints found\n"),
        (
            "broken.test",
            "service shop/login:8080 is unavailable: Service shop/login not found\n",
        ),
    ],
)
def test_unavailable_backend_is_503_naming_the_service(
    client: httpx.Client, host: str, expected: str
) -> None:
    r = get(client, host, b"/")
    assert r.status_code == 503
    assert r.text == expected


def test_unavailable_backend_is_logged_like_traefik_once(
    backends: Backends, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingressproxy.proxy")
    with (
        run_proxy(backends.table, "h11") as proxy,
        httpx.Client(base_url=proxy.url, trust_env=False) as client,
    ):
        for _ in range(3):
            assert get(client, "down.test", b"/").status_code == 503
    lines = [r.getMessage() for r in caplog.records if "Skipping service" in r.getMessage()]
    assert lines == [
        "Skipping service: no endpoints found namespace=shop ingress=down "
        "serviceName=down servicePort=http"
    ]


# --------------------------------------------------------------------------- upstream errors


def test_connection_refused_is_502(client: httpx.Client) -> None:
    r = get(client, "closed.test", b"/")
    assert r.status_code == 502
    assert r.text == "502 Bad Gateway\n"


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_upstream_that_never_answers_is_504(backends: Backends, http: str) -> None:
    with (
        run_proxy(backends.table, http, read_timeout=0.3) as proxy,
        httpx.Client(base_url=proxy.url, trust_env=False, timeout=10.0) as client,
    ):
        r = get(client, "silent.test", b"/")
    assert r.status_code == 504
    assert r.text == "504 Gateway Timeout\n"


def test_upstream_dying_mid_body_truncates_the_client_response(
    client: httpx.Client, proxy: ServerThread
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        get(client, "special.test", b"/die")
    raw = raw_exchange(proxy.port, b"GET /die HTTP/1.1\r\nHost: special.test\r\n\r\n")
    assert raw.status == 200
    assert (b"content-length", b"1000") in raw.headers
    assert raw.body == b"x" * 10
    assert not raw.complete


def test_upstream_dying_mid_chunked_body_is_not_ended_cleanly(
    client: httpx.Client, proxy: ServerThread
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        get(client, "special.test", b"/die-chunked")
    raw = raw_exchange(proxy.port, b"GET /die-chunked HTTP/1.1\r\nHost: special.test\r\n\r\n")
    assert raw.status == 200
    assert raw.body == b"partial"
    assert not raw.complete


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "target", [b"/a%2Fb", b"/a%2fb", b"/a%5Cb", b"/a%00b", b"/a%zz", b"/a%4", b"/a\\b"]
)
def test_unsafe_paths_are_400(client: httpx.Client, target: bytes) -> None:
    r = get(client, "echo.test", target)
    assert r.status_code == 400
    assert r.text.startswith("400 Bad Request: ")
    assert "Traceback" not in r.text


def test_raw_nul_in_the_path_is_400(proxy: ServerThread) -> None:
    raw = raw_exchange(proxy.port, b"GET /a\x00b HTTP/1.1\r\nHost: echo.test\r\n\r\n")
    assert raw.status == 400


def test_dot_segments_are_resolved_and_forwarded_canonical(client: httpx.Client) -> None:
    data = echoed(get(client, "echo.test", b"/api/./v1/../v2//x/%2e%2e/%7Ey/%3a?q=1"))
    assert data["service"] == "api"
    assert data["path"] == "/api/v2/~y/%3A?q=1"


def test_dot_segments_cannot_climb_out_of_a_prefix_unnoticed(client: httpx.Client) -> None:
    # /api/../x is /x: it must not be routed by the /api rule.
    data = echoed(get(client, "echo.test", b"/api/%2e%2e/x"))
    assert (data["service"], data["path"]) == ("web", "/x")


@pytest.mark.parametrize(
    "target",
    [
        b"/q?a=%20&b=c&&a",
        b"/q?x=%zz&y=%2F&z=a+b&=&&",
        b"/q?json={%22k%22:[1,2]}&t=%C3%A9",
        b"/q?",
    ],
)
def test_query_string_is_forwarded_byte_for_byte(client: httpx.Client, target: bytes) -> None:
    path, _, query = target.partition(b"?")
    expected = (path + b"?" + query if query else path).decode()
    assert echoed(get(client, "echo.test", target))["path"] == expected


@pytest.mark.parametrize(
    "target",
    [
        b"/Some/Path;v=1/%C3%A9/x~y/a%3Fb/a%25b/.well-known/z",
        b"/api/v1/items/",
        b"/a:b@c!$&'()*+,=",
    ],
)
def test_canonical_path_reaches_the_backend_byte_identical(
    client: httpx.Client, target: bytes
) -> None:
    assert echoed(get(client, "echo.test", target))["path"] == target.decode()


# --------------------------------------------------------------------------- headers


def test_hop_by_hop_request_headers_are_removed(client: httpx.Client) -> None:
    data = echoed(
        get(
            client,
            "echo.test",
            b"/",
            headers={
                "Connection": "keep-alive, X-Private, X-Forwarded-For, X-Real-IP",
                "Keep-Alive": "timeout=5",
                "Proxy-Connection": "keep-alive",
                "TE": "trailers",
                "Trailer": "X-Checksum",
                "Upgrade": "h2c",
                "X-Private": "secret",
                "X-Kept": "yes",
            },
        )
    )
    headers = data["headers"]
    for name in ("Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"):
        assert name not in headers
    assert "X-Private" not in headers
    assert headers["X-Kept"] == ["yes"]
    # Named in Connection, yet ours are still there.
    assert headers["X-Forwarded-For"] == ["127.0.0.1"]
    assert headers["X-Real-Ip"] == ["127.0.0.1"]


def test_hop_by_hop_response_headers_are_removed(client: httpx.Client) -> None:
    r = get(client, "special.test", b"/hop")
    assert r.status_code == 200
    for name in ("keep-alive", "proxy-connection", "trailer", "upgrade", "x-private"):
        assert name not in r.headers
    assert "x-private" not in r.headers.get("connection", "").lower()
    assert r.headers["x-kept"] == "yes"


def test_forwarded_headers_from_an_untrusted_client_are_replaced(
    client: httpx.Client, proxy: ServerThread
) -> None:
    data = echoed(
        get(
            client,
            "echo.test",
            b"/",
            headers={
                "X-Forwarded-For": "1.2.3.4",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Port": "1",
                "X-Real-IP": "6.6.6.6",
                "X_Forwarded_For": "9.9.9.9",
            },
        )
    )
    headers = data["headers"]
    assert headers["X-Forwarded-For"] == ["127.0.0.1"]
    assert headers["X-Forwarded-Proto"] == ["http"]
    assert headers["X-Forwarded-Host"] == ["echo.test"]
    assert headers["X-Forwarded-Port"] == [str(proxy.port)]
    assert headers["X-Real-Ip"] == ["127.0.0.1"]
    assert not [name for name in headers if "_" in name]


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_forwarded_headers_from_a_trusted_proxy_are_extended(backends: Backends, http: str) -> None:
    trusted = (ipaddress.ip_network("127.0.0.0/8"),)
    with (
        run_proxy(backends.table, http, trusted_proxies=trusted) as proxy,
        httpx.Client(base_url=proxy.url, trust_env=False, timeout=10.0) as client,
    ):
        data = echoed(
            get(
                client,
                "echo.test",
                b"/",
                headers={
                    "X-Forwarded-For": "198.51.100.7",
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "www.example.com",
                    "X-Forwarded-Port": "443",
                },
            )
        )
    headers = data["headers"]
    assert headers["X-Forwarded-For"] == ["198.51.100.7, 127.0.0.1"]
    assert headers["X-Forwarded-Proto"] == ["https"]
    assert headers["X-Forwarded-Host"] == ["www.example.com"]
    assert headers["X-Forwarded-Port"] == ["443"]
    assert headers["X-Real-Ip"] == ["198.51.100.7"]


def test_host_header_is_forwarded_unchanged(client: httpx.Client) -> None:
    data = echoed(get(client, "ECHO.test.:8080", b"/"))
    assert data["host"] == "ECHO.test.:8080"
    assert data["headers"]["X-Forwarded-Host"] == ["ECHO.test.:8080"]


def test_request_id_is_kept_or_generated(client: httpx.Client) -> None:
    kept = echoed(get(client, "echo.test", b"/", headers={"X-Request-ID": "abc-123"}))
    assert kept["headers"]["X-Request-Id"] == ["abc-123"]
    made = echoed(get(client, "echo.test", b"/", headers={"X-Request-ID": "bad id"}))
    (generated,) = made["headers"]["X-Request-Id"]
    assert len(generated) == 32 and generated != "bad id"


def test_proxy_adds_no_client_headers_of_its_own(proxy: ServerThread) -> None:
    raw = raw_exchange(
        proxy.port, b"GET /plain HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n"
    )
    assert raw.status == 200
    headers = json.loads(raw.body)["headers"]
    assert set(headers) == {
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "X-Forwarded-Port",
        "X-Real-Ip",
        "X-Request-Id",
    }


def test_client_headers_pass_through(client: httpx.Client) -> None:
    data = echoed(
        get(
            client,
            "echo.test",
            b"/",
            headers={"User-Agent": "curl/8.0", "Accept-Encoding": "br", "Cookie": "a=1; b=2"},
        )
    )
    headers = data["headers"]
    assert headers["User-Agent"] == ["curl/8.0"]
    assert headers["Accept-Encoding"] == ["br"]
    assert headers["Cookie"] == ["a=1; b=2"]


def test_server_header_is_added_only_when_the_upstream_sent_none(client: httpx.Client) -> None:
    theirs = get(client, "special.test", b"/with-server")
    assert theirs.headers.get_list("server") == ["backend/1.0"]
    assert theirs.headers.get_list("date") == [LONG_AGO.decode()]
    ours = get(client, "special.test", b"/no-server")
    assert ours.headers.get_list("server") == ["ingressproxy"]
    assert len(ours.headers.get_list("date")) == 1


def test_every_set_cookie_line_is_preserved(client: httpx.Client) -> None:
    r = get(client, "special.test", b"/cookies")
    assert [v for k, v in r.headers.raw if k.lower() == b"set-cookie"] == COOKIES
    assert r.headers["content-length"] == "2"


def test_gzip_body_passes_untouched(client: httpx.Client) -> None:
    with client.stream(
        "GET", "/", headers={"host": "special.test"}, extensions={"target": b"/gzip"}
    ) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-length"] == str(len(GZIPPED))
    assert raw == GZIPPED


def test_head_request_keeps_the_connection_usable(client: httpx.Client) -> None:
    r = client.head("/", headers={"host": "echo.test"})
    assert r.status_code == 200
    assert int(r.headers["content-length"]) > 0
    assert r.content == b""
    assert echoed(get(client, "echo.test", b"/after-head"))["path"] == "/after-head"


def test_missing_host_on_http11_is_400(proxy: ServerThread) -> None:
    raw = raw_exchange(proxy.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert raw.status == 400


def test_http10_without_host_matches_no_host_rule(proxy: ServerThread) -> None:
    raw = raw_exchange(proxy.port, b"GET /x HTTP/1.0\r\n\r\n")
    assert raw.status == 404
    assert raw.body == b'no route for host "" path "/x"\n'


def test_two_host_headers_are_400(proxy: ServerThread) -> None:
    raw = raw_exchange(
        proxy.port,
        b"GET / HTTP/1.1\r\nHost: echo.test\r\nHost: special.test\r\nConnection: close\r\n\r\n",
    )
    assert raw.status == 400


# --------------------------------------------------------------------------- streaming


def test_response_is_streamed_chunk_by_chunk(client: httpx.Client, signals: Signals) -> None:
    with client.stream(
        "GET", "/", headers={"host": "special.test"}, extensions={"target": b"/stream"}
    ) as r:
        chunks = r.iter_raw()
        assert next(chunks) == b"first"
        signals.go.set()
        assert b"".join(chunks) == b"second"


def test_chunked_upload_is_streamed(proxy: ServerThread, signals: Signals) -> None:
    part = b"u" * 65536
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: special.test\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        # The backend has the first chunk before the client sent the rest: not buffered.
        assert signals.first_chunk.wait(10)
        for _ in range(127):
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
        response = bytearray()
        while data := sock.recv(65536):
            response += data
    head, _, body = bytes(response).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    report = json.loads(body)
    assert report["bytes"] == 128 * len(part)
    assert report["sha256"] == hashlib.sha256(part * 128).hexdigest()
    assert report["transfer-encoding"] == "chunked"
    assert report["content-length"] == ""
    assert report["chunks"] > 1


def test_upload_with_content_length_is_forwarded_as_is(client: httpx.Client) -> None:
    payload = bytes(range(256)) * 20000  # ~5 MB
    r = client.post(
        "/", content=payload, headers={"host": "special.test"}, extensions={"target": b"/upload"}
    )
    report = r.json()
    assert report["content-length"] == str(len(payload))
    assert report["transfer-encoding"] == ""
    assert report["bytes"] == len(payload)
    assert report["sha256"] == hashlib.sha256(payload).hexdigest()


def test_client_leaving_mid_response_releases_the_upstream(
    proxy: ServerThread, signals: Signals
) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: special.test\r\n\r\n")
        received = 0
        while received < 200_000:
            data = sock.recv(65536)
            assert data
            received += len(data)
    assert signals.upstream_gone.wait(10)


# --------------------------------------------------------------------------- other scopes


def test_websocket_without_a_route_is_an_http_404(proxy: ServerThread) -> None:
    # WebSocket proxying itself is tested in test_forward_ws.py.
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        websockets.sync.client.connect(f"ws://127.0.0.1:{proxy.port}/ws")
    assert info.value.response.status_code == 404


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_mounted_under_starlette(backends: Backends, http: str) -> None:
    holder = SnapshotHolder()
    holder.swap(Snapshot(backends.table))
    proxy = ProxyApp(holder, Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await proxy.startup()
        yield
        await proxy.aclose()

    app = Starlette(routes=[Mount("/", app=proxy)], lifespan=lifespan)
    with (
        serve_in_thread(app, http=http, **PROXY_UVICORN_OPTIONS) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=10.0) as client,
    ):
        data = echoed(get(client, "echo.test", b"/api/./v1/%7Ex?q=%20"))
        assert (data["service"], data["path"]) == ("api", "/api/v1/~x?q=%20")
        assert get(client, "echo.test", b"/a%2Fb").status_code == 400
        assert get(client, "nope.test", b"/").status_code == 404
