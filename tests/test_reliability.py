"""Upstream failures, retries, passive health, client disconnects, pool limits, loops and
namespace isolation, through real sockets: raw upstreams that count every connection and
request, so "retried", "not retried" and "never reached" are facts, not guesses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxykit import (
    HTTP_IMPLS,
    WAIT,
    Conn,
    RawUpstream,
    dead_port,
    exchange,
    make_table,
    ok,
    route,
    run_proxy,
    serve_ok,
    service,
    single,
)
from starlette.applications import Starlette
from starlette.routing import Mount

from ingressproxy.admin.server import create_admin_app
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.ir.model import Backend, Endpoint
from ingressproxy.ir.snapshot import Snapshot, SnapshotHolder
from ingressproxy.proxy.app import ProxyApp
from ingressproxy.server.embedded import EmbeddedServer
from ingressproxy.server.reloader import build_snapshot
from ingressproxy.server.settings import Settings
from ingressproxy.server.stack import listener_config
from ingressproxy.testing.server import serve_in_thread
from ingressproxy.upstream.balancer import Balancer

GET = b"GET /%s HTTP/1.1\r\nHost: app.test\r\n\r\n"


def get(port: int, path: bytes = b"x") -> int:
    return exchange(port, GET % path).status


def post(port: int, body: bytes = b"data") -> int:
    return exchange(
        port,
        b"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        b"POST",
    ).status


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingBalancer(Balancer):
    """The real Balancer, counting connect failures per endpoint port."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.failures: Counter[int] = Counter()

    def connect_failed(self, endpoint: Endpoint) -> None:
        self.failures[endpoint.port] += 1
        super().connect_failed(endpoint)


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port whose accept queue is full: connecting to it times out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        with socket.create_connection(sock.getsockname(), timeout=WAIT):
            yield sock.getsockname()[1]


# --------------------------------------------------------------------------- failure statuses


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_refused_is_502_generic_with_details_in_the_log(
    http: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingressproxy.proxy")
    with dead_port() as dead:
        port = dead.getsockname()[1]
        with run_proxy(single("app.test", port), http) as proxy:
            r = exchange(proxy.port, GET % b"x")
    assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
    assert any(f"127.0.0.1:{port}" in m and "ConnectError" in m for m in caplog.messages)


def test_connect_timeout_is_504() -> None:
    with (
        blackhole() as hole,
        run_proxy(single("app.test", hole), "h11", connect_timeout=0.3) as proxy,
    ):
        r = exchange(proxy.port, GET % b"x")
    assert (r.status, r.body) == (504, b"504 Gateway Timeout\n")


def _answer_with(raw: bytes) -> Any:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.sock.sendall(raw)
            conn.upstream.record_closed(conn.wait_closed())  # type: ignore[attr-defined]

    return handler


BAD_RESPONSES = {
    "content-length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "two-content-lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nsecret"
    ),
    "garbage-status-line": b"HELLO secret\r\n\r\n",
    "gzip-transfer-encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nsecret",
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nsecret",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nsecret\r\nContent-Length: 2\r\n\r\nok",
}


class ClosingUpstream(RawUpstream):
    """RawUpstream remembering, per connection, whether the proxy closed it afterwards."""

    def __init__(self, handler: Any) -> None:
        self.closed_after: list[bool] = []
        super().__init__(handler)

    def record_closed(self, closed: bool) -> None:
        with self.changed:
            self.closed_after.append(closed)
            self.changed.notify_all()


@pytest.mark.parametrize("case", list(BAD_RESPONSES))
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_garbage_or_ambiguous_upstream_framing_is_502_and_nothing_leaks(
    http: str, case: str
) -> None:
    with (
        ClosingUpstream(_answer_with(BAD_RESPONSES[case])) as upstream,
        run_proxy(single("app.test", upstream.port), http) as proxy,
    ):
        r = exchange(proxy.port, GET % b"x", check_closed=False)
        assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
        assert not [v for n, v in r.headers if b"secret" in v or n == b"transfer-encoding"]
        with upstream.changed:
            assert upstream.changed.wait_for(lambda: upstream.closed_after, WAIT)
        assert upstream.closed_after == [True]  # that connection is never reused


