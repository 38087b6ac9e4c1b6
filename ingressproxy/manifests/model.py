"""Frozen dataclasses for the Kubernetes subset we honour, plus Diagnostic values.

Flow: loader (files -> RawDocument) -> decode (RawDocument -> these objects) -> compiler.
Nothing here does I/O; every value is immutable so a compiled snapshot can be shared freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "DEFAULT_NAMESPACE",
    "Diagnostic",
    "EndpointPort",
    "EndpointSlice",
    "Endpoints",
    "EndpointsSubset",
    "Ingress",
    "IngressBackend",
    "IngressClass",
    "IngressRule",
    "IngressServiceBackend",
    "IngressTLS",
    "Manifests",
    "Meta",
    "ObjectRef",
    "PathRule",
    "PathType",
    "RawDocument",
    "ResourceRef",
    "Secret",
    "Service",
    "ServiceBackendPort",
    "ServicePort",
    "Severity",
    "SliceEndpoint",
    "Source",
    "frozen_map",
    "nearest_line",
]

DEFAULT_NAMESPACE = "default"

_EMPTY: Mapping[str, str] = MappingProxyType({})


_EMPTY_LINES: Mapping[str, int] = MappingProxyType({})


def nearest_line(lines: Mapping[str, int], path: str) -> int | None:
    """The line of `path`, else of the nearest enclosing field that has one."""
    p = path
    while p:
        got = lines.get(p)
        if got is not None:
            return got
        cut = max(p.rfind("."), p.rfind("["))
        p = p[:cut] if cut > 0 else ""
    return lines.get("")


def frozen_map(d: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy, so frozen dataclasses stay truly immutable."""
    return MappingProxyType(dict(d)) if d else _EMPTY


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True, slots=True, order=True)
class Source:
    """Where something was written: a file (as given to the loader) and a 1-based line."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """`Kind ns/name`, the way people and our diagnostics name an object."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    # A note that changes nothing a client gets (an annotation that only tunes nginx):
    # shown, never counted as a warning, so `check --strict` does not fail on it.
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem found in the manifests, printed like a compiler message.

    `code` is a stable kebab-case identifier (e.g. "invalid-host", "missing-service",
    "conflict") that tests and `check --format json` rely on.
    `field` is the Kubernetes field path (e.g. `spec.rules[0].http.paths[2].backend`), or "".
    """

    severity: Severity
    code: str
    message: str
    source: Source | None = None
    obj: ObjectRef | None = None
    field: str = ""

    def __str__(self) -> str:
        parts: list[str] = []
        if self.source is not None:
            parts.append(str(self.source))
        parts.append(str(self.severity))
        if self.obj is not None:
            parts.append(str(self.obj))
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)

    def sort_key(self) -> tuple[str, int, str, str, str]:
        src = self.source or Source("", 0)
        return (src.file, src.line, str(self.obj or ""), self.field, self.message)


# --------------------------------------------------------------------------- loader output


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One Kubernetes object as plain data, before decoding.

    `data` holds only dict/list/str/int/float/bool/None (no parser types leak out of the loader).
    `lines` maps field paths in Kubernetes notation ("" for the object itself,
    "spec.rules[0].host", ...) to 1-based line numbers; `line_of` falls back to the nearest
    enclosing field so every diagnostic gets a line.
    """

    file: str
    line: int
    data: Mapping[str, object]
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def line_of(self, path: str) -> int:
        got = nearest_line(self.lines, path)
        return self.line if got is None else got

    def source(self, path: str = "") -> Source:
        return Source(self.file, self.line_of(path))


# --------------------------------------------------------------------------- objects


@dataclass(frozen=True, slots=True)
class Meta:
    name: str
    namespace: str
    source: Source
    creation_timestamp: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    # Field path -> line, for diagnostics raised after decoding (compiler stage).
    lines: Mapping[str, int] = field(default_factory=lambda: _EMPTY_LINES)

    def ref(self, kind: str) -> ObjectRef:
        return ObjectRef(kind, self.namespace, self.name)

    def source_of(self, path: str) -> Source:
        got = nearest_line(self.lines, path)
        return self.source if got is None else Source(self.source.file, got)


class PathType(StrEnum):
    EXACT = "Exact"
    PREFIX = "Prefix"
    IMPLEMENTATION_SPECIFIC = "ImplementationSpecific"


