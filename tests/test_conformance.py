"""End to end through real sockets: manifests folder -> loader -> decode -> compiler -> route table
-> proxy -> echo backends. The ingress-controller-conformance features, the Kubernetes docs'
path examples, host selection and conflicts between Ingresses.

Fixtures: tests/fixtures/conformance/<case>/ (Ingresses and Services as written by the suite or
the docs); EndpointSlices are written at test time with the echo backends' real ports.
"""

from __future__ import annotations

import ssl
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from e2e import CONFORMANCE, Cluster, Served, cluster, echo, run_proxy

from ingressproxy.manifests.model import ObjectRef

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


def _serve_fixture(
    name: str, tmp: Path, replicas: dict[str, int] | None = None, **settings: Any
) -> Iterator[Served]:
    with cluster(CONFORMANCE / name, replicas) as pods:
        folder = pods.write(tmp / name)
        with run_proxy(folder, **settings) as served:
            yield served


# =========================================================================== default_backend
# features/default_backend.feature: "An Ingress with no rules should send all requests to the
# default backend", every Examples row. The suite's client is Go's; we send its User-Agent.

GO_UA = "Go-http-client/1.1"


@pytest.fixture(scope="module")
def default_backend(tmp_module: Path) -> Iterator[Served]:
    yield from _serve_fixture("default_backend", tmp_module)


@pytest.mark.parametrize(
    ("method", "host", "path"),
    [
        ("GET", "my-host", ""),
        ("GET", "my-host", "sub-path"),
        ("POST", "some-host", ""),
        # An empty host in the suite means the request goes to the Ingress's address as is.
        ("PUT", "", "resource"),
        ("DELETE", "some-host", "resource"),
        ("PATCH", "my-host", "resource"),
    ],
    ids=lambda v: v or "-",
)
def test_default_backend(default_backend: Served, method: str, host: str, path: str) -> None:
    r = default_backend.request(
        method, "/" + path, host=host or None, headers={"User-Agent": GO_UA}
    )
    assert r.status_code == 200, r.text
    assert r.http_version == "HTTP/1.1"
    for header in ("Content-Length", "Content-Type", "Date", "Server"):
        assert r.headers.get(header), f"response lacks {header}: {dict(r.headers)}"
    e = echo(r)
    assert (e.namespace, e.service) == ("conformance-default-backend", "echo-service")
    assert e.method == method
    assert e.path == "/" + path
    assert e.header("User-Agent") == GO_UA
    assert e.proto == "HTTP/1.1"


# =========================================================================== host_rules
# features/host_rules.feature, every scenario: the plain-HTTP ones here, the TLS one (https://
# foo.bar.com, verifying the foo.bar.com certificate of Secret conformance-tls) further down.


@pytest.fixture(scope="module")
def host_rules(tmp_module: Path) -> Iterator[Served]:
    yield from _serve_fixture("host_rules", tmp_module)


@pytest.mark.parametrize(
    ("host", "service"),
    [
        pytest.param("foo.bar.com", "foo-bar-com", id="host-matches"),
        pytest.param("subdomain.bar.com", None, id="host-does-not-match"),
        pytest.param("bar.foo.com", "wildcard-foo-com", id="wildcard-shared-suffix"),
        pytest.param("baz.bar.foo.com", None, id="wildcard-not-two-labels"),
        pytest.param("foo.com", None, id="wildcard-not-zero-labels"),
    ],
)
def test_host_rules(host_rules: Served, host: str, service: str | None) -> None:
    r = host_rules.get("/", host=host)
    if service is None:
        assert r.status_code == 404, r.text
        return
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.namespace, e.service) == ("conformance-host-rules", service)
    assert e.host == host  # "the request host must be ..."


# The Background's "self-signed TLS secret named conformance-tls for the foo.bar.com hostname",
# made at test time; the suite's client checks the served certificate for that hostname.