def _dies_mid_body(chunked: bool) -> Any:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            if chunked:
                conn.sock.sendall(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n"
                )
            else:
                conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            conn.sock.shutdown(socket.SHUT_RDWR)

    return handler


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_upstream_dying_mid_body_truncates_and_closes_and_is_not_retried(
    http: str, chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with (
        RawUpstream(_dies_mid_body(chunked)) as upstream,
        run_proxy(single("app.test", upstream.port), http) as proxy,
    ):
        r = exchange(proxy.port, GET % b"x")
        assert r.status == 200
        assert r.body == (b"partial" if chunked else b"x" * 10)
        assert not r.complete and r.closed  # never a clean-looking end
        assert len(upstream.seen) == 1  # response bytes reached the client: no retry
    assert any("failed mid-body" in m for m in caplog.messages)
    assert not [rec for rec in caplog.records if rec.name == "uvicorn.error" and rec.exc_info]


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_connect_failures_move_on_to_another_endpoint_for_any_method(method: str) -> None:
    with dead_port() as d1, dead_port() as d2, RawUpstream(serve_ok) as live:
        backend = service("app", d1.getsockname()[1], d2.getsockname()[1], live.port)
        with run_proxy(make_table([route("app.test", "/", backend)]), "h11") as proxy:
            statuses = [get(proxy.port) if method == "GET" else post(proxy.port) for _ in range(6)]
        assert statuses == [200] * 6
        assert [s.method.decode() for s in live.seen] == [method] * 6  # each exactly once
        assert all(s.complete for s in live.seen)


def test_at_most_two_more_endpoints_are_tried() -> None:
    dead = [dead_port() for _ in range(3)]
    with contextlib.ExitStack() as stack:
        for d in dead:
            stack.enter_context(d)
        live = stack.enter_context(RawUpstream(serve_ok))
        clock = FakeClock()
        balancer = CountingBalancer(clock)
        backend = service("app", *(d.getsockname()[1] for d in dead), live.port)
        with run_proxy(
            make_table([route("app.test", "/", backend)]), "h11", balancer=balancer
        ) as proxy:
            first = get(proxy.port)
        assert first == 502  # the first pick and two more, all dead; the fourth is not tried
        assert sum(balancer.failures.values()) == 3
        assert live.connections == 0


def test_retries_stay_within_one_connect_deadline() -> None:
    """A connect that times out uses up --connect-timeout: no second try after it."""
    with blackhole() as hole, RawUpstream(serve_ok) as live:
        backend = service("app", hole, live.port)
        # Not shorter: on a loaded 2-core CI machine the proxy's loop has stalled for 0.3 s,
        # timing out the connect to the live upstream too.
        with run_proxy(
            make_table([route("app.test", "/", backend)]), "h11", connect_timeout=1.5
        ) as proxy:
            assert get(proxy.port) == 504  # the black hole came first and took the budget
            assert get(proxy.port) == 200
        assert live.connections == 1


def _stale_second_request(conn: Conn) -> None:
    """Serve the first request of each connection; read the second and close without a byte
    (a keep-alive connection the server closed just as the proxy reused it)."""
    if conn.read_request() is None:
        return
    conn.send(ok())
    conn.read_request()


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_idempotent_request_on_a_closed_pooled_connection_is_retried_once(http: str) -> None:
    with (
        RawUpstream(_stale_second_request) as upstream,
        run_proxy(single("app.test", upstream.port), http) as proxy,
    ):
        assert get(proxy.port, b"first") == 200
        assert get(proxy.port, b"second") == 200
        put = exchange(
            proxy.port,
            b"PUT /third HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody",
            b"PUT",
        )
        assert put.status == 200
    targets = [(s.target, s.body) for s in upstream.seen]
    # /second reached the stale connection, then a fresh one; /third likewise, with its body.
    assert targets == [
        (b"/first", b""),
        (b"/second", b""),
        (b"/second", b""),
        (b"/third", b"body"),
        (b"/third", b"body"),
    ]


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_post_is_never_sent_twice(http: str) -> None:
    with (
        RawUpstream(_stale_second_request) as upstream,
        run_proxy(single("app.test", upstream.port), http) as proxy,
    ):
        assert get(proxy.port, b"first") == 200
        r = exchange(
            proxy.port,
            b"POST /pay HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\n$10",
            b"POST",
        )
        assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
        assert get(proxy.port, b"after") == 200
    assert [s.target for s in upstream.seen].count(b"/pay") == 1


# --------------------------------------------------------------------------- passive health


def test_three_connect_failures_eject_an_endpoint_for_ten_seconds() -> None:
    clock = FakeClock()
    balancer = CountingBalancer(clock)
    with dead_port() as dead, RawUpstream(serve_ok) as live:
        dead_ep = Endpoint("127.0.0.1", dead.getsockname()[1])
        backend = Backend("shop", "app", "http", (dead_ep, Endpoint("127.0.0.1", live.port)))
        with run_proxy(
            make_table([route("app.test", "/", backend)]), "h11", balancer=balancer
        ) as proxy:
            assert [get(proxy.port) for _ in range(10)] == [200] * 10
            assert balancer.failures[dead_ep.port] == 3  # then no more traffic
            assert balancer.is_ejected(dead_ep)

            clock.now += 9.9
            assert [get(proxy.port) for _ in range(4)] == [200] * 4
            assert balancer.failures[dead_ep.port] == 3

            clock.now += 0.2  # ejection over: tried again, and on probation
            assert [get(proxy.port) for _ in range(4)] == [200] * 4
            assert balancer.failures[dead_ep.port] == 4  # one more failure ejects it again
            assert balancer.is_ejected(dead_ep)

            with RawUpstream(serve_ok, dead) as revived:
                clock.now += 10.1
                assert [get(proxy.port) for _ in range(4)] == [200] * 4
                assert not balancer.is_ejected(dead_ep)
                assert revived.connections >= 1


def test_when_every_endpoint_is_ejected_all_are_tried() -> None:
    clock = FakeClock()
    balancer = CountingBalancer(clock)
    with dead_port() as a, dead_port() as b:
        ports = (a.getsockname()[1], b.getsockname()[1])
        backend = service("app", *ports)
        with run_proxy(
            make_table([route("app.test", "/", backend)]), "h11", balancer=balancer
        ) as proxy:
            assert [get(proxy.port) for _ in range(3)] == [502] * 3  # never a blanket 503
            assert all(balancer.is_ejected(ep) for ep in backend.endpoints)
            before = sum(balancer.failures.values())
            assert get(proxy.port) == 502
            assert sum(balancer.failures.values()) > before  # panic mode: still tried
            with RawUpstream(serve_ok, a) as revived:
                # One of the two requests starts at the revived endpoint (round robin).
                assert 200 in (get(proxy.port), get(proxy.port))
                assert revived.connections >= 1


# --------------------------------------------------------------------------- client disconnect


def _hold_until_closed(send_first: bytes | None) -> Any:
    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        if send_first:
            conn.sock.sendall(send_first)
        conn.upstream.record_closed(conn.wait_closed())  # type: ignore[attr-defined]

    return handler


@pytest.mark.parametrize("stage", ["before the response", "mid-body"])
@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_a_client_leaving_cancels_the_upstream_and_is_logged_as_499(
    http: str, stage: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingressproxy.proxy")
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nxxxxxxxxxx"
    with (
        ClosingUpstream(_hold_until_closed(partial if stage == "mid-body" else None)) as upstream,
        run_proxy(single("app.test", upstream.port), http, read_timeout=60.0) as proxy,
    ):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as sock:
            sock.sendall(GET % b"slow")
            upstream.wait_for(1)
            if stage == "mid-body":
                received = b""
                while not received.endswith(b"xxxxxxxxxx"):
                    received += sock.recv(4096)
        # The upstream is stuck for a minute (--read-timeout); the proxy must close it now.
        with upstream.changed:
            assert upstream.changed.wait_for(lambda: upstream.closed_after, WAIT)
        assert upstream.closed_after == [True]  # closed, not kept in the pool
    assert any("(499)" in m for m in caplog.messages)


# --------------------------------------------------------------------------- pool limits


def test_an_exhausted_pool_answers_503_after_a_bounded_wait_and_ping_answers() -> None:
    release = threading.Event()

    def handler(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            if seen.target == b"/hold":
                release.wait(WAIT)
            conn.send(ok())

    with RawUpstream(handler) as upstream:
        holder = SnapshotHolder()
        holder.swap(Snapshot(single("app.test", upstream.port)))
        settings = Settings(pool_size=1, pool_timeout=0.3, read_timeout=30.0)
        proxy = ProxyApp(holder, settings)
        draining = asyncio.Event()
        admin_port: list[int] = []

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await proxy.startup()
            admin_app = create_admin_app(holder, draining)
            admin = EmbeddedServer(listener_config(admin_app, settings, "admin", port=0))
            admin.start()
            admin_port.append(admin.port)
            yield
            await admin.stop()
            await proxy.aclose()

        app = Starlette(routes=[Mount("/", app=proxy)], lifespan=lifespan)
        with serve_in_thread(app, settings=settings) as server:
            held: list[int] = []
            holding = threading.Thread(target=lambda: held.append(get(server.port, b"hold")))
            holding.start()
            upstream.wait_for(1)  # the only upstream connection is now busy
            r = exchange(server.port, GET % b"extra")
            assert (r.status, r.body) == (503, b"503 Service Unavailable\n")
            with httpx.Client(trust_env=False, timeout=WAIT) as client:
                ping = client.get(f"http://127.0.0.1:{admin_port[0]}/ping")
            assert (ping.status_code, ping.text) == (200, "OK")
            release.set()
            holding.join(WAIT)
            assert held == [200]
            assert get(server.port, b"after") == 200


# --------------------------------------------------------------------------- loops


@pytest.mark.parametrize("http", HTTP_IMPLS)
def test_an_endpoint_at_the_proxys_own_address_is_refused(
    http: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingressproxy.proxy")
    with run_proxy(single("app.test", 1), http) as proxy:
        proxy.holder.swap(Snapshot(single("app.test", proxy.port)))
        r = exchange(proxy.port, GET % b"loop")
    assert (r.status, r.body) == (502, b"502 Bad Gateway\n")
    assert any("own listen address" in m for m in caplog.messages)


def test_the_configured_listen_address_is_refused_too() -> None:
    """`--host/--port` as configured (behind a port mapping, the bound port may differ)."""
    with (
        RawUpstream(serve_ok) as upstream,
        run_proxy(
            single("app.test", upstream.port), "h11", host="127.0.0.1", port=upstream.port
        ) as proxy,
    ):
        assert get(proxy.port) == 502
        assert upstream.connections == 0


# --------------------------------------------------------------------------- namespaces


ISOLATION = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front, namespace: a}
spec:
  rules:
    - host: web.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
    - host: api.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: b}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: b}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: b}
subsets:
  - addresses: [{ip: 127.0.0.1}]
    ports: [{name: http, port: THEIRS}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-b1
  namespace: b
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: THEIRS}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-b1
  namespace: b
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
ports: [{name: http, port: THEIRS}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: own, namespace: c}
spec:
  rules:
    - host: own.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: c}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-c1
  namespace: c
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: OURS}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
"""


def test_an_ingress_never_reaches_another_namespaces_services_or_endpoints(
    tmp_path: Path,
) -> None:
    with RawUpstream(serve_ok) as theirs, RawUpstream(serve_ok) as ours:
        manifest = ISOLATION.replace("THEIRS", str(theirs.port)).replace("OURS", str(ours.port))
        (tmp_path / "isolation.yaml").write_text(manifest)
        built = build_snapshot(tmp_path, CompileOptions())
        assert built is not None
        snap, _ = built
        with run_proxy(snap.table, "h11") as proxy:
            web = exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            api = exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
            own = exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: own.test\r\n\r\n")
        # a/web exists but its endpoints live only in b; a/api exists only in b.
        assert (web.status, api.status, own.status) == (503, 503, 200)
        assert b"a/web" in web.body and b"a/api" in api.body
        assert theirs.connections == 0
        assert ours.connections == 1
