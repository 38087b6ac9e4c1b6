"""`unbacked-service` in every dialect, through the real `ingressproxy check` (issue 19).

Flavor traefik leaves a path out when its Service has no endpoints (Traefik's "Skipping
service"), so the route table never held the router that uses the Service and the warning
that says how to give it an address was missing for Traefik Ingresses alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MANIFEST = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
  namespace: shop
{annotations}spec:
{ingress_class}  rules:
    - host: shop.example
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: web, port: {{number: 80}}}}}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  ports: [{{port: 80}}]
"""


def check(folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(folder), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("ingress_class", "annotations", "flags", "outcome"),
    [
        ("", "", (), "requests get 503"),
        ("nginx", "", (), "requests get 503"),
        ("traefik", "", (), "its rules are left out: requests get 404"),
        (
            "",
            "traefik.ingress.kubernetes.io/router.priority: '5'",
            (),
            "its rules are left out: requests get 404",
        ),
        ("", "", ("--flavor", "traefik"), "its rules are left out: requests get 404"),
        ("", "", ("--flavor", "nginx"), "requests get 503"),
    ],
    ids=[
        "spec",
        "nginx-class",
        "traefik-class",
        "traefik-annotations",
        "flavor-traefik",
        "flavor-nginx",
    ],
)
def test_a_service_without_endpoints_is_reported_in_every_dialect(
    tmp_path: Path, ingress_class: str, annotations: str, flags: tuple[str, ...], outcome: str
) -> None:
    text = MANIFEST.format(
        ingress_class=f"  ingressClassName: {ingress_class}\n" if ingress_class else "",
        annotations=f"  annotations:\n    {annotations}\n" if annotations else "",
    )
    (tmp_path / "app.yaml").write_text(text)
    line = text.splitlines().index("kind: Service")  # 1-based line of the `apiVersion` above
    proc = check(tmp_path, *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = [s for s in proc.stdout.splitlines() if "Service shop/web: used by" in s]
    assert len(found) == 1, proc.stdout
    assert found[0].startswith(f"{tmp_path / 'app.yaml'}:{line}: warning: Service shop/web:")
    assert "used by Ingress shop/site" in found[0]
    assert f"({outcome}" in found[0]
    assert "give --backend shop/web=URL" in found[0]
    routes = "0 routes" if "left out" in outcome else "1 routes"
    assert f": 2 objects, {routes}, 0 errors, 2 warnings" in proc.stdout.splitlines()[-1]
