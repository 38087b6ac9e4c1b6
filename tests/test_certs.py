"""Unit tests of TLS material: Secret decoding, certificate checks (certs.py), entry points and
redirects (entrypoints.py), upstream schemes (backends.py). Certificates are made at test time
with trustme; manifests are YAML text, loaded and decoded as the reloader does."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa

from ingressproxy.frontends.certs import (
    CertificateError,
    CertOrigin,
    CertResult,
    compile_certs,
    default_secret_ref,
    dump_certs,
    load_key_pair,
    name_covers,
)
from ingressproxy.frontends.nginx.redirects import SSL_REDIRECT_STATUS
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.frontends.pipeline import compile_routes
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.frontends.traefik.entrypoints import entrypoints_of
from ingressproxy.ir.filters import FilterRequest, RedirectScheme, https_url
from ingressproxy.ir.model import EntryPoint
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import ParseCache
from ingressproxy.manifests.model import (
    Diagnostic,
    Manifests,
    ObjectRef,
    Severity,
    Source,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OPTIONS = CompileOptions()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


# --------------------------------------------------------------------------- builders


def load(text: str, file: str = "m.yaml") -> tuple[Manifests, tuple[Diagnostic, ...]]:
    docs, diags = ParseCache().load(textwrap.dedent(text).encode(), file)
    assert diags == [], [str(d) for d in diags]
    return decode(docs)


def manifests(*docs: str) -> Manifests:
    m, diags = load("---\n".join(docs))
    assert diags == (), [str(d) for d in diags]
    return m


def indent(pem: bytes, by: int) -> str:
    pad = " " * by
    return "".join(pad + line + "\n" for line in pem.decode().splitlines())


def secret(
    name: str,
    cert: bytes | None,
    key: bytes | None,
    *,
    ns: str = "shop",
    type_: str = "kubernetes.io/tls",
    string_data: bool = False,
) -> str:
    """A Secret as users write it: base64 `data` (wrapped at 64 columns, like kubectl), or PEM
    text under `stringData`."""
    out = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
    out += f"type: {type_}\n"
    items = [(k, v) for k, v in (("tls.crt", cert), ("tls.key", key)) if v is not None]
    if not items:
        return out
    if string_data:
        out += "stringData:\n"
        for k, v in items:
            out += f"  {k}: |\n{indent(v, 4)}"
        return out
    out += "data:\n"
    for k, v in items:
        b64 = base64.b64encode(v).decode()
        wrapped = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
        out += f"  {k}: |-\n{indent(wrapped.encode(), 4)}"
    return out


def leaf_secret(name: str, leaf: trustme.LeafCert, **kw: object) -> str:
    return secret(
        name,
        b"".join(p.bytes() for p in leaf.cert_chain_pems),
        leaf.private_key_pem.bytes(),
        **kw,  # type: ignore[arg-type]
    )


def ingress(
    name: str,
    tls: Sequence[tuple[Sequence[str], str | None]] = (),
    hosts: Sequence[str] = ("shop.example",),
    *,
    ns: str = "shop",
    annotations: dict[str, str] | None = None,
    created: str | None = None,
    class_name: str | None = None,
) -> str:
    out = f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n"
    out += f"  namespace: {ns}\n"
    if created:
        out += f'  creationTimestamp: "{created}"\n'
    if annotations:
        out += "  annotations:\n" + "".join(f'    {k}: "{v}"\n' for k, v in annotations.items())
    out += "spec:\n"
    if class_name:
        out += f"  ingressClassName: {class_name}\n"
    if tls:
        out += "  tls:\n"
        for tls_hosts, secret_name in tls:
            out += "    - hosts: [" + ", ".join(f'"{h}"' for h in tls_hosts) + "]\n"
            if secret_name:
                out += f"      secretName: {secret_name}\n"
    out += "  rules:\n"
    for host in hosts:
        out += (
            f'    - host: "{host}"\n      http:\n        paths:\n          - path: /\n'
            "            pathType: Prefix\n            backend:\n              service:\n"
            "                name: web\n                port: {number: 80}\n"
        )
    return out


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
"""


def certs_of(*docs: str, options: CompileOptions = OPTIONS, now: datetime = NOW) -> CertResult:
    return compile_certs(manifests(*docs), options, now=now)


