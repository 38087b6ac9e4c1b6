"""`ingressproxy convert`: retired API versions rewritten as Kubernetes converts them
(pkg/apis/networking/v1beta1 conversion), comments and other documents kept; the result must
load with no errors and route as the same Ingress written in v1 by hand."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ingressproxy.cli.convert import ConvertError, convert_text
from ingressproxy.frontends.spec.compiler import compile_manifests
from ingressproxy.ir.dump import dump_table
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_text

OLD = """\
# an Ingress from 2019
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: shop   # the main one
  namespace: shop
spec:
  backend:
    serviceName: web
    servicePort: 80
  rules:
    - host: shop.example
      http:
        paths:
          - path: /api
            backend:
              serviceName: api
              servicePort: http
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
"""

BY_HAND = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
spec:
  defaultBackend:
    service: {name: web, port: {number: 80}}
  rules:
    - host: shop.example
      http:
        paths:
          - path: /api
            pathType: ImplementationSpecific
            backend:
              service: {name: api, port: {name: http}}
"""


def _routes(text: str, name: str) -> dict[str, object]:
    docs, load_diags = load_text(text, name)
    manifests, decode_diags = decode(docs)
    assert [str(d) for d in (*load_diags, *decode_diags) if d.severity == "error"] == []
    return dump_table(compile_manifests(manifests).table)


def test_converted_routes_as_the_v1_written_by_hand() -> None:
    got = convert_text(OLD, "old.yaml")
    assert got.converted == 1
    assert "# an Ingress from 2019" in got.text and "# the main one" in got.text
    assert got.text.count("kind: Service") == 2  # the other documents are kept
    services = OLD.split("---", 1)[1]
    converted = _routes(got.text, "new.yaml")
    by_hand = _routes(BY_HAND + "---" + services, "new.yaml")

    def strip(table: dict[str, object]) -> str:
        # Where each route was written differs (other lines); what it routes must not.
        return re.sub(r'"(source|field)": "[^"]*"', "", json.dumps(table, sort_keys=True))

    assert strip(converted) == strip(by_hand)


def test_a_current_file_is_left_as_it_is() -> None:
    got = convert_text(BY_HAND, "x.yaml")
    assert got.converted == 0 and got.text == BY_HAND


def test_a_string_service_port_of_digits_is_a_name_and_is_noted() -> None:
    text = OLD.replace("servicePort: http", 'servicePort: "8080"')
    got = convert_text(text, "old.yaml")
    assert "name: '8080'" in got.text or 'name: "8080"' in got.text
    assert any('servicePort "8080" is a string' in n for n in got.notes)


def test_endpoint_slice_topology_is_kept_as_deprecated_topology() -> None:
    text = (
        "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s}\n"
        "addressType: IPv4\nendpoints:\n  - addresses: [10.0.0.1]\n"
        "    topology: {kubernetes.io/hostname: n1}\n"
    )
    got = convert_text(text, "s.yaml")
    assert "apiVersion: discovery.k8s.io/v1" in got.text
    assert "deprecatedTopology:" in got.text and "  topology:" not in got.text


def test_bad_yaml_is_an_error_naming_the_file() -> None:
    with pytest.raises(ConvertError, match=r"broken\.yaml"):
        convert_text("a: [1,\n", "broken.yaml")


def test_convert_then_check_through_the_real_commands(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(OLD)
    python = [sys.executable, "-m", "ingressproxy"]
    before = subprocess.run([*python, "check", str(old)], capture_output=True, text=True)
    assert before.returncode == 1 and "removed in Kubernetes 1.22" in before.stdout
    converted = subprocess.run(
        [*python, "convert", str(old)], capture_output=True, text=True, timeout=60
    )
    assert converted.returncode == 0, converted.stderr
    after = subprocess.run(
        [*python, "check", "-"], input=converted.stdout, capture_output=True, text=True
    )
    assert after.returncode == 0, after.stdout
    assert "2 routes" in after.stdout and "0 errors" in after.stdout
