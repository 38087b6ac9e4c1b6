"""Big folders (issue 19): the C-parser fast path gives what the pure-Python path gives, files
libyaml refuses fall back with the same diagnostics, and benchmarks/bigfolder.py runs as written.

No timed assertions: speed is measured by the benchmark, not by tests.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ingressproxy.cli.check import run_check
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.manifests import compose
from ingressproxy.manifests.loader import LoadResult, load_path

ROOT = Path(__file__).resolve().parent.parent


def _load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_bigfolder", ROOT / "benchmarks/bigfolder.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_bigfolder"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()

# YAML that exercises the converter beyond the generated triples: anchors and merge keys,
# quoting, YAML 1.2 scalars, flow style, explicit tags, a List, number keys, JSON, and
# objects the decoder and the compiler complain about (missing Service, missing port).
VARIETY = {
    "anchors.yaml": """\
apiVersion: v1
kind: Service
metadata: &meta
  name: anchored
  namespace: team01
  labels: {app: anchored, tier: "80", on: yes, "true": off}
spec:
  ports:
    - &port {name: http, port: 80, targetPort: 0x1F90}
    - <<: *port
      name: alt
      port: 8_081
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: anchored-1
  namespace: team01
  labels: &labels {kubernetes.io/service-name: anchored}
  annotations: *labels
addressType: IPv4
ports: [{name: http, port: 8080}, {name: alt, port: !!int "8081"}]
endpoints:
  - addresses: ['127.0.0.1']
    conditions: {ready: true}
  - addresses: ["127.0.0.2"]
    conditions: {ready: false}
---
# only a comment
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: anchored
  namespace: team01
  annotations:
    note: |
      two
      lines
    folded: >
      one
      line
    tagged: !!str 12
    empty: ""
    tilde: ~
spec:
  rules:
    - host: anchored.example.com
      http:
        paths:
          - {path: /a, pathType: Prefix, backend: {service: {name: anchored, port: {name: http}}}}
          - {path: /b, pathType: Exact, backend: {service: {name: anchored, port: {number: 81}}}}
          - {path: /c, pathType: Prefix, backend: {service: {name: nowhere, port: {number: 80}}}}
""",
    "list.yaml": """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: listed, namespace: team02}
    spec: {ports: [{port: 80}]}
  - apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: listed, namespace: team02, labels: {1: one, 2.5: x}}
    spec:
      defaultBackend: {service: {name: listed, port: {number: 80}}}
""",
    "bad-objects.yaml": """\
apiVersion: v1
kind: Service
metadata: {name: twice, namespace: team03}
metadata: {name: again}
---
apiVersion: v1
kind: Service
metadata: {name: tagged, namespace: !custom team03}
---
- not
- an object
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: Bad_Name, namespace: team03}
spec: {rules: [{host: "x..example", http: {paths: [{path: nope, pathType: Weird}]}}]}
""",
    "json.json": json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "from-json", "namespace": "team04"},
            "spec": {"ports": [{"port": 80, "name": "http"}]},
        },
        indent=2,
    ),
}


def _folder(root: Path, count: int) -> Path:
    bench.make_folder(root, count)
    for name, text in VARIETY.items():
        (root / name).write_text(text)
    return root


def _check_json(folder: Path) -> dict[str, object]:
    out = io.StringIO()
    run_check(folder, CompileOptions(), fmt="json", out=out)
    report: dict[str, object] = json.loads(out.getvalue())
    return report


def _plain(result: LoadResult) -> list[tuple[object, ...]]:
    return [(d.file, d.line, d.data, dict(d.lines)) for d in result.documents]


def test_the_fast_path_gives_the_pure_paths_documents_and_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compose.HAVE_CLIB, "ruamel.yaml.clib is a dependency: the fast path must be there"
    folder = _folder(tmp_path / "m", 100)  # 300 objects, plus the variety files
    fast_calls: list[int] = []
    real_fast = compose.compose_fast

    def counting(text: str) -> list[object]:
        nodes = real_fast(text)
        fast_calls.append(len(nodes))
        return nodes

    monkeypatch.setattr(compose, "compose_fast", counting)
    fast_load, fast_check = load_path(folder), _check_json(folder)
    # Every file took the fast path (the JSON file too: JSON is YAML to the parser).
    assert len(fast_calls) == 2 * (100 + len(VARIETY))

    monkeypatch.setattr(compose, "HAVE_CLIB", False)
    fast_calls.clear()
    pure_load, pure_check = load_path(folder), _check_json(folder)
    assert fast_calls == []

    assert _plain(fast_load) == _plain(pure_load)
    assert fast_load.diagnostics == pure_load.diagnostics
    assert fast_check == pure_check
    # The folder is not trivially clean: the comparison covered diagnostics of every stage.
    codes = {d["code"] for d in fast_check["diagnostics"]}  # type: ignore[attr-defined,index]
    assert {"duplicate-key", "unsupported-tag", "not-an-object", "non-string-key"} <= codes
    assert {"missing-service", "missing-port"} <= codes
    assert fast_check["objects"] == 300 + 6  # bad-objects.yaml contributes none


def run_cli_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_falls_back_on_a_file_libyaml_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    bench.make_folder(folder, 3)
    # Unclosed quote: libyaml refuses, the pure-Python parser gives the pinned message, at the
    # line where the quote opened and with where it noticed.
    (folder / "broken.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: 'broken\n  namespace: x\nspec: {}\n"
    )
    # Valid YAML 1.2 that libyaml (YAML 1.1) refuses: loaded by the fallback, not an error.
    (folder / "args.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: args}\n"
        'data: {args: "x"}\nlist: [-listen=:8080, "-text=hi"]\n'
    )
    proc = run_cli_check(folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    broken = [line for line in lines if "broken.yaml" in line]
    assert broken == [
        f"{folder / 'broken.yaml'}:4: error: cannot parse YAML: found unexpected end of stream"
        " (while scanning a quoted scalar); noticed at line 7; the file is skipped"
    ]
    assert not any("args.yaml" in line for line in lines), proc.stdout
    assert lines[-1] == f"{folder}: 9 objects, 3 routes, 1 errors, 0 warnings"


def test_the_benchmark_runs_as_written(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bigfolder.py"),
            "--counts",
            "5,10",
            "--repeat",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # as written: from anywhere, with the checkout's package
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| 10 | 30 | 10 |" in proc.stdout
    assert "check time: " in proc.stdout and "per object" in proc.stdout
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["objects"] for r in rows] == [15, 30]
    assert all(r["serve_first_answer_s"] > 0 and r["serve_rss_mb"] > 0 for r in rows)


@pytest.mark.parametrize("layout", ["files", "big"])
def test_generated_folders_load_clean_with_every_object(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / layout
    bench.make_folder(folder, 7, layout=layout)
    report = _check_json(folder)
    assert report["objects"] == 21 and report["routes"] == 7
    assert report["diagnostics"] == []


def test_generated_endpoints_are_loopback_only() -> None:
    # The benchmark sends traffic to the first endpoint only, but no address may leave 127/8.
    for i in (0, 1, 255, 256, 65535, 65536, 29999):
        lines = bench.triple(i, 9)[2].splitlines()
        address = lines[lines.index("  - addresses:") + 1].split("- ")[1]
        assert address.startswith("127."), address
