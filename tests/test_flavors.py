"""Flavors spec / nginx / traefik: one test per row of the matrix in docs/flavors.md (compiled
tables asked the same request), settings and flags, and end to end through real sockets for
Traefik's string prefix, its 404 for a Service without endpoints and the collision round robin.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest
from e2e import cluster, echo, run_proxy

from ingressproxy.cli.main import build_parser, settings_from_args
from ingressproxy.frontends.dialects import SEMANTICS
from ingressproxy.frontends.options import CompileOptions, CompileResult
from ingressproxy.frontends.semantics import DIALECTS, Flavor, parse_flavor
from ingressproxy.frontends.spec.compiler import compile_manifests
from ingressproxy.frontends.traefik.rules import rule_priority, rule_text
from ingressproxy.ir.model import Backend, Endpoint, Router
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_path
from ingressproxy.manifests.model import ObjectRef, PathType, Source
from ingressproxy.server.settings import Settings, SettingsError

FLAVORS = DIALECTS
FIXTURES = Path(__file__).parent / "fixtures" / "flavors"

# --------------------------------------------------------------------------- manifests helpers


def service(name: str, ns: str = "shop", ready: bool = True) -> str:
    cond = "true" if ready else "false"
    return f"""
        apiVersion: v1
        kind: Service
        metadata: {{name: {name}, namespace: {ns}}}
        spec:
          ports: [{{name: http, port: 80, targetPort: 8080}}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: {name}-1
          namespace: {ns}
          labels: {{kubernetes.io/service-name: {name}}}
        addressType: IPv4
        ports: [{{name: http, port: 8080}}]
        endpoints: [{{addresses: ["10.0.0.1"], conditions: {{ready: {cond}}}}}]
        """


def ingress(
    name: str,
    rules: list[tuple[str | None, str, str, str]],
    ns: str = "shop",
    created: str | None = None,
    default: str | None = None,
) -> str:
    """`rules`: (host or None, path, pathType, service)."""
    meta = f"{{name: {name}, namespace: {ns}"
    meta += f', creationTimestamp: "{created}"}}' if created else "}"
    spec = ""
    if default:
        spec += f"  defaultBackend: {{service: {{name: {default}, port: {{name: http}}}}}}\n"
    spec += "  rules:\n"
    for host, path, path_type, svc in rules:
        spec += "    - " + (f"host: {host}\n      " if host else "")
        spec += "http:\n        paths:\n"
        spec += (
            f"          - {{path: {path}, pathType: {path_type},"
            f" backend: {{service: {{name: {svc}, port: {{name: http}}}}}}}}\n"
        )
    spec = textwrap.indent(spec, "        ")
    return f"""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {meta}
        spec:
{spec}"""


def compile_all(tmp_path: Path, *docs: str) -> dict[Flavor, CompileResult]:
    """The same YAML compiled once per flavor."""
    text = "---\n".join(textwrap.dedent(d).strip("\n") + "\n" for d in docs)
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    loaded = load_path(tmp_path / "m.yaml")
    manifests, problems = decode(loaded.documents)
    assert [str(p) for p in (*loaded.diagnostics, *problems)] == []
    return {f: compile_manifests(manifests, CompileOptions(flavor=f)) for f in FLAVORS}


def routed(results: dict[Flavor, CompileResult], host: str, path: str) -> dict[Flavor, str]:
    """Per flavor: the Service (or `a+b` when they take turns), `503:svc`, or `404`."""
    out: dict[Flavor, str] = {}
    for f, r in results.items():
        route = r.table.match(host, path).route
        if route is None:
            out[f] = "404"
            continue
        b = route.backend
        name = "+".join(m.service for m in b.members) or b.service
        out[f] = f"503:{name}" if b.error or not b.endpoints else name
    return out


def expect(spec: str, nginx: str, traefik: str) -> dict[Flavor, str]:
    return {Flavor.SPEC: spec, Flavor.NGINX: nginx, Flavor.TRAEFIK: traefik}


def codes(result: CompileResult) -> list[str]:
    return [d.code for d in result.diagnostics]


# --------------------------------------------------------------------------- the matrix


def test_prefix_is_a_string_prefix_in_traefik(tmp_path: Path) -> None:
    r = compile_all(tmp_path, service("v1"), ingress("api", [("a.io", "/v1", "Prefix", "v1")]))
    assert routed(r, "a.io", "/v11") == expect("404", "404", "v1")
    assert routed(r, "a.io", "/v1/x") == expect("v1", "v1", "v1")
    assert routed(r, "a.io", "/v1") == expect("v1", "v1", "v1")


def test_implementation_specific_is_a_string_prefix_in_nginx_and_traefik(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path, service("v1"), ingress("api", [("a.io", "/v1", "ImplementationSpecific", "v1")])
    )
    assert routed(r, "a.io", "/v11") == expect("404", "v1", "v1")
    assert routed(r, "a.io", "/v1/") == expect("v1", "v1", "v1")


def test_exact_and_prefix_on_one_path(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("exact"),
        service("prefix"),
        ingress(
            "api", [("a.io", "/status", "Exact", "exact"), ("a.io", "/status", "Prefix", "prefix")]
        ),
    )
    # Traefik: PathPrefix(`/status`) is 6 characters longer than Path(`/status`).
    assert routed(r, "a.io", "/status") == expect("exact", "exact", "prefix")
    assert "shadowed" in codes(r[Flavor.TRAEFIK])
    assert "shadowed" not in codes(r[Flavor.SPEC])


def test_trailing_slash_prefix_against_exact(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("exact"),
        service("prefix"),
        ingress("api", [("a.io", "/foo", "Exact", "exact"), ("a.io", "/foo/", "Prefix", "prefix")]),
    )
    # spec: the longer path as written; nginx: exact locations first; Traefik: the string
    # /foo does not start with /foo/.
    assert routed(r, "a.io", "/foo") == expect("prefix", "exact", "exact")
    assert routed(r, "a.io", "/foo/x") == expect("prefix", "prefix", "prefix")


def test_nginx_longest_location_across_path_types(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("prefix"),
        service("impl"),
        ingress(
            "api",
            [
                ("a.io", "/foo", "Prefix", "prefix"),
                ("a.io", "/foo/b", "ImplementationSpecific", "impl"),
            ],
        ),
    )
    # nginx: `location /foo/b` is longer than `location /foo/`; spec: /foo/b is element-wise.
    assert routed(r, "a.io", "/foo/bar") == expect("prefix", "impl", "impl")
    assert routed(r, "a.io", "/foo") == expect("prefix", "prefix", "prefix")


def test_colliding_rules_oldest_wins_or_take_turns(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("login", "team-a"),
        service("login", "team-b"),
        ingress("a", [("a.io", "/login", "Prefix", "login")], "team-a", "2022-02-04T16:20:00Z"),
        ingress("b", [("a.io", "/login", "Prefix", "login")], "team-b", "2022-02-04T16:25:00Z"),
    )
    assert routed(r, "a.io", "/login") == expect("login", "login", "login+login")
    for f in (Flavor.SPEC, Flavor.NGINX):
        route = r[f].table.match("a.io", "/login").route
        assert route is not None and route.ingress.namespace == "team-a"
        assert [o.route.ingress.namespace for o in route.overridden] == ["team-b"]
    shared = r[Flavor.TRAEFIK].table.match("a.io", "/login").route
    assert shared is not None
    assert shared.backend.key == "team-a/login:http + team-b/login:http"
    assert [s.ingress.namespace for s in shared.sharing] == ["team-b"]
    assert codes(r[Flavor.TRAEFIK]).count("conflict") == 1


def test_equal_timestamps_nginx_prefers_the_later_name(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("login", "team-a"),
        service("login", "team-b"),
        ingress("x", [("a.io", "/login", "Prefix", "login")], "team-a", "2022-02-04T16:20:00Z"),
        ingress("x", [("a.io", "/login", "Prefix", "login")], "team-b", "2022-02-04T16:20:00Z"),
    )
    winners = {}
    for f in (Flavor.SPEC, Flavor.NGINX):
        route = r[f].table.match("a.io", "/login").route
        assert route is not None
        winners[f] = route.ingress.namespace
    # ingress-nginx sortIngressSlice: equal CreationTimestamp -> "ns/name" descending.
    assert winners == {Flavor.SPEC: "team-a", Flavor.NGINX: "team-b"}
    loser = next(d for d in r[Flavor.NGINX].diagnostics if d.code == "conflict")
    assert "descending on equal timestamps, as ingress-nginx sorts" in loser.message


def test_service_without_endpoints_503_or_skipped(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("health", ready=False),
        service("web"),
        ingress("api", [("a.io", "/health", "Prefix", "health"), ("a.io", "/", "Prefix", "web")]),
    )
    # Traefik leaves the router out: the request falls to the catch-all.
    assert routed(r, "a.io", "/health") == expect("503:health", "503:health", "web")
    (skipped,) = [d for d in r[Flavor.TRAEFIK].diagnostics if d.code == "no-endpoints"]
    assert skipped.message.startswith(
        "Skipping service: no endpoints found for Service shop/health port http"
    )
    table = r[Flavor.TRAEFIK].table.exact_hosts["a.io"]
    assert [route.path for route in table.skipped] == ["/health"]


def test_missing_service_503_or_404(tmp_path: Path) -> None:
    r = compile_all(tmp_path, ingress("api", [("a.io", "/", "Prefix", "nothing")]))
    assert routed(r, "a.io", "/") == expect("503:nothing", "503:nothing", "404")


def test_traefik_host_is_one_matcher_of_the_rule(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("a"),
        service("b"),
        ingress("named", [("a.io", "/a", "Prefix", "a")]),
        ingress("any", [(None, "/b", "Prefix", "b")]),
    )
    # spec and nginx choose the host first; Traefik's hostless router also matches a.io.
    assert routed(r, "a.io", "/b") == expect("404", "404", "b")
    assert routed(r, "other.io", "/b") == expect("b", "b", "b")


def test_traefik_priority_is_rule_length_across_hosts(tmp_path: Path) -> None:
    long_path = "/a-rather-long-path-prefix"
    r = compile_all(
        tmp_path,
        service("root"),
        service("long"),
        ingress("named", [("a.io", "/", "Prefix", "root")]),
        ingress("any", [(None, long_path, "Prefix", "long")]),
    )
    assert len(rule_text(None, long_path, PathType.PREFIX)) > len(
        rule_text("a.io", "/", PathType.PREFIX)
    )
    assert routed(r, "a.io", long_path + "/x") == expect("root", "root", "long")


def test_default_backend_of_an_ingress_with_rules(tmp_path: Path) -> None:
    r = compile_all(
        tmp_path,
        service("a"),
        service("fallback"),
        ingress("api", [("a.io", "/a", "Prefix", "a")], default="fallback"),
    )
    assert routed(r, "a.io", "/zzz") == expect("fallback", "fallback", "404")
    assert "default-backend-ignored" in codes(r[Flavor.TRAEFIK])


def test_wildcard_is_one_label_everywhere(tmp_path: Path) -> None:
    r = compile_all(tmp_path, service("w"), ingress("w", [("'*.foo.com'", "/", "Prefix", "w")]))
    assert routed(r, "bar.foo.com", "/") == expect("w", "w", "w")
    assert routed(r, "baz.bar.foo.com", "/") == expect("404", "404", "404")


# --------------------------------------------------------------------------- pieces


def test_semantics_table_names_every_flavor() -> None:
    assert set(SEMANTICS) == set(DIALECTS) == set(Flavor) - {Flavor.AUTO}
    assert all(s.flavor is f for f, s in SEMANTICS.items())


def test_traefik_rule_text() -> None:
    assert rule_text("a.io", "/x", PathType.EXACT) == "Host(`a.io`) && Path(`/x`)"
    assert rule_text(None, "/x", PathType.IMPLEMENTATION_SPECIFIC) == "PathPrefix(`/x`)"
    # Traefik v3 writes a wildcard host as it is (loadRouter: `Host(%q)`); its muxer matches
    # `*.foo.com` one label deep (muxer.DomainMatchHostExpression).
    assert rule_text("*.foo.com", "/", PathType.PREFIX) == "Host(`*.foo.com`) && PathPrefix(`/`)"
    assert rule_text(None, None, None) == "PathPrefix(`/`)"


@pytest.mark.parametrize(
    ("host", "path", "path_type", "rule"),
    [
        ("*.foo.com", "/", PathType.PREFIX, 'Host("*.foo.com") && PathPrefix("/")'),
        ("a.io", "/x", PathType.EXACT, 'Host("a.io") && Path("/x")'),
        (None, "/x", PathType.IMPLEMENTATION_SPECIFIC, 'PathPrefix("/x")'),
        # Go's %q escapes a quote and a backslash: the priority counts the escapes.
        (None, '/a"b\\c', PathType.PREFIX, 'PathPrefix("/a\\"b\\\\c")'),
        # len() of a Go string counts bytes.
        (None, "/é", PathType.PREFIX, 'PathPrefix("/\u00e9")'.replace("\\u00e9", "é")),
    ],
)
def test_traefik_priority_is_the_length_of_the_go_quoted_rule(
    host: str | None, path: str, path_type: PathType, rule: str
) -> None:
    assert rule_priority(host, path, path_type) == len(rule.encode("utf-8"))


def test_shared_backend_alternates_services(tmp_path: Path) -> None:
    # team-a has two endpoints, team-b one: each Service still gets every other request.
    a = service("login", "team-a").replace(
        '[{addresses: ["10.0.0.1"]', '[{addresses: ["10.0.0.1"]}, {addresses: ["10.0.0.2"]'
    )
    r = compile_all(
        tmp_path,
        a,
        service("login", "team-b").replace("10.0.0.1", "10.0.0.9"),
        ingress("a", [("a.io", "/", "Prefix", "login")], "team-a", "2022-01-01T00:00:00Z"),
        ingress("b", [("a.io", "/", "Prefix", "login")], "team-b", "2022-01-02T00:00:00Z"),
    )
    route = r[Flavor.TRAEFIK].table.match("a.io", "/").route
    assert route is not None
    eps = [ep.address for ep in route.backend.endpoints]
    assert eps == ["10.0.0.1", "10.0.0.9", "10.0.0.2", "10.0.0.9"]


def test_route_defaults_describe_a_spec_route() -> None:
    b = Backend("ns", "svc", "http", (Endpoint("10.0.0.1", 80),))
    r = Router(ObjectRef("Ingress", "ns", "i"), Source("f.yaml", 1), "f", None, "/a", None, b)
    assert r.how == "prefix"


def test_parse_flavor() -> None:
    assert parse_flavor(" Traefik ") is Flavor.TRAEFIK
    with pytest.raises(ValueError, match="'apache' is not a flavor"):
        parse_flavor("apache")


def test_flavor_from_env_and_flags() -> None:
    assert Settings.from_env({}).flavor is Flavor.AUTO
    assert Settings.from_env({"INGRESSPROXY_FLAVOR": "nginx"}).flavor is Flavor.NGINX
    with pytest.raises(SettingsError, match="INGRESSPROXY_FLAVOR: 'x' is not a flavor"):
        Settings.from_env({"INGRESSPROXY_FLAVOR": "x"})
    parser = build_parser()
    for command in (["serve", "d"], ["check", "d"], ["explain", "d", "/"]):
        flavor = settings_from_args(parser.parse_args([*command, "--flavor", "traefik"]), {}).flavor
        assert flavor is Flavor.TRAEFIK
        assert settings_from_args(parser.parse_args(command), {}).flavor is Flavor.AUTO
        nginx = {"INGRESSPROXY_FLAVOR": "nginx"}
        assert settings_from_args(parser.parse_args(command), nginx).flavor is Flavor.NGINX


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def tmp_folder(tmp_path: Path) -> Path:
    return tmp_path / "manifests"


@pytest.mark.parametrize(("flavor", "status"), [(Flavor.SPEC, 404), (Flavor.TRAEFIK, 200)])
def test_e2e_string_prefix(tmp_folder: Path, flavor: Flavor, status: int) -> None:
    with cluster(FIXTURES / "string-prefix") as pods:
        folder = pods.write(tmp_folder)
        with run_proxy(folder, flavor=flavor) as served:
            r = served.get("/v11", host="api.example.com")
            ok = served.get("/v1/x", host="api.example.com")
    assert r.status_code == status, r.text
    assert echo(ok).service == "v1"
    if status == 200:
        assert (echo(r).service, echo(r).path) == ("v1", "/v11")


def test_e2e_collision_takes_turns_in_traefik(tmp_folder: Path) -> None:
    with cluster(FIXTURES / "collision") as pods:
        folder = pods.write(tmp_folder)
        with run_proxy(folder, flavor=Flavor.TRAEFIK) as served:
            answers = [
                served.get("/login", host="apps.apigateway.awesomecompany.io") for _ in range(6)
            ]
        with run_proxy(folder) as served:
            spec = [
                served.get("/login", host="apps.apigateway.awesomecompany.io") for _ in range(4)
            ]
    namespaces = [echo(r).namespace for r in answers]
    # The blog's alternation, one request each in turn.
    assert namespaces == ["imagemanager", "notesmanager"] * 3
    assert Counter(echo(r).namespace for r in spec) == {"imagemanager": 4}


@pytest.mark.parametrize(
    ("flavor", "status", "service"),
    [(Flavor.SPEC, 503, None), (Flavor.NGINX, 503, None), (Flavor.TRAEFIK, 200, "frontend")],
)
def test_e2e_no_endpoints(
    tmp_folder: Path, flavor: Flavor, status: int, service: str | None
) -> None:
    with cluster(FIXTURES / "no-endpoints", {"image-text-extraction": 0}) as pods:
        folder = pods.write(tmp_folder)
        with run_proxy(folder, flavor=flavor) as served:
            r = served.get("/text-extraction", host="api.imagemanager.io")
    assert r.status_code == status, r.text
    if service is not None:
        assert echo(r).service == service
    else:
        assert "image-text-extraction" in r.text