@pytest.fixture(scope="module")
def host_rules_tls(tmp_module: Path) -> Iterator[tuple[Served, trustme.CA]]:
    ca = trustme.CA()
    leaf = ca.issue_cert("foo.bar.com")
    pem = {
        "tls.crt": leaf.cert_chain_pems[0].bytes().decode(),
        "tls.key": leaf.private_key_pem.bytes().decode(),
    }
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: conformance-tls\n"
        "  namespace: conformance-host-rules\ntype: kubernetes.io/tls\nstringData:\n"
        + "".join(f"  {k}: |\n{textwrap.indent(v, '    ')}" for k, v in pem.items())
    )
    with cluster(CONFORMANCE / "host_rules") as pods:
        folder = pods.write(tmp_module / "host_rules_tls", extra={"secret.yaml": secret})
        with run_proxy(folder, https_port=0) as served:
            yield served, ca


def test_host_rules_tls(host_rules_tls: tuple[Served, trustme.CA]) -> None:
    # "An Ingress with a host rule should send TLS traffic to the matching backend service"
    served, ca = host_rules_tls
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)  # verifies the chain and the foo.bar.com hostname
    port = served.app.state.https.port
    with httpx.Client(verify=ctx, trust_env=False, follow_redirects=False) as client:
        r = client.get(
            f"https://127.0.0.1:{port}/",
            headers={"Host": "foo.bar.com"},
            extensions={"sni_hostname": "foo.bar.com"},
        )
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.namespace, e.service) == ("conformance-host-rules", "foo-bar-com")
    assert e.host == "foo.bar.com"


def test_host_rules_plain_http_with_tls_secret(host_rules_tls: tuple[Served, trustme.CA]) -> None:
    # The same Background over plain HTTP: 200, not a redirect (the suite's client follows none).
    served, _ = host_rules_tls
    r = served.get("/", host="foo.bar.com")
    assert r.status_code == 200, r.text
    assert echo(r).service == "foo-bar-com"


# =========================================================================== ingress_class
# features/ingress_class.feature: an Ingress of a class the controller does not serve gets no
# traffic. We serve every Ingress unless --ingress-class is given (docs/routing.md), so the
# scenario runs with --ingress-class ingressproxy; control.yaml holds an Ingress of that class.


@pytest.fixture(scope="module")
def ingress_class_pods() -> Iterator[Cluster]:
    with cluster(CONFORMANCE / "ingress_class") as pods:
        yield pods


@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param("ingress-class", 404, id="invalid-class-gets-no-traffic"),
        pytest.param("valid-ingress-class", 200, id="control-served-class"),
    ],
)
def test_ingress_class(ingress_class_pods: Cluster, tmp_path: Path, host: str, status: int) -> None:
    folder = ingress_class_pods.write(tmp_path / "m")
    with run_proxy(folder, ingress_classes=("ingressproxy",)) as served:
        r = served.get("/", host=host)
    assert r.status_code == status, r.text
    if status == 200:
        e = echo(r)
        assert (e.namespace, e.service) == ("conformance-ingress-class", "ingress-class-prefix")


def test_ingress_class_without_filter_serves_every_class(
    ingress_class_pods: Cluster, tmp_path: Path
) -> None:
    # docs/routing.md: "By default every Ingress is served."
    folder = ingress_class_pods.write(tmp_path / "m")
    with run_proxy(folder) as served:
        r = served.get("/", host="ingress-class")
    assert r.status_code == 200, r.text
    assert echo(r).service == "ingress-class-prefix"


# =========================================================================== load_balancing
# features/load_balancing.feature: with several ready Pods every one of them answers. The suite
# scales to 10 and sends 100 requests; we also run 3 Pods. Round robin: counts equal within 1.


@pytest.mark.parametrize(("replicas", "requests"), [(3, 30), (3, 100), (10, 100)])
def test_load_balancing(tmp_path: Path, replicas: int, requests: int) -> None:
    with cluster(CONFORMANCE / "load_balancing", {"echo-service": replicas}) as pods:
        folder = pods.write(tmp_path / "m")
        with run_proxy(folder) as served:
            answers = [served.get("/", host="load-balancing") for _ in range(requests)]
    assert [r.status_code for r in answers] == [200] * requests
    by_pod = Counter(echo(r).pod for r in answers)
    assert set(by_pod) == {p.name for p in pods.pods}
    assert max(by_pod.values()) - min(by_pod.values()) <= 1, by_pod


