"""The routing IR as the proxy executes it, on real sockets: conditions (header, query,
cookie, method) chained per path slot, request and response filters, and the service's
options (weights, hashing, cookie affinity, timeouts, retries, Host passing).

The routers are built by hand, as a front-end would build them, so these tests pin the IR's
own contract; the dialect tests show which annotations and objects compile to what.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import ipaddress
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
from proxykit import route, run_proxy

from ingressproxy.ir.conditions import (
    CookieMatch,
    HeaderMatch,
    MethodMatch,
    QueryMatch,
    RequestView,
    ValueMatch,
)
from ingressproxy.ir.filters import (
    AddPrefix,
    BodyLimit,
    HeaderEdit,
    RequestHeaders,
    ResponseHeaders,
    SourceRange,
    StripPrefix,
)
from ingressproxy.ir.model import Backend, Endpoint, Matcher, Router
from ingressproxy.ir.service import CookieAffinity, HashBy, HashSource, RetryPolicy, Timeouts
from ingressproxy.ir.table import RouteTable, build_table
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import serve_in_thread
from ingressproxy.upstream.affinity import member, rendezvous

HOST = "shop.example"


@contextlib.contextmanager
def echoes(*names: str) -> Iterator[dict[str, int]]:
    """An echo backend per name (its service and pod are the name): name -> port."""
    with contextlib.ExitStack() as stack:
        ports = {}
        for name in names:
            server = stack.enter_context(serve_in_thread(create_echo_app(name, pod=name)))
            ports[name] = server.port
        yield ports


def svc(name: str, *ports: int, **options: Any) -> Backend:
    return Backend("shop", name, "http", tuple(Endpoint("127.0.0.1", p) for p in ports), **options)


def rule(path: str, backend: Backend, **fields: Any) -> Router:
    return dataclasses.replace(route(HOST, path, backend), **fields)


@contextlib.contextmanager
def proxy(routers: list[Router], **settings: Any) -> Iterator[httpx.Client]:
    table = build_table(routers)
    with (
        run_proxy(table, "httptools", **settings) as running,
        httpx.Client(base_url=running.url, headers={"host": HOST}, timeout=10) as client,
    ):
        yield client


def served_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["service"])


# --------------------------------------------------------------------------- conditions


def test_a_slot_tries_its_conditional_routers_in_order_then_the_plain_one() -> None:
    with echoes("canary", "beta", "main") as ports:
        routers = [
            rule("/", svc("canary", ports["canary"]), conditions=(HeaderMatch("x-canary", "1"),)),
            rule(
                "/",
                svc("beta", ports["beta"]),
                conditions=(QueryMatch("beta", "yes"), MethodMatch(frozenset({"GET"}))),
            ),
            rule("/", svc("main", ports["main"])),
        ]
        with proxy(routers) as client:
            assert served_by(client.get("/a", headers={"x-canary": "1"})) == "canary"
            assert served_by(client.get("/a", headers={"X-Canary": "2"})) == "main"
            assert served_by(client.get("/a?beta=yes")) == "beta"
            # Every condition of a router must hold: POST fails the method match.
            assert served_by(client.post("/a?beta=yes")) == "main"
            # The first router of the chain that accepts wins.
            assert served_by(client.get("/a?beta=yes", headers={"x-canary": "1"})) == "canary"


def test_a_slot_with_only_conditional_routers_falls_back_to_a_shorter_prefix() -> None:
    """Gateway API: a match whose header condition fails leaves the request to the next
    rule, here the `/` prefix; no rule at all is a 404."""
    with echoes("v2", "root") as ports:
        v2 = rule(
            "/api",
            svc("v2", ports["v2"]),
            conditions=(HeaderMatch("version", "v2"),),
        )
        with proxy([v2, rule("/", svc("root", ports["root"]))]) as client:
            assert served_by(client.get("/api/x", headers={"version": "v2"})) == "v2"
            assert served_by(client.get("/api/x", headers={"version": "v1"})) == "root"
        with proxy([v2]) as client:
            assert client.get("/api/x").status_code == 404
            assert served_by(client.get("/api/x", headers={"version": "v2"})) == "v2"


def test_regex_and_present_conditions_and_cookies() -> None:
    with echoes("a", "b", "main") as ports:
        routers = [
            rule(
                "/",
                svc("a", ports["a"]),
                conditions=(HeaderMatch("x-user", r"admin-\d+", ValueMatch.REGEX),),
            ),
            rule("/", svc("b", ports["b"]), conditions=(CookieMatch("canary", "always"),)),
            rule("/", svc("main", ports["main"])),
        ]
        with proxy(routers) as client:
            assert served_by(client.get("/", headers={"x-user": "admin-42"})) == "a"
            # The regex must match the whole value.
            assert served_by(client.get("/", headers={"x-user": "admin-42x"})) == "main"
            assert served_by(client.get("/", headers={"cookie": "a=1; canary=always"})) == "b"
            assert served_by(client.get("/", headers={"cookie": "canary=never"})) == "main"


def test_conditions_read_repeated_headers_joined_and_the_first_query_parameter() -> None:
    view = RequestView("GET", [(b"x-a", b"1"), (b"x-a", b"2")], "q=first&q=second")
    assert HeaderMatch("x-a", "1,2").test(view)
    assert QueryMatch("q", "first").test(view)
    assert not QueryMatch("q", "second").test(view)
    assert HeaderMatch("x-a", how=ValueMatch.PRESENT).test(view)
    assert not HeaderMatch("x-b", how=ValueMatch.PRESENT).test(view)


def test_routes_lists_every_router_of_a_chain() -> None:
    main = rule("/", svc("main", 1))
    canary = rule("/", svc("canary", 2), conditions=(HeaderMatch("x", "1"),))
    table = build_table([canary, main])
    assert [r.backend.service for r in table.routes()] == ["canary", "main"]
    head = table.route(HOST, "/")
    assert head is not None and head.otherwise is not None
    assert head.otherwise.backend.service == "main"


# --------------------------------------------------------------------------- filters


def test_request_and_response_header_filters_and_prefixes() -> None:
    edit_in = HeaderEdit(set=(("x-env", "prod"),), add=(("x-tag", "b"),), remove=("x-secret",))
    edit_out = HeaderEdit(set=(("cache-control", "no-store"),), remove=("x-content-type-options",))
    with echoes("web") as ports:
        r = rule(
            "/",
            svc("web", ports["web"]),
            filters=(
                StripPrefix(("/shop",)),
                AddPrefix("/v1"),
                RequestHeaders(edit_in),
                ResponseHeaders(edit_out),
            ),
        )
        with proxy([r]) as client:
            got = client.get(
                "/shop/cart?x=1",
                headers={"x-env": "dev", "x-tag": "a", "x-secret": "s"},
            )
            seen = got.json()
            assert seen["path"] == "/v1/cart?x=1"
            assert seen["headers"]["X-Env"] == ["prod"]
            assert seen["headers"]["X-Tag"] == ["a", "b"]
            assert "X-Secret" not in seen["headers"]
            assert seen["headers"]["X-Forwarded-Prefix"] == ["/shop"]
            assert got.headers["cache-control"] == "no-store"
            assert "x-content-type-options" not in got.headers


def test_header_filters_never_touch_framing_fields() -> None:
    edit = HeaderEdit(set=(("content-length", "0"),), remove=("transfer-encoding",))
    assert edit.framing() == ["content-length", "transfer-encoding"]
    headers = [(b"content-length", b"5"), (b"x", b"1")]
    edit.apply(headers)
    assert headers == [(b"content-length", b"5"), (b"x", b"1")]


def test_source_range_allows_denies_and_ignores_forwarded_for() -> None:
    net = ipaddress.ip_network
    with echoes("web") as ports:
        allowed = rule(
            "/in", svc("web", ports["web"]), filters=(SourceRange((net("127.0.0.0/8"),)),)
        )
        denied = rule(
            "/out",
            svc("web", ports["web"]),
            filters=(SourceRange((net("127.0.0.0/8"),), (net("127.0.0.1/32"),)),),
        )
        outside = rule(
            "/far", svc("web", ports["web"]), filters=(SourceRange((net("10.0.0.0/8"),)),)
        )
        with proxy([allowed, denied, outside]) as client:
            assert client.get("/in").status_code == 200
            # The deny list is checked first.
            assert client.get("/out").status_code == 403
            # A client cannot claim another address: X-Forwarded-For from an untrusted peer
            # is not believed.
            assert client.get("/far", headers={"x-forwarded-for": "10.1.2.3"}).status_code == 403


def test_body_limit_per_router_overrides_the_listener() -> None:
    with echoes("web") as ports:
        small = rule("/small", svc("web", ports["web"]), filters=(BodyLimit(10),))
        free = rule("/free", svc("web", ports["web"]), filters=(BodyLimit(0),))
        with proxy([small, free], max_body_size=100) as client:
            assert client.post("/small", content=b"x" * 10).status_code == 200
            assert client.post("/small", content=b"x" * 11).status_code == 413

            def chunks() -> Iterator[bytes]:
                yield b"x" * 8
                yield b"x" * 8

            assert client.post("/small", content=chunks()).status_code == 413
            assert client.post("/free", content=b"x" * 1000).status_code == 200


# --------------------------------------------------------------------------- services


def test_weights_split_traffic_and_weight_zero_gets_none() -> None:
    a, b, c = svc("a", 1), svc("b", 2), svc("c", 3)
    weighted = Backend(
        "shop", "split", "http", a.endpoints + b.endpoints, members=(a, b, c), weights=(1, 3, 0)
    )
    assert member(weighted, 0.0) is a
    assert member(weighted, 0.24) is a
    assert member(weighted, 0.26) is b
    assert member(weighted, 0.999) is b
    with echoes("a", "b") as ports:
        a, b = svc("a", ports["a"]), svc("b", ports["b"])
        split = Backend(
            "shop", "split", "http", a.endpoints + b.endpoints, members=(a, b), weights=(1, 3)
        )
        with proxy([rule("/", split)]) as client:
            counts = collections.Counter(served_by(client.get("/")) for _ in range(400))
    # 1:3 at random: 100 expected for a; 5 standard deviations is about +-43.
    assert 55 < counts["a"] < 145, counts
    assert counts["a"] + counts["b"] == 400


def test_a_weighted_member_without_endpoints_answers_503() -> None:
    with echoes("main") as ports:
        main = svc("main", ports["main"])
        empty = Backend("shop", "canary", "http", (), error="no ready endpoints")
        split = Backend(
            "shop", "split", "http", main.endpoints, members=(main, empty), weights=(0, 1)
        )
        with proxy([rule("/", split)]) as client:
            got = client.get("/")
            assert got.status_code == 503
            assert "shop/canary:http" in got.text


def test_hash_by_header_is_consistent() -> None:
    with echoes("p0", "p1", "p2") as ports:
        backend = svc("web", *ports.values(), balance=HashBy(HashSource.HEADER, "x-user"))
        with proxy([rule("/", backend)]) as client:
            for user in ("alice", "bob", "carol", "dave"):
                pods = {client.get("/", headers={"x-user": user}).json()["pod"] for _ in range(5)}
                assert len(pods) == 1, (user, pods)
            spread = {client.get("/", headers={"x-user": f"u{i}"}).json()["pod"] for i in range(30)}
            assert len(spread) > 1


def test_rendezvous_moves_only_the_keys_of_a_removed_endpoint() -> None:
    endpoints = tuple(Endpoint("127.0.0.1", p) for p in range(1, 6))
    keys = [f"k{i}" for i in range(500)]
    before = {k: rendezvous(endpoints, k) for k in keys}
    gone = endpoints[2]
    after = {k: rendezvous(endpoints[:2] + endpoints[3:], k) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == gone for k in moved)


def test_cookie_affinity_sets_a_cookie_once_and_sticks() -> None:
    policy = CookieAffinity("route", path="/", max_age=60, same_site="Lax")
    with echoes("p0", "p1", "p2") as ports:
        backend = svc("web", *ports.values(), balance=policy)
        with proxy([rule("/", backend)]) as client:
            first = client.get("/")
            cookie = first.headers["set-cookie"]
            assert cookie.startswith("route=")
            assert "Path=/" in cookie and "Max-Age=60" in cookie and "HttpOnly" in cookie
            assert "SameSite=Lax" in cookie and "Secure" not in cookie
            value = cookie.split(";")[0].split("=", 1)[1]
            pod = first.json()["pod"]
            client.cookies.clear()
            for _ in range(6):
                again = client.get("/", headers={"cookie": f"route={value}"})
                assert again.json()["pod"] == pod
                assert "set-cookie" not in again.headers


def _listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, sock.getsockname()[1]


def test_service_read_timeout_replaces_the_listeners() -> None:
    silent, port = _listener()  # accepts (the kernel does) and never answers
    with silent:
        fast = svc("slow", port, timeouts=Timeouts(read=0.3))
        with proxy([rule("/", fast)], read_timeout=30.0) as client:
            started = time.monotonic()
            got = client.get("/")
            assert got.status_code == 504
            assert time.monotonic() - started < 10  # far below the listener's 30 s


def test_retry_policy_caps_the_endpoints_tried() -> None:
    refused = []
    for _ in range(3):
        sock, port = _listener()
        sock.close()  # nothing listens there now: connection refused
        refused.append(port)
    with echoes("last") as ports:
        everyone = (*refused, ports["last"])
        # Our default tries the first endpoint and at most two more: the fourth is not reached.
        with proxy([rule("/", svc("web", *everyone))]) as client:
            assert client.get("/").status_code == 502
        with proxy([rule("/", svc("web", *everyone, retries=RetryPolicy(tries=4)))]) as client:
            assert served_by(client.get("/")) == "last"
        with proxy([rule("/", svc("web", *everyone, retries=RetryPolicy(on_error=False)))]) as c:
            assert c.get("/").status_code == 502


def test_pass_host_false_sends_the_endpoints_own_host() -> None:
    with echoes("web") as ports:
        backend = svc("web", ports["web"], pass_host=False)
        with proxy([rule("/", backend)]) as client:
            seen = client.get("/").json()
            assert seen["host"] == f"127.0.0.1:{ports['web']}"
            assert seen["headers"]["X-Forwarded-Host"] == [HOST]


def test_a_router_with_a_string_matcher_and_conditions() -> None:
    with echoes("a", "main") as ports:
        routers = [
            rule(
                "/ap",
                svc("a", ports["a"]),
                matcher=Matcher.STRING,
                conditions=(QueryMatch("a", "1"),),
            ),
            rule("/ap", svc("main", ports["main"]), matcher=Matcher.STRING),
        ]
        with proxy(routers) as client:
            assert served_by(client.get("/apple?a=1")) == "a"
            assert served_by(client.get("/apple")) == "main"


def test_websocket_handshakes_run_the_routers_filters() -> None:
    """A filter that refuses a request refuses the WebSocket handshake too: no way round a
    SourceRange by upgrading."""
    net = ipaddress.ip_network
    with echoes("web") as ports:
        r = rule("/", svc("web", ports["web"]), filters=(SourceRange((net("10.0.0.0/8"),)),))
        table: RouteTable = build_table([r])
        with (
            run_proxy(table, "httptools") as running,
            socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock,
        ):
            sock.sendall(
                b"GET /ws HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 403"), head


def test_dump_shows_conditions_and_service_options() -> None:
    from ingressproxy.ir.dump import dump_router

    r = rule(
        "/",
        svc("web", 1, timeouts=Timeouts(read=5), retries=RetryPolicy(tries=2)),
        conditions=(HeaderMatch("x", "1"),),
    )
    dumped = json.loads(json.dumps(dump_router(r)))
    assert dumped["conditions"] == ["header x = '1'"]
    assert dumped["service"]["timeouts"] == "read 5s"
    assert dumped["service"]["retries"] == "2 tries"


def test_explain_evaluates_conditions_and_says_which_failed() -> None:
    from ingressproxy.cli.explain import explain

    canary = rule("/", svc("canary", 1), conditions=(HeaderMatch("x-canary", "1"),))
    table = build_table([canary, rule("/", svc("main", 2))])
    plain = explain(table, f"http://{HOST}/a")
    assert plain.route is not None and plain.route.backend.service == "main"
    assert "headers and query take part" in plain.notes[0]
    lost = next(r for r in plain.rules if r.route.backend.service == "canary")
    assert not lost.matched and "header x-canary = '1' does not hold" in lost.reason
    chosen = explain(table, f"http://{HOST}/a", headers={"X-Canary": "1"})
    assert chosen.route is not None and chosen.route.backend.service == "canary"
