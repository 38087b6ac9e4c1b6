"""Table tests of Kubernetes host and path matching, through compile_manifests -> RouteTable.

Rows follow the "Examples" table and "Hostname wildcards" of the Kubernetes Ingress docs and the
ingress-controller-conformance host_rules / path_rules features.
"""

from __future__ import annotations

import random

import pytest

from ingressproxy.frontends.options import CompileOptions
from ingressproxy.frontends.semantics import DIALECTS, Flavor
from ingressproxy.frontends.spec.compiler import compile_manifests
from ingressproxy.ir.table import HostMatch, RouteTable, normalize_host
from ingressproxy.manifests.model import (
    Ingress,
    IngressBackend,
    IngressRule,
    IngressServiceBackend,
    Manifests,
    Meta,
    PathRule,
    PathType,
    ServiceBackendPort,
    Source,
)

EXACT, PREFIX, IMPL = PathType.EXACT, PathType.PREFIX, PathType.IMPLEMENTATION_SPECIFIC

Paths = list[tuple[str, PathType]]


def _backend(service: str) -> IngressBackend:
    return IngressBackend(IngressServiceBackend(service, ServiceBackendPort(number=80)))


def ingress(
    rules: list[tuple[str | None, Paths | None]],
    *,
    name: str = "test",
    default: str | None = None,
) -> Ingress:
    """An Ingress whose path rules point at Services named after the rule ("Prefix /aaa")."""
    built = []
    for i, (host, paths) in enumerate(rules):
        path_rules = None
        if paths is not None:
            path_rules = tuple(
                PathRule(p, t, _backend(f"{t} {p}"), f"spec.rules[{i}].http.paths[{j}]")
                for j, (p, t) in enumerate(paths)
            )
        built.append(IngressRule(host, path_rules, f"spec.rules[{i}]"))
    return Ingress(
        meta=Meta(name=name, namespace="default", source=Source(f"{name}.yaml", 1)),
        ingress_class_name=None,
        default_backend=None if default is None else _backend(default),
        rules=tuple(built),
    )


def table(*ingresses: Ingress) -> RouteTable:
    return compile_manifests(Manifests(ingresses=ingresses)).table


def matched(t: RouteTable, host: str, path: str) -> str | None:
    """The Service name of the route `host` + `path` selects, or None."""
    route = t.match(normalize_host(host), path).route
    return None if route is None else route.backend.service


# --------------------------------------------------------------------------- paths