# =========================================================================== path_rules
# features/path_rules.feature, every scenario (the later revision that also checks the path the
# backend saw).


@pytest.fixture(scope="module")
def path_rules(tmp_module: Path) -> Iterator[Served]:
    yield from _serve_fixture("path_rules", tmp_module)


@pytest.mark.parametrize(
    ("host", "path", "service"),
    [
        pytest.param("exact-path-rules", "/foo", "foo-exact", id="exact-matches"),
        pytest.param("exact-path-rules", "/foo/", None, id="exact-not-trailing-slash"),
        pytest.param("exact-path-rules", "/FOO", None, id="exact-case-sensitive"),
        pytest.param("exact-path-rules", "/bar", None, id="exact-not-other-label"),
        pytest.param("prefix-path-rules", "/foo", "foo-prefix", id="prefix-matches"),
        pytest.param("prefix-path-rules", "/foo/", "foo-prefix", id="prefix-ignores-slash"),
        pytest.param("prefix-path-rules", "/FOO", None, id="prefix-case-sensitive"),
        pytest.param("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix", id="prefix-longest"),
        pytest.param(
            "prefix-path-rules",
            "/aaa/bbb/ccc",
            "aaa-slash-bbb-prefix",
            id="prefix-longest-subpath",
        ),
        pytest.param("prefix-path-rules", "/aaa/ccc", "aaa-prefix", id="prefix-shorter"),
        pytest.param("prefix-path-rules", "/aaaccc", None, id="prefix-whole-labels"),
        pytest.param("mixed-path-rules", "/foo", "foo-exact", id="mixed-prefers-exact"),
        pytest.param(
            "trailing-slash-path-rules",
            "/aaa/bbb",
            "aaa-slash-bbb-slash-prefix",
            id="prefix-rule-slash-request-none",
        ),
        pytest.param(
            "trailing-slash-path-rules",
            "/aaa/bbb/",
            "aaa-slash-bbb-slash-prefix",
            id="prefix-rule-slash-request-slash",
        ),
        pytest.param("trailing-slash-path-rules", "/foo", None, id="exact-rule-slash-request-none"),
    ],
)
def test_path_rules(path_rules: Served, host: str, path: str, service: str | None) -> None:
    r = path_rules.get(path, host=host)
    if service is None:
        assert r.status_code == 404, r.text
        return
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.namespace, e.service) == ("conformance-path-rules", service)
    assert e.path == path


# =========================================================================== Kubernetes docs
# The "Examples" table under "Path types" in the Kubernetes Ingress concept page, one row per
# test (rows with several request paths: one test per path). Each row is an Ingress on its own
# host `<row>.docs.test`; each rule path has its own Service, named after it.


@pytest.fixture(scope="module")
def docs_paths(tmp_module: Path) -> Iterator[Served]:
    yield from _serve_fixture("k8s_docs_paths", tmp_module)


