"""The `websecure` listener: TLS terminated in-process, the certificate chosen per SNI name from
the current snapshot's CertTable; the default certificate; the TLS settings for HTTPS upstreams.

Flow: app lifespan -> start_https(...) -> EmbeddedServer(stack.listener_config(..., "websecure",
ssl=SNISelector.context)) -> the same app as the plain listener (the proxy routes by
scope["scheme"] == "https"). The I/O edge of TLS.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp

from ..frontends.certs import Certificate, CertificateError, CertOrigin, load_key_pair
from ..ir.snapshot import Snapshot, SnapshotHolder
from .embedded import EmbeddedServer
from .settings import HTTPS_AUTO, Settings, SettingsError

__all__ = [
    "DEFAULT_HTTPS_PORT",
    "SELF_SIGNED_NAME",
    "HTTPSListener",
    "SNISelector",
    "default_certificate",
    "https_port_for",
    "load_certificate_files",
    "self_signed_certificate",
    "server_context",
    "start_https",
    "upstream_verify",
]

log = logging.getLogger("ingressproxy.tls")

DEFAULT_HTTPS_PORT = 8443
# In the subject of the certificate made at start, so a browser's certificate viewer says it.
SELF_SIGNED_NAME = "ingressproxy self-signed default certificate"


# --------------------------------------------------------------------------- certificates


def server_context(cert: Certificate) -> ssl.SSLContext:
    """A TLS server context serving `cert` (TLS 1.2+, HTTP/1.1 by ALPN, as uvicorn speaks).

    The ssl module loads keys only from files: the PEM goes to a file readable by us alone
    (mode 0600 in a private temporary directory) for the duration of the load.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="ingressproxy-tls-") as tmp:
        path = os.path.join(tmp, "pair.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert.key_pem + cert.chain_pem)
        ctx.load_cert_chain(path)
    return ctx


def self_signed_certificate(now: dt.datetime | None = None) -> Certificate:
    """A fresh self-signed certificate (P-256, one year) for clients nothing else matches, like
    Traefik's "TRAEFIK DEFAULT CERT" and ingress-nginx's "Fake Certificate"."""
    now = dt.datetime.now(dt.UTC) if now is None else now
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, SELF_SIGNED_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ingressproxy"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("ingressproxy.invalid")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return load_key_pair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        name=f"{SELF_SIGNED_NAME} (generated at start)",
        origin=CertOrigin.GENERATED,
    )


def load_certificate_files(spec: str) -> Certificate:
    """`--default-certificate CERT.pem,KEY.pem`, read once at start. SettingsError says what is
    wrong with them (unreadable, not PEM, key not matching)."""
    cert_path, _, key_path = (p.strip() for p in spec.partition(","))
    if not cert_path or not key_path:
        raise SettingsError(f"--default-certificate: {spec!r} is not CERT.pem,KEY.pem")
    try:
        cert_pem = Path(cert_path).read_bytes()
        key_pem = Path(key_path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"--default-certificate: {exc}") from None
    try:
        return load_key_pair(cert_pem, key_pem, name=cert_path, origin=CertOrigin.FILE)
    except CertificateError as exc:
        raise SettingsError(f"--default-certificate {cert_path}: {exc.message}") from None


def default_certificate(settings: Settings) -> Certificate:
    """The listener's own default: the files of --default-certificate, else self-signed. (A
    default that names a Secret lives in each snapshot's CertTable and wins over this one.)"""
    spec = settings.default_certificate
    if spec is not None and "," in spec:
        return load_certificate_files(spec)
    return self_signed_certificate()


# --------------------------------------------------------------------------- SNI


