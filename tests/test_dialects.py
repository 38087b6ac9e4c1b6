"""--flavor auto: each Ingress in the dialect of the controller that would serve it (issue 16),
as a table of cases, then a mixed folder served through real sockets."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e import cluster, echo, run_proxy

from ingressproxy.cli.explain import explain
from ingressproxy.frontends.dialects import choose_dialects
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_text
from ingressproxy.manifests.model import Manifests
from ingressproxy.server.reloader import build_snapshot


def _ingress(class_name: str | None = None, annotations: dict[str, str] | None = None) -> str:
    cls = f"\n  ingressClassName: {class_name}" if class_name else ""
    notes = "".join(f"\n    {k}: {v!r}" for k, v in (annotations or {}).items())
    return (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\n"
        f"  namespace: shop\n  annotations:{notes or ' {}'}\nspec:{cls}\n"
        "  rules: [{host: a.example}]\n"
    )


def _class(name: str, controller: str, default: bool = False) -> str:
    notes = "{ingressclass.kubernetes.io/is-default-class: 'true'}" if default else "{}"
    return (
        f"apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {name}\n"
        f"  annotations: {notes}\nspec: {{controller: {controller}}}\n"
    )


def _manifests(*docs: str) -> Manifests:
    loaded, load_diags = load_text("---\n".join(docs), "m.yaml")
    manifests, diags = decode(loaded)
    assert [str(d) for d in (*load_diags, *diags)] == []
    return manifests


NGINX_KEY = "nginx.ingress.kubernetes.io/ssl-redirect"
TRAEFIK_KEY = "traefik.ingress.kubernetes.io/router.entrypoints"


@pytest.mark.parametrize(
    ("docs", "dialect", "why"),
    [
        ([_class("x", "k8s.io/ingress-nginx"), _ingress("x")], Flavor.NGINX, "class x"),
        ([_class("x", "traefik.io/ingress-controller"), _ingress("x")], Flavor.TRAEFIK, "class x"),
        ([_class("x", "example.com/other"), _ingress("x")], Flavor.SPEC, "example.com/other"),
        # The class names the controllers' charts install, with no IngressClass object here.
        ([_ingress("nginx")], Flavor.NGINX, 'class "nginx"'),
        ([_ingress("traefik")], Flavor.TRAEFIK, 'class "traefik"'),
        ([_ingress("haproxy")], Flavor.SPEC, 'class "haproxy"'),
        # An IngressClass object of that name says otherwise: it wins over the name.
        ([_class("nginx", "traefik.io/ingress-controller"), _ingress("nginx")], Flavor.TRAEFIK, ""),
        # The deprecated annotation names the class too.
        ([_ingress(None, {"kubernetes.io/ingress.class": "nginx"})], Flavor.NGINX, "nginx"),
        # No class: the folder's default IngressClass decides, as the cluster's would.
        (
            [
                _class("d", "k8s.io/ingress-nginx", default=True),
                _ingress(None, {TRAEFIK_KEY: "web"}),
            ],
            Flavor.NGINX,
            "default",
        ),
        # No class, no default: annotations of exactly one controller, reported as inferred.
        ([_ingress(None, {NGINX_KEY: "true"})], Flavor.NGINX, "inferred"),
        ([_ingress(None, {TRAEFIK_KEY: "web"})], Flavor.TRAEFIK, "inferred"),
        ([_ingress(None, {NGINX_KEY: "true", TRAEFIK_KEY: "web"})], Flavor.SPEC, "spec"),
        ([_ingress(None, {"cert-manager.io/cluster-issuer": "le"})], Flavor.SPEC, "spec"),
    ],
)
def test_the_dialect_of_an_ingress(docs: list[str], dialect: Flavor, why: str) -> None:
    manifests = _manifests(*docs)
    (ing,) = manifests.ingresses
    choice = choose_dialects(manifests, Flavor.AUTO)[id(ing)]
    assert choice.dialect is dialect
    assert why in choice.reason
    assert choice.inferred == ("inferred" in why)


def test_a_forced_flavor_is_every_ingress_dialect() -> None:
    manifests = _manifests(_ingress("nginx"))
    (ing,) = manifests.ingresses
    assert choose_dialects(manifests, Flavor.TRAEFIK)[id(ing)].dialect is Flavor.TRAEFIK


MIXED = Path(__file__).parent / "fixtures" / "frontends" / "auto" / "mixed.yaml"


def test_a_mixed_folder_routes_each_ingress_in_its_dialect(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    text = MIXED.read_text()
    # The fixture's EndpointSlice names 10.0.0.1; the cluster helper writes real ones.
    kept = [d for d in text.split("\n---\n") if "kind: EndpointSlice" not in d]
    (fixture / "m.yaml").write_text("\n---\n".join(kept))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        with run_proxy(folder, flavor=Flavor.AUTO) as served:
            # nginx (class public-nginx, use-regex): a case-insensitive regex location.
            assert served.get("/API/v12/x", host="nginx.shop.example").status_code == 200
            assert served.get("/api/vx", host="nginx.shop.example").status_code == 404
            # traefik (class "traefik"): PathPrefix is a string prefix on the wildcard host.
            assert served.get("/anything", host="a.shop.example").status_code == 200
            # traefik, inferred from its annotations: /v1 also takes /v1beta.
            assert echo(served.get("/v1beta", host="inferred.shop.example")).path == "/v1beta"
            # the spec: Prefix /v1 is element-wise, so /v1beta is not matched.
            assert served.get("/v1beta", host="plain.shop.example").status_code == 404
            assert served.get("/v1/x", host="plain.shop.example").status_code == 200
            # shared.shop.example: the older nginx Ingress's dialect serves the host (its
            # /app regex), the traefik Ingress's "/" there is ignored and reported.
            assert served.get("/app", host="shared.shop.example").status_code == 200
            assert served.get("/other", host="shared.shop.example").status_code == 404
            codes = {d.code for d in served.app.state.holder.current.diagnostics}
            assert "dialect-conflict" in codes


def test_explain_names_the_dialect_and_why(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "m.yaml").write_text(MIXED.read_text())
    built = build_snapshot(folder, CompileOptions(flavor=Flavor.AUTO))
    assert built is not None
    snapshot = built[0]
    report = explain(snapshot, "http://nginx.shop.example/api/v1").to_text()
    want = "dialect: nginx (class public-nginx, whose IngressClass names k8s.io/ingress-nginx)"
    assert want in report
    report = explain(snapshot, "http://inferred.shop.example/v1").to_text()
    assert "dialect: traefik (no class: inferred from its traefik.ingress.kubernetes.io/*" in (
        report
    )
