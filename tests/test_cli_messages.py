"""Messages a person can act on, through the real command (issue 19): each case runs
`python -m ingressproxy` in a subprocess, as a CI script would, and reads what it prints."""

from __future__ import annotations

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
