"""Pure: the TLS Secrets that Ingresses name in spec.tls -> validated certificates -> CertTable.

Flow: decode (Secret) -> compile_certs -> CertTable in the Snapshot -> tls.py picks a certificate
per SNI name from the current table. Reads no files, clocks or environment (`now` is passed in).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ..manifests.model import (
    DEFAULT_NAMESPACE,
    Diagnostic,
    Ingress,
    Manifests,
    ObjectRef,
    Secret,
    Severity,
    Source,
)
from .options import CompileOptions
from .spec.classes import select_ingresses

__all__ = [
    "CertOrigin",
    "CertResult",
    "CertTable",
    "CertUse",
    "Certificate",
    "CertificateError",
    "compile_certs",
    "default_secret_ref",
    "dump_certs",
    "load_key_pair",
    "name_covers",
]


class CertOrigin(StrEnum):
    SECRET = "secret"  # a kubernetes.io/tls Secret in the manifests
    FILE = "file"  # --default-certificate CERT.pem,KEY.pem
    GENERATED = "generated"  # the self-signed default made at start


@dataclass(frozen=True, slots=True, repr=False)
class Certificate:
    """A certificate chain with its private key, checked to belong together.

    The key is kept (the listener needs it) but never shown: the repr, `dump_certs` and every
    diagnostic name a certificate by its source, names, expiry and SHA-256 fingerprint.
    """

    name: str  # "ns/secret", a file path, or a description of the generated one
    origin: CertOrigin
    names: tuple[str, ...]  # subjectAltName DNS names, lower case
    subject: str  # RFC 4514
    issuer: str
    not_before: datetime  # aware, UTC
    not_after: datetime
    fingerprint: str  # SHA-256 of the leaf certificate (DER), hex
    chain_pem: bytes  # leaf first
    key_pem: bytes  # unencrypted PKCS#8

    def covers(self, host: str) -> bool:
        """True when one of the certificate's DNS names matches `host` (RFC 6125 6.4)."""
        return any(name_covers(name, host) for name in self.names)

    def __repr__(self) -> str:
        names = ", ".join(self.names) or "no DNS names"
        return (
            f"Certificate({self.name}, {names}, not after"
            f" {_iso(self.not_after)}, sha256 {self.fingerprint[:16]}...)"
        )