def only(result: CertResult, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, [str(d) for d in result.diagnostics]
    return found[0]


# =========================================================================== Secret decoding


def test_secret_decodes_base64_data_with_line_breaks(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("shop.example")
    m = manifests(leaf_secret("shop-tls", leaf))
    (s,) = m.secrets
    assert s.ref == ObjectRef("Secret", "shop", "shop-tls")
    assert s.type == "kubernetes.io/tls"
    assert s.tls_crt == leaf.cert_chain_pems[0].bytes()
    assert s.tls_key == leaf.private_key_pem.bytes()


def test_secret_string_data_overrides_data(ca: trustme.CA) -> None:
    a, b = ca.issue_cert("a.example"), ca.issue_cert("b.example")
    text = leaf_secret("s", a) + "stringData:\n  tls.crt: |\n"
    text += indent(b.cert_chain_pems[0].bytes(), 4)
    (s,) = manifests(text).secrets
    assert s.tls_crt == b.cert_chain_pems[0].bytes()  # the API server merges stringData last
    assert s.tls_key == a.private_key_pem.bytes()


def test_secret_repr_shows_no_key_material(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("shop.example")
    (s,) = manifests(leaf_secret("shop-tls", leaf)).secrets
    assert repr(s) == "Secret(shop/shop-tls, type=kubernetes.io/tls)"
    cert = load_key_pair(s.tls_crt or b"", s.tls_key or b"", name="shop/shop-tls")
    shown = repr(cert)
    assert "PRIVATE" not in shown and "BEGIN" not in shown and "shop.example" in shown


def test_secret_drops_kubectl_last_applied_copy(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("shop.example")
    text = leaf_secret("s", leaf).replace(
        "  namespace: shop\n",
        "  namespace: shop\n  annotations:\n"
        '    kubectl.kubernetes.io/last-applied-configuration: "{\\"data\\": \\"secret\\"}"\n'
        "    team: a\n",
    )
    (s,) = manifests(text).secrets
    assert dict(s.meta.annotations) == {"team": "a"}


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        pytest.param(
            "data:\n  tls.crt: '%%not base64%%'\n  tls.key: ''\n",
            "data.tls.crt",
            "illegal base64 data",
            id="bad-base64",
        ),
        pytest.param("data:\n  tls.crt: ''\n", "data.tls.key", "tls.key is required", id="no-key"),
        pytest.param(
            "stringData:\n  tls.key: k\n", "data.tls.crt", "tls.crt is required", id="no-crt"
        ),
        pytest.param(
            "data:\n  tls.crt: ''\n  tls.key: ''\n  'bad key': ''\n",
            "data.bad key",
            "valid config key",
            id="bad-key-name",
        ),
    ],
)
def test_invalid_secret_is_rejected_without_quoting_values(
    text: str, field: str, message: str
) -> None:
    m, diags = load(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\n"
        "type: kubernetes.io/tls\n" + text
    )
    assert m.secrets == ()
    (d,) = [d for d in diags if d.field == field]
    assert d.severity is Severity.ERROR and d.code == "invalid"
    assert message in d.message
    assert "%%" not in d.message


def test_opaque_secret_without_tls_keys_is_valid() -> None:
    (s,) = manifests(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\n"
        "stringData: {password: hunter2}\n"
    ).secrets
    assert (s.type, s.tls_crt, s.tls_key) == ("Opaque", None, None)
    assert "hunter2" not in repr(s)


# =========================================================================== names


@pytest.mark.parametrize(
    ("pattern", "host", "covered"),
    [
        ("foo.bar.com", "foo.bar.com", True),
        ("FOO.bar.com", "foo.BAR.com", True),
        ("foo.bar.com", "foo.bar.com.", True),
        ("*.foo.com", "bar.foo.com", True),
        ("*.foo.com", "foo.com", False),  # RFC 6125: the * is exactly one label
        ("*.foo.com", "baz.bar.foo.com", False),
        ("*.foo.com", "*.foo.com", True),  # a wildcard Ingress host needs the same wildcard
        ("bar.foo.com", "*.foo.com", False),
        ("*.bar.foo.com", "*.foo.com", False),
        ("f*.foo.com", "fa.foo.com", False),  # partial-label wildcards are not honoured
        ("foo.bar.com", "bar.com", False),
    ],
)
def test_name_covers(pattern: str, host: str, covered: bool) -> None:
    assert name_covers(pattern, host) is covered


# =========================================================================== key pairs


def pems(leaf: trustme.LeafCert) -> tuple[bytes, bytes]:
    return b"".join(p.bytes() for p in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


def test_load_key_pair_reads_names_dates_fingerprint(ca: trustme.CA) -> None:
    nb = datetime(2026, 1, 1, tzinfo=UTC)
    na = datetime(2027, 1, 1, tzinfo=UTC)
    leaf = ca.issue_cert("shop.example", "*.shop.example", not_before=nb, not_after=na)
    cert = load_key_pair(*pems(leaf), name="shop/shop-tls")
    assert cert.names == ("shop.example", "*.shop.example")
    assert (cert.not_before, cert.not_after) == (nb, na)
    assert cert.origin is CertOrigin.SECRET
    assert len(cert.fingerprint) == 64
    assert cert.covers("a.shop.example") and not cert.covers("a.b.shop.example")
    assert b"PRIVATE KEY" in cert.key_pem and cert.chain_pem.startswith(b"-----BEGIN CERT")


def _error(cert: bytes, key: bytes) -> CertificateError:
    with pytest.raises(CertificateError) as info:
        load_key_pair(cert, key, name="x")
    return info.value


def test_not_pem_certificate(ca: trustme.CA) -> None:
    _, key = pems(ca.issue_cert("a.example"))
    err = _error(b"hello", key)
    assert err.code == "tls-not-pem" and "tls.crt is not PEM" in err.message


def test_double_base64_certificate_is_explained(ca: trustme.CA) -> None:
    cert, key = pems(ca.issue_cert("a.example"))
    err = _error(base64.b64encode(cert), key)
    assert err.code == "tls-not-pem" and "encoded twice" in err.message


def test_der_certificate_is_explained(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("a.example")
    _, key = pems(leaf)
    pem = leaf.cert_chain_pems[0].bytes()
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    err = _error(der, key)
    assert err.code == "tls-not-pem" and "DER" in err.message


def test_not_pem_key(ca: trustme.CA) -> None:
    cert, _ = pems(ca.issue_cert("a.example"))
    err = _error(cert, b"")
    assert err.code == "tls-not-pem" and err.message == "tls.key is not PEM: it is empty"


def test_key_of_another_certificate(ca: trustme.CA) -> None:
    cert, _ = pems(ca.issue_cert("a.example"))
    _, other = pems(ca.issue_cert("a.example"))
    err = _error(cert, other)
    assert err.code == "tls-key-mismatch" and "their public keys differ" in err.message


def test_key_of_a_later_certificate_in_the_chain(ca: trustme.CA) -> None:
    first, _ = pems(ca.issue_cert("a.example"))
    second, key = pems(ca.issue_cert("b.example"))
    err = _error(first + second, key)
    assert err.code == "tls-key-mismatch" and "certificate #2" in err.message


def test_encrypted_key(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("a.example")
    cert, key_pem = pems(leaf)
    key = serialization.load_pem_private_key(key_pem, None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    err = _error(cert, encrypted)
    assert err.code == "tls-bad-key" and "encrypted" in err.message


def test_dsa_key_cannot_serve(ca: trustme.CA) -> None:
    cert, _ = pems(ca.issue_cert("a.example"))
    key = dsa.generate_private_key(2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    err = _error(cert, key)
    assert err.code == "tls-bad-key" and "cannot serve TLS" in err.message


# =========================================================================== compile_certs


def test_sni_table_exact_wildcard_and_fallback(ca: trustme.CA) -> None:
    a = ca.issue_cert("a.example")
    w = ca.issue_cert("*.w.example")
    r = certs_of(
        leaf_secret("a", a),
        leaf_secret("w", w),
        ingress("i", [(["a.example"], "a"), (["*.w.example"], "w")], ["a.example", "*.w.example"]),
        SERVICE,
    )
    assert r.diagnostics == ()
    t = r.table
    assert t.select("a.example") is t.exact["a.example"]
    assert t.select("A.Example.") is t.exact["a.example"]
    assert t.select("x.w.example") is t.wildcard["w.example"]
    assert t.select("x.y.w.example") is None and t.select("w.example") is None
    assert t.select(None) is None and t.select("other.example") is None
    assert t.tls_hosts == {"a.example", "*.w.example"}
    assert t.has_certificates and t.default is None
    assert [(u.hosts, u.ingresses) for u in t.uses] == [
        (("*.w.example",), (ObjectRef("Ingress", "shop", "i"),)),
        (("a.example",), (ObjectRef("Ingress", "shop", "i"),)),
    ]


def test_rule_host_covered_by_certificate_without_listing_it(ca: trustme.CA) -> None:
    # ingress-nginx (extractTLSSecretName): a tls entry without hosts still serves the rule
    # hosts its certificate covers.
    leaf = ca.issue_cert("shop.example")
    r = certs_of(leaf_secret("s", leaf), ingress("i", [([], "s")]), SERVICE)
    assert r.diagnostics == ()
    assert r.table.select("shop.example") is not None
    assert "shop.example" in r.table.tls_hosts


def test_tls_without_secret_uses_the_default() -> None:
    r = certs_of(ingress("i", [(["shop.example"], None)]), SERVICE)
    assert r.diagnostics == ()
    assert r.table.select("shop.example") is None
    assert r.table.tls_hosts == {"shop.example"}
    assert not r.table.has_certificates


def test_ingress_of_another_class_is_ignored(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("shop.example")
    r = certs_of(
        leaf_secret("s", leaf),
        ingress("i", [(["shop.example"], "s")], class_name="other"),
        options=CompileOptions(ingress_classes=("mine",)),
    )
    assert r.table.exact == {} and r.diagnostics == ()


# Every bad-certificate diagnostic: (id, manifests builder, code, severity, field, words).
def _bad_cases(ca: trustme.CA) -> list[tuple[str, list[str], str, Severity, str, list[str]]]:
    good = ca.issue_cert("shop.example")
    cert, key = pems(good)
    _, other_key = pems(ca.issue_cert("shop.example"))
    expired = ca.issue_cert(
        "shop.example", not_before=NOW - timedelta(days=90), not_after=NOW - timedelta(days=1)
    )
    future = ca.issue_cert(
        "shop.example", not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=90)
    )
    uses = ingress("i", [(["shop.example"], "s")])
    return [
        (
            "secret-missing",
            [uses],
            "tls-secret-not-found",
            Severity.WARNING,
            "spec.tls[0].secretName",
            ["Secret shop/s not found", "cert-manager", "default certificate"],
        ),
        (
            "secret-in-other-namespace",
            [uses, leaf_secret("s", good, ns="other")],
            "tls-secret-wrong-namespace",
            Severity.ERROR,
            "spec.tls[0].secretName",
            ["Secret shop/s not found", "exists in other", "its own namespace"],
        ),
        (
            "secret-without-key",
            [uses, secret("s", cert, None, type_="Opaque")],
            "tls-secret-incomplete",
            Severity.ERROR,
            "spec.tls[0].secretName",
            ["Secret shop/s", "has no tls.key"],
        ),
        (
            "not-pem",
            [uses, secret("s", b"not a certificate", key, string_data=True)],
            "tls-not-pem",
            Severity.ERROR,
            "spec.tls[0].secretName",
            ["Secret shop/s", "tls.crt is not PEM"],
        ),
        (
            "key-mismatch",
            [uses, secret("s", cert, other_key)],
            "tls-key-mismatch",
            Severity.ERROR,
            "spec.tls[0].secretName",
            ["Secret shop/s", "does not belong"],
        ),
        (
            "expired",
            [uses, leaf_secret("s", expired)],
            "tls-expired",
            Severity.WARNING,
            "spec.tls[0].secretName",
            ["Secret shop/s", "expired on 2026-05-31"],
        ),
        (
            "not-yet-valid",
            [uses, leaf_secret("s", future)],
            "tls-not-yet-valid",
            Severity.WARNING,
            "spec.tls[0].secretName",
            ["Secret shop/s", "not valid before 2026-06-02"],
        ),
        (
            "host-not-covered",
            [ingress("i", [(["shop.example", "www.example"], "s")]), leaf_secret("s", good)],
            "tls-host-mismatch",
            Severity.WARNING,
            "spec.tls[0].hosts[1]",
            ["Secret shop/s", 'host "www.example"', "shop.example", "default certificate"],
        ),
    ]


BAD_IDS = [
    "secret-missing",
    "secret-in-other-namespace",
    "secret-without-key",
    "not-pem",
    "key-mismatch",
    "expired",
    "not-yet-valid",
    "host-not-covered",
]


@pytest.mark.parametrize("case", BAD_IDS)
def test_every_bad_certificate_diagnostic(ca: trustme.CA, case: str) -> None:
    (docs, code, severity, field, words) = next(c[1:] for c in _bad_cases(ca) if c[0] == case)
    text = "---\n".join(docs)
    m, decode_diags = load(text, "tls.yaml")
    assert decode_diags == ()
    r = compile_certs(m, OPTIONS, now=NOW)
    d = only(r, code)
    assert d.severity is severity
    assert d.obj == ObjectRef("Ingress", "shop", "i")  # names the Ingress ...
    assert d.field == field
    # ... at the line of the field (file:line like a compiler).
    lines = text.splitlines()
    ing_line = next(i for i, line in enumerate(lines, 1) if "kind: Ingress" in line)
    field_key = "secretName" if field.endswith("secretName") else '"www.example"'
    want = next(i for i, line in enumerate(lines, 1) if i > ing_line and field_key in line)
    assert d.source == Source("tls.yaml", want)
    for w in words:  # ... the Secret and the reason
        assert w in d.message, d.message
    assert "PRIVATE KEY" not in str(d)
    # Expired and not-yet-valid certificates are still served; unusable ones are not.
    usable = code in ("tls-expired", "tls-not-yet-valid", "tls-host-mismatch")
    assert (r.table.select("shop.example") is not None) is usable
    assert r.table.select("www.example") is None


def test_conflicting_certificates_oldest_ingress_wins(ca: trustme.CA) -> None:
    a, b = ca.issue_cert("shop.example"), ca.issue_cert("shop.example")
    r = certs_of(
        leaf_secret("a", a),
        leaf_secret("b", b),
        ingress("young", [(["shop.example"], "b")], created="2024-01-02T00:00:00Z"),
        ingress("old", [(["shop.example"], "a")], created="2024-01-01T00:00:00Z"),
    )
    d = only(r, "tls-conflict")
    assert d.obj == ObjectRef("Ingress", "shop", "young") and d.field == "spec.tls[0]"
    assert "shop/a" in d.message and "Ingress shop/old" in d.message
    chosen = r.table.select("shop.example")
    assert chosen is not None and chosen.name == "shop/a"


def test_broken_older_secret_does_not_block_a_younger_good_one(ca: trustme.CA) -> None:
    # ingress-nginx: a server whose certificate failed to load takes the next Ingress's.
    good = ca.issue_cert("shop.example")
    r = certs_of(
        leaf_secret("good", good),
        ingress("young", [(["shop.example"], "good")], created="2024-01-02T00:00:00Z"),
        ingress("old", [(["shop.example"], "missing")], created="2024-01-01T00:00:00Z"),
    )
    assert [d.code for d in r.diagnostics] == ["tls-secret-not-found"]
    chosen = r.table.select("shop.example")
    assert chosen is not None and chosen.name == "shop/good"


def test_same_secret_in_two_ingresses_is_no_conflict(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("shop.example")
    r = certs_of(
        leaf_secret("s", leaf),
        ingress("a", [(["shop.example"], "s")]),
        ingress("b", [(["shop.example"], "s")]),
    )
    assert r.diagnostics == ()
    (use,) = r.table.uses
    assert use.ingresses == (ObjectRef("Ingress", "shop", "a"),)


def test_default_certificate_from_a_secret(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("fallback.example")
    opts = CompileOptions(default_certificate="ops/fallback")
    r = certs_of(leaf_secret("fallback", leaf, ns="ops"), options=opts)
    assert r.diagnostics == ()
    assert r.table.default is not None and r.table.default.name == "ops/fallback"
    assert r.table.has_certificates


def test_default_certificate_secret_missing() -> None:
    r = certs_of(SERVICE, options=CompileOptions(default_certificate="ops/nope"))
    d = only(r, "tls-secret-not-found")
    assert d.severity is Severity.ERROR and d.obj == ObjectRef("Secret", "ops", "nope")
    assert "--default-certificate" in d.message and "self-signed" in d.message
    assert r.table.default is None


@pytest.mark.parametrize(
    ("value", "ref"),
    [
        (None, None),
        ("ops/tls", ("ops", "tls")),
        ("tls", ("default", "tls")),
        ("cert.pem,key.pem", None),
    ],
)
def test_default_secret_ref(value: str | None, ref: tuple[str, str] | None) -> None:
    assert default_secret_ref(value) == ref


def test_dump_certs_has_names_expiry_and_no_key(ca: trustme.CA) -> None:
    na = datetime(2026, 7, 1, tzinfo=UTC)
    leaf = ca.issue_cert("shop.example", not_after=na)
    r = certs_of(leaf_secret("s", leaf), ingress("i", [(["shop.example"], "s")]))
    (entry,) = dump_certs(r.table, NOW)
    assert entry["name"] == "shop/s" and entry["role"] == "sni"
    assert entry["names"] == ["shop.example"] and entry["hosts"] == ["shop.example"]
    assert entry["notAfter"] == "2026-07-01T00:00:00Z" and entry["daysLeft"] == 30
    assert entry["expired"] is False and entry["ingresses"] == ["shop/i"]
    assert not any("PRIVATE" in str(v) or "BEGIN" in str(v) for v in entry.values())
    fallback = load_key_pair(*pems(ca.issue_cert("x.example")), name="self")
    assert [e["role"] for e in dump_certs(r.table, NOW, fallback)] == ["sni", "default"]


# =========================================================================== entry points


def _ing_with(annotations: dict[str, str]) -> str:
    return ingress("i", annotations=annotations)


@pytest.mark.parametrize(
    ("value", "eps", "unknown"),
    [
        ("web, websecure", {EntryPoint.WEB, EntryPoint.WEBSECURE}, ()),
        ("websecure", {EntryPoint.WEBSECURE}, ()),
        (" web ", {EntryPoint.WEB}, ()),
        ("", {EntryPoint.WEB, EntryPoint.WEBSECURE}, ()),
        ("web,traefik", {EntryPoint.WEB}, ("traefik",)),
        ("metrics", set(), ("metrics",)),
    ],
)
def test_entrypoints_annotation(value: str, eps: set[EntryPoint], unknown: tuple[str, ...]) -> None:
    (ing,) = manifests(
        _ing_with({"traefik.ingress.kubernetes.io/router.entrypoints": value})
    ).ingresses
    assert entrypoints_of(ing) == (frozenset(eps), unknown)


def test_no_entrypoints_annotation_serves_both() -> None:
    (ing,) = manifests(ingress("i")).ingresses
    assert entrypoints_of(ing) == (frozenset(EntryPoint), ())


def test_two_tables_only_when_an_ingress_restricts_them() -> None:
    m = manifests(ingress("both", hosts=["both.example"]), SERVICE)
    result, eps = compile_routes(m, OPTIONS, compile_certs(m, OPTIONS, now=NOW).table)
    assert eps.websecure is None and eps.table(result.table, True) is result.table

    ep = "traefik.ingress.kubernetes.io/router.entrypoints"
    m = manifests(
        ingress("both", hosts=["both.example"]),
        ingress("plain", hosts=["plain.example"], annotations={ep: "web"}),
        ingress("secure", hosts=["secure.example"], annotations={ep: "websecure"}),
        SERVICE,
    )
    result, eps = compile_routes(m, OPTIONS, compile_certs(m, OPTIONS, now=NOW).table)
    web, tls = eps.table(result.table, False), eps.table(result.table, True)
    assert tls is eps.websecure and web is result.table
    assert {h for h in web.exact_hosts} == {"both.example", "plain.example"}
    assert {h for h in tls.exact_hosts} == {"both.example", "secure.example"}
    assert result.routes == 3  # both (once), plain, secure


def test_unknown_entrypoint_is_reported() -> None:
    ep = "traefik.ingress.kubernetes.io/router.entrypoints"
    m = manifests(ingress("i", annotations={ep: "traefik"}), SERVICE)
    result, eps = compile_routes(m, OPTIONS, compile_certs(m, OPTIONS, now=NOW).table)
    (d,) = [d for d in result.diagnostics if d.code == "unknown-entrypoint"]
    assert d.field == f"metadata.annotations.{ep}" and '"traefik"' in d.message
    assert "no traffic" in d.message
    assert eps.websecure is not None and not eps.websecure.exact_hosts
    assert not result.table.exact_hosts


# =========================================================================== redirects

SSL = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE = "nginx.ingress.kubernetes.io/force-ssl-redirect"
ING = ObjectRef("Ingress", "shop", "i")


def _redirects(
    *docs: str, flavor: Flavor = Flavor.SPEC
) -> tuple[frozenset[tuple[ObjectRef, str | None]], tuple[Diagnostic, ...]]:
    """(Ingress, host) of every router that carries a redirect to HTTPS, and the diagnostics."""
    m = manifests(*docs, SERVICE)
    opts = CompileOptions(flavor=flavor)
    result, _ = compile_routes(m, opts, compile_certs(m, opts, now=NOW).table)
    redirects = frozenset(
        (r.ingress, r.host)
        for r in result.table.routes()
        if any(isinstance(f, RedirectScheme) and f.status == SSL_REDIRECT_STATUS for f in r.filters)
    )
    return redirects, result.diagnostics


@pytest.mark.parametrize(
    ("annotations", "tls", "flavor", "expected"),
    [
        # ingress-nginx: ssl-redirect defaults to true for hosts with a TLS section.
        pytest.param({}, True, Flavor.NGINX, {(ING, "shop.example")}, id="nginx-default-tls"),
        pytest.param({}, False, Flavor.NGINX, set(), id="nginx-default-no-tls"),
        pytest.param({SSL: "false"}, True, Flavor.NGINX, set(), id="nginx-ssl-redirect-off"),
        # The spec and Traefik never redirect on their own (conformance: http://foo.bar.com 200).
        pytest.param({}, True, Flavor.SPEC, set(), id="spec-no-implicit"),
        pytest.param({}, True, Flavor.TRAEFIK, set(), id="traefik-no-implicit"),
        pytest.param({SSL: "true"}, True, Flavor.SPEC, {(ING, "shop.example")}, id="spec-explicit"),
        pytest.param({SSL: "true"}, False, Flavor.SPEC, set(), id="explicit-needs-tls"),
        pytest.param({FORCE: "true"}, False, Flavor.SPEC, {(ING, "shop.example")}, id="force"),
        pytest.param(
            {FORCE: "True", SSL: "false"},
            False,
            Flavor.NGINX,
            {(ING, "shop.example")},
            id="force-wins",
        ),
    ],
)
def test_ssl_redirects(
    annotations: dict[str, str], tls: bool, flavor: Flavor, expected: set[object]
) -> None:
    doc = ingress("i", [(["shop.example"], None)] if tls else [], annotations=annotations)
    redirects, diags = _redirects(doc, flavor=flavor)
    assert redirects == expected
    assert [d for d in diags if d.code == "invalid-annotation"] == []


def test_invalid_redirect_annotation_is_reported() -> None:
    redirects, diags = _redirects(ingress("i", annotations={FORCE: "yes"}))
    assert redirects == frozenset()
    (d,) = [d for d in diags if d.code == "invalid-annotation"]
    assert d.field == f"metadata.annotations.{FORCE}" and '"yes" is not a boolean' in d.message


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, (SSL_REDIRECT_STATUS, "https://shop.example:8443/a%20b?q=1")),
        ({"scheme": "https"}, None),  # already on the TLS listener: passes
        ({"https_port": None}, None),  # no TLS listener to send it to
        ({"entry": True, "method": "GET"}, (301, "https://shop.example:8443/a%20b?q=1")),
        ({"entry": True, "method": "POST"}, (308, "https://shop.example:8443/a%20b?q=1")),
        ({"https_port": 443}, (308, "https://shop.example/a%20b?q=1")),
        ({"host": "evil.example/x"}, None),
        ({"host": ""}, None),
        ({"host": "[::1]", "entry": True}, (301, "https://[::1]:8443/a%20b?q=1")),
    ],
)
def test_redirect_scheme_filter(kw: dict[str, object], expected: tuple[int, str] | None) -> None:
    # `entry`: --redirect-to-https, Traefik's permanent RedirectScheme (301 for GET, else 308).
    f = RedirectScheme(None) if kw.pop("entry", False) else RedirectScheme(SSL_REDIRECT_STATUS)
    req: dict[str, object] = {
        "method": "GET",
        "scheme": "http",
        "host": "shop.example",
        "target": "/a%20b?q=1",
        "https_port": 8443,
    }
    req.update(kw)
    answer = f.on_request(FilterRequest(**req))  # type: ignore[arg-type]
    got = None if answer is None else (answer.status, dict(answer.headers)["location"])
    assert got == expected
    if answer is not None:
        assert answer.body == f"{answer.status} redirect to {got and got[1]}\n"


def test_redirect_url_helper() -> None:
    assert https_url("a.example", 443, "/") == "https://a.example/"
    assert https_url("a.example", 8443, "/x") == "https://a.example:8443/x"


# =========================================================================== upstream scheme


def _backend_scheme(service: str, ingress_annotations: dict[str, str] | None = None) -> str:
    slice_ = (
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n"
        "  namespace: shop\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n"
        "ports: [{name: p, port: 9443}]\nendpoints: [{addresses: [10.0.0.1]}]\n"
    )
    doc = ingress("i", annotations=ingress_annotations).replace(
        "port: {number: 80}", "port: {name: p}"
    )
    m = manifests(doc, service, slice_)
    result, _ = compile_routes(m, OPTIONS, compile_certs(m, OPTIONS, now=NOW).table)
    match = result.table.match("shop.example", "/")
    assert match.route is not None
    (ep,) = match.route.backend.endpoints
    assert ep.base_url == f"{ep.scheme}://10.0.0.1:9443"
    return ep.scheme


def _svc(port: str, annotations: str = "") -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n{annotations}"
        f"spec:\n  ports: [{port}]\n"
    )


@pytest.mark.parametrize(
    ("service", "ingress_annotations", "scheme"),
    [
        pytest.param(_svc("{name: p, port: 80}"), None, "http", id="plain"),
        pytest.param(_svc("{name: p, port: 443}"), None, "https", id="port-443"),
        pytest.param(
            _svc(
                "{name: p, port: 80}",
                "  annotations:\n    traefik.ingress.kubernetes.io/service.serversscheme: https\n",
            ),
            None,
            "https",
            id="traefik-serversscheme",
        ),
        pytest.param(
            _svc("{name: p, port: 80}"),
            {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"},
            "https",
            id="nginx-backend-protocol",
        ),
        pytest.param(
            _svc("{name: p, port: 443}"),
            {"nginx.ingress.kubernetes.io/backend-protocol": "HTTP"},
            "http",
            id="ingress-says-http",
        ),
    ],
)
def test_upstream_scheme(
    service: str, ingress_annotations: dict[str, str] | None, scheme: str
) -> None:
    assert _backend_scheme(service, ingress_annotations) == scheme


def test_https_named_port_is_https() -> None:
    svc = _svc("{name: https-web, port: 8443}")
    slice_ = (
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n"
        "  namespace: shop\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n"
        "ports: [{name: https-web, port: 9443}]\nendpoints: [{addresses: [10.0.0.1]}]\n"
    )
    doc = ingress("i").replace("port: {number: 80}", "port: {name: https-web}")
    m = manifests(doc, svc, slice_)
    result, _ = compile_routes(m, OPTIONS, compile_certs(m, OPTIONS, now=NOW).table)
    route = result.table.match("shop.example", "/").route
    assert route is not None and route.backend.endpoints[0].scheme == "https"


def test_unsupported_backend_protocol_is_reported() -> None:
    annotation = "nginx.ingress.kubernetes.io/backend-protocol"
    m = manifests(ingress("i", annotations={annotation: "GRPC"}), SERVICE)
    result, _ = compile_routes(m, OPTIONS, compile_certs(m, OPTIONS, now=NOW).table)
    (d,) = [d for d in result.diagnostics if d.code == "unsupported-backend-protocol"]
    assert '"GRPC"' in d.message and d.field == f"metadata.annotations.{annotation}"