# (rules of one host-less Ingress, request path, service of the rule that must match or None)
PATH_ROWS: list[tuple[Paths, str, str | None]] = [
    # Prefix / matches all paths.
    ([("/", PREFIX)], "/", "Prefix /"),
    ([("/", PREFIX)], "/foo", "Prefix /"),
    ([("/", PREFIX)], "/aaa/bbb/ccc/", "Prefix /"),
    # Exact /foo: /foo yes; /bar, /foo/ no. Case-sensitive (conformance).
    ([("/foo", EXACT)], "/foo", "Exact /foo"),
    ([("/foo", EXACT)], "/bar", None),
    ([("/foo", EXACT)], "/foo/", None),
    ([("/foo", EXACT)], "/FOO", None),
    # Exact /foo/ does not match /foo.
    ([("/foo/", EXACT)], "/foo", None),
    ([("/foo/", EXACT)], "/foo/", "Exact /foo/"),
    # Prefix /foo matches /foo and /foo/; Prefix /foo/ matches both too.
    ([("/foo", PREFIX)], "/foo", "Prefix /foo"),
    ([("/foo", PREFIX)], "/foo/", "Prefix /foo"),
    ([("/foo", PREFIX)], "/FOO", None),
    ([("/foo/", PREFIX)], "/foo", "Prefix /foo/"),
    ([("/foo/", PREFIX)], "/foo/", "Prefix /foo/"),
    # Prefix matches whole elements only.
    ([("/aaa/bb", PREFIX)], "/aaa/bbb", None),
    ([("/aaa/bbb", PREFIX)], "/aaa/bbb", "Prefix /aaa/bbb"),
    ([("/aaa/bbb/", PREFIX)], "/aaa/bbb", "Prefix /aaa/bbb/"),  # ignores trailing slash
    ([("/aaa/bbb", PREFIX)], "/aaa/bbb/", "Prefix /aaa/bbb"),  # matches trailing slash
    ([("/aaa/bbb", PREFIX)], "/aaa/bbb/ccc", "Prefix /aaa/bbb"),  # matches subpath
    ([("/aaa/bbb", PREFIX)], "/aaa/bbbxyz", None),  # not a string prefix
    ([("/aaa", PREFIX)], "/aaaccc", None),
    # Longest matching prefix wins.
    ([("/", PREFIX), ("/aaa", PREFIX)], "/aaa/ccc", "Prefix /aaa"),
    ([("/", PREFIX), ("/aaa", PREFIX), ("/aaa/bbb", PREFIX)], "/aaa/bbb", "Prefix /aaa/bbb"),
    ([("/", PREFIX), ("/aaa", PREFIX), ("/aaa/bbb", PREFIX)], "/ccc", "Prefix /"),
    ([("/aaa/bbb", PREFIX), ("/aaa", PREFIX), ("/", PREFIX)], "/aaa/bbb", "Prefix /aaa/bbb"),
    # Prefix /aaa vs /ccc: no match (the default backend would answer).
    ([("/aaa", PREFIX)], "/ccc", None),
    # Mixed /foo (Prefix) + /foo (Exact): Exact preferred for /foo; Prefix still takes /foo/.
    ([("/foo", PREFIX), ("/foo", EXACT)], "/foo", "Exact /foo"),
    ([("/foo", EXACT), ("/foo", PREFIX)], "/foo", "Exact /foo"),
    ([("/foo", PREFIX), ("/foo", EXACT)], "/foo/", "Prefix /foo"),
    ([("/foo", PREFIX), ("/foo", EXACT)], "/foo/bar", "Prefix /foo"),
    # Exact /foo + Prefix /: the longer matching path (Exact /foo) wins for /foo only.
    ([("/foo", EXACT), ("/", PREFIX)], "/foo", "Exact /foo"),
    ([("/foo", EXACT), ("/", PREFIX)], "/foo/", "Prefix /"),
    ([("/foo", EXACT), ("/", PREFIX)], "/foobar", "Prefix /"),
    # Longest as written wins across types: Prefix /foo/bar beats Exact /foo for /foo/bar...
    ([("/foo", EXACT), ("/foo/bar", PREFIX)], "/foo/bar", "Prefix /foo/bar"),
    # ...and Exact /foo/bar beats Prefix /foo.
    ([("/foo/bar", EXACT), ("/foo", PREFIX)], "/foo/bar", "Exact /foo/bar"),
    ([("/foo/bar", EXACT), ("/foo", PREFIX)], "/foo/bar/", "Prefix /foo"),
    # ImplementationSpecific is matched like Prefix.
    ([("/aaa", IMPL)], "/aaa/ccc", "ImplementationSpecific /aaa"),
    ([("/aaa", IMPL)], "/aaaccc", None),
    ([("/aaa", IMPL), ("/aaa/bbb", PREFIX)], "/aaa/bbb/c", "Prefix /aaa/bbb"),
]


@pytest.mark.parametrize(
    ("rules", "request_path", "expected"),
    PATH_ROWS,
    ids=[f"{'+'.join(f'{t}:{p}' for p, t in r)} {q}" for r, q, _ in PATH_ROWS],
)
def test_path_matching(rules: Paths, request_path: str, expected: str | None) -> None:
    t = table(ingress([(None, rules)]))
    assert matched(t, "any.example", request_path) == expected


