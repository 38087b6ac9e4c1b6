"""Golden tests of the compiler: tests/fixtures/<case>.yaml -> tests/golden/<case>.json.

Each fixture is loaded and decoded as the proxy does, compiled, and dumped; the dump must equal
the reviewed golden file. `pytest --update-golden` rewrites the goldens instead (review the diff).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingressproxy.frontends.options import CompileOptions, CompileResult
from ingressproxy.frontends.spec.compiler import compile_manifests
from ingressproxy.ir.dump import dump_diagnostic, dump_table
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_path
from ingressproxy.manifests.model import Manifests

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
GOLDEN = HERE / "golden"
CASES = sorted(p.stem for p in FIXTURES.glob("*.yaml"))

# Options a case is compiled with, when not the defaults.
OPTIONS = {"ingress-class": CompileOptions(ingress_classes=("ingressproxy",))}


def _manifests(case: str, monkeypatch: pytest.MonkeyPatch) -> Manifests:
    # Load by a relative name so file:line in the goldens does not depend on the checkout path.
    monkeypatch.chdir(FIXTURES)
    loaded = load_path(Path(f"{case}.yaml"))
    manifests, decode_diagnostics = decode(loaded.documents)
    # Fixtures are valid input for the compiler: anything the loader or decoder flags would
    # silently drop objects from the case.
    assert [str(d) for d in (*loaded.diagnostics, *decode_diagnostics)] == []
    return manifests


def _dump(result: CompileResult) -> dict[str, object]:
    data = {
        "table": dump_table(result.table),
        "diagnostics": [dump_diagnostic(d) for d in result.diagnostics],
    }
    # Round-trip so tuples and lists compare the same as they will once read back.
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]


def test_every_case_has_a_golden_and_every_golden_a_case() -> None:
    assert len(CASES) >= 10
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == CASES


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = _manifests(case, monkeypatch)
    got = _dump(compile_manifests(manifests, OPTIONS.get(case, CompileOptions())))
    golden = GOLDEN / f"{case}.json"
    if request.config.getoption("--update-golden"):
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    assert golden.exists(), f"no golden for {case}: run pytest --update-golden and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES)
def test_golden_does_not_depend_on_object_order(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _manifests(case, monkeypatch)
    reversed_ = Manifests(
        ingresses=m.ingresses[::-1],
        ingress_classes=m.ingress_classes[::-1],
        services=m.services[::-1],
        endpoints=m.endpoints[::-1],
        endpoint_slices=m.endpoint_slices[::-1],
    )
    options = OPTIONS.get(case, CompileOptions())
    assert _dump(compile_manifests(reversed_, options)) == _dump(compile_manifests(m, options))