class SNISelector:
    """Picks the certificate of each TLS handshake from the holder's *current* snapshot, so
    certificates change with the folder while the listener and its open connections stay.

    `context` carries the fallback certificate (clients without SNI get it unless the snapshot
    has a default) and the SNI callback, which swaps in the context of the chosen certificate.
    Contexts are built on first use and cached by certificate; the handshake runs on the event
    loop thread, so the cache needs no lock.
    """

    def __init__(self, holder: SnapshotHolder, fallback: Certificate) -> None:
        self._holder = holder
        self.fallback = fallback
        self.context = server_context(fallback)
        self.context.sni_callback = self._on_sni
        self._contexts: dict[tuple[str, bytes], ssl.SSLContext] = {}
        self._generation = -1

    def certificate_for(self, server_name: str | None) -> Certificate:
        """Exact host, then one-label wildcard, then the default (snapshot's, else ours)."""
        certs = self._holder.current.certs
        return certs.select(server_name) or certs.default or self.fallback

    def _on_sni(
        self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        try:
            cert = self.certificate_for(server_name)
            if cert is not self.fallback:
                conn.context = self._context_for(cert)
        except Exception:  # never fail a handshake over our cache: the fallback still serves
            log.exception(
                "TLS: no certificate context for SNI %r; serving the default", server_name
            )
        return None

    def _context_for(self, cert: Certificate) -> ssl.SSLContext:
        key = (cert.fingerprint, cert.chain_pem)
        ctx = self._contexts.get(key)
        if ctx is not None:
            return ctx
        snapshot = self._holder.current
        if snapshot.generation != self._generation:
            self._prune(snapshot)
        ctx = server_context(cert)
        self._contexts[key] = ctx
        return ctx

    def _prune(self, snapshot: Snapshot) -> None:
        """Forget contexts of certificates the current snapshot no longer serves."""
        self._generation = snapshot.generation
        live = {(c.fingerprint, c.chain_pem) for c in snapshot.certs.certificates()}
        for key in [k for k in self._contexts if k not in live]:
            del self._contexts[key]


# --------------------------------------------------------------------------- listener


def https_port_for(settings: Settings, snapshot: Snapshot) -> int | None:
    """The port to listen on for HTTPS, or None. "auto" listens on 8443 when the first load
    found a usable certificate or a default certificate was given."""
    if settings.https_port != HTTPS_AUTO:
        return settings.https_port
    wanted = snapshot.certs.has_certificates or settings.default_certificate is not None
    return DEFAULT_HTTPS_PORT if wanted else None


class HTTPSListener:
    """The `websecure` entry point: `app` served over TLS on its own socket (bound at
    construction, so a busy port fails at start), the certificate chosen by SNISelector."""

    def __init__(
        self,
        app: ASGIApp,
        holder: SnapshotHolder,
        settings: Settings,
        port: int,
        fallback: Certificate,
    ) -> None:
        from .stack import listener_config  # not at import: stack -> proxy -> this module

        self.host = settings.https_host
        self.selector = SNISelector(holder, fallback)
        # The plain listener's stack (stack.py): the same protocol, head limits and deadlines;
        # the proxy decides which peers to trust (and uvicorn would take the scheme from
        # X-Forwarded-Proto); Date passes through.
        config = listener_config(app, settings, "websecure", port=port, ssl=self.selector.context)
        self.server = EmbeddedServer(config, "--https-port")
        self.port = self.server.port

    @property
    def fallback(self) -> Certificate:
        return self.selector.fallback

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def start(self) -> None:
        self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


def start_https(app: ASGIApp, settings: Settings, holder: SnapshotHolder) -> HTTPSListener | None:
    """Start the HTTPS listener if configured (call on the event loop, after the first load).

    Raises SettingsError for an unusable --default-certificate file, and its ListenError for
    a port that cannot be bound.
    """
    snapshot = holder.current
    port = https_port_for(settings, snapshot)
    if port is None:
        if snapshot.certs.tls_hosts or snapshot.entrypoints.websecure is not None:
            log.warning(
                "HTTPS is off: the manifests ask for TLS or the websecure entry point, but no"
                " certificate was usable at start; pass --https-port to listen anyway"
            )
        return None
    fallback = default_certificate(settings)
    listener = HTTPSListener(app, holder, settings, port, fallback)
    listener.start()
    origin = {
        CertOrigin.GENERATED: "self-signed, generated at start",
        CertOrigin.FILE: "from file",
        CertOrigin.SECRET: "from a Secret",
    }[fallback.origin]
    log.info(
        "websecure listening on %s; default certificate %s (%s, sha256 %s)",
        listener.url,
        fallback.subject,
        origin,
        fallback.fingerprint[:16],
    )
    return listener


# --------------------------------------------------------------------------- upstreams


def upstream_verify(settings: Settings) -> bool | ssl.SSLContext:
    """How the forwarder checks HTTPS upstreams: not at all by default, as ingress-nginx
    (proxy-ssl-verify is off) and unlike Traefik (its serversTransport verifies unless
    insecureSkipVerify), because local backends use self-signed certificates; the system CAs
    with --upstream-tls-verify, or the bundle of --upstream-ca (which implies verifying)."""
    if settings.upstream_ca is not None:
        try:
            return ssl.create_default_context(cafile=str(settings.upstream_ca))
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"--upstream-ca {settings.upstream_ca}: {exc}") from None
    return settings.upstream_tls_verify
