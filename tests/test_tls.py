"""End to end over TLS through real sockets: the `websecure` listener picking certificates by
SNI (three hosts, a wildcard, the default), certificates swapped under an open connection, entry
points per Ingress, redirects, HTTPS upstreams, and `check` reporting bad certificates.

Certificates are made at test time (trustme); Secrets are written next to the fixture
tests/fixtures/tls/sni/ (Ingresses and Services), EndpointSlices name real echo backends.
"""

from __future__ import annotations

import io
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from e2e import TESTS, Cluster, Served, cluster, echo, run_proxy

from ingressproxy.cli.main import main
from ingressproxy.frontends.certs import CertTable
from ingressproxy.ir.snapshot import Snapshot
from ingressproxy.ir.table import RouteTable
from ingressproxy.server.settings import Settings, SettingsError
from ingressproxy.server.tls import (
    DEFAULT_HTTPS_PORT,
    SELF_SIGNED_NAME,
    default_certificate,
    https_port_for,
    self_signed_certificate,
)
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import serve_in_thread

FIXTURE = TESTS / "fixtures" / "tls" / "sni"
NS = "tls-sni"

# --------------------------------------------------------------------------- helpers


def secret_yaml(name: str, leaf: trustme.LeafCert, ns: str = NS) -> str:
    """A kubernetes.io/tls Secret with the PEM under stringData, as people write them by hand."""

    def block(pem: bytes) -> str:
        return textwrap.indent(pem.decode(), "    ")

    chain = b"".join(p.bytes() for p in leaf.cert_chain_pems)
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        "type: kubernetes.io/tls\nstringData:\n"
        f"  tls.crt: |\n{block(chain)}  tls.key: |\n{block(leaf.private_key_pem.bytes())}"
    )


def fingerprint(leaf: trustme.LeafCert) -> str:
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def _insecure() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we look at what is served, whoever signed it
    return ctx


