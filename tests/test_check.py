"""`ingressproxy check`: golden text and JSON reports for one broken folder per diagnostic kind,
exit statuses, --strict, --compare, and a real subprocess with the network out of reach.

Fixtures: tests/fixtures/check/<case>/ ; goldens: tests/golden/check/<case>.txt and .json,
rewritten by `pytest --update-golden` (review the diff like code).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingressproxy.cli.main import main

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "check"
GOLDEN = HERE / "golden" / "check"

# case -> (fixture folder, extra arguments, exit status, the diagnostic codes it must show)
CASES: dict[str, tuple[str, list[str], int, set[str]]] = {
    "clean": ("clean", [], 0, set()),
    "invalid-object": ("invalid-object", [], 1, {"invalid"}),
    "missing-service": ("missing-service", [], 1, {"missing-service"}),
    "missing-port": ("missing-port", [], 1, {"missing-port"}),
    "no-endpoints": ("no-endpoints", [], 0, {"no-endpoints"}),
    "no-endpoints-traefik": ("no-endpoints", ["--flavor", "traefik"], 0, {"no-endpoints"}),
    "service-in-other-namespace": (
        "service-in-other-namespace",
        [],
        1,
        {"service-in-other-namespace"},
    ),
    "conflict": ("conflict", [], 0, {"conflict", "shared-host"}),
    "shared-host": ("shared-host", [], 0, {"shared-host"}),
    "shadowed": ("shadowed", [], 0, {"shadowed"}),
    "unknown-annotation": (
        "unknown-annotation",
        [],
        0,
        {"unknown-annotation", "annotation-ignored-in-dialect"},
    ),
    "excluded-by-class": (
        "excluded-by-class",
        ["--ingress-class", "ingressproxy"],
        0,
        {"excluded-by-class"},
    ),
    "compare": ("compare", ["--compare", "spec,nginx,traefik"], 0, {"no-endpoints"}),
}


def _run(
    case: str, fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    folder, args, _, _ = CASES[case]
    # Relative to the fixtures, so file:line in the goldens does not depend on the checkout.
    monkeypatch.chdir(FIXTURES)
    status = main(["check", folder, *args, "--format", fmt])
    return status, capsys.readouterr().out


def _golden(name: str, got: str, request: pytest.FixtureRequest) -> None:
    path = GOLDEN / name
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"no golden {name}: run pytest --update-golden and review it"
    assert got == path.read_text(encoding="utf-8")


def test_every_case_has_goldens_and_every_golden_a_case() -> None:
    stems = {p.name.rsplit(".", 1)[0] for p in GOLDEN.iterdir()}
    assert stems == set(CASES)
    assert {p.name for p in FIXTURES.iterdir()} == {folder for folder, *_ in CASES.values()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_text_report(
    case: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, out = _run(case, "text", capsys, monkeypatch)
    assert status == CASES[case][2]
    lines = out.splitlines()
    # Compiler-style lines first, the one-line summary last.
    assert lines[-1].startswith(f"{CASES[case][0]}: ")
    assert " errors, " in lines[-1]
    _golden(f"{case}.txt", out, request)


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_report(
    case: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, out = _run(case, "json", capsys, monkeypatch)
    assert status == CASES[case][2]
    report = json.loads(out)
    codes = {d["code"] for d in report["diagnostics"]}
    assert codes == CASES[case][3]
    assert report["errors"] == sum(d["severity"] == "error" for d in report["diagnostics"])
    _golden(f"{case}.json", out, request)


def test_text_line_is_compiler_style(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = _run("missing-port", "text", capsys, monkeypatch)
    assert out.splitlines()[0] == (
        "missing-port/api.yaml:62: error: Ingress shop/api:"
        " spec.rules[0].http.paths[2].backend.service.port.name:"
        ' Service shop/api has no port "htp" (ports: http, metrics)'
    )


def test_strict_fails_on_warnings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    assert main(["check", "shadowed"]) == 0
    assert main(["check", "shadowed", "--strict"]) == 1
    assert main(["check", "clean", "--strict"]) == 0
    capsys.readouterr()


def test_conflict_names_winner_loser_and_rule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = _run("conflict", "json", capsys, monkeypatch)
    (conflict,) = [d for d in json.loads(out)["diagnostics"] if d["code"] == "conflict"]
    assert conflict["object"] == "Ingress notesmanager/notesmanager-login"  # the loser
    assert "Ingress imagemanager/imagemanager-login" in conflict["message"]  # the winner
    assert (
        "older creationTimestamp (2022-02-04T16:20:00Z vs 2022-02-04T16:25:00Z)"
        in (conflict["message"])
    )


def test_compare_lists_each_difference_with_an_example_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = _run("compare", "json", capsys, monkeypatch)
    diffs = {d["url"]: d["outcomes"] for d in json.loads(out)["compare"]["differences"]}
    # Traefik's PathPrefix is a plain string prefix.
    v1x = diffs["http://api.example.com/v1x"]
    assert (v1x["spec"]["status"], v1x["nginx"]["status"], v1x["traefik"]["status"]) == (
        404,
        404,
        200,
    )
    # ingress-nginx matches ImplementationSpecific as a plain string prefix too.
    legacy = diffs["http://api.example.com/legacyx"]
    assert [legacy[f]["status"] for f in ("spec", "nginx", "traefik")] == [404, 200, 200]
    # No ready endpoints: 503 in spec and nginx, the rule skipped (404) in Traefik.
    health = diffs["http://api.example.com/health"]
    assert [health[f]["status"] for f in ("spec", "nginx", "traefik")] == [503, 503, 404]
    # Traefik's longer PathPrefix(`/status`) rule beats Path(`/status`).
    status = diffs["http://api.example.com/status"]
    assert status["spec"]["backend"] == status["nginx"]["backend"] == "api/status:http"
    assert status["traefik"]["backend"] == "api/v1:http"
    # Traefik lets a rule without a host take requests for a named host.
    docs = diffs["http://api.example.com/docs"]
    assert [docs[f]["status"] for f in ("spec", "nginx", "traefik")] == [404, 404, 200]
    # Rules that route the same in every flavor are not listed.
    assert "http://api.example.com/v1" not in diffs
    assert "http://other.invalid/docs" not in diffs


def test_compare_needs_two_flavors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(SystemExit) as exc:
        main(["check", "clean", "--compare", "traefik"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["check", "clean", "--compare", "nginx,apache"])
    err = capsys.readouterr().err
    assert "'apache' is not a flavor (choose one of: spec, nginx, traefik, auto)" in err


def test_check_runs_as_a_process_without_network(tmp_path: Path) -> None:
    # A proxy variable pointing nowhere: anything that tried the network would fail or hang.
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    r = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", "missing-port", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=FIXTURES,
        env=env,
    )
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["errors"] == 1


def test_check_reads_standard_input_once_also_for_compare() -> None:
    text = (FIXTURES / "compare" / "api.yaml").read_text(encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", "-", "--compare", "spec,traefik"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<stdin>:173: warning: Ingress api/api:")
    assert "http://api.example.com/v1x  (host: api.example.com;" in r.stdout
    assert r.stdout.splitlines()[-1].endswith("differences between spec, traefik")