@pytest.mark.parametrize(
    ("rules", "request_path", "expected"),
    PATH_ROWS,
    ids=[f"{'+'.join(f'{t}:{p}' for p, t in r)} {q}" for r, q, _ in PATH_ROWS],
)
def test_path_matching_split_across_ingresses(
    rules: Paths, request_path: str, expected: str | None
) -> None:
    # Rules are merged per host across Ingresses: one Ingress per rule must give the same answer.
    ings = [ingress([("app.example", [r])], name=f"ing{i}") for i, r in enumerate(rules)]
    assert matched(table(*ings), "app.example", request_path) == expected


def test_unmatched_path_uses_the_default_backend() -> None:
    # "Prefix /aaa vs /ccc: No, uses default backend".
    t = table(ingress([(None, [("/aaa", PREFIX)])]), ingress([], name="fallback", default="dflt"))
    assert matched(t, "x", "/aaa") == "Prefix /aaa"
    assert matched(t, "x", "/ccc") == "dflt"
    route = t.match("x", "/ccc").route
    assert route is not None and route.is_default_backend


def test_host_default_backend_before_global_default() -> None:
    t = table(
        ingress([("a.example", [("/aaa", PREFIX)])], name="a", default="a-default"),
        ingress([], name="fallback", default="global"),
    )
    assert matched(t, "a.example", "/ccc") == "a-default"
    assert matched(t, "b.example", "/ccc") == "global"


# --------------------------------------------------------------------------- hosts


def _host_table() -> RouteTable:
    return table(
        ingress(
            [
                ("foo.bar.com", [("/", PREFIX)]),
                ("*.bar.com", [("/", PREFIX)]),
                ("*.foo.com", [("/", PREFIX)]),
                (None, [("/any", PREFIX)]),
            ]
        )
    )


HOST_ROWS: list[tuple[str, str | None, HostMatch, str | None]] = [
    # (Host header, expected table key, how, expected service for "/")
    ("foo.bar.com", "foo.bar.com", HostMatch.EXACT, "Prefix /"),
    ("FOO.Bar.COM:8080", "foo.bar.com", HostMatch.EXACT, "Prefix /"),
    ("foo.bar.com.", "foo.bar.com", HostMatch.EXACT, "Prefix /"),
    ("subdomain.bar.com", "*.bar.com", HostMatch.WILDCARD, "Prefix /"),
    ("bar.foo.com", "*.foo.com", HostMatch.WILDCARD, "Prefix /"),
    # A wildcard covers exactly one DNS label: these fall to the host-less rules.
    ("baz.bar.foo.com", None, HostMatch.ANY, None),
    ("foo.com", None, HostMatch.ANY, None),
    ("bar.com", None, HostMatch.ANY, None),
    ("other.example:443", None, HostMatch.ANY, None),
]


@pytest.mark.parametrize(
    ("host", "key", "how", "service"), HOST_ROWS, ids=[r[0] for r in HOST_ROWS]
)
def test_host_precedence(host: str, key: str | None, how: HostMatch, service: str | None) -> None:
    m = _host_table().match(normalize_host(host), "/")
    assert (m.host_key, m.host_match) == (key, how)
    assert (None if m.route is None else m.route.backend.service) == service


def test_host_less_rules_catch_other_hosts() -> None:
    assert matched(_host_table(), "baz.bar.foo.com", "/any/x") == "Prefix /any"


@pytest.mark.parametrize("host", ["baz.bar.foo.com", "foo.com"], ids=["two labels", "no label"])
def test_wildcard_without_any_host_does_not_match(host: str) -> None:
    t = table(ingress([("*.foo.com", [("/", PREFIX)])]))
    m = t.match(normalize_host(host), "/")
    assert (m.route, m.host_match) == (None, HostMatch.NONE)
    assert matched(t, "bar.foo.com", "/") == "Prefix /"


