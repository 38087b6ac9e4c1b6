"""Traefik's Service annotations in the traefik dialect, on real sockets: the service part of
traefik/traefik pkg/provider/kubernetes/ingress kubernetes_test.go "Ingress with annotations"
(fixtures/Ingress-with-annotations.yml: sticky cookie foobar, secure, httponly; passhostheader;
serverstransport), and the sticky cookie as pkg/server/service/loadbalancer/sticky.go writes
it (the value names the server: sha256 of its URL, 16 hex digits)."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from e2e import Served, cluster, echo, run_proxy

from ingressproxy.frontends.semantics import Flavor
from ingressproxy.frontends.traefik.service import cookie_name

HOST = "sticky.example"


def folder_text(annotations: Mapping[str, str]) -> str:
    """An Ingress for HOST and its Service service1, with `annotations` on the Service."""
    notes = "".join(
        f"\n    traefik.ingress.kubernetes.io/{k}: {v!r}" for k, v in annotations.items()
    )
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {{name: app, namespace: testing}}
        spec:
          rules:
            - host: {HOST}
              http:
                paths:
                  - path: /
                    pathType: Prefix
                    backend: {{service: {{name: service1, port: {{number: 80}}}}}}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: service1
          namespace: testing
          annotations: {{}}
        spec:
          ports: [{{name: http, port: 80, targetPort: 8080}}]
        """).replace("annotations: {}", "annotations:" + notes if notes else "annotations: {}")


@contextmanager
def proxy(tmp_path: Path, annotations: Mapping[str, str], replicas: int = 3) -> Iterator[Served]:
    fixture = tmp_path / "fixture"
    fixture.mkdir(parents=True)
    (fixture / "app.yaml").write_text(folder_text(annotations))
    with cluster(fixture, {"service1": replicas}) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=Flavor.TRAEFIK) as served:
            yield served


def codes(served: Served) -> list[str]:
    return [d.code for d in served.app.state.holder.current.diagnostics]


def test_sticky_cookie_as_the_providers_fixture_sets_it(tmp_path: Path) -> None:
    notes = {
        "service.sticky.cookie": "true",
        "service.sticky.cookie.name": "foobar",
        "service.sticky.cookie.secure": "true",
        "service.sticky.cookie.httponly": "true",
    }
    with proxy(tmp_path, notes) as served:
        first = served.get("/", host=HOST)
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        parts = [p.strip() for p in cookie.split(";")]
        name, value = parts[0].split("=", 1)
        assert name == "foobar"
        assert {"Path=/", "Secure", "HttpOnly"} <= set(parts)
        pod = echo(first).pod
        # The value names the server that answered: sha256 of its URL, 16 hex digits.
        (router,) = served.app.state.holder.current.table.routes()
        named = [
            e
            for e in router.backend.endpoints
            if hashlib.sha256(e.base_url.encode()).hexdigest()[:16] == value
        ]
        assert len(named) == 1
        for _ in range(6):
            again = served.request("GET", "/", host=HOST, headers={"cookie": f"foobar={value}"})
            assert echo(again).pod == pod
            assert "set-cookie" not in again.headers
        # A cookie naming no current server is balanced anew and replaced.
        stale = served.request("GET", "/", host=HOST, headers={"cookie": "foobar=0000000000000000"})
        assert stale.headers["set-cookie"].startswith("foobar=")


def test_sticky_without_a_name_gets_traefiks_generated_name(tmp_path: Path) -> None:
    with proxy(tmp_path, {"service.sticky.cookie": "true"}) as served:
        cookie = served.get("/", host=HOST).headers["set-cookie"]
    want = cookie_name("testing-service1-80@kubernetes")
    assert cookie.startswith(want + "=")
    assert len(want) == 6 and want.startswith("_")
    # Traefik's defaults: Path=/, neither Secure nor HttpOnly.
    assert "Path=/" in cookie and "Secure" not in cookie and "HttpOnly" not in cookie


def test_without_sticky_requests_take_turns(tmp_path: Path) -> None:
    with proxy(tmp_path, {}) as served:
        pods = {echo(served.get("/", host=HOST)).pod for _ in range(6)}
        assert len(pods) == 3


def test_passhostheader_false_sends_the_servers_host(tmp_path: Path) -> None:
    with proxy(tmp_path, {"service.passhostheader": "false"}, replicas=1) as served:
        got = echo(served.get("/", host=HOST))
        assert got.host.startswith("127.0.0.1:")
        assert got.header("x-forwarded-host") == HOST
    with proxy(tmp_path / "b", {"service.passhostheader": "true"}, replicas=1) as served:
        assert echo(served.get("/", host=HOST)).host == HOST


def test_what_is_not_followed_is_said(tmp_path: Path) -> None:
    notes = {
        "service.serverstransport": "foobar@file",
        "service.nativelb": "true",
        "service.stiky.cookie": "true",
        "service.passhostheader": "maybe",
    }
    with proxy(tmp_path, notes, replicas=1) as served:
        diags = served.app.state.holder.current.diagnostics
        messages = [d.message for d in diags if d.code == "service-annotation"]
        assert any("serverstransport" in m for m in messages)
        assert any("nativelb" in m for m in messages)
        assert any("stiky" in m for m in messages)
        assert any('"maybe" is not a boolean' in m for m in messages)
        # The bad value is ignored: Host passes as by default.
        assert echo(served.get("/", host=HOST)).host == HOST


