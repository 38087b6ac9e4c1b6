"""decode.py: RawDocument -> model objects, validated like the Kubernetes API server."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ingressproxy.manifests.decode import decode, host_errors, port_name_errors
from ingressproxy.manifests.loader import load_path, load_text
from ingressproxy.manifests.model import (
    Diagnostic,
    EndpointPort,
    EndpointsSubset,
    IngressBackend,
    IngressRule,
    IngressServiceBackend,
    IngressTLS,
    Manifests,
    ObjectRef,
    PathRule,
    PathType,
    RawDocument,
    ResourceRef,
    ServiceBackendPort,
    ServicePort,
    Severity,
    SliceEndpoint,
    Source,
)

FIXTURES = Path(__file__).parent / "fixtures" / "decode"

Obj = dict[str, Any]


def raw(data: Obj, file: str = "t.yaml", line: int = 1) -> RawDocument:
    return RawDocument(file, line, data)


def run(*objs: Obj) -> tuple[Manifests, tuple[Diagnostic, ...]]:
    return decode(raw(o, line=i + 1) for i, o in enumerate(objs))


def from_yaml(text: str, file: str = "x.yaml") -> tuple[Manifests, tuple[Diagnostic, ...]]:
    docs, diags = load_text(text, file)
    assert diags == ()
    return decode(docs)


def problems(diags: tuple[Diagnostic, ...]) -> list[tuple[str, str]]:
    return [(d.field, d.message) for d in diags]


def ingress(**spec: Any) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec,
    }


def service_backend(service_name: str = "web", /, **port: Any) -> Obj:
    """A service backend; keyword arguments are the port (`name=` or `number=`)."""
    return {"service": {"name": service_name, "port": port or {"number": 80}}}


def http_rule(host: Any = "shop.example.com", **path: Any) -> Obj:
    entry = {"path": "/", "pathType": "Prefix", "backend": service_backend()}
    entry.update(path)
    rule: Obj = {"http": {"paths": [entry]}}
    if host is not None:
        rule["host"] = host
    return rule


def with_path(obj: Obj, path: str, value: Any) -> Obj:
    """A copy of `obj` with the dotted/indexed field `path` set (created if missing)."""
    out = copy.deepcopy(obj)
    parts = path.replace("[", ".[").split(".")
    node: Any = out
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        key: Any = int(part[1:-1]) if part.startswith("[") else part
        if last:
            node[key] = value
        else:
            if isinstance(key, str) and key not in node:
                node[key] = {}
            node = node[key]
    return out


def without(obj: Obj, path: str) -> Obj:
    out = copy.deepcopy(obj)
    *parents, leaf = path.split(".")
    node: Any = out
    for part in parents:
        node = node[part]
    del node[leaf]
    return out


# --------------------------------------------------------------------------- Ingress: valid


def test_full_ingress_decodes() -> None:
    text = (FIXTURES / "ingress_valid.yaml").read_text()
    manifests, diags = from_yaml(text, "ingress_valid.yaml")
    assert diags == ()
    (ing,) = manifests.ingresses
    assert ing.ref == ObjectRef("Ingress", "shop", "web")
    assert ing.meta.source == Source("ingress_valid.yaml", 1)
    assert ing.meta.source_of("spec.rules[0].http.paths[1].backend") == Source(
        "ingress_valid.yaml", 31
    )
    assert ing.meta.creation_timestamp == datetime(2022, 2, 4, 16, 23, 46, tzinfo=UTC)
    assert dict(ing.meta.labels) == {"app": "web"}
    assert dict(ing.meta.annotations) == {"example.com/owner": "team-a"}
    assert ing.ingress_class_name == "nginx"
    assert ing.ingress_class == "nginx"
    assert ing.default_backend == IngressBackend(
        service=IngressServiceBackend("fallback", ServiceBackendPort(number=8080))
    )
    assert ing.rules == (
        IngressRule(
            "shop.example.com",
            (
                PathRule(
                    "/api",
                    PathType.PREFIX,
                    IngressBackend(
                        service=IngressServiceBackend("api", ServiceBackendPort(name="http"))
                    ),
                    "spec.rules[0].http.paths[0]",
                ),
                PathRule(
                    "/",
                    PathType.IMPLEMENTATION_SPECIFIC,
                    IngressBackend(
                        service=IngressServiceBackend("web", ServiceBackendPort(number=80))
                    ),
                    "spec.rules[0].http.paths[1]",
                ),
            ),
            "spec.rules[0]",
        ),
        IngressRule(
            "*.example.com",
            (
                PathRule(
                    "/static/logo.png",
                    PathType.EXACT,
                    IngressBackend(
                        resource=ResourceRef("k8s.example.com", "StorageBucket", "static")
                    ),
                    "spec.rules[1].http.paths[0]",
                ),
            ),
            "spec.rules[1]",
        ),
        IngressRule(None, None, "spec.rules[2]"),
    )
    assert ing.tls == (IngressTLS(("shop.example.com", "*.example.com"), "shop-tls"),)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"defaultBackend": service_backend()}, id="default-backend-only"),
        pytest.param({"rules": [http_rule(None)]}, id="no-host"),
        pytest.param({"rules": [http_rule("a.b-c.example.com")]}, id="subdomain"),
        pytest.param({"rules": [http_rule("*.example.com")]}, id="wildcard"),
        pytest.param({"rules": [http_rule("localhost")]}, id="single-label"),
        pytest.param({"rules": [http_rule(path="/a/b", pathType="Exact")]}, id="exact"),
        pytest.param({"rules": [http_rule(path="/a.b/c..d/")]}, id="dots-inside-segments"),
        pytest.param({"rules": [http_rule(path="/x", pathType="ImplementationSpecific")]}, id="is"),
        pytest.param(
            {"rules": [http_rule(backend=service_backend(name="http"))]}, id="port-name-http"
        ),
        pytest.param(
            {"rules": [http_rule(backend=service_backend(number=65535))]}, id="port-65535"
        ),
        pytest.param({"rules": [http_rule(backend=service_backend(number=1))]}, id="port-1"),
        pytest.param(
            {"rules": [http_rule(backend=service_backend(name="a-1"))]}, id="port-name-a-1"
        ),
        pytest.param(
            {"rules": [http_rule(backend={"resource": {"kind": "Bucket", "name": "b"}})]},
            id="resource-no-group",
        ),
        pytest.param({"rules": [{"host": "only-host.example.com"}]}, id="rule-without-http"),
        pytest.param({"rules": [http_rule()], "ingressClassName": "my.class"}, id="class-name"),
        pytest.param(
            {"rules": [http_rule()], "tls": [{"hosts": ["*.example.com"]}]}, id="tls-no-secret"
        ),
        pytest.param(
            {"rules": [http_rule(backend=service_backend("x", name="http", number=None))]},
            id="null-number-ignored",
        ),
    ],
)
def test_valid_ingresses(spec: Obj) -> None:
    manifests, diags = run(ingress(**spec))
    assert diags == ()
    assert len(manifests.ingresses) == 1


def test_implementation_specific_empty_path_becomes_slash() -> None:
    for spec_path in ("", None):
        rule = http_rule(pathType="ImplementationSpecific", path=spec_path)
        manifests, diags = run(ingress(rules=[rule]))
        assert diags == ()
        paths = manifests.ingresses[0].rules[0].paths
        assert paths is not None
        assert paths[0].path == "/"


def test_missing_namespace_means_default() -> None:
    manifests, diags = run(without(ingress(defaultBackend=service_backend()), "metadata.namespace"))
    assert diags == ()
    assert manifests.ingresses[0].ref == ObjectRef("Ingress", "default", "web")


# --------------------------------------------------------------------------- Ingress: invalid

RULE0 = "spec.rules[0]"
PATH0 = "spec.rules[0].http.paths[0]"
BACKEND0 = f"{PATH0}.backend"
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
WILDCARD = (
    "a wildcard RFC 1123 subdomain must start with '*.', followed by a valid RFC 1123 subdomain "
    "(the wildcard may only be the whole first label)"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
RANGE = "must be between 1 and 65535, inclusive"
CHARSET = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"


def rules(*rule: Obj) -> Obj:
    return ingress(rules=list(rule))


INVALID_INGRESSES: list[tuple[str, Obj, list[tuple[str, str]]]] = [
    # --- spec
    ("empty-spec", ingress(), [("spec", "either `defaultBackend` or `rules` must be specified")]),
    (
        "empty-rules",
        ingress(rules=[]),
        [("spec", "either `defaultBackend` or `rules` must be specified")],
    ),
    (
        "no-spec",
        without(ingress(), "spec"),
        [("spec", "either `defaultBackend` or `rules` must be specified")],
    ),
    # --- host
    (
        "upper-case-host",
        rules(http_rule("Shop.Example.com")),
        [(f"{RULE0}.host", "must be lower case")],
    ),
    (
        "ipv4-host",
        rules(http_rule("10.0.0.1")),
        [(f"{RULE0}.host", "must be a DNS name, not an IP address")],
    ),
    (
        "ipv6-host",
        rules(http_rule("::1")),
        [(f"{RULE0}.host", "must be a DNS name, not an IP address")],
    ),
    (
        "host-with-port",
        rules(http_rule("shop.example.com:8080")),
        [(f"{RULE0}.host", "must not contain a port (':'); the port belongs to the backend")],
    ),
    ("wildcard-inside", rules(http_rule("shop.*.com")), [(f"{RULE0}.host", WILDCARD)]),
    ("wildcard-partial", rules(http_rule("*shop.example.com")), [(f"{RULE0}.host", WILDCARD)]),
    ("wildcard-alone", rules(http_rule("*")), [(f"{RULE0}.host", WILDCARD)]),
    ("leading-dash", rules(http_rule("-shop.example.com")), [(f"{RULE0}.host", SUBDOMAIN)]),
    ("underscore", rules(http_rule("shop_1.example.com")), [(f"{RULE0}.host", SUBDOMAIN)]),
    ("trailing-dot", rules(http_rule("shop.example.com.")), [(f"{RULE0}.host", SUBDOMAIN)]),
    (
        "too-long-host",
        rules(http_rule(".".join(["a" * 63] * 4) + ".com")),
        [(f"{RULE0}.host", "must be no more than 253 characters")],
    ),
    # --- http / paths
    (
        "no-paths",
        rules({"host": "a.com", "http": {"paths": []}}),
        [(f"{RULE0}.http.paths", "at least one path is required")],
    ),
    (
        "null-paths",
        rules({"host": "a.com", "http": {}}),
        [(f"{RULE0}.http.paths", "at least one path is required")],
    ),
    (
        "no-path-type",
        rules(http_rule(pathType=None)),
        [(f"{PATH0}.pathType", "pathType must be specified")],
    ),
    (
        "bad-path-type",
        rules(http_rule(pathType="Regex")),
        [
            (
                f"{PATH0}.pathType",
                'unsupported value "Regex": supported values: '
                '"Exact", "ImplementationSpecific", "Prefix"',
            )
        ],
    ),
    (
        "path-type-wrong-case",
        rules(http_rule(pathType="prefix")),
        [
            (
                f"{PATH0}.pathType",
                'unsupported value "prefix": supported values: '
                '"Exact", "ImplementationSpecific", "Prefix"',
            )
        ],
    ),
    (
        "relative-exact",
        rules(http_rule(path="api", pathType="Exact")),
        [(f"{PATH0}.path", "must be an absolute path")],
    ),
    ("empty-prefix", rules(http_rule(path="")), [(f"{PATH0}.path", "must be an absolute path")]),
    (
        "missing-prefix",
        rules(http_rule(path=None)),
        [(f"{PATH0}.path", "must be an absolute path")],
    ),
    ("double-slash", rules(http_rule(path="/a//b")), [(f"{PATH0}.path", "must not contain '//'")]),
    ("dot-segment", rules(http_rule(path="/a/./b")), [(f"{PATH0}.path", "must not contain '/./'")]),
    (
        "dotdot-segment",
        rules(http_rule(path="/a/../b")),
        [(f"{PATH0}.path", "must not contain '/../'")],
    ),
    (
        "encoded-slash",
        rules(http_rule(path="/a%2fb")),
        [(f"{PATH0}.path", "must not contain '%2f'")],
    ),
    (
        "encoded-slash-upper",
        rules(http_rule(path="/a%2Fb", pathType="Exact")),
        [(f"{PATH0}.path", "must not contain '%2F'")],
    ),
    ("ends-dotdot", rules(http_rule(path="/a/..")), [(f"{PATH0}.path", "cannot end with '/..'")]),
    ("ends-dot", rules(http_rule(path="/a/.")), [(f"{PATH0}.path", "cannot end with '/.'")]),
    (
        "several-path-problems",
        rules(http_rule(path="a//b/..")),
        [
            (f"{PATH0}.path", "must be an absolute path"),
            (f"{PATH0}.path", "must not contain '//'"),
            (f"{PATH0}.path", "cannot end with '/..'"),
        ],
    ),
    (
        "relative-implementation-specific",
        rules(http_rule(path="api", pathType="ImplementationSpecific")),
        [(f"{PATH0}.path", "must be an absolute path")],
    ),
    # --- backend
    (
        "both-backends",
        rules(http_rule(backend={**service_backend(), "resource": {"kind": "B", "name": "b"}})),
        [(BACKEND0, "cannot set both resource and service backends")],
    ),
    (
        "empty-backend",
        rules(http_rule(backend={})),
        [(BACKEND0, "resource or service backend is required")],
    ),
    (
        "missing-backend",
        rules(http_rule(backend=None)),
        [(BACKEND0, "resource or service backend is required")],
    ),
    (
        "service-name-upper",
        rules(http_rule(backend=service_backend("Web"))),
        [(f"{BACKEND0}.service.name", DNS1035)],
    ),
    (
        "service-name-digit",
        rules(http_rule(backend=service_backend("1web"))),
        [(f"{BACKEND0}.service.name", DNS1035)],
    ),
    (
        "service-name-dot",
        rules(http_rule(backend=service_backend("web.shop"))),
        [(f"{BACKEND0}.service.name", DNS1035)],
    ),
    (
        "service-name-missing",
        rules(http_rule(backend={"service": {"port": {"number": 80}}})),
        [(f"{BACKEND0}.service.name", "name is required")],
    ),
    (
        "port-both",
        rules(http_rule(backend=service_backend(name="http", number=80))),
        [(f"{BACKEND0}.service.port", "cannot set both port name & port number")],
    ),
    (
        "port-missing",
        rules(http_rule(backend={"service": {"name": "web"}})),
        [(f"{BACKEND0}.service.port", "port name or number is required")],
    ),
    (
        "port-empty",
        rules(http_rule(backend={"service": {"name": "web", "port": {}}})),
        [(f"{BACKEND0}.service.port", "port name or number is required")],
    ),
    (
        "port-0",
        rules(http_rule(backend=service_backend(number=0))),
        [(f"{BACKEND0}.service.port.number", RANGE)],
    ),
    (
        "port-65536",
        rules(http_rule(backend=service_backend(number=65536))),
        [(f"{BACKEND0}.service.port.number", RANGE)],
    ),
    (
        "port-name-upper",
        rules(http_rule(backend=service_backend(name="HTTP"))),
        [
            (f"{BACKEND0}.service.port.name", CHARSET),
            (f"{BACKEND0}.service.port.name", "must contain at least one letter (a-z)"),
        ],
    ),
    (
        "port-name-digits",
        rules(http_rule(backend=service_backend(name="8080"))),
        [(f"{BACKEND0}.service.port.name", "must contain at least one letter (a-z)")],
    ),
    (
        "port-name-double-dash",
        rules(http_rule(backend=service_backend(name="h--p"))),
        [(f"{BACKEND0}.service.port.name", "must not contain consecutive hyphens")],
    ),
    (
        "port-name-edge-dash",
        rules(http_rule(backend=service_backend(name="-http"))),
        [(f"{BACKEND0}.service.port.name", "must not begin or end with a hyphen")],
    ),
    (
        "port-name-too-long",
        rules(http_rule(backend=service_backend(name="a" * 16))),
        [(f"{BACKEND0}.service.port.name", "must be no more than 15 characters")],
    ),
    (
        "port-number-string",
        rules(http_rule(backend=service_backend(number="80"))),
        [(f"{BACKEND0}.service.port.number", "must be an integer, not a string")],
    ),
    (
        "resource-missing-fields",
        rules(http_rule(backend={"resource": {"apiGroup": "Bad_Group"}})),
        [
            (f"{BACKEND0}.resource.apiGroup", SUBDOMAIN),
            (f"{BACKEND0}.resource.kind", "kind is required"),
            (f"{BACKEND0}.resource.name", "name is required"),
        ],
    ),
    (
        "resource-path-segment",
        rules(http_rule(backend={"resource": {"kind": "a/b", "name": ".."}})),
        [
            (f"{BACKEND0}.resource.kind", "may not contain '/'"),
            (f"{BACKEND0}.resource.name", "may not be '..'"),
        ],
    ),
    (
        "bad-default-backend",
        ingress(defaultBackend={"service": {"name": "web", "port": {"number": 0}}}),
        [("spec.defaultBackend.service.port.number", RANGE)],
    ),
    # --- class, tls, metadata
    (
        "class-name",
        ingress(rules=[http_rule()], ingressClassName="Nginx"),
        [("spec.ingressClassName", SUBDOMAIN)],
    ),
    (
        "class-annotation-mismatch",
        with_path(
            ingress(rules=[http_rule()], ingressClassName="nginx"),
            "metadata.annotations",
            {"kubernetes.io/ingress.class": "traefik"},
        ),
        [
            (
                "metadata.annotations.kubernetes.io/ingress.class",
                '"traefik" must match `ingressClassName` ("nginx") when both are specified',
            )
        ],
    ),
    (
        "tls-host",
        ingress(rules=[http_rule()], tls=[{"hosts": ["ok.com", "Bad.com", "*"]}]),
        [("spec.tls[0].hosts[1]", SUBDOMAIN), ("spec.tls[0].hosts[2]", WILDCARD)],
    ),
    (
        "tls-secret",
        ingress(rules=[http_rule()], tls=[{"secretName": "My_Secret"}]),
        [("spec.tls[0].secretName", SUBDOMAIN)],
    ),
    (
        "name-missing",
        without(ingress(rules=[http_rule()]), "metadata.name"),
        [("metadata.name", "name is required")],
    ),
    (
        "name-invalid",
        with_path(ingress(rules=[http_rule()]), "metadata.name", "Web_1"),
        [("metadata.name", SUBDOMAIN)],
    ),
    (
        "namespace-invalid",
        with_path(ingress(rules=[http_rule()]), "metadata.namespace", "team.a"),
        [
            (
                "metadata.namespace",
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
            )
        ],
    ),
    (
        "timestamp",
        with_path(ingress(rules=[http_rule()]), "metadata.creationTimestamp", "yesterday"),
        [
            (
                "metadata.creationTimestamp",
                "'yesterday' is not an RFC 3339 time (like 2022-02-04T16:23:46Z)",
            )
        ],
    ),
    (
        "timestamp-without-zone",
        with_path(
            ingress(rules=[http_rule()]), "metadata.creationTimestamp", "2022-02-04T16:23:46"
        ),
        [
            (
                "metadata.creationTimestamp",
                "'2022-02-04T16:23:46' is not an RFC 3339 time (like 2022-02-04T16:23:46Z)",
            )
        ],
    ),
    # --- wrong YAML types
    (
        "spec-string",
        with_path(ingress(), "spec", "x"),
        [("spec", "must be a mapping, not a string")],
    ),
    (
        "rules-string",
        ingress(rules="x"),
        [("spec.rules", "must be a list, not a string")],
    ),
    ("rule-null", ingress(rules=[None]), [(RULE0, "must be a mapping, not null")]),
    ("rule-list", ingress(rules=[[]]), [(RULE0, "must be a mapping, not a list")]),
    ("host-number", rules(http_rule(5)), [(f"{RULE0}.host", "must be a string, not an integer")]),
    (
        "paths-mapping",
        rules({"http": {"paths": {"path": "/"}}}),
        [(f"{RULE0}.http.paths", "must be a list, not a mapping")],
    ),
    (
        "port-number-bool",
        rules(http_rule(backend=service_backend(number=True))),
        [(f"{BACKEND0}.service.port.number", "must be an integer, not a boolean")],
    ),
    (
        "port-number-float",
        rules(http_rule(backend=service_backend(number=80.0))),
        [(f"{BACKEND0}.service.port.number", "must be an integer, not a number")],
    ),
    (
        "metadata-list",
        with_path(ingress(rules=[http_rule()]), "metadata", []),
        [
            ("metadata", "must be a mapping, not a list"),
            ("metadata.name", "name is required"),
        ],
    ),
    (
        "tls-hosts-string",
        ingress(rules=[http_rule()], tls=[{"hosts": "a.com"}]),
        [("spec.tls[0].hosts", "must be a list, not a string")],
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [pytest.param(obj, expected, id=case) for case, obj, expected in INVALID_INGRESSES],
)
def test_invalid_ingresses(obj: Obj, expected: list[tuple[str, str]]) -> None:
    manifests, diags = run(obj)
    assert manifests.ingresses == ()  # skipped entirely
    assert all(d.severity is Severity.ERROR and d.code == "invalid" for d in diags)
    assert sorted(problems(diags)) == sorted(expected)


def test_all_problems_of_an_object_are_reported() -> None:
    obj = ingress(
        ingressClassName="Bad",
        rules=[
            http_rule("Bad.com", path="x"),
            http_rule("ok.com", backend=service_backend(number=0)),
        ],
    )
    _, diags = run(obj)
    assert [d.field for d in diags] == [
        "spec.ingressClassName",
        "spec.rules[0].host",
        "spec.rules[0].http.paths[0].path",
        "spec.rules[1].http.paths[0].backend.service.port.number",
    ]


def test_diagnostics_name_file_line_object_and_field() -> None:
    _, diags = decode(load_path(FIXTURES / "ingress_invalid.yaml").documents)
    assert [str(d) for d in diags] == [
        f"{FIXTURES / 'ingress_invalid.yaml'}:9: error: Ingress shop/web: spec.rules[0].host: "
        "must be lower case",
        f"{FIXTURES / 'ingress_invalid.yaml'}:12: error: Ingress shop/web: "
        "spec.rules[0].http.paths[0].path: must not contain '//'",
        f"{FIXTURES / 'ingress_invalid.yaml'}:19: error: Ingress shop/web: "
        f"spec.rules[0].http.paths[1].pathType: pathType must be specified",
        f"{FIXTURES / 'ingress_invalid.yaml'}:31: error: Ingress shop/web: "
        "spec.rules[0].http.paths[2].backend.service.port.name: must not contain consecutive "
        "hyphens",
        # A missing field is reported at its nearest written parent.
        f"{FIXTURES / 'ingress_invalid.yaml'}:35: error: Ingress shop/web: "
        "spec.rules[0].http.paths[3].backend.service.port: port name or number is required",
    ]


def test_diagnostic_line_for_exact_example() -> None:
    text = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: name
  namespace: ns
spec:
  rules:
  - http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
      - {path: /b, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}
      - path: /c
        pathType: Prefix
        backend: {service: {name: c, port: {name: Http}}}
"""
    _, diags = from_yaml(text)
    assert str(diags[0]) == (
        "x.yaml:14: error: Ingress ns/name: spec.rules[0].http.paths[2].backend.service.port.name: "
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    )