def test_no_fall_through_from_exact_host_to_wildcard_or_any_host() -> None:
    t = table(
        ingress(
            [
                ("api.foo.com", [("/api", PREFIX)]),
                ("*.foo.com", [("/", PREFIX), ("/wild", PREFIX)]),
                (None, [("/", PREFIX)]),
            ]
        )
    )
    assert matched(t, "api.foo.com", "/api/x") == "Prefix /api"
    # The exact host was chosen; its paths do not match; neither *.foo.com nor any-host answer.
    m = t.match("api.foo.com", "/wild")
    assert (m.route, m.host_match) == (None, HostMatch.EXACT)
    assert matched(t, "www.foo.com", "/wild/1") == "Prefix /wild"


def test_no_fall_through_from_wildcard_to_any_host() -> None:
    t = table(ingress([("*.foo.com", [("/api", PREFIX)]), (None, [("/", PREFIX)])]))
    m = t.match("www.foo.com", "/other")
    assert (m.route, m.host_match, m.host_key) == (None, HostMatch.WILDCARD, "*.foo.com")
    assert matched(t, "www.bar.com", "/other") == "Prefix /"


def test_host_rule_without_http_claims_the_host() -> None:
    # A rule with a host and no `http` still creates the host: no fall-through to any-host.
    t = table(ingress([("blocked.example", None), (None, [("/", PREFIX)])]))
    m = t.match("blocked.example", "/")
    assert (m.route, m.host_match) == (None, HostMatch.EXACT)
    assert matched(t, "open.example", "/") == "Prefix /"


def test_host_rule_without_http_uses_its_ingress_default_backend() -> None:
    t = table(ingress([("only-default.example", None)], default="dflt"))
    assert matched(t, "only-default.example", "/anything") == "dflt"
    assert matched(t, "other.example", "/anything") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("foo.bar.com", "foo.bar.com"),
        ("Foo.Bar.COM", "foo.bar.com"),
        ("foo.bar.com:8080", "foo.bar.com"),
        ("foo.bar.com.", "foo.bar.com"),
        ("FOO.bar.com.:80", "foo.bar.com"),
        (" foo.bar.com ", "foo.bar.com"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[::1]:8443", "[::1]"),
        ("[2001:DB8::1]:80", "[2001:db8::1]"),
    ],
)
def test_normalize_host(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(
    ("host", "path"),
    [(r[0], p) for r in HOST_ROWS for p in ("/", "/any/x", "/nothing")],
)
def test_route_is_what_match_finds(host: str, path: str) -> None:
    """RouteTable.route (the proxy's look-up, no Match object) agrees with match().route."""
    t = _host_table()
    h = normalize_host(host)
    assert t.route(h, path) is t.match(h, path).route


# --------------------------------------------------------------------------- IR vs table


@pytest.mark.parametrize("flavor", DIALECTS)
def test_the_table_only_ever_picks_a_router_whose_own_match_accepts_the_path(
    flavor: Flavor,
) -> None:
    """The table's dict walk and Router.matches_path (what explain shows) are two readings of
    one match: for random rules and requests, the router the table picks must accept the
    path, and a path no router accepts must find none."""
    rng = random.Random(15)
    elements = ["a", "ab", "b", "a.b", ""]
    types = [EXACT, PREFIX, IMPL]
    for _ in range(60):
        paths = {
            ("/" + "/".join(rng.choices(elements, k=rng.randint(0, 3))), rng.choice(types))
            for _ in range(rng.randint(1, 6))
        }
        t = compile_manifests(
            Manifests(ingresses=(ingress([(None, sorted(paths))]),)), CompileOptions(flavor=flavor)
        ).table
        routers = list(t.routes())
        for _ in range(30):
            path = "/" + "/".join(rng.choices(elements, k=rng.randint(0, 4)))
            got = t.route("any.example", path)
            accepting = [r for r in routers if r.matches_path(path)]
            if got is None:
                assert accepting == [], (sorted(paths), path)
            else:
                assert got.matches_path(path), (sorted(paths), path, got.path, got.how)