def test_other_dialects_ignore_service_annotations(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    (fixture / "app.yaml").write_text(folder_text({"service.passhostheader": "false"}))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=Flavor.SPEC) as served:
            assert echo(served.get("/", host=HOST)).host == HOST


# --------------------------------------------------------------------------- router annotations


def _two_ingresses(first: Mapping[str, str], second: Mapping[str, str]) -> str:
    """Ingresses a (/api, ImplementationSpecific) and b (/api/v1, Prefix), both to service1,
    with router annotations."""

    def one(name: str, path: str, path_type: str, notes: Mapping[str, str]) -> str:
        lines = "".join(f"\n    traefik.ingress.kubernetes.io/{k}: {v!r}" for k, v in notes.items())
        return textwrap.dedent(f"""\
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: {name}
              namespace: testing
              annotations: {{}}
            spec:
              rules:
                - host: {HOST}
                  http:
                    paths:
                      - path: {path}
                        pathType: {path_type}
                        backend: {{service: {{name: service1, port: {{number: 80}}}}}}
            """).replace("annotations: {}", "annotations:" + lines if lines else "annotations: {}")

    return "---\n".join(
        [one("a", "/api", "ImplementationSpecific", first), one("b", "/api/v1", "Prefix", second)]
    )


def _routers(tmp_path: Path, text: str) -> tuple[dict[str, tuple[int, str]], list[str]]:
    from ingressproxy.frontends.certs import CertTable
    from ingressproxy.frontends.options import CompileOptions
    from ingressproxy.frontends.pipeline import compile_routes
    from ingressproxy.manifests.decode import decode
    from ingressproxy.manifests.loader import load_text

    service = folder_text({}).split("---\n", 1)[1]
    # Traefik leaves out a router whose Service has no endpoints: give it one.
    ready = textwrap.dedent("""\
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: service1-1
          namespace: testing
          labels: {kubernetes.io/service-name: service1}
        addressType: IPv4
        ports: [{name: http, port: 8080}]
        endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
        """)
    documents, _ = load_text("---\n".join([text, service, ready]), "app.yaml")
    manifests, _ = decode(documents)
    result, _ = compile_routes(manifests, CompileOptions(flavor=Flavor.TRAEFIK), CertTable())
    routers = {r.ingress.name: (r.priority, r.rule) for r in result.table.routes()}
    return routers, [d.code for d in result.diagnostics]


def test_router_priority_replaces_the_rule_length(tmp_path: Path) -> None:
    # kubernetes_test.go "Ingress with annotations": router.priority 42 -> Priority 42.
    routers, _ = _routers(tmp_path, _two_ingresses({"router.priority": "42"}, {}))
    assert routers["a"][0] == 42
    # b keeps the length of its rule.
    assert routers["b"] == (len(routers["b"][1]), routers["b"][1])
    # "0" keeps the default, as Traefik's zero value does.
    routers, _ = _routers(tmp_path, _two_ingresses({"router.priority": "0"}, {}))
    assert routers["a"][0] == len(routers["a"][1])


def test_a_priority_that_is_not_an_integer_skips_the_ingress(tmp_path: Path) -> None:
    routers, codes = _routers(tmp_path, _two_ingresses({"router.priority": "high"}, {}))
    assert "a" not in routers and "b" in routers
    assert "invalid-annotation" in codes


def test_router_pathmatcher_applies_to_implementation_specific_paths(tmp_path: Path) -> None:
    routers, _ = _routers(
        tmp_path, _two_ingresses({"router.pathmatcher": "Path"}, {"router.pathmatcher": "Path"})
    )
    assert routers["a"][1] == f"Host(`{HOST}`) && Path(`/api`)"
    # A Prefix path keeps PathPrefix whatever the annotation says.
    assert routers["b"][1] == f"Host(`{HOST}`) && PathPrefix(`/api/v1`)"
    routers, codes = _routers(tmp_path, _two_ingresses({"router.pathmatcher": "Bogus"}, {}))
    assert "a" not in routers and "invalid-annotation" in codes
    routers, codes = _routers(tmp_path, _two_ingresses({"router.pathmatcher": "PathRegexp"}, {}))
    assert "a" not in routers and "unsupported-annotation" in codes


def test_router_pathmatcher_path_is_exact_on_the_wire(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    service = folder_text({}).split("---\n", 1)[1]
    text = _two_ingresses({"router.pathmatcher": "Path"}, {})
    (fixture / "app.yaml").write_text(text + "---\n" + service)
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=Flavor.TRAEFIK) as served:
            assert served.get("/api", host=HOST).status_code == 200
            # Path(`/api`) does not take /apix (PathPrefix would).
            assert served.get("/apix", host=HOST).status_code == 404