# --------------------------------------------------------------------------- metadata


def test_labels_and_annotations_coerced_with_warnings() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata:
  name: svc
  labels:
    enabled: true
    version: 2
    ok: "yes"
  annotations:
    off: false
    ratio: 1.5
    empty:
spec:
  ports: [{port: 80}]
"""
    manifests, diags = from_yaml(text)
    (svc,) = manifests.services
    assert dict(svc.meta.labels) == {"enabled": "true", "version": "2", "ok": "yes"}
    assert dict(svc.meta.annotations) == {"off": "false", "ratio": "1.5", "empty": ""}
    assert [str(d) for d in diags] == [
        "x.yaml:6: warning: Service default/svc: metadata.labels.enabled: "
        "value true is not a string; quote it",
        "x.yaml:7: warning: Service default/svc: metadata.labels.version: "
        "value 2 is not a string; quote it",
        "x.yaml:10: warning: Service default/svc: metadata.annotations.off: "
        "value false is not a string; quote it",
        "x.yaml:11: warning: Service default/svc: metadata.annotations.ratio: "
        "value 1.5 is not a string; quote it",
        "x.yaml:12: warning: Service default/svc: metadata.annotations.empty: "
        "value null is not a string; quote it",
    ]
    assert all(d.code == "non-string-value" for d in diags)


def test_nested_label_value_is_an_error() -> None:
    obj = with_path(ingress(rules=[http_rule()]), "metadata.labels", {"a": {"b": "c"}})
    manifests, diags = run(obj)
    assert manifests.ingresses == ()
    assert problems(diags) == [("metadata.labels.a", "must be a string, not a mapping")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-02-04T16:23:46Z", datetime(2022, 2, 4, 16, 23, 46, tzinfo=UTC)),
        (
            "2022-02-04T16:23:46.123456789+02:00",
            datetime(2022, 2, 4, 16, 23, 46, 123456, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2022-02-04t16:23:46z", datetime(2022, 2, 4, 16, 23, 46, tzinfo=UTC)),
    ],
)
def test_creation_timestamp(text: str, expected: datetime) -> None:
    obj = with_path(ingress(rules=[http_rule()]), "metadata.creationTimestamp", text)
    manifests, diags = run(obj)
    assert diags == ()
    stamp = manifests.ingresses[0].meta.creation_timestamp
    assert stamp == expected
    assert stamp is not None and stamp.tzinfo is not None


def test_creation_timestamp_through_the_loader() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"
        "  creationTimestamp: 2022-02-04T16:23:46Z\nspec: {ports: [{port: 1}]}\n"
    )
    manifests, diags = from_yaml(text)
    assert diags == ()
    assert manifests.services[0].meta.creation_timestamp == datetime(
        2022, 2, 4, 16, 23, 46, tzinfo=UTC
    )


# --------------------------------------------------------------------------- Service


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec}


def test_service_decodes() -> None:
    manifests, diags = run(
        service(
            ports=[
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "admin", "port": 9000, "targetPort": "admin-port", "protocol": "TCP"},
                {"name": "metrics", "port": 9100, "appProtocol": "http"},
            ]
        )
    )
    assert diags == ()
    (svc,) = manifests.services
    assert svc.ref == ObjectRef("Service", "default", "web")
    assert svc.type == "ClusterIP"
    assert svc.ports == (
        ServicePort("http", 80, 8080),
        ServicePort("admin", 9000, "admin-port"),
        ServicePort("metrics", 9100, None, "TCP", "http"),
    )
    assert svc.external_name is None


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(service(ports=[{"port": 80}]), id="one-unnamed-port"),
        pytest.param(service(type="NodePort", ports=[{"port": 80}]), id="nodeport"),
        pytest.param(service(type="ExternalName", externalName="db.example.com"), id="extname"),
        pytest.param(service(type="ExternalName", externalName="db.example.com."), id="fqdn-dot"),
        pytest.param(service(clusterIP="None"), id="headless-no-ports"),
        pytest.param(service(ports=[{"port": 53, "protocol": "UDP"}]), id="udp"),
    ],
)
def test_valid_services(obj: Obj) -> None:
    manifests, diags = run(obj)
    assert diags == ()
    assert len(manifests.services) == 1


LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character"
)

INVALID_SERVICES: list[tuple[str, Obj, list[tuple[str, str]]]] = [
    ("no-ports", service(), [("spec.ports", "at least one port is required")]),
    ("port-0", service(ports=[{"port": 0}]), [("spec.ports[0].port", RANGE)]),
    ("port-70000", service(ports=[{"port": 70000}]), [("spec.ports[0].port", RANGE)]),
    ("port-missing", service(ports=[{"name": "x"}]), [("spec.ports[0].port", "port is required")]),
    (
        "port-string",
        service(ports=[{"port": "80"}]),
        [("spec.ports[0].port", "must be an integer, not a string")],
    ),
    (
        "unnamed-of-two",
        service(ports=[{"name": "a", "port": 80}, {"port": 81}]),
        [("spec.ports[1].name", "name is required when there is more than one port")],
    ),
    (
        "duplicate-name",
        service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
        [("spec.ports[1].name", 'duplicate port name "a"')],
    ),
    ("name-upper", service(ports=[{"name": "HTTP", "port": 80}]), [("spec.ports[0].name", LABEL)]),
    (
        "target-digits-string",
        service(ports=[{"port": 80, "targetPort": "8080"}]),
        [("spec.ports[0].targetPort", "must contain at least one letter (a-z)")],
    ),
    (
        "target-0",
        service(ports=[{"port": 80, "targetPort": 0}]),
        [("spec.ports[0].targetPort", RANGE)],
    ),
    (
        "target-name-too-long",
        service(ports=[{"port": 80, "targetPort": "a-very-long-port-name"}]),
        [("spec.ports[0].targetPort", "must be no more than 15 characters")],
    ),
    (
        "protocol",
        service(ports=[{"port": 80, "protocol": "HTTP"}]),
        [
            (
                "spec.ports[0].protocol",
                'unsupported value "HTTP": supported values: "SCTP", "TCP", "UDP"',
            )
        ],
    ),
    (
        "type",
        service(type="Ingress", ports=[{"port": 80}]),
        [
            (
                "spec.type",
                'unsupported value "Ingress": supported values: '
                '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            )
        ],
    ),
    (
        "externalname-missing",
        service(type="ExternalName"),
        [("spec.externalName", "externalName is required for type ExternalName")],
    ),
    (
        "externalname-invalid",
        service(type="ExternalName", externalName="db_1.example.com"),
        [("spec.externalName", SUBDOMAIN)],
    ),
    (
        "name-not-dns1035",
        with_path(service(ports=[{"port": 80}]), "metadata.name", "1web"),
        [("metadata.name", DNS1035)],
    ),
    (
        "ports-mapping",
        service(ports={"port": 80}),
        [("spec.ports", "must be a list, not a mapping")],
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [pytest.param(obj, expected, id=case) for case, obj, expected in INVALID_SERVICES],
)
def test_invalid_services(obj: Obj, expected: list[tuple[str, str]]) -> None:
    manifests, diags = run(obj)
    assert manifests.services == ()
    assert all(d.severity is Severity.ERROR and d.code == "invalid" for d in diags)
    assert sorted(problems(diags)) == sorted(expected)


# --------------------------------------------------------------------------- Endpoints


def endpoints(*subsets: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "shop"},
        "subsets": list(subsets),
    }


def test_endpoints_decode() -> None:
    manifests, diags = run(
        endpoints(
            {
                "addresses": [{"ip": "127.0.0.1"}, {"ip": "::1", "hostname": "x"}],
                "notReadyAddresses": [{"ip": "10.0.0.9"}],
                "ports": [
                    {"name": "http", "port": 8080},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ],
            },
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]},
        )
    )
    assert diags == ()
    (eps,) = manifests.endpoints
    assert eps.ref == ObjectRef("Endpoints", "shop", "web")
    assert eps.subsets == (
        EndpointsSubset(
            ("127.0.0.1", "::1"),
            ("10.0.0.9",),
            (EndpointPort("http", 8080), EndpointPort("dns", 53, "UDP")),
        ),
        EndpointsSubset(("10.0.0.1",), (), (EndpointPort(None, 80),)),
    )


def test_endpoints_without_subsets_are_valid() -> None:
    manifests, diags = run(endpoints())
    assert diags == ()
    assert manifests.endpoints[0].subsets == ()


@pytest.mark.parametrize(
    ("subset", "expected"),
    [
        (
            {"addresses": [{"ip": "web-1"}], "ports": [{"port": 80}]},
            [("subsets[0].addresses[0].ip", '"web-1" must be a valid IP address')],
        ),
        (
            {"notReadyAddresses": [{}], "ports": [{"port": 80}]},
            [("subsets[0].notReadyAddresses[0].ip", "ip is required")],
        ),
        (
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http"}]},
            [("subsets[0].ports[0].port", "port is required")],
        ),
        (
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 0}]},
            [("subsets[0].ports[0].port", RANGE)],
        ),
        (
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "a", "port": 1}, {"port": 2}]},
            [("subsets[0].ports[1].name", "name is required when there is more than one port")],
        ),
        (
            {"addresses": "10.0.0.1"},
            [("subsets[0].addresses", "must be a list, not a string")],
        ),
    ],
)
def test_invalid_endpoints(subset: Obj, expected: list[tuple[str, str]]) -> None:
    manifests, diags = run(endpoints(subset))
    assert manifests.endpoints == ()
    assert problems(diags) == expected


# --------------------------------------------------------------------------- EndpointSlice


def endpoint_slice(**fields: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-abc12",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    obj.update(fields)
    return obj


def test_endpoint_slice_decodes() -> None:
    manifests, diags = run(
        endpoint_slice(
            endpoints=[
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                {"addresses": ["10.0.0.3"]},
                {"addresses": ["10.0.0.4"], "conditions": {}},
            ],
        )
    )
    assert diags == ()
    (eps,) = manifests.endpoint_slices
    assert eps.service_name == "web"
    assert eps.address_type == "IPv4"
    assert eps.endpoints == (
        SliceEndpoint(("10.0.0.1",), True),
        SliceEndpoint(("10.0.0.2",), False),
        SliceEndpoint(("10.0.0.3",), None),
        SliceEndpoint(("10.0.0.4",), None),
    )
    assert eps.ports == (EndpointPort("http", 8080),)


def test_endpoint_slice_without_service_label() -> None:
    obj = endpoint_slice()
    obj["metadata"]["labels"] = {}
    manifests, diags = run(obj)
    assert diags == ()
    assert manifests.endpoint_slices[0].service_name is None


def test_endpoint_slice_null_port_is_skipped_with_a_warning() -> None:
    manifests, diags = run(endpoint_slice(ports=[{"name": "all", "port": None}, {"port": 80}]))
    assert manifests.endpoint_slices[0].ports == (EndpointPort(None, 80),)
    (diag,) = diags
    assert (diag.severity, diag.code, diag.field) == (
        Severity.WARNING,
        "unusable-port",
        "ports[0].port",
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"addressType": None}, [("addressType", "addressType is required")], id="at"),
        pytest.param(
            {"addressType": "IPv5"},
            [
                (
                    "addressType",
                    'unsupported value "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
                )
            ],
            id="at-value",
        ),
        pytest.param(
            {"endpoints": [{"addresses": ["::1"]}]},
            [("endpoints[0].addresses[0]", '"::1" must be a valid IPv4 address')],
            id="v6-in-v4",
        ),
        pytest.param(
            {"addressType": "IPv6", "endpoints": [{"addresses": ["10.0.0.1"]}]},
            [("endpoints[0].addresses[0]", '"10.0.0.1" must be a valid IPv6 address')],
            id="v4-in-v6",
        ),
        pytest.param(
            {"addressType": "FQDN", "endpoints": [{"addresses": ["Bad_Host"]}]},
            [("endpoints[0].addresses[0]", SUBDOMAIN)],
            id="fqdn",
        ),
        pytest.param(
            {"endpoints": [{"addresses": []}]},
            [("endpoints[0].addresses", "must contain at least 1 address")],
            id="no-addresses",
        ),
        pytest.param(
            {"endpoints": [{"addresses": ["10.0.0.1"] * 101}]},
            [("endpoints[0].addresses", "must contain at most 100 addresses")],
            id="too-many",
        ),
        pytest.param(
            {"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}]},
            [("endpoints[0].conditions.ready", "must be a boolean, not a string")],
            id="ready-string",
        ),
        pytest.param(
            {"ports": [{"name": "HTTP", "port": 80}]}, [("ports[0].name", LABEL)], id="port-name"
        ),
        pytest.param({"ports": [{"port": 0}]}, [("ports[0].port", RANGE)], id="port-0"),
        pytest.param(
            {"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]},
            [("ports[1].name", 'duplicate port name "a"')],
            id="dup-port",
        ),
    ],
)
def test_invalid_endpoint_slices(fields: Obj, expected: list[tuple[str, str]]) -> None:
    manifests, diags = run(endpoint_slice(**fields))
    assert manifests.endpoint_slices == ()
    assert problems(diags) == expected


# --------------------------------------------------------------------------- IngressClass


def ingress_class(
    name: str = "nginx", controller: Any = "k8s.io/ingress-nginx", **meta: Any
) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name, **meta},
        "spec": {"controller": controller},
    }


def test_ingress_class_decodes() -> None:
    default = ingress_class(
        "main", annotations={"ingressclass.kubernetes.io/is-default-class": "true"}
    )
    manifests, diags = run(default, ingress_class("other", namespace="ignored"))
    assert diags == ()
    assert [
        (c.meta.name, c.meta.namespace, c.controller, c.is_default)
        for c in manifests.ingress_classes
    ] == [
        ("main", "", "k8s.io/ingress-nginx", True),
        ("other", "", "k8s.io/ingress-nginx", False),
    ]
    assert manifests.ingress_classes[0].ref == ObjectRef("IngressClass", "", "main")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (ingress_class(controller=None), [("spec.controller", "controller is required")]),
        (
            ingress_class(controller="nginx"),
            [("spec.controller", 'must be a domain-prefixed path (such as "acme.io/foo")')],
        ),
        (ingress_class(controller="Bad_Domain/x"), [("spec.controller", SUBDOMAIN)]),
        (ingress_class(name="Main"), [("metadata.name", SUBDOMAIN)]),
    ],
)
def test_invalid_ingress_classes(obj: Obj, expected: list[tuple[str, str]]) -> None:
    manifests, diags = run(obj)
    assert manifests.ingress_classes == ()
    assert problems(diags) == expected


# --------------------------------------------------------------------------- kinds & versions


def test_other_kinds_are_skipped_quietly() -> None:
    others: list[Obj] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": 5},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "s"}},
        # Same kind names in other API groups are other resources (Knative Service, a CRD).
        {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "k"}},
        {"apiVersion": "example.com/v1", "kind": "Ingress", "metadata": {"name": "Bad_"}},
    ]
    manifests, diags = run(*others)
    assert manifests == Manifests()
    assert diags == ()


@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("extensions/v1beta1", "Ingress"),
        ("networking.k8s.io/v1beta1", "Ingress"),
        ("networking.k8s.io/v1beta1", "IngressClass"),
        ("discovery.k8s.io/v1beta1", "EndpointSlice"),
    ],
)
def test_retired_api_versions_are_errors(api: str, kind: str) -> None:
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "old", "namespace": "shop"}}
    manifests, diags = run(obj)
    assert manifests == Manifests()
    (diag,) = diags
    assert diag.severity is Severity.ERROR
    assert diag.code == "unsupported-api-version"
    assert diag.field == "apiVersion"
    assert api in diag.message


def test_retired_ingress_message() -> None:
    text = (
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: old\n"
        "spec:\n  backend:\n    serviceName: web\n    servicePort: 80\n"
    )
    _, diags = from_yaml(text)
    assert [str(d) for d in diags] == [
        "x.yaml:1: error: Ingress default/old: apiVersion: extensions/v1beta1 Ingress was removed"
        " in Kubernetes 1.22 and no current cluster accepts it: write it as networking.k8s.io/v1"
        " (serviceName/servicePort become service.name/service.port, backend becomes"
        " defaultBackend, every path needs a pathType); `ingressproxy convert FILE` prints it"
        " converted; skipped"
    ]


# --------------------------------------------------------------------------- duplicates & order


def test_duplicates_keep_the_first_by_file_then_line() -> None:
    first = ingress(defaultBackend=service_backend("first"))
    second = ingress(defaultBackend=service_backend("second"))
    docs = [raw(second, "b.yaml", 1), raw(first, "a.yaml", 7), raw(second, "a.yaml", 30)]
    manifests, diags = decode(docs)
    (kept,) = manifests.ingresses
    assert kept.meta.source == Source("a.yaml", 7)
    assert [str(d) for d in diags] == [
        "a.yaml:30: error: Ingress shop/web: Ingress shop/web is also defined at a.yaml:7; "
        "that one is kept",
        "b.yaml:1: error: Ingress shop/web: Ingress shop/web is also defined at a.yaml:7; "
        "that one is kept",
    ]
    assert all(d.code == "duplicate" for d in diags)


def test_same_name_in_other_namespace_or_kind_is_not_a_duplicate() -> None:
    a = ingress(defaultBackend=service_backend())
    b = with_path(a, "metadata.namespace", "other")
    svc = with_path(service(ports=[{"port": 80}]), "metadata.namespace", "shop")
    manifests, diags = run(a, b, svc)
    assert diags == ()
    assert len(manifests.ingresses) == 2
    assert len(manifests.services) == 1


def test_invalid_first_copy_does_not_block_a_valid_second() -> None:
    bad = ingress()
    good = ingress(defaultBackend=service_backend())
    manifests, diags = run(bad, good)
    assert len(manifests.ingresses) == 1
    assert [d.code for d in diags] == ["invalid"]


def test_manifests_sorted_by_namespace_then_name() -> None:
    objs = [
        with_path(
            with_path(service(ports=[{"port": 80}]), "metadata.name", n), "metadata.namespace", ns
        )
        for ns, n in [("b", "a"), ("a", "z"), ("a", "b"), ("default", "c")]
    ]
    manifests, _ = run(*objs)
    assert [(s.meta.namespace, s.meta.name) for s in manifests.services] == [
        ("a", "b"),
        ("a", "z"),
        ("b", "a"),
        ("default", "c"),
    ]


def test_diagnostics_are_sorted_and_deterministic() -> None:
    objs = [raw(ingress(), "b.yaml", 3), raw(ingress(rules="x"), "a.yaml", 9)]
    first = decode(objs)
    assert decode(reversed(objs)) == first
    assert [d.source for d in first[1]] == sorted(d.source for d in first[1] if d.source)


# --------------------------------------------------------------------------- robustness


def _paths(value: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.append(path)
            out.extend(_paths(item, path))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            path = f"{prefix}[{i}]"
            out.append(path)
            out.extend(_paths(item, path))
    return out


SAMPLES: list[Callable[[], Obj]] = [
    lambda: (
        ingress(
            defaultBackend=service_backend(),
            ingressClassName="nginx",
            rules=[
                http_rule(),
                http_rule(backend={"resource": {"apiGroup": "x.io", "kind": "K", "name": "n"}}),
            ],
            tls=[{"hosts": ["a.com"], "secretName": "s"}],
        )
        | {
            "metadata": {
                "name": "w",
                "labels": {"a": "b"},
                "creationTimestamp": "2022-02-04T16:23:46Z",
            }
        }
    ),
    lambda: service(ports=[{"name": "a", "port": 80, "targetPort": "http"}]),
    lambda: endpoints({"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}),
    lambda: endpoint_slice(),
    lambda: ingress_class(annotations={"ingressclass.kubernetes.io/is-default-class": "true"}),
]

JUNK: list[Any] = ["x", "", 5, -1, 2.5, True, None, [], [None], ["x"], {}, {"k": "v"}]


@pytest.mark.parametrize("make", SAMPLES)
def test_any_wrong_type_anywhere_is_a_diagnostic_not_an_exception(make: Callable[[], Obj]) -> None:
    sample = make()
    _, diags = run(sample)
    assert diags == ()  # the sample itself is valid
    for path in _paths(sample):
        if path in ("apiVersion", "kind"):
            continue
        for junk in JUNK:
            _, diags = run(with_path(sample, path, junk))  # must not raise
            for d in diags:
                assert d.code in ("invalid", "non-string-value", "unusable-port"), str(d)
                assert d.obj is not None and d.obj.kind == sample["kind"]


def test_decode_examples_cleanly() -> None:
    root = Path(__file__).parent.parent / "examples"
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        result = load_path(folder)
        manifests, diags = decode(result.documents)
        assert result.diagnostics == ()
        assert diags == (), [str(d) for d in diags]
        assert manifests.ingresses


def test_meta_lines_come_from_the_document() -> None:
    text = (FIXTURES / "ingress_valid.yaml").read_text()
    docs, _ = load_text(text, "f.yaml")
    manifests, _ = decode(docs)
    meta = manifests.ingresses[0].meta
    assert dict(meta.lines) == dict(docs[0].lines)
    assert meta.source_of("spec.rules[1].host") == Source("f.yaml", 36)


def test_helpers() -> None:
    assert host_errors("a.example.com") == []
    assert host_errors("*.example.com") == []
    assert host_errors("EXAMPLE.com") == ["must be lower case"]
    assert port_name_errors("http") == []
    assert port_name_errors("") == [CHARSET, "must contain at least one letter (a-z)"]
