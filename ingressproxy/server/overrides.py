"""Parse backend overrides (`--backend`, `--backends FILE`) and `--dns-backends` patterns.

Flow: settings.resolve (flags, INGRESSPROXY_* variables) -> these parsers -> Settings ->
CompileOptions -> BackendResolver; at each load, reloader.build_snapshot asks
override_diagnostics which keys match nothing the Ingresses use.
The I/O edge for backends files; everything it returns is frozen data from backends.py.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..frontends.backends import DNS_PLACEHOLDERS, BackendOverride, dns_host
from ..ir.model import Endpoint
from ..manifests.model import Diagnostic, IngressBackend, Manifests, Severity, Source
from .settings import env_name

__all__ = [
    "DEFAULT_DNS_PATTERN",
    "OverrideError",
    "backends_from_env",
    "load_backends_file",
    "merge_overrides",
    "override_diagnostics",
    "overrides_from",
    "parse_backend",
    "parse_backend_url",
    "parse_dns_pattern",
    "parse_key",
    "split_backend_list",
]

DEFAULT_DNS_PATTERN = "{service}"

# Service names are DNS-1035 labels, namespaces DNS-1123 labels (Kubernetes API validation);
# we accept the wider of the two for both, as a typo still finds nothing to match.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# A Service port name is an IANA_SVC_NAME: up to 15 lower-case letters, digits and '-'.
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HOST_NAME = re.compile(
    r"[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?)*\.?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class OverrideError(ValueError):
    """A backend override or DNS pattern we cannot use; the message names where it was given."""


def _check_label(value: str, what: str, where: str) -> None:
    if len(value) > 63 or not _LABEL.fullmatch(value):
        raise OverrideError(
            f"{where}: {what} {value!r} is not a Kubernetes name"
            " (lower-case letters, digits and '-', at most 63)"
        )


def parse_key(key: str, where: str) -> tuple[str | None, str, str | None]:
    """`[NAMESPACE/]SERVICE[:PORT]` -> (namespace, service, port)."""
    rest = key.strip()
    namespace: str | None = None
    if "/" in rest:
        namespace, rest = rest.split("/", 1)
        _check_label(namespace, "namespace", where)
    port: str | None = None
    if ":" in rest:
        rest, port = rest.split(":", 1)
        if port.isdigit():
            if not 1 <= int(port) <= 65535:
                raise OverrideError(f"{where}: port {port} is not a port number (1-65535)")
            port = str(int(port))
        elif len(port) > 15 or not _PORT_NAME.fullmatch(port):
            raise OverrideError(f"{where}: {port!r} is not a Service port name or number")
    if not rest:
        raise OverrideError(f"{where}: {key!r} names no Service ([NAMESPACE/]SERVICE[:PORT])")
    _check_label(rest, "Service name", where)
    return namespace, rest, port


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None
    return True


def parse_backend_url(url: str, where: str) -> Endpoint:
    """`http://HOST[:PORT]`, `https://HOST[:PORT]` or plain `HOST:PORT` -> an Endpoint.

    HOST may be a name (`localhost`, a compose service); it is resolved when connecting.
    Without a scheme the port is required: `3001` alone is a port without a host, and
    `image-search` alone more likely a Service name than a backend. Paths are refused: the
    proxy forwards the request path unchanged, as for a Pod.
    """
    text = url.strip()
    if "://" not in text:
        before, sep, port_text = text.rpartition(":")
        if text.isdigit():
            raise OverrideError(
                f"{where}: {url!r} is a port without a host; e.g. http://127.0.0.1:{text}"
            )
        if before.lower() in _DEFAULT_PORTS:
            raise OverrideError(f"{where}: {url!r} lacks '//' after {before}:")
        if not sep or not before or not port_text.isdigit():
            raise OverrideError(
                f"{where}: {url!r} has no scheme and no port; expected http://HOST[:PORT],"
                " https://HOST[:PORT] or HOST:PORT"
            )
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise OverrideError(f"{where}: {url!r} is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise OverrideError(f"{where}: {url!r}: only http:// and https:// backends are supported")
    host = parts.hostname
    if not host or not _valid_host(host):
        raise OverrideError(f"{where}: {url!r} has no valid host")
    if parts.username is not None or parts.password is not None:
        raise OverrideError(f"{where}: {url!r}: credentials in backend URLs are not supported")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise OverrideError(
            f"{where}: {url!r} has a path or query; a backend is a host and port, and the"
            " request path is forwarded as it came"
        )
    if port == 0:
        raise OverrideError(f"{where}: {url!r}: port 0 is not a port to connect to")
    return Endpoint(host, port if port is not None else _DEFAULT_PORTS[scheme], scheme)


def parse_backend(spec: str, origin: str = "--backend") -> BackendOverride:
    """`[NAMESPACE/]SERVICE[:PORT]=URL` -> one override with one endpoint."""
    key, sep, url = spec.partition("=")
    where = f"{origin} {spec}"
    if not sep or not url.strip():
        raise OverrideError(f"{where}: expected [NAMESPACE/]SERVICE[:PORT]=URL")
    namespace, service, port = parse_key(key, where)
    endpoint = parse_backend_url(url, where)
    return BackendOverride(service, (endpoint,), namespace, port, origin)


def split_backend_list(text: str) -> list[str]:
    """INGRESSPROXY_BACKEND: several `KEY=URL` separated by commas or white space."""
    return [part for part in re.split(r"[,\s]+", text) if part]


def merge_overrides(
    *sources: Iterable[BackendOverride],
) -> tuple[BackendOverride, ...]:
    """One override per key. Within one source the URLs of a repeated key add up (round
    robin between them); a later source replaces an earlier one's key (flags beat the file)."""
    merged: dict[str, BackendOverride] = {}
    for source in sources:
        seen: dict[str, BackendOverride] = {}
        for o in source:
            got = seen.get(o.key)
            if got is not None:
                endpoints = tuple(dict.fromkeys((*got.endpoints, *o.endpoints)))
                o = BackendOverride(o.service, endpoints, o.namespace, o.port, o.origin)
            seen[o.key] = o
        merged.update(seen)
    return tuple(merged.values())