class CertificateError(ValueError):
    """Certificate material we cannot serve; `code` is the Diagnostic code for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def name_covers(pattern: str, host: str) -> bool:
    """RFC 6125 6.4.3 as browsers apply it: a `*` only as the whole leftmost label, matching
    exactly one label (so `*.foo.com` covers `bar.foo.com`, not `foo.com` nor `a.bar.foo.com`).
    A wildcard host (Ingress `*.foo.com`) is covered only by the same wildcard name."""
    p = pattern.lower().rstrip(".")
    h = host.lower().rstrip(".")
    if p == h:
        return True
    if not p.startswith("*.") or h.startswith("*."):
        return False
    label, dot, rest = h.partition(".")
    return bool(label) and bool(dot) and rest == p[2:]


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- parsing

_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def _not_pem(what: str, data: bytes, label: str) -> CertificateError:
    """Say what the bytes look like instead, for the usual mistakes."""
    compact = b"".join(data.split())
    try:
        decoded = base64.b64decode(compact, validate=True) if compact else b""
    except (binascii.Error, ValueError):
        decoded = b""
    if b"-----BEGIN" in decoded:
        why = (
            "it is base64 of a PEM file, encoded twice (`data` values are decoded once: put"
            " the PEM text in `stringData`, or base64 it only once)"
        )
    elif data[:1] == b"\x30":
        why = "it looks like DER (binary); convert it to PEM"
    elif not data.strip():
        why = "it is empty"
    else:
        why = f"there is no '-----BEGIN {label}-----' line"
    return CertificateError("tls-not-pem", f"{what} is not PEM: {why}")


def _spki(key: object) -> bytes | None:
    """The DER SubjectPublicKeyInfo of a public key, None for types we cannot compare."""
    try:
        return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (AttributeError, TypeError, ValueError, UnsupportedAlgorithm):
        return None


def load_key_pair(
    cert_pem: bytes, key_pem: bytes, *, name: str, origin: CertOrigin = CertOrigin.SECRET
) -> Certificate:
    """Parse a PEM chain (leaf first) and its PEM private key, as `tls.crt` / `tls.key` hold them.

    Raises CertificateError (code `tls-not-pem`, `tls-bad-key` or `tls-key-mismatch`) whose
    message says what is wrong without quoting the material. Validity dates are not checked
    here: that needs a clock (compile_certs is given one).
    """
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise _not_pem("tls.crt", cert_pem, "CERTIFICATE")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise CertificateError(
            "tls-not-pem",
            "tls.crt has a CERTIFICATE block that is not a readable X.509 certificate",
        ) from None
    if b"PRIVATE KEY-----" not in key_pem:
        raise _not_pem("tls.key", key_pem, "PRIVATE KEY")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise CertificateError(
            "tls-bad-key", "tls.key is encrypted; Ingress controllers need an unencrypted key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError("tls-not-pem", "tls.key is not a readable PEM private key") from None
    if not isinstance(key, _KEY_TYPES):
        raise CertificateError(
            "tls-bad-key",
            f"tls.key is a {type(key).__name__.removeprefix('_')}, which cannot serve TLS",
        )
    public = _spki(key.public_key())
    leaf = chain[0]
    if public is None or _spki(leaf.public_key()) != public:
        position = next(
            (i for i, c in enumerate(chain[1:], 2) if _spki(c.public_key()) == public), None
        )
        hint = (
            f" (it belongs to certificate #{position} of tls.crt: the server's own certificate"
            " must come first)"
            if position is not None
            else " (their public keys differ)"
        )
        raise CertificateError(
            "tls-key-mismatch", "tls.key does not belong to the certificate in tls.crt" + hint
        )
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(dict.fromkeys(n.lower() for n in san.get_values_for_type(x509.DNSName)))
    except (x509.ExtensionNotFound, ValueError):
        names = ()
    return Certificate(
        name=name,
        origin=origin,
        names=names,
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def default_secret_ref(value: str | None) -> tuple[str, str] | None:
    """`--default-certificate` naming a Secret (`ns/name`, or `name` in "default") as
    (namespace, name); None when unset or when it names files (`CERT.pem,KEY.pem`)."""
    if not value or "," in value:
        return None
    ns, sep, name = value.strip().partition("/")
    return (ns, name) if sep else (DEFAULT_NAMESPACE, ns)


# --------------------------------------------------------------------------- table


@dataclass(frozen=True, slots=True)
class CertUse:
    """One certificate as the table serves it: for which SNI names, on behalf of whom."""

    certificate: Certificate
    hosts: tuple[str, ...]  # "foo.com", "*.foo.com"
    ingresses: tuple[ObjectRef, ...]


_NO_CERTS: Mapping[str, Certificate] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CertTable:
    """SNI name -> certificate: exact host first, then a one-label wildcard. Hosts that have a
    TLS section but no usable certificate are absent: they get the default certificate."""

    exact: Mapping[str, Certificate] = field(default_factory=lambda: _NO_CERTS)
    # Keyed by the wildcard's suffix: "*.foo.com" -> "foo.com".
    wildcard: Mapping[str, Certificate] = field(default_factory=lambda: _NO_CERTS)
    # --default-certificate naming a Secret; None: the listener's own default.
    default: Certificate | None = None
    # Every host listed in a served Ingress's spec.tls (or covered by one of its certificates):
    # ingress-nginx's ssl-redirect applies to these (certificate usable or not).
    tls_hosts: frozenset[str] = frozenset()
    uses: tuple[CertUse, ...] = ()

    def select(self, server_name: str | None) -> Certificate | None:
        """The certificate for an SNI name, or None (the caller falls back to a default)."""
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        got = self.exact.get(name)
        if got is None and self.wildcard:
            dot = name.find(".")
            if dot > 0:
                got = self.wildcard.get(name[dot + 1 :])
        return got

    @property
    def has_certificates(self) -> bool:
        return bool(self.exact or self.wildcard or self.default is not None)

    def certificates(self) -> tuple[Certificate, ...]:
        """Every distinct certificate the table can serve (the default last)."""
        found = {u.certificate.fingerprint: u.certificate for u in self.uses}
        if self.default is not None:
            found.setdefault(self.default.fingerprint, self.default)
        return tuple(found.values())


@dataclass(frozen=True, slots=True)
class CertResult:
    table: CertTable
    diagnostics: tuple[Diagnostic, ...]


@dataclass(slots=True)
class _Claim:
    certificate: Certificate
    ingress: Ingress
    field: str


class _Secrets:
    """The Secrets of one load, each parsed once."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self.by_ref: dict[tuple[str, str], Secret] = {}
        self.namespaces: dict[str, set[str]] = {}
        for s in secrets:
            self.by_ref.setdefault((s.meta.namespace, s.meta.name), s)
            self.namespaces.setdefault(s.meta.name, set()).add(s.meta.namespace)
        self._parsed: dict[tuple[str, str], Certificate | CertificateError] = {}

    def load(self, namespace: str, name: str) -> Certificate | CertificateError:
        key = (namespace, name)
        got = self._parsed.get(key)
        if got is None:
            got = self._load(namespace, name)
            self._parsed[key] = got
        return got

    def _load(self, namespace: str, name: str) -> Certificate | CertificateError:
        secret = self.by_ref.get((namespace, name))
        if secret is None:
            elsewhere = sorted(self.namespaces.get(name, set()) - {namespace})
            if elsewhere:
                return CertificateError(
                    "tls-secret-wrong-namespace",
                    f"Secret {namespace}/{name} not found; a Secret of that name exists in"
                    f" {', '.join(elsewhere)}, but an Ingress can only use Secrets of its own"
                    " namespace",
                )
            return CertificateError("tls-secret-not-found", f"Secret {namespace}/{name} not found")
        where = f"Secret {namespace}/{name} ({secret.meta.source})"
        crt, key = secret.tls_crt, secret.tls_key
        if crt is None or key is None:
            # Only a kubernetes.io/tls Secret must have both (decode checks that); peers read
            # any Secret's tls.crt / tls.key, so an Opaque one with both is fine too.
            missing = " and no ".join(
                k for k, v in (("tls.crt", crt), ("tls.key", key)) if v is None
            )
            return CertificateError(
                "tls-secret-incomplete", f"{where} (type {secret.type}) has no {missing}"
            )
        try:
            return load_key_pair(crt, key, name=f"{namespace}/{name}")
        except CertificateError as exc:
            return CertificateError(exc.code, f"{where}: {exc.message}")


