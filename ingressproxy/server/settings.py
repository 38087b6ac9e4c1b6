"""Static settings (flags and INGRESSPROXY_* variables), fixed for the life of the process.

The dynamic configuration (manifests -> route table) lives in snapshot.py instead.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..frontends.backends import BackendOverride
from ..frontends.semantics import Flavor, parse_flavor

__all__ = [
    "HTTPS_AUTO",
    "Settings",
    "SettingsError",
    "parse_https_port",
    "parse_networks",
    "parse_size",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A flag or environment variable has a value we cannot use; the message names it."""


def parse_networks(values: tuple[str, ...] | list[str], what: str) -> tuple[IPNetwork, ...]:
    nets: list[IPNetwork] = []
    for raw in values:
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise SettingsError(f"{what}: {part!r} is not an IP address or CIDR") from exc
    return tuple(nets)


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: str, what: str) -> int | None:
    """A byte count like nginx writes them: `1048576`, `512k`, `10m`, `1g` (powers of 1024,
    case-insensitive, an optional trailing `b`/`ib`); `0`, `off` and `unlimited` mean none."""
    text = value.strip().lower()
    if text in ("0", "off", "none", "unlimited"):
        return None
    for suffix in ("ib", "b"):
        if text.endswith(suffix) and text[: -len(suffix)][-1:] in ("k", "m", "g"):
            text = text[: -len(suffix)]
            break
    if text.endswith("b") and text[:-1].isdigit():
        text = text[:-1]
    unit = text[-1:] if text[-1:] in ("k", "m", "g") else ""
    digits = text[: len(text) - len(unit)].strip()
    if not digits.isdigit():
        raise SettingsError(f"{what}: {value!r} is not a size (e.g. 1048576, 512k, 10m, 1g)")
    return int(digits) * _SIZE_UNITS[unit] or None


