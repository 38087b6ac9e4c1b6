"""Static settings (flags and INGRESSPROXY_* variables), fixed for the life of the process.

The one place they are resolved (`resolve`): each setting from its flag if given, else from
its variable INGRESSPROXY_<FLAG>, else the default; `serve`, `check`, `explain` and
`uvicorn --factory` all go through it. The dynamic configuration (manifests -> route table)
lives in ir/snapshot.py instead.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..frontends.backends import BackendOverride
from ..frontends.semantics import Flavor, parse_flavor

__all__ = [
    "ACCESS_LOG_FORMATS",
    "ENV_PREFIX",
    "HTTPS_AUTO",
    "LOG_LEVELS",
    "NOT_GIVEN",
    "Settings",
    "SettingsError",
    "env_name",
    "parse_admin_port",
    "parse_bool",
    "parse_https_port",
    "parse_networks",
    "parse_size",
    "parse_workers",
    "resolve",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")

# Every setting's variable is INGRESSPROXY_ and its long flag (or DIR's name, MANIFESTS)
# upper-cased, dashes as underscores: --max-body-size is INGRESSPROXY_MAX_BODY_SIZE.
ENV_PREFIX = "INGRESSPROXY_"
ACCESS_LOG_FORMATS = ("text", "json", "off")
LOG_LEVELS = ("debug", "info", "warning", "error")
HTTPS_AUTO: Literal["auto"] = "auto"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A flag or environment variable has a value we cannot use; the message names it."""


def env_name(flag: str) -> str:
    """The variable of a flag: `--max-body-size` -> INGRESSPROXY_MAX_BODY_SIZE (DIR's is
    `manifests` -> INGRESSPROXY_MANIFESTS)."""
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


def _error(what: str, message: str) -> SettingsError:
    """`what: message`; without `what` (argparse names the flag itself) just the message."""
    return SettingsError(f"{what}: {message}" if what else message)


# --------------------------------------------------------------------------- value parsers
# One parser per kind of value, shared by the flags (argparse's type=) and the variables.


def parse_networks(values: Sequence[str], what: str) -> tuple[IPNetwork, ...]:
    nets: list[IPNetwork] = []
    for raw in values:
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise _error(what, f"{part!r} is not an IP address or CIDR") from exc
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
        raise _error(what, f"{value!r} is not a size (e.g. 1048576, 512k, 10m, 1g)")
    return int(digits) * _SIZE_UNITS[unit] or None


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
        raise _error(what, f"{value!r} is not a port number, auto or off") from None
    if not 0 <= port <= 65535:
        raise _error(what, f"{port} is not a port number (0-65535)")
    return port


def parse_admin_port(value: str, what: str) -> int | None:
    """`--admin-port` / INGRESSPROXY_ADMIN_PORT: a port (0 = any free one) or off."""
    if value.strip().lower() in ("off", "none", "false"):
        return None
    try:
        port = int(value)
    except ValueError:
        raise _error(what, f"{value!r} is not a port number or 'off'") from None
    if not 0 <= port <= 65535:
        raise _error(what, f"{port} is not a port number (0-65535)")
    return port


