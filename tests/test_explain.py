"""explain(): the proxy's routing decision with its reasons, on the Kubernetes docs' path table,
the blog post's scenarios (examples/) and the request forms a user types.

The decision itself is RouteTable.match; these tests check that the reasons agree with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e import CONFORMANCE, EXAMPLES
from test_conformance import DOCS_ROWS

from ingressproxy.cli.explain import Explanation, explain
from ingressproxy.cli.main import main
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.ir.snapshot import Snapshot
from ingressproxy.ir.table import HostMatch, RouteTable
from ingressproxy.server.reloader import build_snapshot

FIXTURES = Path(__file__).parent / "fixtures"


def snapshot(folder: Path, flavor: Flavor = Flavor.SPEC) -> Snapshot:
    built = build_snapshot(folder, CompileOptions(flavor=flavor))
    assert built is not None
    return built[0]


@pytest.fixture(scope="module")
def docs() -> Snapshot:
    return snapshot(CONFORMANCE / "k8s_docs_paths")


def consistent(e: Explanation) -> None:
    """The reasons agree with the decision: the chosen rule matched and is the decision."""
    chosen = [r for r in e.rules if r.chosen]
    if e.route is None or e.route.path is None:
        assert chosen == []
    else:
        assert [r.route for r in chosen] == [e.route]
        assert chosen[0].matched
    for r in e.rules:
        assert bool(r.rank) == (r.matched and not r.skipped)
    json.dumps(e.to_json())  # JSON-ready all the way down
    assert e.to_text().endswith("\n")


# --------------------------------------------------------------------------- docs path table


@pytest.mark.parametrize(
    ("row", "path", "service"),
    [pytest.param(row, path, svc, id=i) for i, row, path, svc in DOCS_ROWS],
)
def test_kubernetes_docs_path_examples(
    docs: Snapshot, row: str, path: str, service: str | None
) -> None:
    e = explain(docs, f"http://{row}.docs.test{path}")
    consistent(e)
    if service is None:
        assert (e.status, e.route) == (404, None)
        assert all(not r.matched for r in e.rules)
        return
    assert e.route is not None and e.route.backend.service == service
    # The fixture has no endpoints: a match is a 503 that names the Service and why.
    assert e.status == 503
    assert e.reason == f"service k8s-docs/{service}:80 is unavailable: no ready endpoints"


def test_element_mismatch_is_named(docs: Snapshot) -> None:
    e = explain(docs, "http://prefix-aaa-bb.docs.test/aaa/bbb")
    (rule,) = e.rules
    assert rule.reason == "Prefix /aaa/bb does not match /aaa/bbb: element 'bb' != 'bbb'"
    assert not rule.matched
    assert "status: 404 - no rule of host" in e.to_text()


def test_shorter_request_path_is_named(docs: Snapshot) -> None:
    e = explain(docs, "http://prefix-aaa-bbb.docs.test/aaa")
    assert e.rules[0].reason == (
        "Prefix /aaa/bbb does not match /aaa: the path ends before element 'bbb'"
    )


def test_longest_rule_wins_tie_break_is_described(docs: Snapshot) -> None:
    e = explain(docs, "http://root-aaa-bbb.docs.test/aaa/bbb/ccc")
    consistent(e)
    assert [r.matched for r in e.rules] == [True, True, True]
    assert e.route is not None and e.route.path == "/aaa/bbb"
    assert e.tie_breaks == (
        "3 rules match; the longest rule path as written wins (on equal length Exact beats"
        " Prefix): Prefix /aaa/bbb over Prefix / [path length 1], Prefix /aaa [path length 4]",
    )


def test_exact_beats_prefix_on_equal_length(docs: Snapshot) -> None:
    e = explain(docs, "http://mixed.docs.test/foo")
    consistent(e)
    assert e.route is not None and e.route.path_type == "Exact"
    assert "Exact /foo over Prefix /foo" in e.tie_breaks[0]


def test_exact_is_case_sensitive(docs: Snapshot) -> None:
    e = explain(docs, "http://exact-foo.docs.test/FOO")
    assert e.rules[0].reason == "Exact /foo does not match /FOO: Exact is case-sensitive"


def test_host_default_backend(docs: Snapshot) -> None:
    e = explain(docs, "http://prefix-aaa-default.docs.test/ccc")
    consistent(e)
    assert e.route is not None and e.route.path is None
    assert e.tie_breaks == ("no path rule matches: the host's defaultBackend answers",)
    assert "decision: the defaultBackend (Ingress k8s-docs/prefix-aaa-default" in e.to_text()


# --------------------------------------------------------------------------- hosts


def test_exact_host_is_chosen_over_wildcard_and_any() -> None:
    snap = snapshot(CONFORMANCE / "host_semantics")
    hosts = {h.host for r in snap.table.routes() if (h := r) and r.host}
    assert hosts  # the fixture has named hosts
    table = snap.table
    wildcard = next(iter(table.wildcard_hosts))
    e = explain(snap, f"http://x.{wildcard}/")
    consistent(e)
    chosen = [c for c in e.hosts if c.chosen]
    assert [c.kind for c in chosen] == [HostMatch.WILDCARD]
    assert chosen[0].host == f"*.{wildcard}"
    assert chosen[0].note == "chosen: the wildcard matches exactly one more label"
    if table.any_host is not None:
        (anyhost,) = [c for c in e.hosts if c.kind is HostMatch.ANY]
        assert anyhost.note.startswith("not consulted: a more specific host was chosen")


def test_no_host_matches() -> None:
    e = explain(RouteTable(), "http://nowhere.example/x")
    assert e.status == 404
    assert e.reason == 'no rule for host "nowhere.example" and no defaultBackend'
    assert e.host_decision.startswith('no rule is written for host "nowhere.example"')


# --------------------------------------------------------------------------- request forms


def test_host_header_overrides_url_host_and_port_is_ignored(docs: Snapshot) -> None:
    e = explain(docs, "http://127.0.0.1:8080/foo", headers={"host": "Exact-Foo.docs.test:8080"})
    assert e.host == "exact-foo.docs.test"
    assert e.route is not None and e.route.backend.service == "exact-foo"


def test_bare_path_and_query(docs: Snapshot) -> None:
    e = explain(docs, "/foo?x=1#frag", "post", {"Host": "exact-foo.docs.test"})
    assert (e.method, e.raw_path, e.path, e.query) == ("POST", "/foo", "/foo", "x=1")
    assert e.route is not None


def test_url_without_scheme(docs: Snapshot) -> None:
    e = explain(docs, "exact-foo.docs.test/foo")
    assert e.route is not None and e.route.backend.service == "exact-foo"


def test_path_is_canonicalized_first(docs: Snapshot) -> None:
    e = explain(docs, "http://exact-foo.docs.test/bar/%2e%2e//foo")
    assert (e.raw_path, e.path) == ("/bar/%2e%2e//foo", "/foo")
    assert e.route is not None and e.route.backend.service == "exact-foo"
    assert "path: /bar/%2e%2e//foo -> canonical /foo" in e.to_text()


def test_refused_path_is_400(docs: Snapshot) -> None:
    e = explain(docs, "http://exact-foo.docs.test/a%2Fb")
    assert (e.status, e.path, e.rules) == (400, None, ())
    assert e.reason == "the path is refused before routing: the path contains an encoded '/'"
    consistent(e)


# --------------------------------------------------------------------------- blog scenarios


def test_imagemanager_routes_to_ready_endpoints() -> None:
    e = explain(snapshot(EXAMPLES / "imagemanager"), "http://api.imagemanager.io/labeling/x")
    consistent(e)
    assert e.status == 200
    assert e.reason == "proxied to one of 3 ready endpoints (round robin)"
    data = e.to_json()
    assert data["backend"] == {
        "key": "imagemanager/image-labeling:http",
        "endpoints": ["127.0.1.1:8080", "127.0.1.2:8080", "127.0.1.3:8080"],
        "error": None,
        "services": ["imagemanager/image-labeling:http"],
    }


def test_login_collision_spec_names_the_loser_and_the_rule() -> None:
    e = explain(
        snapshot(EXAMPLES / "login-collision"), "http://apps.apigateway.awesomecompany.io/login"
    )
    consistent(e)
    assert e.route is not None and str(e.route.ingress) == "Ingress imagemanager/imagemanager-login"
    (tie,) = e.tie_breaks
    assert tie.startswith("Prefix /login of Ingress notesmanager/notesmanager-login (")
    assert tie.endswith(
        "claims the same slot and lost: older creationTimestamp"
        " (2022-02-04T16:20:00Z vs 2022-02-04T16:25:00Z)"
    )


def test_login_collision_traefik_takes_turns() -> None:
    snap = snapshot(EXAMPLES / "login-collision", Flavor.TRAEFIK)
    e = explain(snap, "http://apps.apigateway.awesomecompany.io/login")
    consistent(e)
    assert e.to_json()["backend"]["services"] == [  # type: ignore[index]
        "imagemanager/login:http",
        "notesmanager/login:http",
    ]
    assert e.tie_breaks == (
        "the same rule is also written by Ingress notesmanager/notesmanager-login: in flavor"
        " traefik requests go to imagemanager/login:http + notesmanager/login:http in turn",
    )
    assert e.rules[0].rank == (
        "priority 65 = length of Host(`apps.apigateway.awesomecompany.io`) && PathPrefix(`/login`)"
    )


def test_scaled_to_zero_is_503_in_spec_and_404_in_traefik() -> None:
    folder = FIXTURES / "check" / "no-endpoints"
    url = "http://api.imagemanager.io/text-extraction"
    spec = explain(snapshot(folder), url)
    assert spec.status == 503
    assert "no ready endpoints" in spec.reason
    assert [d.code for d in spec.diagnostics] == ["no-endpoints"]
    traefik = explain(snapshot(folder, Flavor.TRAEFIK), url)
    assert (traefik.status, traefik.route) == (404, None)
    assert traefik.reason.startswith("the rules that match /text-extraction were left out")
    (skipped,) = traefik.diagnostics
    assert skipped.message.startswith("Skipping service: no endpoints found for Service")
    (rule,) = traefik.rules
    assert (rule.matched, rule.skipped, rule.chosen) == (True, True, False)
    assert rule.reason.endswith(
        "left out in flavor traefik: service imagemanager/image-text-extraction:http is"
        " unusable (no ready endpoints)"
    )


# --------------------------------------------------------------------------- CLI


def test_cli_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(CONFORMANCE / "k8s_docs_paths")
    assert main(["explain", folder, "/aaa/bbb", "-H", "Host: prefix-aaa-bb.docs.test"]) == 0
    text = capsys.readouterr().out
    assert "Prefix /aaa/bb does not match /aaa/bbb: element 'bb' != 'bbb'" in text
    assert text.splitlines()[-2].startswith("status: 404")
    args = ["explain", folder, "http://mixed.docs.test/foo/", "-X", "DELETE", "--format", "json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "DELETE"
    assert data["route"]["backend"] == "k8s-docs/prefix-foo:80"
    assert data["status"] == 503


def test_cli_rejects_a_malformed_header(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(CONFORMANCE / "k8s_docs_paths"), "/", "-H", "Host"])
    assert exc.value.code == 2
    assert "-H 'Host': expected 'Name: value'" in capsys.readouterr().err