def compile_certs(manifests: Manifests, options: CompileOptions, *, now: datetime) -> CertResult:
    """Validate every certificate the served Ingresses name and build the SNI table.

    Per host, the oldest Ingress (creationTimestamp, then namespace/name) with a usable
    certificate wins, as ingress-nginx configures a server once; a host whose certificate is
    unusable or does not cover it gets the default certificate, with a diagnostic either way.
    """
    diags: list[Diagnostic] = []
    ingresses = select_ingresses(manifests, options, [])  # the compiler reports exclusions
    secrets = _Secrets(manifests.secrets)
    claims: dict[str, _Claim] = {}
    tls_hosts: set[str] = set()
    for ing in sorted(ingresses, key=_age_key):
        _claim_ingress(ing, secrets, now, claims, tls_hosts, diags)
    default = _default_certificate(options, secrets, now, diags)
    exact = {h: c.certificate for h, c in sorted(claims.items()) if not h.startswith("*.")}
    wildcard = {h[2:]: c.certificate for h, c in sorted(claims.items()) if h.startswith("*.")}
    uses: dict[str, tuple[Certificate, list[str], list[ObjectRef]]] = {}
    for host, claim in sorted(claims.items()):
        cert = claim.certificate
        _, hosts, refs = uses.setdefault(cert.fingerprint, (cert, [], []))
        hosts.append(host)
        if claim.ingress.ref not in refs:
            refs.append(claim.ingress.ref)
    table = CertTable(
        exact=MappingProxyType(exact),
        wildcard=MappingProxyType(wildcard),
        default=default,
        tls_hosts=frozenset(tls_hosts),
        uses=tuple(CertUse(c, tuple(h), tuple(sorted(r))) for c, h, r in uses.values()),
    )
    ordered = tuple(sorted(dict.fromkeys(diags), key=Diagnostic.sort_key))
    return CertResult(table, ordered)