def parse_workers(value: str, what: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise _error(what, f"{value!r} is not a number of processes") from None
    if n < 1:
        raise _error(what, "at least 1 worker")
    return n


def parse_bool(value: str, what: str) -> bool:
    """A switch's variable: 1/true/yes/on or 0/false/no/off."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise _error(what, f"{value!r} is not one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}")


def _number(kind: Callable[[str], T]) -> Callable[[str, str], T]:
    def parse(value: str, what: str) -> T:
        try:
            return kind(value)
        except ValueError:
            raise _error(what, f"{value!r} is not a number") from None

    return parse


def _choice(choices: Sequence[str]) -> Callable[[str, str], str]:
    def parse(value: str, what: str) -> str:
        if value.lower() not in choices:
            raise _error(what, f"{value!r} is not one of {', '.join(choices)}")
        return value.lower()

    return parse


def _flavor(value: str, what: str) -> Flavor:
    try:
        return parse_flavor(value)
    except ValueError as exc:
        raise _error(what, str(exc)) from None


def _text(value: str, what: str) -> str:
    return value


def _path(value: str, what: str) -> Path:
    return Path(value)


# --------------------------------------------------------------------------- Settings


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
    allow_cross_namespace: bool = False
    # Whose routing semantics to follow: per Ingress, its controller's (frontends.dialects).
    flavor: Flavor = Flavor.AUTO
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
    fake_backends: bool = False  # echo servers on the loopback endpoints (testing/fakes.py)
    workers: int = 1  # processes sharing the listening socket (`serve` only: workers.py)
    server_header: str = "ingressproxy"
    log_level: str = "info"
    access_log: str = "text"  # text | json | off (one line per request on stdout)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every setting from its INGRESSPROXY_* variable (what `uvicorn --factory` runs)."""
        return resolve(None, env)


# --------------------------------------------------------------------------- resolution


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


# The command line's default for every setting flag: resolve() then asks the flag's variable.
# (None cannot say it: `--admin-port off` and `--max-body-size 0` parse to None.)
NOT_GIVEN: Any = _NotGiven()


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


class _Sources:
    """What one resolution reads: the flags a command was given, then the environment."""

    def __init__(self, given: Mapping[str, Any] | None, env: Mapping[str, str]) -> None:
        self.given = given
        self.env = env

    def flag(self, flag: str) -> Any:
        """The flag's value as argparse parsed it; NOT_GIVEN when absent."""
        return NOT_GIVEN if self.given is None else self.given.get(_dest(flag), NOT_GIVEN)

    def variable(self, flag: str) -> str | None:
        """The text of the flag's variable; None when unset or empty, or when the command has
        no such option (no command line: every option has its variable)."""
        if self.given is not None and _dest(flag) not in self.given:
            return None
        return self.env.get(env_name(flag)) or None

    def get(self, flag: str, parse: Callable[[str, str], T], default: T) -> T:
        """The flag if given, else its variable parsed by `parse`, else `default`."""
        value = self.flag(flag)
        if value is not NOT_GIVEN:
            return value  # type: ignore[no-any-return]
        text = self.variable(flag)
        return default if text is None else parse(text, env_name(flag))

    def switch(self, flag: str) -> bool:
        """A flag without a value (store_true): given, else its variable's 1/true/yes/on."""
        return self.get(flag, parse_bool, False)

    def many(self, flag: str, split: Callable[[str], list[str]]) -> tuple[list[str], str]:
        """A repeatable flag's values (its default is [], so none means not given) and the
        name to report them by; else its variable cut by `split`."""
        value = self.flag(flag)
        if value is not NOT_GIVEN and value:
            return list(value), flag
        text = self.variable(flag)
        return ([] if text is None else split(text)), env_name(flag)


def _commas(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def resolve(given: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from a command line and the environment: each setting from its flag if given,
    else from its variable INGRESSPROXY_<FLAG> (env_name), else Settings' default. Backend
    overrides add up instead: INGRESSPROXY_BACKENDS then _BACKEND, then --backends then
    --backend, a later source winning on the same key.

    `given` maps argparse destinations to values, NOT_GIVEN (an empty list for a repeatable
    flag) when the flag was not given; an option the command does not have keeps its default
    and ignores its variable. None: no command line (`uvicorn --factory`), every setting from
    the environment. `env` defaults to os.environ. SettingsError names the flag or variable
    whose value is unusable.
    """
    from .overrides import OverrideError

    src = _Sources(given, os.environ if env is None else env)
    d = Settings()
    try:
        overrides, dns_pattern = _backends(src)
    except OverrideError as exc:
        raise SettingsError(str(exc)) from None
    upstream_ca = src.get("--upstream-ca", _path, d.upstream_ca)
    manifests = src.get("manifests", _path, d.manifests)  # check's and explain's DIR: a str
    return Settings(
        manifests=None if manifests is None else Path(manifests),
        host=src.get("--host", _text, d.host),
        port=src.get("--port", _number(int), d.port),
        admin_host=src.get("--admin-host", _text, d.admin_host),
        admin_port=src.get("--admin-port", parse_admin_port, d.admin_port),
        ingress_classes=tuple(src.many("--ingress-class", _commas)[0]),
        trusted_proxies=parse_networks(*src.many("--trusted-proxies", lambda t: [t])),
        allow_external_name=src.switch("--allow-external-name"),
        allow_cross_namespace=src.switch("--allow-cross-namespace"),
        flavor=src.get("--flavor", _flavor, d.flavor),
        debug_headers=src.switch("--debug-headers"),
        poll=src.switch("--poll"),
        connect_timeout=src.get("--connect-timeout", _number(float), d.connect_timeout),
        read_timeout=src.get("--read-timeout", _number(float), d.read_timeout),
        max_body_size=src.get("--max-body-size", parse_size, d.max_body_size),
        max_header_bytes=src.get("--max-header-bytes", _number(int), d.max_header_bytes),
        max_headers=src.get("--max-headers", _number(int), d.max_headers),
        max_uri_length=src.get("--max-uri-length", _number(int), d.max_uri_length),
        header_timeout=src.get("--header-timeout", _number(float), d.header_timeout),
        body_timeout=src.get("--body-timeout", _number(float), d.body_timeout),
        graceful_timeout=src.get("--graceful-timeout", _number(float), d.graceful_timeout),
        pool_size=src.get("--pool-size", _number(int), d.pool_size),
        pool_timeout=src.get("--pool-timeout", _number(float), d.pool_timeout),
        backend_overrides=overrides,
        dns_pattern=dns_pattern,
        https_host=src.get("--https-host", _text, d.https_host),
        https_port=src.get("--https-port", parse_https_port, d.https_port),
        default_certificate=src.get("--default-certificate", _text, d.default_certificate),
        redirect_to_https=src.switch("--redirect-to-https"),
        upstream_tls_verify=src.switch("--upstream-tls-verify") or upstream_ca is not None,
        upstream_ca=upstream_ca,
        fake_backends=src.switch("--fake-backends"),
        workers=src.get("--workers", parse_workers, d.workers),
        log_level=src.get("--log-level", _choice(LOG_LEVELS), d.log_level),
        access_log=src.get("--access-log", _choice(ACCESS_LOG_FORMATS), d.access_log),
    )


def _backends(src: _Sources) -> tuple[tuple[BackendOverride, ...], str | None]:
    """The overrides of INGRESSPROXY_BACKENDS and _BACKEND, then of --backends and --backend
    (flags win on the same key); the pattern of --dns-backends, else of its variable."""
    from .overrides import (
        DEFAULT_DNS_PATTERN,
        merge_overrides,
        overrides_from,
        parse_dns_pattern,
        split_backend_list,
    )

    file = src.variable("--backends")
    specs = src.variable("--backend")
    from_env = overrides_from(
        split_backend_list(specs or ""),
        None if file is None else Path(file),
        origin=env_name("--backend"),
    )
    flag_specs, flag_file = src.flag("--backend"), src.flag("--backends")
    from_flags = overrides_from(
        [] if flag_specs is NOT_GIVEN else flag_specs,
        None if flag_file is NOT_GIVEN else flag_file,
    )

    def dns(text: str, what: str) -> str | None:
        """1/true/yes/on: {service}; 0/false/no/off: none; else a pattern."""
        if text.strip().lower() in _TRUE:
            return DEFAULT_DNS_PATTERN
        if text.strip().lower() in _FALSE:
            return None
        return parse_dns_pattern(text, what)

    return merge_overrides(from_env, from_flags), src.get("--dns-backends", dns, None)