def served_cert(port: int, sni: str | None) -> x509.Certificate:
    """The certificate the listener presents to a client sending `sni` (None: no SNI)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        _insecure().wrap_socket(raw, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def common_name(cert: x509.Certificate) -> str:
    (attr,) = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(attr.value)


def https_port(served: Served) -> int:
    listener = served.app.state.https
    assert listener is not None, "the HTTPS listener is not running"
    return int(listener.port)


def https_client(ca: trustme.CA) -> httpx.Client:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return httpx.Client(verify=ctx, trust_env=False, follow_redirects=False, timeout=10.0)


def https_get(
    client: httpx.Client, port: int, host: str, path: str = "/", method: str = "GET"
) -> httpx.Response:
    """A request for https://host/path sent to the listener: SNI and Host are `host`, and the
    certificate is verified for that name."""
    return client.request(
        method,
        f"https://127.0.0.1:{port}{path}",
        headers={"Host": host},
        extensions={"sni_hostname": host},
    )


class Raw:
    """One TLS connection kept open across requests (HTTP/1.1 keep-alive), to see what happens
    to an established connection when certificates change."""

    def __init__(self, port: int, sni: str) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = _insecure().wrap_socket(raw, server_hostname=sni)
        self.buf = b""

    def cert(self) -> x509.Certificate:
        der = self.sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def get(self, host: str, path: str = "/") -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
        status, length = int(status_line.split()[1]), int(headers["content-length"])
        while len(self.buf) < length:
            self.buf += self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def leaves(ca: trustme.CA) -> dict[str, trustme.LeafCert]:
    return {
        "alpha": ca.issue_cert("alpha.example"),
        "beta": ca.issue_cert("beta.example"),
        "gamma": ca.issue_cert("gamma.example"),
        "wild": ca.issue_cert("*.wild.example"),
    }


def secrets(leaves: dict[str, trustme.LeafCert]) -> dict[str, str]:
    return {f"secret-{n}.yaml": secret_yaml(f"{n}-tls", leaf) for n, leaf in leaves.items()}


@pytest.fixture(scope="module")
def pods() -> Iterator[Cluster]:
    with cluster(FIXTURE) as running:
        yield running


@pytest.fixture(scope="module")
def sni(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = pods.write(tmp_path_factory.mktemp("tls") / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0) as served:
        yield served


# =========================================================================== SNI


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("alpha", "alpha.example"),
        ("beta", "beta.example"),
        ("gamma", "gamma.example"),
        ("alpha", "ALPHA.example"),  # SNI names are compared case-insensitively
        ("wild", "one.wild.example"),
        ("wild", "two.wild.example"),
    ],
)
def test_sni_selects_the_certificate(
    sni: Served, leaves: dict[str, trustme.LeafCert], name: str, host: str
) -> None:
    assert sha256(served_cert(https_port(sni), host)) == fingerprint(leaves[name])


@pytest.mark.parametrize(
    "host",
    [
        None,  # no SNI at all (a client connecting by IP address)
        "unknown.example",
        "wild.example",  # the wildcard covers exactly one more label ...
        "a.b.wild.example",  # ... not two
    ],
    ids=["no-sni", "unknown-name", "wildcard-zero-labels", "wildcard-two-labels"],
)
def test_unmatched_names_get_the_self_signed_default(sni: Served, host: str | None) -> None:
    cert = served_cert(https_port(sni), host)
    assert common_name(cert) == SELF_SIGNED_NAME
    assert cert.issuer == cert.subject
    assert sha256(cert) == sni.app.state.https.fallback.fingerprint


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("alpha.example", "alpha"),
        ("beta.example", "beta"),
        ("gamma.example", "gamma"),
        ("x.wild.example", "wild"),
    ],
)
def test_verified_https_request_reaches_the_backend(
    sni: Served, ca: trustme.CA, host: str, service: str
) -> None:
    with https_client(ca) as client:
        r = https_get(client, https_port(sni), host, "/p?q=1")
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.namespace, e.service, e.host, e.target) == (NS, service, host, "/p?q=1")
    # docs/tls.md: the TLS listener says so to the backend.
    assert e.header("X-Forwarded-Proto") == "https"
    assert e.header("X-Forwarded-Port") == str(https_port(sni))


def test_plain_listener_forwards_proto_http(sni: Served) -> None:
    e = echo(sni.get("/", host="alpha.example"))
    assert e.service == "alpha" and e.header("X-Forwarded-Proto") == "http"


def test_default_certificate_does_not_verify_for_a_host(sni: Served, ca: trustme.CA) -> None:
    # redirect.example has a TLS section without a Secret: it is served with the default
    # certificate, which a verifying client refuses.
    with https_client(ca) as client, pytest.raises(httpx.ConnectError):
        https_get(client, https_port(sni), "redirect.example")


# =========================================================================== default certificate


def test_default_certificate_from_files(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], ca: trustme.CA, tmp_path: Path
) -> None:
    fallback = ca.issue_cert("fallback.example")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(fallback.cert_chain_pems[0].bytes())
    key.write_bytes(fallback.private_key_pem.bytes())
    folder = pods.write(tmp_path / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0, default_certificate=f"{cert},{key}") as served:
        port = https_port(served)
        assert sha256(served_cert(port, None)) == fingerprint(fallback)
        assert sha256(served_cert(port, "unknown.example")) == fingerprint(fallback)
        assert sha256(served_cert(port, "beta.example")) == fingerprint(leaves["beta"])


def test_default_certificate_from_a_secret(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], ca: trustme.CA, tmp_path: Path
) -> None:
    fallback = ca.issue_cert("fallback.example")
    extra = {**secrets(leaves), "fallback.yaml": secret_yaml("fallback", fallback, ns="ops")}
    folder = pods.write(tmp_path / "m", extra=extra)
    with run_proxy(folder, https_port=0, default_certificate="ops/fallback") as served:
        port = https_port(served)
        assert sha256(served_cert(port, None)) == fingerprint(fallback)
        assert sha256(served_cert(port, "redirect.example")) == fingerprint(fallback)
        assert sha256(served_cert(port, "gamma.example")) == fingerprint(leaves["gamma"])


def test_unusable_default_certificate_files_are_refused(ca: trustme.CA, tmp_path: Path) -> None:
    # start_https loads them before binding: the app's startup fails with this message.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(ca.issue_cert("a.example").cert_chain_pems[0].bytes())
    key.write_bytes(ca.issue_cert("a.example").private_key_pem.bytes())  # another key
    settings = Settings(https_port=0, default_certificate=f"{cert},{key}")
    with pytest.raises(SettingsError, match=r"--default-certificate .*cert\.pem: tls\.key does"):
        default_certificate(settings)
    with pytest.raises(SettingsError, match="No such file"):
        default_certificate(Settings(default_certificate=f"{cert},{tmp_path / 'nope.pem'}"))
    with pytest.raises(SettingsError, match=r"is not CERT\.pem,KEY\.pem"):
        default_certificate(Settings(default_certificate=f"{cert},"))


# =========================================================================== hot swap


def test_certificate_swap_keeps_open_connections_and_serves_new_handshakes(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], ca: trustme.CA, tmp_path: Path
) -> None:
    folder = pods.write(tmp_path / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0, watch=True) as served:
        port = https_port(served)
        holder = served.app.state.holder
        before = Raw(port, "alpha.example")
        try:
            assert before.get("alpha.example")[0] == 200
            assert sha256(before.cert()) == fingerprint(leaves["alpha"])

            renewed = ca.issue_cert("alpha.example")
            generation = holder.current.generation
            (folder / "secret-alpha.yaml").write_text(secret_yaml("alpha-tls", renewed))
            assert holder.wait_for_generation(generation + 1, timeout=20)

            # The open connection is the same TLS session: still answered, old certificate.
            status, body = before.get("alpha.example", "/after")
            assert status == 200 and b'"/after"' in body
            assert sha256(before.cert()) == fingerprint(leaves["alpha"])
            # A new handshake gets the new certificate, without restarting the listener.
            assert served.app.state.https.port == port
            assert sha256(served_cert(port, "alpha.example")) == fingerprint(renewed)
            with https_client(ca) as client:
                assert https_get(client, port, "alpha.example").status_code == 200
            # The other hosts keep theirs.
            assert sha256(served_cert(port, "beta.example")) == fingerprint(leaves["beta"])
        finally:
            before.close()


def test_certificate_removed_falls_back_to_the_default(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], tmp_path: Path
) -> None:
    folder = pods.write(tmp_path / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0, watch=True) as served:
        port = https_port(served)
        holder = served.app.state.holder
        generation = holder.current.generation
        (folder / "secret-gamma.yaml").unlink()
        assert holder.wait_for_generation(generation + 1, timeout=20)
        assert common_name(served_cert(port, "gamma.example")) == SELF_SIGNED_NAME
        # A Secret missing from the folder is a warning (cert-manager makes it in the
        # cluster): the host keeps HTTPS with the default certificate, no failed reload.
        codes = {(d.code, str(d.obj)) for d in holder.current.warnings}
        assert ("tls-secret-not-found", "Ingress tls-sni/gamma") in codes
        assert holder.current.errors == ()


# =========================================================================== entry points


@pytest.mark.parametrize(
    ("host", "on_web", "on_websecure"),
    [
        ("plain.example", 200, 200),  # no annotation: both entry points
        ("secure.example", 404, 200),  # router.entrypoints: websecure
        ("web.example", 200, 404),  # router.entrypoints: web
    ],
)
def test_entrypoints_per_ingress(
    sni: Served, ca: trustme.CA, host: str, on_web: int, on_websecure: int
) -> None:
    assert sni.get("/", host=host).status_code == on_web
    with https_client(ca) as client:
        r = client.get(
            f"https://127.0.0.1:{https_port(sni)}/",
            headers={"Host": host},
            extensions={"sni_hostname": "alpha.example"},  # any name the CA vouches for
        )
    assert r.status_code == on_websecure, r.text


# =========================================================================== redirects


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
@pytest.mark.parametrize("host", ["redirect.example", "forced.example"])
def test_ssl_redirect(sni: Served, host: str, method: str) -> None:
    r = sni.request(method, "/a/b?x=1", host=f"{host}:8080")
    # ingress-nginx: http-redirect-code 308 (keeps the method), to the same host and target.
    assert r.status_code == 308
    assert r.headers["location"] == f"https://{host}:{https_port(sni)}/a/b?x=1"


def test_redirect_target_is_served(sni: Served) -> None:
    r = sni.get("/x", host="forced.example")
    assert r.headers["location"] == f"https://forced.example:{https_port(sni)}/x"
    with httpx.Client(verify=_insecure(), trust_env=False) as client:
        follow = client.get(
            f"https://127.0.0.1:{https_port(sni)}/x", headers={"Host": "forced.example"}
        )
    assert follow.status_code == 200 and echo(follow).path == "/x"


def test_no_redirect_without_annotations(sni: Served) -> None:
    # Flavor spec: a host with a TLS section is still served over plain HTTP (the conformance
    # suite's http://foo.bar.com scenario), unless an annotation asks for a redirect.
    assert sni.get("/", host="alpha.example").status_code == 200


def test_no_redirect_when_https_is_off(pods: Cluster, tmp_path: Path) -> None:
    folder = pods.write(tmp_path / "m")
    with run_proxy(folder, https_port=None) as served:
        assert served.app.state.https is None
        assert served.get("/", host="forced.example").status_code == 200


@pytest.mark.parametrize(("method", "status"), [("GET", 301), ("POST", 308), ("PUT", 308)])
def test_redirect_to_https_flag(pods: Cluster, tmp_path: Path, method: str, status: int) -> None:
    folder = pods.write(tmp_path / "m")
    with run_proxy(folder, https_port=0, redirect_to_https=True) as served:
        port = https_port(served)
        for host in ("plain.example", "no-route.example"):  # before routing, like Traefik
            r = served.request(method, "/p?q", host=host)
            assert r.status_code == status
            assert r.headers["location"] == f"https://{host}:{port}/p?q"
        with httpx.Client(verify=_insecure(), trust_env=False) as client:
            ok = client.get(f"https://127.0.0.1:{port}/", headers={"Host": "plain.example"})
        assert ok.status_code == 200  # never redirected on the TLS listener itself


# =========================================================================== auto port


def test_auto_port_stays_off_without_certificates(pods: Cluster, tmp_path: Path) -> None:
    folder = pods.write(tmp_path / "m")  # TLS sections, but no Secret at all
    with run_proxy(folder) as served:  # https_port defaults to "auto"
        assert served.app.state.https is None
        assert served.get("/", host="plain.example").status_code == 200


def test_auto_port_rule() -> None:
    empty = Snapshot(RouteTable())
    cert = self_signed_certificate()
    with_cert = Snapshot(RouteTable(), certs=CertTable(exact={"a.example": cert}))
    assert https_port_for(Settings(), empty) is None
    assert https_port_for(Settings(), with_cert) == DEFAULT_HTTPS_PORT
    assert https_port_for(Settings(default_certificate="ops/tls"), empty) == DEFAULT_HTTPS_PORT
    assert https_port_for(Settings(https_port=None), with_cert) is None
    assert https_port_for(Settings(https_port=9443), empty) == 9443


# =========================================================================== HTTPS upstreams


UPSTREAM = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: up, namespace: up{annotations}}}
spec:
  rules:
    - host: up.example
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: secure, port: {{name: {port}}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: secure, namespace: up}}
spec:
  ports: [{{name: {port}, port: {number}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: secure-1
  namespace: up
  labels: {{kubernetes.io/service-name: secure}}
addressType: IPv4
ports: [{{name: {port}, port: {backend}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
"""


