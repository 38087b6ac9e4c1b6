"""Unit tests of compile_manifests: class filtering, conflicts, default backends, backends."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from ingressproxy.frontends.options import CompileOptions, CompileResult
from ingressproxy.frontends.spec.compiler import compile_manifests
from ingressproxy.ir.dump import dump_diagnostic, dump_table
from ingressproxy.ir.model import Backend, Endpoint, Router
from ingressproxy.ir.table import HostTable, RouteTable
from ingressproxy.manifests.model import (
    Diagnostic,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointsSubset,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressRule,
    IngressServiceBackend,
    Manifests,
    Meta,
    ObjectRef,
    PathRule,
    PathType,
    ResourceRef,
    Service,
    ServiceBackendPort,
    ServicePort,
    Severity,
    SliceEndpoint,
    Source,
    frozen_map,
)

EXACT, PREFIX, IMPL = PathType.EXACT, PathType.PREFIX, PathType.IMPLEMENTATION_SPECIFIC
T0 = datetime(2022, 2, 4, 16, 0, 0, tzinfo=UTC)
DEFAULT_OPTIONS = CompileOptions()

# --------------------------------------------------------------------------- builders


def meta(
    name: str,
    ns: str = "default",
    *,
    ts: datetime | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    lines: Mapping[str, int] | None = None,
) -> Meta:
    return Meta(
        name=name,
        namespace=ns,
        source=Source(f"{ns}/{name}.yaml", 1),
        creation_timestamp=ts,
        labels=frozen_map(labels),
        annotations=frozen_map(annotations),
        lines=MappingProxyType(dict(lines or {})),
    )


def to(service: str, port: str | int = "http") -> IngressBackend:
    sbp = ServiceBackendPort(number=port) if isinstance(port, int) else ServiceBackendPort(port)
    return IngressBackend(IngressServiceBackend(service, sbp))


PathSpec = tuple[str, PathType, IngressBackend]


def ingress(
    name: str,
    ns: str = "default",
    *,
    rules: Sequence[tuple[str | None, Sequence[PathSpec] | None]] = (),
    default: IngressBackend | None = None,
    ts: datetime | None = None,
    class_name: str | None = None,
    annotations: Mapping[str, str] | None = None,
    lines: Mapping[str, int] | None = None,
) -> Ingress:
    built = []
    for i, (host, paths) in enumerate(rules):
        prs = None
        if paths is not None:
            prs = tuple(
                PathRule(p, t, b, f"spec.rules[{i}].http.paths[{j}]")
                for j, (p, t, b) in enumerate(paths)
            )
        built.append(IngressRule(host, prs, f"spec.rules[{i}]"))
    return Ingress(
        meta=meta(name, ns, ts=ts, annotations=annotations, lines=lines),
        ingress_class_name=class_name,
        default_backend=default,
        rules=tuple(built),
    )


def service(
    name: str,
    ns: str = "default",
    ports: Sequence[tuple[str | None, int, int | str | None]] = (("http", 80, 8080),),
    *,
    type_: str = "ClusterIP",
    external_name: str | None = None,
) -> Service:
    return Service(
        meta(name, ns),
        type_,
        tuple(ServicePort(n, p, t) for n, p, t in ports),
        external_name=external_name,
    )


def eslice(
    name: str,
    service_name: str,
    ns: str = "default",
    endpoints: Sequence[tuple[Sequence[str], bool | None]] = ((("10.0.0.1",), True),),
    ports: Sequence[tuple[str | None, int]] = (("http", 8080),),
) -> EndpointSlice:
    return EndpointSlice(
        meta(name, ns, labels={"kubernetes.io/service-name": service_name}),
        service_name,
        "IPv4",
        tuple(SliceEndpoint(tuple(a), r) for a, r in endpoints),
        tuple(EndpointPort(n, p) for n, p in ports),
    )


def v1_endpoints(
    name: str,
    ns: str = "default",
    addresses: Sequence[str] = ("10.0.0.1",),
    not_ready: Sequence[str] = (),
    ports: Sequence[tuple[str | None, int]] = (("http", 8080),),
) -> Endpoints:
    subset = EndpointsSubset(
        tuple(addresses), tuple(not_ready), tuple(EndpointPort(n, p) for n, p in ports)
    )
    return Endpoints(meta(name, ns), (subset,))


def ingress_class(name: str, *, default: bool = False) -> IngressClass:
    return IngressClass(meta(name, ""), "example.com/ingressproxy", default)


def compile_(
    *ingresses: Ingress,
    services: Sequence[Service] = (),
    slices: Sequence[EndpointSlice] = (),
    endpoints: Sequence[Endpoints] = (),
    classes: Sequence[IngressClass] = (),
    options: CompileOptions = DEFAULT_OPTIONS,
) -> CompileResult:
    m = Manifests(
        ingresses=tuple(ingresses),
        ingress_classes=tuple(classes),
        services=tuple(services),
        endpoints=tuple(endpoints),
        endpoint_slices=tuple(slices),
    )
    return compile_manifests(m, options)


def codes(result: CompileResult) -> list[tuple[str, str]]:
    return [(d.code, str(d.obj)) for d in result.diagnostics]


def only(result: CompileResult, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, result.diagnostics
    return found[0]


def host(result: CompileResult, name: str | None) -> HostTable:
    t = result.table.any_host if name is None else result.table.exact_hosts[name]
    assert t is not None
    return t


def route_at(result: CompileResult, host_name: str | None, path: str) -> Router:
    m = result.table.match(host_name or "any.example", path)
    assert m.route is not None
    return m.route


# --------------------------------------------------------------------------- class filter

WEB = [("/", PREFIX, to("web"))]


def test_without_classes_every_ingress_is_served() -> None:
    r = compile_(
        ingress("a", rules=[("a.example", WEB)], class_name="nginx"),
        ingress("b", rules=[("b.example", WEB)], annotations={"kubernetes.io/ingress.class": "x"}),
        ingress("c", rules=[("c.example", WEB)]),
    )
    assert sorted(r.table.exact_hosts) == ["a.example", "b.example", "c.example"]
    assert "excluded-by-class" not in [c for c, _ in codes(r)]


def test_class_filter_by_name_and_legacy_annotation() -> None:
    legacy = {"kubernetes.io/ingress.class": "ours"}
    r = compile_(
        ingress("by-name", rules=[("a.example", WEB)], class_name="ours"),
        ingress("by-annotation", rules=[("b.example", WEB)], annotations=legacy),
        ingress("other-name", rules=[("c.example", WEB)], class_name="nginx"),
        ingress(
            "other-annotation",
            rules=[("d.example", WEB)],
            annotations={"kubernetes.io/ingress.class": "nginx"},
            lines={"metadata.annotations.kubernetes.io/ingress.class": 7},
        ),
        ingress("unclassed", rules=[("e.example", WEB)]),
        options=CompileOptions(ingress_classes=("ours", "also-ours")),
    )
    assert sorted(r.table.exact_hosts) == ["a.example", "b.example"]
    excluded = {str(d.obj): d for d in r.diagnostics if d.code == "excluded-by-class"}
    assert sorted(excluded) == [
        "Ingress default/other-annotation",
        "Ingress default/other-name",
        "Ingress default/unclassed",
    ]
    assert all(d.severity is Severity.WARNING for d in excluded.values())
    named = excluded["Ingress default/other-name"]
    assert named.field == "spec.ingressClassName"
    assert '"nginx" is not served here (served: ours, also-ours)' in named.message
    annotated = excluded["Ingress default/other-annotation"]
    assert annotated.field == "metadata.annotations.kubernetes.io/ingress.class"
    assert annotated.source == Source("default/other-annotation.yaml", 7)
    assert "no ingress class" in excluded["Ingress default/unclassed"].message


def test_spec_class_name_wins_over_legacy_annotation() -> None:
    r = compile_(
        ingress(
            "both",
            rules=[("a.example", WEB)],
            class_name="ours",
            annotations={"kubernetes.io/ingress.class": "nginx"},
        ),
        options=CompileOptions(ingress_classes=("ours",)),
    )
    assert list(r.table.exact_hosts) == ["a.example"]


@pytest.mark.parametrize(
    ("classes", "served"),
    [
        ([ingress_class("ours", default=True)], True),
        ([ingress_class("ours")], False),
        ([ingress_class("nginx", default=True), ingress_class("ours")], False),
        ([], False),
    ],
    ids=["our class is default", "ours not default", "other class is default", "no classes"],
)
def test_unclassed_ingress_served_only_with_our_default_class(
    classes: list[IngressClass], served: bool
) -> None:
    r = compile_(
        ingress("unclassed", rules=[("a.example", WEB)]),
        classes=classes,
        options=CompileOptions(ingress_classes=("ours",)),
    )
    assert ("a.example" in r.table.exact_hosts) is served
    assert ("excluded-by-class" in [c for c, _ in codes(r)]) is not served


def test_explicit_other_class_stays_excluded_even_with_our_default() -> None:
    r = compile_(
        ingress("theirs", rules=[("a.example", WEB)], class_name="nginx"),
        classes=[ingress_class("ours", default=True)],
        options=CompileOptions(ingress_classes=("ours",)),
    )
    assert r.table == RouteTable()
    assert codes(r) == [("excluded-by-class", "Ingress default/theirs")]


# --------------------------------------------------------------------------- conflicts

LOGIN_HOST = "apps.apigateway.awesomecompany.io"


def login_ingress(ns: str, ts: datetime | None) -> Ingress:
    return ingress(
        f"{ns}-login", ns, rules=[(LOGIN_HOST, [("/login", PREFIX, to("login"))])], ts=ts
    )


def test_cross_namespace_collision_oldest_wins() -> None:
    image = login_ingress("imagemanager", T0 + timedelta(minutes=5))
    notes = login_ingress("notesmanager", T0)
    r = compile_(
        image, notes, services=[service("login", "imagemanager"), service("login", "notesmanager")]
    )
    won = route_at(r, LOGIN_HOST, "/login/x")
    assert won.ingress == ObjectRef("Ingress", "notesmanager", "notesmanager-login")
    assert won.backend.namespace == "notesmanager"
    conflict = only(r, "conflict")
    assert conflict.obj == image.ref
    assert conflict.field == "spec.rules[0].http.paths[0]"
    assert "Ingress notesmanager/notesmanager-login" in conflict.message
    assert "older creationTimestamp (2022-02-04T16:00:00Z vs 2022-02-04T16:05:00Z)" in (
        conflict.message
    )
    shared = only(r, "shared-host")
    assert shared.severity is Severity.WARNING
    assert f'host "{LOGIN_HOST}"' in shared.message
    assert "(imagemanager, notesmanager:" in shared.message


def test_collision_with_equal_timestamps_goes_by_namespace_name() -> None:
    r = compile_(login_ingress("notesmanager", T0), login_ingress("imagemanager", T0))
    assert route_at(r, LOGIN_HOST, "/login").ingress.namespace == "imagemanager"
    assert "wins by namespace/name order" in only(r, "conflict").message


def test_collision_without_timestamps_goes_by_namespace_name() -> None:
    r = compile_(login_ingress("b", None), login_ingress("a", None))
    assert route_at(r, LOGIN_HOST, "/login").ingress.namespace == "a"
    assert "namespace/name order" in only(r, "conflict").message


def test_ingress_without_timestamp_loses_to_one_with() -> None:
    r = compile_(login_ingress("aaa", None), login_ingress("zzz", T0 + timedelta(days=900)))
    assert route_at(r, LOGIN_HOST, "/login").ingress.namespace == "zzz"
    assert "older creationTimestamp (2024-07-23T16:00:00Z vs none)" in only(r, "conflict").message


def test_timestamps_compare_across_offsets() -> None:
    # 17:00+02:00 is 15:00Z, older than 16:00Z.
    plus2 = datetime(2022, 2, 4, 17, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    r = compile_(login_ingress("a", T0), login_ingress("b", plus2))
    assert route_at(r, LOGIN_HOST, "/login").ingress.namespace == "b"


def _conflict_set() -> list[Ingress]:
    return [
        login_ingress("imagemanager", T0 + timedelta(minutes=1)),
        login_ingress("notesmanager", T0),
        login_ingress("third", None),
        ingress(
            "mixed",
            "imagemanager",
            ts=T0,
            rules=[
                (LOGIN_HOST, [("/login", IMPL, to("impl")), ("/other/", PREFIX, to("o"))]),
                (None, [("/x", EXACT, to("x"))]),
            ],
            default=to("dflt"),
        ),
        ingress(
            "shadow", "notesmanager", ts=T0, rules=[(LOGIN_HOST, [("/other", PREFIX, to("s"))])]
        ),
        ingress("fallback-a", "a", default=to("fa")),
        ingress("fallback-b", "b", default=to("fb"), ts=T0),
    ]


def test_result_does_not_depend_on_input_order() -> None:
    base = _conflict_set()
    services = [service("login", "imagemanager"), service("login", "notesmanager")]
    first = compile_(*base, services=services)
    expected = (dump_table(first.table), [dump_diagnostic(d) for d in first.diagnostics])
    for perm in itertools.permutations(base):
        got = compile_(*perm, services=list(reversed(services)))
        assert got == first
        assert (dump_table(got.table), [dump_diagnostic(d) for d in got.diagnostics]) == expected
    # And what wins is what the rules say:
    assert route_at(first, LOGIN_HOST, "/login").ingress.name == "notesmanager-login"
    assert route_at(first, LOGIN_HOST, "/other/x").path == "/other/"
    assert first.table.default is not None
    assert first.table.default.ingress.name == "fallback-b"


def test_prefix_beats_implementation_specific_on_the_same_path() -> None:
    old = ingress("old", ts=T0, rules=[("a.example", [("/api", IMPL, to("impl"))])])
    new = ingress("new", ts=T0 + timedelta(1), rules=[("a.example", [("/api", PREFIX, to("pre"))])])
    r = compile_(old, new)
    won = route_at(r, "a.example", "/api/v1")
    assert (won.path_type, won.backend.service) == (PREFIX, "pre")
    conflict = only(r, "conflict")
    assert conflict.obj == old.ref
    assert "conflicts with the Prefix path of Ingress default/new" in conflict.message


def test_longer_prefix_as_written_shadows_the_shorter() -> None:
    a = ingress("a", ts=T0, rules=[("a.example", [("/foo", PREFIX, to("short"))])])
    b = ingress("b", ts=T0 + timedelta(1), rules=[("a.example", [("/foo/", PREFIX, to("long"))])])
    for order in ((a, b), (b, a)):
        r = compile_(*order)
        assert route_at(r, "a.example", "/foo").backend.service == "long"
        assert list(host(r, "a.example").prefix) == ["/foo"]
        shadowed = only(r, "shadowed")
        assert shadowed.obj == a.ref
        assert 'is shadowed by "/foo/" of Ingress default/b' in shadowed.message


def test_duplicate_path_within_one_ingress_first_wins() -> None:
    ing = ingress(
        "dup",
        rules=[
            ("a.example", [("/x", EXACT, to("first")), ("/x", EXACT, to("second"))]),
            ("a.example", [("/x", EXACT, to("third"))]),
        ],
    )
    r = compile_(ing)
    assert route_at(r, "a.example", "/x").backend.service == "first"
    dups = [d for d in r.diagnostics if d.code == "duplicate-path"]
    assert [d.field for d in dups] == ["spec.rules[0].http.paths[1]", "spec.rules[1].http.paths[0]"]
    assert all("spec.rules[0].http.paths[0]" in d.message for d in dups)


def test_exact_and_prefix_on_the_same_path_do_not_conflict() -> None:
    r = compile_(
        ingress("a", rules=[("a.example", [("/foo", EXACT, to("e"))])]),
        ingress("b", rules=[("a.example", [("/foo", PREFIX, to("p"))])]),
    )
    assert route_at(r, "a.example", "/foo").backend.service == "e"
    assert route_at(r, "a.example", "/foo/bar").backend.service == "p"
    assert not [d for d in r.diagnostics if d.code in ("conflict", "shadowed", "shared-host")]


def test_shared_host_warned_once_per_host_across_namespaces() -> None:
    r = compile_(
        ingress("a1", "team-a", rules=[("shared.example", WEB), ("a.example", WEB)]),
        ingress("a2", "team-a", rules=[("shared.example", [("/a2", PREFIX, to("x"))])]),
        ingress("b1", "team-b", rules=[("shared.example", [("/b", PREFIX, to("y"))])]),
        ingress("c1", "team-c", rules=[(None, WEB)]),
        ingress("d1", "team-d", rules=[(None, [("/d", PREFIX, to("z"))])]),
    )
    shared = [d for d in r.diagnostics if d.code == "shared-host"]
    assert len(shared) == 2
    by_host = {("shared" if "shared.example" in d.message else "any"): d for d in shared}
    assert (
        "(team-a, team-b: Ingresses team-a/a1, team-a/a2, team-b/b1)" in by_host["shared"].message
    )
    assert by_host["shared"].field == "spec.rules[0].host"
    assert "rules without a host" in by_host["any"].message
    assert "(team-c, team-d:" in by_host["any"].message


# --------------------------------------------------------------------------- default backends


def test_ingress_with_only_a_default_backend_is_the_global_default() -> None:
    r = compile_(
        ingress("old", default=to("old-svc"), ts=T0),
        ingress("new", default=to("new-svc"), ts=T0 + timedelta(1)),
    )
    d = r.table.default
    assert d is not None
    assert (d.ingress.name, d.backend.service, d.field) == ("old", "old-svc", "spec.defaultBackend")
    assert (d.host, d.path, d.path_type) == (None, None, None)
    conflict = only(r, "conflict")
    assert conflict.obj == ObjectRef("Ingress", "default", "new")
    assert conflict.field == "spec.defaultBackend"
    assert "defaultBackend for requests no rule matches" in conflict.message
    assert r.table.any_host is None and not r.table.exact_hosts
    assert r.table.match("anything", "/x").route == d


def test_default_backend_with_rules_serves_the_ingress_hosts_only() -> None:
    r = compile_(
        ingress(
            "with-rules",
            rules=[("a.example", WEB), ("b.example", [("/b", EXACT, to("b"))]), (None, WEB)],
            default=to("dflt"),
        )
    )
    assert r.table.default is None
    for name in ("a.example", "b.example", None):
        d = host(r, name).default
        assert d is not None and d.backend.service == "dflt" and d.host == name
    assert route_at(r, "b.example", "/other").backend.service == "dflt"


def test_host_default_backend_oldest_wins() -> None:
    r = compile_(
        ingress("new", rules=[("a.example", WEB)], default=to("new"), ts=T0 + timedelta(1)),
        ingress("old", rules=[("a.example", [("/o", PREFIX, to("o"))])], default=to("old"), ts=T0),
    )
    d = host(r, "a.example").default
    assert d is not None and d.backend.service == "old"
    conflict = only(r, "conflict")
    assert conflict.obj == ObjectRef("Ingress", "default", "new")
    assert 'defaultBackend for host "a.example"' in conflict.message


def test_host_rule_without_http_gets_its_ingress_default() -> None:
    r = compile_(
        ingress("a", rules=[("a.example", None)], default=to("dflt")),
        ingress("b", rules=[("b.example", None)]),
    )
    a = host(r, "a.example")
    assert a.default is not None and a.default.backend.service == "dflt"
    assert not a.exact and not a.prefix
    b = host(r, "b.example")
    assert b == HostTable()
    assert r.routes == 1


# --------------------------------------------------------------------------- backends


def test_port_by_name_resolves_endpoints_through_the_port_name() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("web", "http"))])]),
        services=[service("web", ports=[("http", 80, "web-port"), ("metrics", 9090, 9090)])],
        slices=[
            eslice(
                "web-1",
                "web",
                ports=[("metrics", 9090), ("http", 8080)],
                endpoints=[(["10.0.0.2", "10.0.0.1"], True)],
            )
        ],
    )
    b = route_at(r, "a.example", "/").backend
    assert b == Backend(
        "default", "web", "http", (Endpoint("10.0.0.1", 8080), Endpoint("10.0.0.2", 8080))
    )
    assert b.key == "default/web:http"
    assert r.diagnostics == ()


def test_port_number_is_the_service_port_not_the_target_port() -> None:
    svc = service("web", ports=[("http", 80, 8080)])
    good = ingress("good", rules=[("a.example", [("/", PREFIX, to("web", 80))])])
    bad = ingress("bad", rules=[("b.example", [("/", PREFIX, to("web", 8080))])])
    r = compile_(good, bad, services=[svc], slices=[eslice("web-1", "web")])
    ok = route_at(r, "a.example", "/").backend
    assert (ok.port, ok.endpoints, ok.error) == ("80", (Endpoint("10.0.0.1", 8080),), None)
    missing = route_at(r, "b.example", "/").backend
    assert missing.endpoints == ()
    assert missing.error == "Service default/web has no port 8080 (ports: 80)"
    d = only(r, "missing-port")
    assert (d.severity, d.obj, d.field) == (
        Severity.ERROR,
        bad.ref,
        "spec.rules[0].http.paths[0].backend.service.port.number",
    )


def test_missing_port_name_lists_the_ports() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("web", "htp"))])]),
        services=[service("web", ports=[("http", 80, 8080), ("metrics", 9090, 9090)])],
    )
    d = only(r, "missing-port")
    assert d.message == 'Service default/web has no port "htp" (ports: http, metrics)'
    assert d.field == "spec.rules[0].http.paths[0].backend.service.port.name"
    assert route_at(r, "a.example", "/").backend.error == d.message


def test_missing_service_is_an_error_at_its_line() -> None:
    field = "spec.rules[0].http.paths[0].backend.service.name"
    ing = ingress(
        "i", "apps", rules=[("a.example", [("/", PREFIX, to("nope"))])], lines={field: 17}
    )
    r = compile_(ing)
    d = only(r, "missing-service")
    assert d.severity is Severity.ERROR
    assert (d.message, d.field, d.source) == (
        "Service apps/nope not found",
        field,
        Source("apps/i.yaml", 17),
    )
    assert str(d) == (
        f"apps/i.yaml:17: error: Ingress apps/i: {field}: Service apps/nope not found"
    )
    b = route_at(r, "a.example", "/").backend
    assert (b.endpoints, b.error) == ((), "Service apps/nope not found")
    assert r.routes == 1  # the route stays, so the proxy can answer 503 with the reason


def test_service_in_another_namespace_is_not_used_but_mentioned() -> None:
    r = compile_(
        ingress("i", "apps", rules=[("a.example", [("/", PREFIX, to("login"))])]),
        services=[service("login", "auth"), service("login", "other")],
        slices=[eslice("login-1", "login", "auth")],
    )
    d = only(r, "service-in-other-namespace")
    assert d.message == (
        "Service apps/login not found (a Service of that name exists in namespaces auth, other;"
        " an Ingress can only use Services of its own namespace)"
    )
    assert route_at(r, "a.example", "/").backend.endpoints == ()


def test_endpoint_slices_are_preferred_and_merged() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("web"))])]),
        services=[service("web")],
        slices=[
            eslice("web-a", "web", endpoints=[(["10.0.0.10", "10.0.0.9"], True)]),
            eslice(
                "web-b",
                "web",
                endpoints=[(["10.0.0.9"], True), (["10.0.0.5"], None), (["10.0.0.3"], False)],
            ),
            eslice("other-svc", "db", endpoints=[(["10.9.9.9"], True)]),
            eslice("other-ns", "web", "elsewhere", endpoints=[(["10.8.8.8"], True)]),
        ],
        endpoints=[v1_endpoints("web", addresses=["192.168.0.1"])],
    )
    b = route_at(r, "a.example", "/").backend
    # De-duplicated, sorted numerically (.9 before .10), not-ready 10.0.0.3 left out,
    # ready=None counts as ready, the v1 Endpoints ignored because slices exist.
    assert [str(e) for e in b.endpoints] == ["10.0.0.5:8080", "10.0.0.9:8080", "10.0.0.10:8080"]


def test_v1_endpoints_used_without_slices_and_only_ready_addresses() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("web"))])]),
        services=[service("web")],
        endpoints=[v1_endpoints("web", addresses=["10.0.0.2", "10.0.0.1"], not_ready=["10.0.0.3"])],
    )
    b = route_at(r, "a.example", "/").backend
    assert [str(e) for e in b.endpoints] == ["10.0.0.1:8080", "10.0.0.2:8080"]


def test_unnamed_single_port_matches_unnamed_endpoint_port() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("web", 80))])]),
        services=[service("web", ports=[(None, 80, 8080)])],
        slices=[eslice("web-1", "web", ports=[(None, 8080)])],
    )
    assert route_at(r, "a.example", "/").backend.endpoints == (Endpoint("10.0.0.1", 8080),)


@pytest.mark.parametrize(
    ("slices", "endpoints", "why"),
    [
        ([], [], "no EndpointSlice labelled kubernetes.io/service-name=web"),
        (
            [eslice("web-1", "web", endpoints=[(["10.0.0.1", "10.0.0.2"], False)])],
            [],
            "2 endpoints not ready",
        ),
        ([eslice("web-1", "web", ports=[("grpc", 9000)])], [], 'no port named "http"'),
        ([], [v1_endpoints("web", addresses=[], not_ready=["10.0.0.1"])], "1 endpoint not ready"),
        ([eslice("web-1", "web", endpoints=[])], [], "the endpoint list is empty"),
    ],
    ids=["nothing", "slice not ready", "port name mismatch", "endpoints not ready", "empty"],
)
def test_no_ready_endpoints(
    slices: list[EndpointSlice], endpoints: list[Endpoints], why: str
) -> None:
    r = compile_(
        ingress("i", "default", rules=[("a.example", [("/", PREFIX, to("web"))])]),
        services=[service("web")],
        slices=slices,
        endpoints=endpoints,
    )
    b = route_at(r, "a.example", "/").backend
    assert (b.endpoints, b.error) == ((), "no ready endpoints")
    d = only(r, "no-endpoints")
    assert d.severity is Severity.WARNING
    assert d.message.startswith("no endpoints found for Service default/web port http: ")
    assert why in d.message
    assert d.field == "spec.rules[0].http.paths[0].backend.service"


def test_external_name_disabled_by_default() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("ext", 443))])]),
        services=[service("ext", ports=[], type_="ExternalName", external_name="api.example.org")],
    )
    d = only(r, "external-name-disabled")
    assert d.severity is Severity.ERROR
    assert "--allow-external-name" in d.message and "api.example.org" in d.message
    b = route_at(r, "a.example", "/").backend
    assert b.endpoints == () and b.error is not None and "--allow-external-name" in b.error


@pytest.mark.parametrize(
    ("ports", "ref", "port"),
    [
        ([("https", 443, 8443)], "https", 8443),
        ([("https", 443, "named")], "https", 443),
        ([("https", 443, None)], 443, 443),
        ([], 8443, 8443),
    ],
    ids=["int targetPort", "named targetPort", "no targetPort", "no ports, number as given"],
)
def test_external_name_allowed(
    ports: list[tuple[str | None, int, int | str | None]], ref: str | int, port: int
) -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("ext", ref))])]),
        services=[
            service("ext", ports=ports, type_="ExternalName", external_name="api.example.org")
        ],
        options=CompileOptions(allow_external_name=True),
    )
    assert r.diagnostics == ()
    b = route_at(r, "a.example", "/").backend
    # A Service port named https* or numbered 443 speaks TLS (Traefik's getProtocol).
    scheme = "https" if ports else "http"
    assert (b.endpoints, b.error) == ((Endpoint("api.example.org", port, scheme),), None)


def test_external_name_port_name_must_exist() -> None:
    r = compile_(
        ingress("i", rules=[("a.example", [("/", PREFIX, to("ext", "https"))])]),
        services=[service("ext", ports=[], type_="ExternalName", external_name="x.example")],
        options=CompileOptions(allow_external_name=True),
    )
    assert only(r, "missing-port").message == (
        'Service default/ext has no port "https" (it has no ports)'
    )


def test_resource_backends_get_no_route() -> None:
    res = IngressBackend(resource=ResourceRef("k8s.example.com", "StorageBucket", "assets"))
    r = compile_(
        ingress(
            "i",
            rules=[("a.example", [("/static", PREFIX, res), ("/", PREFIX, to("web"))])],
            default=res,
        ),
        services=[service("web")],
        slices=[eslice("web-1", "web")],
    )
    a = host(r, "a.example")
    assert list(a.prefix) == [""] and a.default is None
    assert route_at(r, "a.example", "/static/x").path == "/"
    fields = [d.field for d in r.diagnostics if d.code == "resource-backend-unsupported"]
    assert fields == [
        "spec.defaultBackend.resource",
        "spec.rules[0].http.paths[0].backend.resource",
    ]
    assert all(d.severity is Severity.WARNING for d in r.diagnostics)


def test_identical_backends_are_shared_between_routes() -> None:
    r = compile_(
        ingress("a", rules=[("a.example", [("/x", PREFIX, to("web")), ("/y", EXACT, to("web"))])]),
        ingress("b", rules=[("b.example", WEB)], default=to("web")),
        services=[service("web")],
        slices=[eslice("web-1", "web")],
    )
    backends = [
        route_at(r, "a.example", "/x").backend,
        route_at(r, "a.example", "/y").backend,
        route_at(r, "b.example", "/").backend,
        route_at(r, "b.example", "/").backend,
    ]
    default = host(r, "b.example").default
    assert default is not None
    backends.append(default.backend)
    assert all(b is backends[0] for b in backends)


# --------------------------------------------------------------------------- result shape


def test_tables_are_immutable_and_routes_counted() -> None:
    r = compile_(
        ingress("a", rules=[("a.example", [("/x", PREFIX, to("w")), ("/y", EXACT, to("w"))])]),
        ingress("b", rules=[("*.wild.example", WEB), (None, WEB)], default=to("w")),
        ingress("c", default=to("w")),
    )
    t = r.table
    for mapping in (t.exact_hosts, t.wildcard_hosts, host(r, "a.example").exact):
        assert isinstance(mapping, MappingProxyType)
        with pytest.raises(TypeError):
            mapping["new"] = None  # type: ignore[index]
    assert list(t.wildcard_hosts) == ["wild.example"]
    with pytest.raises(AttributeError):
        t.default = None  # type: ignore[misc]
    # a: 2 paths; b: 2 paths + 2 host defaults (wildcard + any host); c: the global default.
    assert r.routes == 7


def test_diagnostics_are_sorted() -> None:
    r = compile_(*_conflict_set())
    assert list(r.diagnostics) == sorted(r.diagnostics, key=Diagnostic.sort_key)
    assert len(set(r.diagnostics)) == len(r.diagnostics)


# --------------------------------------------------------------------------- canonical rule paths


def test_rule_paths_are_stored_canonical_so_requests_can_match_them() -> None:
    r = compile_(
        ingress(
            "a",
            rules=[
                ("a.example", [("/%7euser", PREFIX, to("web")), ("/caf%c3%a9", EXACT, to("x"))])
            ],
        )
    )
    assert route_at(r, "a.example", "/~user/docs").path == "/~user"
    assert route_at(r, "a.example", "/caf%C3%A9").path == "/caf%C3%A9"


def test_a_rule_path_no_request_can_equal_is_an_error_not_a_dead_rule() -> None:
    r = compile_(ingress("a", rules=[("a.example", [("/a\\b", IMPL, to("web"))])]))
    d = only(r, "unmatchable-path")
    assert d.severity is Severity.ERROR
    assert d.field == "spec.rules[0].http.paths[0].path"
    assert r.table.match("a.example", "/a").route is None
