"""Golden tests of each front-end's IR: tests/fixtures/frontends/<dialect>/<case>.yaml ->
tests/golden/frontends/<dialect>/<case>.json.

Each case is compiled as the reloader does (certificates first, then every front-end pass) in
its dialect, and every router of each entry point's table is dumped with all the IR says of
it: match, priority, rule, filters, entry points, service, what it overrode. `pytest
--update-golden` rewrites the goldens (review the diff like code).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingressproxy.frontends.certs import compile_certs
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.frontends.pipeline import compile_routes
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.ir.dump import dump_diagnostic, dump_router
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_path

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "frontends"
GOLDEN = HERE / "golden" / "frontends"
CASES = sorted(str(p.relative_to(FIXTURES).with_suffix("")) for p in FIXTURES.glob("*/*.yaml"))
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _compile(case: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.chdir(FIXTURES)  # file:line in the goldens independent of the checkout
    loaded = load_path(Path(f"{case}.yaml"))
    manifests, decode_diags = decode(loaded.documents)
    assert [str(d) for d in (*loaded.diagnostics, *decode_diags)] == []
    options = CompileOptions(flavor=Flavor(case.split("/")[0]))
    certs = compile_certs(manifests, options, now=NOW)
    result, entrypoints = compile_routes(manifests, options, certs.table)
    tables = {"web": result.table, "websecure": entrypoints.table(result.table, True)}
    data = {
        "routers": {ep: [dump_router(r) for r in t.routes()] for ep, t in tables.items()},
        "websecure_is_web": entrypoints.websecure is None,
        "routes": result.routes,
        "diagnostics": [dump_diagnostic(d) for d in (*result.diagnostics, *certs.diagnostics)],
    }
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]


def test_every_dialect_has_cases_and_every_case_a_golden() -> None:
    assert {c.split("/")[0] for c in CASES} == {f.value for f in Flavor}
    goldens = sorted(str(p.relative_to(GOLDEN).with_suffix("")) for p in GOLDEN.glob("*/*.json"))
    assert goldens == CASES


@pytest.mark.parametrize("case", CASES)
def test_frontend_golden(
    case: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = _compile(case, monkeypatch)
    golden = GOLDEN / f"{case}.json"
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(golden.read_text(encoding="utf-8"))