@pytest.fixture(scope="module")
def tls_backend(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An echo backend that speaks only HTTPS, with a certificate for 127.0.0.1."""
    leaf = ca.issue_cert("127.0.0.1")
    d = tmp_path_factory.mktemp("backend")
    cert, key = d / "cert.pem", d / "key.pem"
    cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    app = create_echo_app("secure", pod="secure-0", namespace="up")
    with serve_in_thread(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as server:
        yield server.port


def upstream_folder(
    tmp_path: Path, backend: int, port: str, number: int, annotations: str = ""
) -> Path:
    folder = tmp_path / "up"
    folder.mkdir()
    text = UPSTREAM.format(port=port, number=number, backend=backend, annotations=annotations)
    (folder / "up.yaml").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("port", "number", "annotations"),
    [
        pytest.param("https", 8443, "", id="port-named-https"),
        pytest.param("web", 443, "", id="port-443"),
        pytest.param(
            "web",
            8080,
            ", annotations: {nginx.ingress.kubernetes.io/backend-protocol: HTTPS}",
            id="nginx-backend-protocol",
        ),
    ],
)
def test_https_upstream(
    tls_backend: int, tmp_path: Path, port: str, number: int, annotations: str
) -> None:
    folder = upstream_folder(tmp_path, tls_backend, port, number, annotations)
    with run_proxy(folder, https_port=None) as served:
        r = served.get("/hello", host="up.example")
    assert r.status_code == 200, r.text
    e = echo(r)
    assert (e.service, e.path, e.host) == ("secure", "/hello", "up.example")


def test_plain_upstream_to_a_tls_backend_fails(tls_backend: int, tmp_path: Path) -> None:
    folder = upstream_folder(tmp_path, tls_backend, "web", 8080)
    with run_proxy(folder, https_port=None) as served:
        assert served.get("/", host="up.example").status_code == 502


def test_upstream_verification_with_a_ca(tls_backend: int, ca: trustme.CA, tmp_path: Path) -> None:
    folder = upstream_folder(tmp_path, tls_backend, "https", 443)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with run_proxy(folder, https_port=None, upstream_tls_verify=True, upstream_ca=bundle) as s:
        assert s.get("/", host="up.example").status_code == 200
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with run_proxy(folder, https_port=None, upstream_tls_verify=True, upstream_ca=other) as s:
        assert s.get("/", host="up.example").status_code == 502


# =========================================================================== check


def test_check_reports_every_bad_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    good = ca.issue_cert("good.example")
    expired = ca.issue_cert(
        "old.example", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    other_key = ca.issue_cert("mismatch.example")
    mismatch = secret_yaml("mismatch", ca.issue_cert("mismatch.example")).split("  tls.key:")[0]
    mismatch += "  tls.key: |\n" + textwrap.indent(
        other_key.private_key_pem.bytes().decode(), "    "
    )

    def ing(name: str, host: str, secret: str) -> str:
        return (
            f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name},"
            f" namespace: {NS}}}\nspec:\n  tls:\n    - hosts: [{host}]\n      secretName:"
            f" {secret}\n  rules:\n    - host: {host}\n"
        )

    docs = [
        ing("missing", "missing.example", "nope"),
        ing("elsewhere", "elsewhere.example", "moved"),
        secret_yaml("moved", good, ns="other"),
        ing("notpem", "notpem.example", "garbage"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: garbage, namespace: tls-sni}\n"
        "type: kubernetes.io/tls\nstringData: {tls.crt: hello, tls.key: world}\n",
        ing("mismatch", "mismatch.example", "mismatch"),
        mismatch,
        ing("expired", "old.example", "old"),
        secret_yaml("old", expired),
        ing("uncovered", "other.example", "good"),
        secret_yaml("good", good),
    ]
    folder = tmp_path / "m"
    folder.mkdir()
    text = "---\n".join(docs)
    (folder / "tls.yaml").write_text(text)
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["check", str(folder)])
    report = out.getvalue()
    assert status == 1, report  # errors
    lines = text.splitlines()

    def line_of(ingress: str, needle: str) -> int:
        start = next(i for i, line in enumerate(lines, 1) if f"name: {ingress}," in line)
        return next(i for i, line in enumerate(lines, 1) if i > start and needle in line)

    expected = [
        ("missing", "secretName", "warning", "Secret tls-sni/nope not found"),
        ("elsewhere", "secretName", "error", "exists in other"),
        ("notpem", "secretName", "error", "tls.crt is not PEM"),
        ("mismatch", "secretName", "error", "tls.key does not belong to the certificate"),
        ("expired", "secretName", "warning", "certificate expired on"),
        ("uncovered", "hosts", "warning", 'does not cover host "other.example"'),
    ]
    for name, needle, severity, words in expected:
        where = f"{folder / 'tls.yaml'}:{line_of(name, needle)}: {severity}: Ingress {NS}/{name}:"
        found = [line for line in report.splitlines() if line.startswith(where)]
        assert found and words in found[0], f"{where} ... {words}\n{report}"
    for leaf in (good, expired, other_key):  # no key material, not even a line of it
        body = leaf.private_key_pem.bytes().decode().splitlines()[1]
        assert body not in report and "PRIVATE KEY-----" not in report


# =========================================================================== admin


def test_admin_lists_the_websecure_entrypoint(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], tmp_path: Path
) -> None:
    folder = pods.write(tmp_path / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0, admin_port=0) as served:
        admin = served.app.state.admin_port
        with httpx.Client(trust_env=False) as client:
            eps = client.get(f"http://127.0.0.1:{admin}/api/entrypoints").json()
    names = {e["name"]: e["address"] for e in eps}
    assert names["websecure"] == f"127.0.0.1:{https_port(served)}"
    assert "web" in names and "admin" in names


def test_admin_lists_certificates_without_key_material(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], tmp_path: Path
) -> None:
    folder = pods.write(tmp_path / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0, admin_port=0) as served:
        admin = served.app.state.admin_port
        with httpx.Client(trust_env=False) as client:
            r = client.get(f"http://127.0.0.1:{admin}/api/tls/certificates")
    assert r.status_code == 200
    certs = r.json()
    assert certs, "no certificates listed"
    text = r.text
    for leaf in leaves.values():
        assert leaf.private_key_pem.bytes().decode().splitlines()[1] not in text
    assert "PRIVATE KEY" not in text
    assert all(c["notAfter"] and c["names"] for c in certs), certs[0]
    assert any(c["role"] == "sni" for c in certs)


def test_https_listener_enforces_the_same_head_limits(
    pods: Cluster, leaves: dict[str, trustme.LeafCert], ca: trustme.CA, tmp_path: Path
) -> None:
    folder = pods.write(tmp_path / "m", extra=secrets(leaves))
    with run_proxy(folder, https_port=0, max_headers=10) as served, https_client(ca) as client:
        port = https_port(served)
        assert https_get(client, port, "alpha.example").status_code == 200
        many = {f"x-h{i}": "v" for i in range(20)}
        r = client.get(
            f"https://127.0.0.1:{port}/",
            headers={"Host": "alpha.example", **many},
            extensions={"sni_hostname": "alpha.example"},
        )
        assert r.status_code == 431


def test_a_secret_made_in_the_cluster_does_not_fail_check(tmp_path: Path) -> None:
    """cert-manager creates the TLS Secret in the cluster, so the folder lacks it: `check`
    warns and exits 0 (1 only under --strict), through the real command."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "app.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\n"
        "  namespace: shop\n  annotations: {cert-manager.io/cluster-issuer: letsencrypt}\n"
        "spec:\n  tls: [{hosts: [shop.example], secretName: shop-tls}]\n"
        "  rules: [{host: shop.example}]\n"
    )
    command = [sys.executable, "-m", "ingressproxy", "check", str(folder)]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "warning: Ingress shop/app: spec.tls[0].secretName: Secret shop/shop-tls" in plain.stdout
    strict = subprocess.run([*command, "--strict"], capture_output=True, text=True, timeout=60)
    assert strict.returncode == 1, strict.stdout + strict.stderr