DOCS_ROWS = [
    # (id, row host, request path, Service of the rule that must match, or None for 404)
    ("prefix[/]-all-paths:/", "prefix-root", "/", "prefix-root"),
    ("prefix[/]-all-paths:/foo", "prefix-root", "/foo", "prefix-root"),
    ("prefix[/]-all-paths:/foo/", "prefix-root", "/foo/", "prefix-root"),
    ("prefix[/]-all-paths:/aaa/bbb/ccc", "prefix-root", "/aaa/bbb/ccc", "prefix-root"),
    ("exact[/foo]:/foo-yes", "exact-foo", "/foo", "exact-foo"),
    ("exact[/foo]:/bar-no", "exact-foo", "/bar", None),
    ("exact[/foo]:/foo/-no", "exact-foo", "/foo/", None),
    ("exact[/foo/]:/foo-no", "exact-foo-slash", "/foo", None),
    ("exact[/foo/]:/foo/-yes", "exact-foo-slash", "/foo/", "exact-foo-slash"),
    ("prefix[/foo]:/foo-yes", "prefix-foo", "/foo", "prefix-foo"),
    ("prefix[/foo]:/foo/-yes", "prefix-foo", "/foo/", "prefix-foo"),
    ("prefix[/foo/]:/foo-yes", "prefix-foo-slash", "/foo", "prefix-foo-slash"),
    ("prefix[/foo/]:/foo/-yes", "prefix-foo-slash", "/foo/", "prefix-foo-slash"),
    ("prefix[/aaa/bb]:/aaa/bbb-no", "prefix-aaa-bb", "/aaa/bbb", None),
    ("prefix[/aaa/bbb]:/aaa/bbb-yes", "prefix-aaa-bbb", "/aaa/bbb", "prefix-aaa-bbb"),
    ("prefix[/aaa/bbb/]:/aaa/bbb-yes", "prefix-aaa-bbb-slash", "/aaa/bbb", "prefix-aaa-bbb-slash"),
    ("prefix[/aaa/bbb]:/aaa/bbb/-yes", "prefix-aaa-bbb", "/aaa/bbb/", "prefix-aaa-bbb"),
    ("prefix[/aaa/bbb]:/aaa/bbb/ccc-yes", "prefix-aaa-bbb", "/aaa/bbb/ccc", "prefix-aaa-bbb"),
    ("prefix[/aaa/bbb]:/aaa/bbbxyz-no", "prefix-aaa-bbb", "/aaa/bbbxyz", None),
    ("prefix[/,/aaa]:/aaa/ccc->/aaa", "root-aaa", "/aaa/ccc", "prefix-aaa"),
    ("prefix[/,/aaa,/aaa/bbb]:/aaa/bbb->/aaa/bbb", "root-aaa-bbb", "/aaa/bbb", "prefix-aaa-bbb"),
    ("prefix[/,/aaa,/aaa/bbb]:/ccc->/", "root-aaa-bbb", "/ccc", "prefix-root"),
    ("prefix[/aaa]:/ccc-no", "prefix-aaa", "/ccc", None),
    ("prefix[/aaa]:/ccc->default-backend", "prefix-aaa-default", "/ccc", "docs-default"),
    ("mixed[prefix /foo,exact /foo]:/foo->exact", "mixed", "/foo", "exact-foo"),
    ("mixed[prefix /foo,exact /foo]:/foo/->prefix", "mixed", "/foo/", "prefix-foo"),
    ("exact[/foo]+prefix[/]:/foo->exact", "exact-foo-prefix-root", "/foo", "exact-foo"),
    ("exact[/foo]+prefix[/]:/bar->prefix", "exact-foo-prefix-root", "/bar", "prefix-root"),
]


@pytest.mark.parametrize(
    ("row", "path", "service"),
    [pytest.param(row, path, svc, id=i) for i, row, path, svc in DOCS_ROWS],
)
def test_kubernetes_docs_path_examples(
    docs_paths: Served, row: str, path: str, service: str | None
) -> None:
    r = docs_paths.get(path, host=f"{row}.docs.test")
    if service is None:
        assert r.status_code == 404, r.text
        return
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.namespace, e.service) == ("k8s-docs", service)
    assert e.path == path


# =========================================================================== host semantics
# docs/routing.md step 2 and 4: exact host > one-label wildcard > host-less rules; the Host
# header compared case-insensitively without its :port (and final dot); the host is chosen
# before the path, so a chosen host with no matching path never falls through to a less
# specific host: it gets its Ingress's defaultBackend, else the rules-less Ingress's, else 404.

NS = "host-semantics"


@pytest.fixture(scope="module")
def host_pods() -> Iterator[Cluster]:
    with cluster(CONFORMANCE / "host_semantics") as pods:
        yield pods