@dataclass(frozen=True, slots=True)
class Settings:
    manifests: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 9000  # None disables the admin listener
    ingress_classes: tuple[str, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()
    allow_external_name: bool = False
    flavor: Flavor = Flavor.SPEC  # whose routing semantics to follow (flavors.py)
    debug_headers: bool = False  # X-Ingressproxy-Route on each proxied response
    poll: bool = False  # watch by polling (bind mounts, network filesystems)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # Request limits and deadlines the proxy enforces itself (docs/reliability.md).
    max_body_size: int | None = None  # bytes; None = unlimited
    max_header_bytes: int = 32768
    max_headers: int = 100
    max_uri_length: int = 8192
    header_timeout: float = 20.0
    body_timeout: float = 60.0
    graceful_timeout: float = 10.0
    pool_size: int = 256
    pool_timeout: float = 5.0
    # Where Services live when the manifests have no Endpoints (--backend, --backends FILE),
    # and the host name pattern for those without any (--dns-backends).
    backend_overrides: tuple[BackendOverride, ...] = ()
    dns_pattern: str | None = None
    # TLS (docs/tls.md). The `websecure` listener: "auto" = port 8443 when a certificate is
    # available at start, None = off. The default certificate: a Secret `ns/name` or
    # `CERT.pem,KEY.pem`, else a self-signed one made at start.
    https_host: str = "127.0.0.1"
    https_port: int | Literal["auto"] | None = "auto"
    default_certificate: str | None = None
    redirect_to_https: bool = False  # every plain-HTTP request to HTTPS (Traefik's redirection)
    # HTTPS upstreams are not verified by default, as in ingress-nginx (Traefik verifies).
    upstream_tls_verify: bool = False
    upstream_ca: Path | None = None  # CA bundle for HTTPS upstreams; implies verification
    server_header: str = "ingressproxy"
    log_level: str = "info"
    access_log: str = "text"  # text | json | off (one line per request on stdout)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from INGRESSPROXY_* variables (used by `uvicorn --factory`)."""
        e = os.environ if env is None else env

        def get(name: str) -> str | None:
            v = e.get("INGRESSPROXY_" + name)
            return v if v not in (None, "") else None

        def num(name: str, default: float, kind: type = float) -> float:
            v = get(name)
            if v is None:
                return default
            try:
                return kind(v)  # type: ignore[no-any-return]
            except ValueError as exc:
                raise SettingsError(f"INGRESSPROXY_{name}: {v!r} is not a number") from exc

        def flag(name: str) -> bool:
            return (get(name) or "").lower() in ("1", "true", "yes", "on")

        manifests = get("MANIFESTS")
        admin_port = get("ADMIN_PORT")
        classes = tuple(c.strip() for c in (get("INGRESS_CLASS") or "").split(",") if c.strip())
        overrides, dns_pattern = _backends_from_env(e)
        return cls(
            manifests=Path(manifests) if manifests else None,
            host=get("HOST") or "127.0.0.1",
            port=int(num("PORT", 8080, int)),
            admin_host=get("ADMIN_HOST") or "127.0.0.1",
            admin_port=None if admin_port in ("off", "none") else int(num("ADMIN_PORT", 9000, int)),
            ingress_classes=classes,
            trusted_proxies=parse_networks(
                [get("TRUSTED_PROXIES") or ""], "INGRESSPROXY_TRUSTED_PROXIES"
            ),
            allow_external_name=flag("ALLOW_EXTERNAL_NAME"),
            flavor=_flavor(get("FLAVOR")),
            debug_headers=flag("DEBUG_HEADERS"),
            poll=flag("POLL"),
            connect_timeout=num("CONNECT_TIMEOUT", 5.0),
            read_timeout=num("READ_TIMEOUT", 60.0),
            max_body_size=parse_size(get("MAX_BODY_SIZE") or "0", "INGRESSPROXY_MAX_BODY_SIZE"),
            max_header_bytes=int(num("MAX_HEADER_BYTES", 32768, int)),
            max_headers=int(num("MAX_HEADERS", 100, int)),
            max_uri_length=int(num("MAX_URI_LENGTH", 8192, int)),
            header_timeout=num("HEADER_TIMEOUT", 20.0),
            body_timeout=num("BODY_TIMEOUT", 60.0),
            graceful_timeout=num("GRACEFUL_TIMEOUT", 10.0),
            pool_size=int(num("POOL_SIZE", 256, int)),
            pool_timeout=num("POOL_TIMEOUT", 5.0),
            backend_overrides=overrides,
            dns_pattern=dns_pattern,
            https_host=get("HTTPS_HOST") or "127.0.0.1",
            https_port=parse_https_port(get("HTTPS_PORT") or "auto", "INGRESSPROXY_HTTPS_PORT"),
            default_certificate=get("DEFAULT_CERTIFICATE"),
            redirect_to_https=flag("REDIRECT_TO_HTTPS"),
            upstream_tls_verify=flag("UPSTREAM_TLS_VERIFY"),
            upstream_ca=Path(ca) if (ca := get("UPSTREAM_CA")) else None,
            log_level=get("LOG_LEVEL") or "info",
            access_log=_access_log(get("ACCESS_LOG") or "text", "INGRESSPROXY_ACCESS_LOG"),
        )


ACCESS_LOG_FORMATS = ("text", "json", "off")

HTTPS_AUTO: Literal["auto"] = "auto"


def parse_https_port(value: str, what: str) -> int | Literal["auto"] | None:
    """`--https-port` / INGRESSPROXY_HTTPS_PORT: a port (0 = any free one), auto or off."""
    v = value.strip().lower()
    if v == HTTPS_AUTO:
        return HTTPS_AUTO
    if v in ("off", "none", "false"):
        return None
    try:
        port = int(v)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not a port number, auto or off") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{what}: {port} is not a port number (0-65535)")
    return port


def _access_log(value: str, what: str) -> str:
    if value.lower() not in ACCESS_LOG_FORMATS:
        raise SettingsError(f"{what}: {value!r} is not one of {', '.join(ACCESS_LOG_FORMATS)}")
    return value.lower()


def _flavor(value: str | None) -> Flavor:
    if value is None:
        return Flavor.SPEC
    try:
        return parse_flavor(value)
    except ValueError as exc:
        raise SettingsError(f"INGRESSPROXY_FLAVOR: {exc}") from None


def _backends_from_env(env: Mapping[str, str]) -> tuple[tuple[BackendOverride, ...], str | None]:
    from .overrides import OverrideError, backends_from_env

    try:
        return backends_from_env(env)
    except OverrideError as exc:
        raise SettingsError(str(exc)) from None