def load_backends_file(path: Path) -> tuple[BackendOverride, ...]:
    """A YAML mapping of `[NAMESPACE/]SERVICE[:PORT]` to a URL or a list of URLs."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise OverrideError(f"--backends {path}: cannot read: {exc}") from None
    try:
        data: Any = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise OverrideError(f"--backends {path}: not valid YAML: {exc}") from None
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise OverrideError(
            f"--backends {path}: expected a mapping of [NAMESPACE/]SERVICE[:PORT] to URLs"
        )
    found: list[BackendOverride] = []
    for key, value in data.items():
        line = _line_of(data, key)
        where = f"{path}:{line}" if line else str(path)
        if not isinstance(key, str):
            raise OverrideError(f"{where}: key {key!r} is not [NAMESPACE/]SERVICE[:PORT]")
        urls: Sequence[object] = value if isinstance(value, list) else [value]
        if not urls:
            raise OverrideError(f"{where}: {key}: no URL given")
        namespace, service, port = parse_key(key, f"{where}: {key}")
        endpoints: list[Endpoint] = []
        for url in urls:
            if not isinstance(url, str):
                raise OverrideError(f"{where}: {key}: {url!r} is not a URL")
            endpoints.append(parse_backend_url(url, f"{where}: {key}"))
        found.append(
            BackendOverride(service, tuple(dict.fromkeys(endpoints)), namespace, port, str(path))
        )
    return tuple(found)


def _line_of(data: Any, key: object) -> int:
    try:
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 0


def overrides_from(
    specs: Sequence[str], file: Path | None, *, origin: str = "--backend"
) -> tuple[BackendOverride, ...]:
    """The file's overrides, then the flags' (which replace the file's for the same key)."""
    from_file = load_backends_file(file) if file is not None else ()
    return merge_overrides(from_file, (parse_backend(s, origin) for s in specs))


def parse_dns_pattern(pattern: str, where: str = "--dns-backends") -> str:
    """Check a host name pattern such as `{service}` or `{service}.{namespace}.svc`."""
    at = f"{where}: " if where else ""
    rest = pattern
    for placeholder in DNS_PLACEHOLDERS:
        rest = rest.replace(placeholder, "")
    if "{service}" not in pattern:
        raise OverrideError(
            f"{at}pattern {pattern!r} does not contain {{service}} (e.g. {{service}} or"
            " {service}.{namespace}); if it was meant as the manifests folder, put the folder"
            " first or write --dns-backends={service}"
        )
    if "{" in rest or "}" in rest:
        raise OverrideError(f"{at}{pattern!r}: only {{service}} and {{namespace}} may be used")
    if not _valid_host(dns_host(pattern, "service", "namespace")):
        raise OverrideError(f"{at}{pattern!r} does not make a valid host name")
    return pattern


def backends_from_env(
    env: Mapping[str, str],
) -> tuple[tuple[BackendOverride, ...], str | None]:
    """The overrides and pattern of INGRESSPROXY_BACKENDS=FILE, INGRESSPROXY_BACKEND="KEY=URL
    KEY=URL" (which wins on the same key) and INGRESSPROXY_DNS_BACKENDS (1/true/on for
    {service}, or a pattern) alone, read as settings.resolve reads every variable."""
    from .settings import NOT_GIVEN, resolve

    settings = resolve({"backend": [], "backends": NOT_GIVEN, "dns_backends": NOT_GIVEN}, env)
    return settings.backend_overrides, settings.dns_pattern


def _used_backends(manifests: Manifests) -> dict[tuple[str, str], set[str]]:
    """(namespace, Service name) of every Service backend an Ingress names -> the ports a
    key may name for it: the port as the Ingress wrote it, and the Service port's number and
    name when the Service is in the manifests (as BackendResolver matches them)."""
    services = {(s.meta.namespace, s.meta.name): s for s in reversed(manifests.services)}
    used: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ing in manifests.ingresses:
        backends: list[IngressBackend] = (
            [] if ing.default_backend is None else [ing.default_backend]
        )
        for rule in ing.rules:
            backends.extend(path.backend for path in rule.paths or ())
        for backend in backends:
            ref = backend.service
            if ref is None:
                continue
            key = (ing.meta.namespace, ref.name)
            ports = used[key]
            ports.add(str(ref.port))
            svc = services.get(key)
            for sp in () if svc is None else svc.ports:
                if sp.name == ref.port.name or sp.port == ref.port.number:
                    ports.add(str(sp.port))
                    if sp.name:
                        ports.add(sp.name)
    return used


def override_diagnostics(
    manifests: Manifests, overrides: Iterable[BackendOverride]
) -> tuple[Diagnostic, ...]:
    """A warning for each override whose key matches no Service backend of any Ingress
    (a typo, or a namespace or port no Ingress uses): it would silently do nothing. The
    warning names the key and the closest key that would match (of the same shape: with a
    namespace if it has one, with a port if it has one), and why a near miss missed."""
    used = _used_backends(manifests)
    out: list[Diagnostic] = []
    for o in overrides:
        if any(
            name == o.service and o.namespace in (None, ns) and o.port in (None, *ports)
            for (ns, name), ports in used.items()
        ):
            continue
        keys = sorted(
            f"{f'{ns}/' if o.namespace is not None else ''}{name}{f':{p}' if o.port else ''}"
            for (ns, name), ports in used.items()
            for p in (sorted(ports) if o.port is not None else [""])
        )
        message = f"{o.key} matches no Service that an Ingress uses{_near_miss(o, used)}"
        best = max(keys, key=lambda k: difflib.SequenceMatcher(None, o.key, k).ratio(), default="")
        message += f'; did you mean "{best}"?' if best else " (no Ingress uses a Service)"
        # A flag's or variable's override is named by it; a file's by the file.
        flag = o.origin in ("--backend", env_name("--backend"))
        out.append(
            Diagnostic(
                Severity.WARNING,
                "unused-backend-override",
                f"{o.origin} {message}" if flag else message,
                None if flag else Source(o.origin),
            )
        )
    return tuple(out)


def _near_miss(o: BackendOverride, used: Mapping[tuple[str, str], set[str]]) -> str:
    """Why a key that names a Service the Ingresses use still matches none of its uses."""
    namespaces = sorted(ns for ns, name in used if name == o.service)
    if not namespaces:
        return ""
    if o.namespace is not None and o.namespace not in namespaces:
        where = "namespace" if len(namespaces) == 1 else "namespaces"
        return f" (Ingresses use {o.service} in {where} {', '.join(namespaces)} only)"
    ports = sorted(
        {p for ns in namespaces if o.namespace in (None, ns) for p in used[(ns, o.service)]}
    )
    return f" (Ingresses use {o.service} on ports {', '.join(sorted(ports))})"