@dataclass(frozen=True, slots=True)
class ServiceBackendPort:
    """Exactly one of name/number is set (validated by decode)."""

    name: str | None = None
    number: int | None = None

    def __str__(self) -> str:
        return self.name if self.name is not None else str(self.number)


@dataclass(frozen=True, slots=True)
class IngressServiceBackend:
    name: str
    port: ServiceBackendPort


@dataclass(frozen=True, slots=True)
class ResourceRef:
    api_group: str | None
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class IngressBackend:
    """Exactly one of service/resource is set (validated by decode)."""

    service: IngressServiceBackend | None = None
    resource: ResourceRef | None = None


@dataclass(frozen=True, slots=True)
class PathRule:
    path: str  # as written; "" is never stored (decode defaults ImplementationSpecific "" to "/")
    path_type: PathType
    backend: IngressBackend
    field: str  # e.g. "spec.rules[0].http.paths[1]"


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str | None  # lower-cased; None = any host
    paths: tuple[PathRule, ...] | None  # None when the rule has no `http` block
    field: str  # e.g. "spec.rules[0]"


@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str | None


@dataclass(frozen=True, slots=True)
class Ingress:
    meta: Meta
    ingress_class_name: str | None
    default_backend: IngressBackend | None
    rules: tuple[IngressRule, ...]
    tls: tuple[IngressTLS, ...] = ()

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref("Ingress")

    @property
    def ingress_class(self) -> str | None:
        """spec.ingressClassName, else the legacy kubernetes.io/ingress.class annotation."""
        if self.ingress_class_name is not None:
            return self.ingress_class_name
        return self.meta.annotations.get("kubernetes.io/ingress.class")


@dataclass(frozen=True, slots=True)
class IngressClass:
    meta: Meta
    controller: str | None
    is_default: bool  # annotation ingressclass.kubernetes.io/is-default-class == "true"

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("IngressClass", "", self.meta.name)


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str | None  # None = same as port
    protocol: str = "TCP"
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    meta: Meta
    type: str  # ClusterIP, NodePort, LoadBalancer, ExternalName
    ports: tuple[ServicePort, ...]
    external_name: str | None = None

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref("Service")


@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class EndpointsSubset:
    addresses: tuple[str, ...]  # IPs of ready addresses
    not_ready_addresses: tuple[str, ...]
    ports: tuple[EndpointPort, ...]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """core/v1 Endpoints; its name is the Service's name."""

    meta: Meta
    subsets: tuple[EndpointsSubset, ...]

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref("Endpoints")


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    addresses: tuple[str, ...]
    ready: bool | None  # conditions.ready; None (unset) counts as ready per the API docs


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    meta: Meta
    service_name: str | None  # label kubernetes.io/service-name
    address_type: str  # IPv4, IPv6, FQDN
    endpoints: tuple[SliceEndpoint, ...]
    ports: tuple[EndpointPort, ...]

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref("EndpointSlice")


@dataclass(frozen=True, slots=True, repr=False)
class Secret:
    """core/v1 Secret: its type, the PEM bytes of `tls.crt` / `tls.key` (decoded from
    `data`, or taken from `stringData`) for TLS termination, and every key's bytes in `data`
    (htpasswd users for basic authentication). The repr shows only the name and type, so key
    material never reaches a log line or a dump."""

    meta: Meta
    type: str  # "kubernetes.io/tls", "Opaque", ...
    tls_crt: bytes | None = None
    tls_key: bytes | None = None
    data: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref("Secret")

    def __repr__(self) -> str:
        return f"Secret({self.meta.namespace}/{self.meta.name}, type={self.type})"


@dataclass(frozen=True, slots=True)
class Middleware:
    """A Traefik Middleware object (traefik.io/v1alpha1, or the v2 group traefik.containo.us):
    its spec as written, compiled by the traefik front-end (frontends/traefik/middlewares)."""

    meta: Meta
    api_version: str
    spec: Mapping[str, object]

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref("Middleware")


@dataclass(frozen=True, slots=True)
class Manifests:
    """Everything decoded from one load, in a deterministic order (by source)."""

    ingresses: tuple[Ingress, ...] = ()
    ingress_classes: tuple[IngressClass, ...] = ()
    services: tuple[Service, ...] = ()
    endpoints: tuple[Endpoints, ...] = ()
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    secrets: tuple[Secret, ...] = ()
    middlewares: tuple[Middleware, ...] = ()