@pytest.fixture(scope="module")
def hosts_full(host_pods: Cluster, tmp_module: Path) -> Iterator[Served]:
    with run_proxy(host_pods.write(tmp_module / "hosts-full")) as served:
        yield served


@pytest.mark.parametrize(
    ("host", "path", "service"),
    [
        pytest.param("bar.foo.com", "/", "exact-bar-foo-com", id="exact-beats-wildcard"),
        pytest.param("BAR.Foo.COM", "/", "exact-bar-foo-com", id="exact-case-insensitive"),
        pytest.param("bar.foo.com:8080", "/", "exact-bar-foo-com", id="exact-with-port"),
        pytest.param("BAR.FOO.COM:443", "/x", "exact-bar-foo-com", id="exact-upper-with-port"),
        pytest.param("bar.foo.com.", "/", "exact-bar-foo-com", id="exact-final-dot"),
        pytest.param("qux.foo.com", "/", "wildcard-foo-com", id="wildcard-one-label"),
        pytest.param("Qux.Foo.Com:8080", "/a", "wildcard-foo-com", id="wildcard-case-port"),
        pytest.param("baz.bar.foo.com", "/", "any-host", id="wildcard-not-two-labels"),
        pytest.param("foo.com", "/", "any-host", id="wildcard-not-bare-suffix"),
        pytest.param("unknown.test", "/", "any-host", id="hostless-rule"),
        pytest.param(None, "/", "any-host", id="ip-address-host"),
        pytest.param("api.example.com", "/api/x", "api", id="host-path"),
        pytest.param("api.example.com", "/other", "api-default", id="host-default-backend"),
        pytest.param("API.example.com:81", "/other", "api-default", id="host-default-case"),
        pytest.param("api.example.com", "/wild", "api-default", id="exact-no-fall-to-wildcard"),
        pytest.param("www.example.com", "/www", "www", id="second-host-path"),
        pytest.param("www.example.com", "/other", "catch-all", id="no-fall-to-hostless"),
        pytest.param("other.example.com", "/wild", "wild-example-com", id="wildcard-path"),
        pytest.param("other.example.com", "/x", "catch-all", id="wildcard-no-fall-to-hostless"),
    ],
)
def test_host_selection(hosts_full: Served, host: str | None, path: str, service: str) -> None:
    r = hosts_full.get(path, host=host)
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.namespace, e.service) == (NS, service)
    assert e.path == path


@pytest.mark.parametrize(
    "host", ["BAR.Foo.COM:8080", "bar.foo.com", "Qux.FOO.com", "qux.foo.com:1234", "unknown.test"]
)
def test_host_header_forwarded_unchanged(hosts_full: Served, host: str) -> None:
    # docs/routing.md "Headers": the Host header is forwarded unchanged.
    e = echo(hosts_full.get("/", host=host))
    assert e.host == host


@pytest.mark.parametrize(
    ("exclude", "host", "path", "service"),
    [
        pytest.param(["catch-all.yaml"], "www.example.com", "/other", None, id="no-catch-all-404"),
        pytest.param(
            ["catch-all.yaml"], "other.example.com", "/x", None, id="wildcard-no-catch-all-404"
        ),
        pytest.param(
            ["catch-all.yaml"], "api.example.com", "/other", "api-default", id="own-default"
        ),
        pytest.param(
            ["catch-all.yaml"], "unknown.test", "/", "any-host", id="hostless-still-served"
        ),
        # A defaultBackend of an Ingress *with* rules serves only that Ingress's hosts.
        pytest.param(
            ["catch-all.yaml", "any-host.yaml"],
            "unknown.test",
            "/",
            None,
            id="host-default-is-not-global",
        ),
        pytest.param(["catch-all.yaml", "any-host.yaml"], "foo.com", "/", None, id="nothing-404"),
    ],
)
def test_host_selection_without_catch_all(
    host_pods: Cluster,
    tmp_path: Path,
    exclude: list[str],
    host: str,
    path: str,
    service: str | None,
) -> None:
    folder = host_pods.write(tmp_path / "m", exclude=exclude)
    with run_proxy(folder) as served:
        r = served.get(path, host=host)
    if service is None:
        assert r.status_code == 404, r.text
        return
    assert r.status_code == 200, r.text
    assert (echo(r).namespace, echo(r).service) == (NS, service)


