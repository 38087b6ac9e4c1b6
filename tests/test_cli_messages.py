"""Messages a person can act on, through the real command (issue 19): each case runs
`python -m ingressproxy` in a subprocess, as a CI script would, and reads what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def ingressproxy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressproxy", *args], capture_output=True, text=True, timeout=60
    )


def test_a_yaml_error_is_reported_at_the_line_to_fix(tmp_path: Path) -> None:
    (tmp_path / "svc.yaml").write_text(
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: "web\n  namespace: shop\nspec:\n'
        "  ports:\n    - port: 80\n      name: http\n"
    )
    got = ingressproxy("check", str(tmp_path))
    assert got.returncode == 1
    assert f"{tmp_path / 'svc.yaml'}:4: error: cannot parse YAML" in got.stdout, got.stdout
    assert "Traceback" not in got.stderr


def test_a_helm_template_gets_one_line_saying_to_render_it(tmp_path: Path) -> None:
    chart = tmp_path / "templates"
    chart.mkdir()
    (chart / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n"
        "spec:\n  ports:\n    - port: {{ .Values.port }}\n"
    )
    got = ingressproxy("check", str(tmp_path))
    assert got.returncode == 1
    lines = [line for line in got.stdout.splitlines() if "error" in line]
    assert lines[0].startswith(f"{chart / 'service.yaml'}:4: error: this is a Helm/Go template")
    assert "helm template RELEASE CHART | ingressproxy check -" in lines[0]
    assert len(lines) == 2  # the one error and the summary line


def _many(tmp_path: Path, count: int) -> Path:
    """`count` Ingresses, each with a missing Service (an error) and a typo'd annotation (a
    warning), one file each, plus one Ingress whose class annotation is its own error-free."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(count):
        (folder / f"ing-{i:04}.yaml").write_text(
            f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app-{i}\n"
            f"  namespace: shop\n  annotations: {{nginx.ingress.kubernetes.io/rewrite-targt: /}}\n"
            f"spec:\n  rules:\n    - host: app-{i}.example\n      http:\n        paths:\n"
            f"          - path: /\n            pathType: Prefix\n            backend:\n"
            f"              service: {{name: missing-{i}, port: {{number: 80}}}}\n"
        )
    return folder


def test_check_on_a_big_folder_prints_at_most_100_lines(tmp_path: Path) -> None:
    folder = _many(tmp_path, 150)
    text = ingressproxy("check", str(folder))
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert len(lines) <= 100, len(lines)
    assert lines[-1].endswith("150 objects, 150 routes, 150 errors, 150 warnings")
    more = [line for line in lines if line.startswith("... and ")]
    assert any("more error missing-service" in line for line in more), more
    assert any("more warning unknown-annotation" in line for line in more), more
    assert all("--format json lists every diagnostic" in line for line in more)
    as_json = ingressproxy("check", str(folder), "--format", "json")
    report = json.loads(as_json.stdout)
    assert len(report["diagnostics"]) == 300


def test_a_small_report_is_printed_whole(tmp_path: Path) -> None:
    folder = _many(tmp_path, 3)
    lines = ingressproxy("check", str(folder)).stdout.splitlines()
    assert len(lines) == 7 and not any(line.startswith("... and") for line in lines)