def _claim_ingress(
    ing: Ingress,
    secrets: _Secrets,
    now: datetime,
    claims: dict[str, _Claim],
    tls_hosts: set[str],
    diags: list[Diagnostic],
) -> None:
    usable: list[tuple[Certificate, str]] = []
    listed: set[str] = set()
    for i, tls in enumerate(ing.tls):
        entry = f"spec.tls[{i}]"
        cert: Certificate | None = None
        if tls.secret_name is not None:
            cert = _secret_certificate(ing, tls.secret_name, entry, secrets, now, diags)
        if cert is not None:
            usable.append((cert, entry))
        for j, raw in enumerate(tls.hosts):
            host = raw.lower()
            listed.add(host)
            tls_hosts.add(host)
            if cert is None:
                continue  # no secretName, or an unusable one: the default certificate
            if not cert.covers(host):
                names = ", ".join(cert.names) if cert.names else "none"
                msg = (
                    f"Secret {ing.meta.namespace}/{tls.secret_name}: certificate does not cover"
                    f' host "{host}" (its DNS names: {names}); the default certificate is'
                    " served for it"
                )
                diags.append(_diag(ing, "tls-host-mismatch", msg, f"{entry}.hosts[{j}]"))
                continue
            _claim(host, _Claim(cert, ing, entry), claims, diags)
    # Like ingress-nginx (extractTLSSecretName): a rule host missing from every tls.hosts list
    # still gets this Ingress's certificate when the certificate's names cover it.
    for rule in ing.rules:
        rule_host = rule.host
        if rule_host is None or rule_host in listed:
            continue
        for cert, entry in usable:
            if cert.covers(rule_host):
                tls_hosts.add(rule_host)
                _claim(rule_host, _Claim(cert, ing, entry), claims, diags)
                break


def _claim(host: str, claim: _Claim, claims: dict[str, _Claim], diags: list[Diagnostic]) -> None:
    held = claims.get(host)
    if held is None:
        claims[host] = claim
        return
    if held.certificate.fingerprint == claim.certificate.fingerprint:
        return
    msg = (
        f'host "{host}" already has the certificate of {held.certificate.name} from'
        f" {held.ingress.ref} ({held.field}, {held.ingress.meta.source_of(held.field)}), which"
        f" wins by age; {claim.certificate.name} is not served for it"
    )
    diags.append(_diag(claim.ingress, "tls-conflict", msg, claim.field))


def _validity(cert: Certificate, now: datetime) -> tuple[str, str] | None:
    if cert.not_after < now:
        return "tls-expired", f"certificate expired on {_iso(cert.not_after)}"
    if cert.not_before > now:
        return "tls-not-yet-valid", f"certificate is not valid before {_iso(cert.not_before)}"
    return None