# =========================================================================== conflicts
# docs/routing.md "Conflicts": the same host + path + pathType in several Ingresses. The oldest
# creationTimestamp wins, then namespace/name ascending; no timestamp sorts after any timestamp.
# The result must not depend on file order: every case runs with the Ingresses in two files in
# both orders, and as two documents of one file in both orders. Each Ingress ns/name routes to
# Service ns/name, so the answer names the winner.

T0 = "2022-02-04T16:20:00Z"
T1 = "2022-02-04T16:25:00Z"

Ing = tuple[str, str, str | None]  # namespace, name, creationTimestamp

CONFLICT_CASES: list[tuple[str, Ing, Ing]] = [
    # (id, winner, loser)
    ("older-wins", ("team-b", "login", T0), ("team-a", "login", T1)),
    ("same-age-namespace-order", ("team-a", "login", T0), ("team-b", "login", T0)),
    ("same-age-name-order", ("team-a", "alpha", T1), ("team-a", "beta", T1)),
    ("timestamp-beats-none", ("team-b", "login", T1), ("team-a", "login", None)),
    ("no-timestamps-namespace-order", ("team-a", "login", None), ("team-b", "login", None)),
]
LAYOUTS = ["files-winner-first", "files-loser-first", "docs-winner-first", "docs-loser-first"]


def ingress_yaml(ing: Ing) -> str:
    ns, name, ts = ing
    stamp = f'  creationTimestamp: "{ts}"\n' if ts else ""
    return (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: Ingress\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {ns}\n"
        f"{stamp}"
        "spec:\n"
        "  rules:\n"
        "    - host: login.conflict.test\n"
        "      http:\n"
        "        paths:\n"
        "          - path: /login\n"
        "            pathType: Prefix\n"
        "            backend:\n"
        "              service:\n"
        f"                name: {name}\n"
        "                port:\n"
        "                  name: http\n"
    )


def conflict_files(layout: str, winner: Ing, loser: Ing) -> dict[str, str]:
    first, second = (winner, loser) if layout.endswith("winner-first") else (loser, winner)
    if layout.startswith("files"):
        # The loader reads files in name order: "a-..." before "b-...".
        return {"a-ingress.yaml": ingress_yaml(first), "b-ingress.yaml": ingress_yaml(second)}
    return {"ingresses.yaml": ingress_yaml(first) + "---\n" + ingress_yaml(second)}


@pytest.fixture(scope="module")
def conflict_pods() -> Iterator[Cluster]:
    with cluster(CONFORMANCE / "conflicts") as pods:
        yield pods


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("winner", "loser"), [pytest.param(w, lo, id=i) for i, w, lo in CONFLICT_CASES]
)
def test_conflict_oldest_wins(
    conflict_pods: Cluster, tmp_path: Path, layout: str, winner: Ing, loser: Ing
) -> None:
    folder = conflict_pods.write(tmp_path / "m", extra=conflict_files(layout, winner, loser))
    with run_proxy(folder) as served:
        answers = [served.get("/login", host="login.conflict.test") for _ in range(6)]
        warnings = served.app.state.holder.current.warnings
    for r in answers:
        assert r.status_code == 200, r.text
        e = echo(r)
        assert (e.namespace, e.service) == winner[:2]
    # docs/routing.md: every loser is reported as a `conflict` warning.
    losers = {d.obj for d in warnings if d.code == "conflict"}
    assert ObjectRef("Ingress", loser[0], loser[1]) in losers, [str(d) for d in warnings]
    assert ObjectRef("Ingress", winner[0], winner[1]) not in losers