def _secret_certificate(
    ing: Ingress,
    name: str,
    entry: str,
    secrets: _Secrets,
    now: datetime,
    diags: list[Diagnostic],
) -> Certificate | None:
    got = secrets.load(ing.meta.namespace, name)
    where = f"{entry}.secretName"
    if isinstance(got, CertificateError):
        severity = Severity.ERROR
        if got.code == "tls-secret-not-found":
            # cert-manager, sealed-secrets and external-secrets make the Secret in the
            # cluster, so a folder rarely holds it; ingress-nginx and Traefik both serve the
            # host with their default certificate meanwhile. Not an error of the folder.
            severity = Severity.WARNING
            msg = (
                f"{got.message} in the manifests (cert-manager or another controller may create"
                " it in the cluster); the host is served over HTTPS with the default certificate"
            )
        else:
            msg = f"{got.message}; the default certificate is served instead"
        diags.append(_diag(ing, got.code, msg, where, severity))
        return None
    invalid = _validity(got, now)
    if invalid is not None:
        # Still served, as both controllers do: clients decide what an expired one is worth.
        code, why = invalid
        diags.append(_diag(ing, code, f"Secret {got.name}: {why}", where))
    return got


def _default_certificate(
    options: CompileOptions, secrets: _Secrets, now: datetime, diags: list[Diagnostic]
) -> Certificate | None:
    ref = default_secret_ref(options.default_certificate)
    if ref is None:
        return None
    ns, name = ref
    got = secrets.load(ns, name)
    secret = secrets.by_ref.get(ref)
    source = secret.meta.source if secret is not None else None
    obj = ObjectRef("Secret", ns, name)
    if isinstance(got, CertificateError):
        msg = f"--default-certificate: {got.message}; a self-signed certificate is served instead"
        diags.append(Diagnostic(Severity.ERROR, got.code, msg, source, obj))
        return None
    invalid = _validity(got, now)
    if invalid is not None:
        code, why = invalid
        diags.append(
            Diagnostic(Severity.WARNING, code, f"--default-certificate: {why}", source, obj)
        )
    return got


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def _age_key(ing: Ingress) -> tuple[bool, datetime, str, str, Source]:
    """Oldest first (no timestamp last), then namespace/name: the compiler's precedence.
    A naive timestamp is UTC, as the compiler takes it."""
    ts = ing.meta.creation_timestamp
    when = _NO_TIME
    if ts is not None:
        when = ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return (ts is None, when, ing.meta.namespace, ing.meta.name, ing.meta.source)


def _diag(
    ing: Ingress, code: str, message: str, where: str, severity: Severity = Severity.WARNING
) -> Diagnostic:
    return Diagnostic(severity, code, message, ing.meta.source_of(where), ing.ref, where)


# --------------------------------------------------------------------------- admin view


def dump_certs(
    table: CertTable, now: datetime, fallback: Certificate | None = None
) -> list[dict[str, object]]:
    """Every certificate the HTTPS listener can serve, as plain JSON-able data for the admin API:
    where it comes from, its names, validity and fingerprint, and the SNI names and Ingresses it
    serves. `fallback` is the listener's own default (tls.HTTPSListener.fallback), if any.
    Never includes key material."""
    out: list[dict[str, object]] = []

    def entry(cert: Certificate, role: str, hosts: Iterable[str], by: Iterable[ObjectRef]) -> None:
        out.append(
            {
                "name": cert.name,
                "origin": str(cert.origin),
                "role": role,
                "names": list(cert.names),
                "subject": cert.subject,
                "issuer": cert.issuer,
                "notBefore": _iso(cert.not_before),
                "notAfter": _iso(cert.not_after),
                "expired": cert.not_after < now,
                "daysLeft": (cert.not_after - now).days,
                "sha256": cert.fingerprint,
                "hosts": list(hosts),
                "ingresses": [f"{r.namespace}/{r.name}" for r in by],
            }
        )

    for use in table.uses:
        entry(use.certificate, "sni", use.hosts, use.ingresses)
    if table.default is not None:
        entry(table.default, "default", (), ())
    elif fallback is not None:
        entry(fallback, "default", (), ())
    return out
