"""Pure: RawDocuments -> model objects (Manifests), validated as the Kubernetes API server would.

Flow: loader -> decode -> compiler. An object that fails validation is skipped whole, with one
"invalid" Diagnostic per problem naming file:line, `Kind ns/name` and the field path. Ingress and
IngressClass live in decode_ingress, field access in decode_fields, the name rules in k8snames.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TypeVar

from .decode_ingress import read_ingress, read_ingress_class
from .decode_traefik import MIDDLEWARE_APIS, read_middleware
from .fields import ObjectReader, absent, join_path, read_meta, ref_of
from .k8snames import (
    config_key_errors,
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    host_errors,
    is_ip,
    port_name_errors,
    port_number_errors,
)
from .model import (
    Diagnostic,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointsSubset,
    Ingress,
    IngressClass,
    Manifests,
    Middleware,
    ObjectRef,
    RawDocument,
    Secret,
    Service,
    ServicePort,
    Severity,
    SliceEndpoint,
    frozen_map,
)

# The name rules are re-exported: tests and callers import them from here.
__all__ = [
    "decode",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "host_errors",
    "port_name_errors",
]

T = TypeVar("T")

_PROTOCOLS = ("TCP", "UDP", "SCTP")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_TLS_SECRET_TYPE = "kubernetes.io/tls"
_TLS_KEYS = ("tls.crt", "tls.key")
_LINE_BREAKS = re.compile(r"[\r\n]")
# kubectl keeps a plain copy of the whole applied object here, Secret data included.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# --------------------------------------------------------------------------- Service & endpoints


def _protocol(obj: ObjectReader, raw: Mapping[str, object], path: str) -> str:
    protocol = obj.as_str(raw.get("protocol"), join_path(path, "protocol")) or "TCP"
    if protocol not in _PROTOCOLS:
        obj.error(
            join_path(path, "protocol"),
            f'unsupported value "{protocol}": supported values: "SCTP", "TCP", "UDP"',
        )
    return protocol


def _named_port(
    obj: ObjectReader, raw: Mapping[str, object], path: str, *, require_name: bool
) -> tuple[str | None, int | None, str]:
    """A Service/Endpoints port's name (DNS-1123 label, required when there are several),
    number and protocol (ValidateServicePort / validateEndpointPort)."""
    name = obj.as_str(raw.get("name"), join_path(path, "name")) or None
    if name is None and require_name and raw.get("name") in (None, ""):
        obj.error(join_path(path, "name"), "name is required when there is more than one port")
    elif name is not None:
        obj.errors(join_path(path, "name"), dns1123_label_errors(name))
    number = obj.as_int(raw.get("port"), join_path(path, "port"))
    if number is None:
        if raw.get("port") is None:
            obj.error(join_path(path, "port"), "port is required")
    else:
        obj.errors(join_path(path, "port"), port_number_errors(number))
    return name, number, _protocol(obj, raw, path)


def _unique_names(obj: ObjectReader, names: list[tuple[str, str | None]]) -> None:
    seen: set[str] = set()
    for path, name in names:
        if name is None:
            continue
        if name in seen:
            obj.error(path, f'duplicate port name "{name}"')
        seen.add(name)


def _service(obj: ObjectReader, data: Mapping[str, object]) -> Service:
    meta = read_meta(obj, data, dns1035_label_errors, cluster=False)
    spec = obj.as_map(data.get("spec"), "spec") or {}
    kind = obj.as_str(spec.get("type"), "spec.type") or "ClusterIP"
    if kind not in _SERVICE_TYPES:
        obj.error(
            "spec.type",
            f'unsupported value "{kind}": supported values: '
            '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
        )
    external = obj.as_str(spec.get("externalName"), "spec.externalName") or None
    if kind == "ExternalName":
        if external is None:
            if spec.get("externalName") in (None, ""):
                obj.error("spec.externalName", "externalName is required for type ExternalName")
        else:
            obj.errors("spec.externalName", dns1123_subdomain_errors(external.removesuffix(".")))
    items = obj.items(spec.get("ports"), "spec.ports")
    headless = spec.get("clusterIP") == "None"
    if not items and kind != "ExternalName" and not headless and spec.get("ports") is None:
        obj.error("spec.ports", "at least one port is required")
    ports: list[ServicePort] = []
    names: list[tuple[str, str | None]] = []
    for path, raw in items:
        name, number, protocol = _named_port(obj, raw, path, require_name=len(items) > 1)
        names.append((join_path(path, "name"), name))
        target = _target_port(obj, raw.get("targetPort"), join_path(path, "targetPort"))
        app_protocol = obj.as_str(raw.get("appProtocol"), join_path(path, "appProtocol")) or None
        if number is not None:
            ports.append(ServicePort(name, number, target, protocol, app_protocol))
    _unique_names(obj, names)
    return Service(meta, kind, tuple(ports), external)


def _target_port(obj: ObjectReader, value: object, path: str) -> int | str | None:
    """An IntOrString: a number 1-65535 or an IANA port name of the Pod's container port."""
    if value is None:
        return None
    if isinstance(value, str):
        obj.errors(path, port_name_errors(value))
        return value
    number = obj.as_int(value, path)
    if number is not None:
        obj.errors(path, port_number_errors(number))
    return number


def _ip(obj: ObjectReader, value: object, path: str) -> str | None:
    """validateEndpointAddress checks the IP syntax. Unlike the API server we accept loopback
    and link-local addresses: outside a cluster, 127.0.0.1 backends are the normal case."""
    text = obj.as_str(value, path)
    if text is None:
        if value is None:
            obj.error(path, "ip is required")
        return None
    if not is_ip(text):
        obj.error(path, f'"{text}" must be a valid IP address')
        return None
    return text


def _endpoint_ports(obj: ObjectReader, value: object, path: str) -> tuple[EndpointPort, ...]:
    items = obj.items(value, path)
    ports: list[EndpointPort] = []
    names: list[tuple[str, str | None]] = []
    for item_path, raw in items:
        name, number, protocol = _named_port(obj, raw, item_path, require_name=len(items) > 1)
        names.append((join_path(item_path, "name"), name))
        if number is not None:
            ports.append(EndpointPort(name, number, protocol))
    _unique_names(obj, names)
    return tuple(ports)


def _endpoints(obj: ObjectReader, data: Mapping[str, object]) -> Endpoints:
    meta = read_meta(obj, data, dns1123_subdomain_errors, cluster=False)
    subsets: list[EndpointsSubset] = []
    for path, raw in obj.items(data.get("subsets"), "subsets"):
        groups: dict[str, list[str]] = {"addresses": [], "notReadyAddresses": []}
        for key, found in groups.items():
            for item_path, address in obj.items(raw.get(key), join_path(path, key)):
                ip = _ip(obj, address.get("ip"), join_path(item_path, "ip"))
                if ip is not None:
                    found.append(ip)
        ports = _endpoint_ports(obj, raw.get("ports"), join_path(path, "ports"))
        subsets.append(
            EndpointsSubset(tuple(groups["addresses"]), tuple(groups["notReadyAddresses"]), ports)
        )
    return Endpoints(meta, tuple(subsets))


def _slice_address(
    obj: ObjectReader, value: object, path: str, address_type: str | None
) -> str | None:
    text = obj.as_str(value, path)
    if text is None:
        if value is None:
            obj.error(path, "must be a string, not null")
        return None
    if address_type == "FQDN":
        obj.errors(path, dns1123_subdomain_errors(text.removesuffix(".")))
        return text
    version = 4 if address_type == "IPv4" else 6
    try:
        ok = ipaddress.ip_address(text).version == version
    except ValueError:
        ok = False
    if not ok:
        obj.error(path, f'"{text}" must be a valid {address_type} address')
        return None
    return text


def _endpoint_slice(obj: ObjectReader, data: Mapping[str, object]) -> EndpointSlice:
    meta = read_meta(obj, data, dns1123_subdomain_errors, cluster=False)
    address_type = obj.as_str(data.get("addressType"), "addressType")
    if address_type is None:
        if data.get("addressType") is None:
            obj.error("addressType", "addressType is required")
    elif address_type not in _ADDRESS_TYPES:
        obj.error(
            "addressType",
            f'unsupported value "{address_type}": supported values: "FQDN", "IPv4", "IPv6"',
        )
    endpoints: list[SliceEndpoint] = []
    for path, raw in obj.items(data.get("endpoints"), "endpoints"):
        addresses_path = join_path(path, "addresses")
        raw_addresses = obj.as_list(raw.get("addresses"), addresses_path)
        if absent(raw.get("addresses")):
            obj.error(addresses_path, "must contain at least 1 address")
        elif len(raw_addresses) > 100:
            obj.error(addresses_path, "must contain at most 100 addresses")
        addresses = [
            _slice_address(obj, item, f"{addresses_path}[{i}]", address_type)
            for i, item in enumerate(raw_addresses)
            if address_type in _ADDRESS_TYPES  # else addressType itself is the reported error
        ]
        conditions = obj.as_map(raw.get("conditions"), join_path(path, "conditions")) or {}
        ready = obj.as_bool(conditions.get("ready"), join_path(path, "conditions.ready"))
        endpoints.append(SliceEndpoint(tuple(a for a in addresses if a is not None), ready))
    ports: list[EndpointPort] = []
    names: list[tuple[str, str | None]] = []
    for path, raw in obj.items(data.get("ports"), "ports"):
        name = obj.as_str(raw.get("name"), join_path(path, "name")) or None
        if name is not None:
            obj.errors(join_path(path, "name"), dns1123_label_errors(name))
        names.append((join_path(path, "name"), name))
        protocol = _protocol(obj, raw, path)
        number = obj.as_int(raw.get("port"), join_path(path, "port"))
        if number is None:
            if raw.get("port") is None:
                # A null port means "all ports" in the API; we cannot proxy to that.
                obj.warn(
                    join_path(path, "port"),
                    "port is null (all ports); this port entry is ignored",
                    "unusable-port",
                )
            continue
        obj.errors(join_path(path, "port"), port_number_errors(number))
        ports.append(EndpointPort(name, number, protocol))
    _unique_names(obj, names)
    service_name = meta.labels.get(_SERVICE_NAME_LABEL)
    return EndpointSlice(meta, service_name, address_type or "", tuple(endpoints), tuple(ports))


# --------------------------------------------------------------------------- Secret


def _secret(obj: ObjectReader, data: Mapping[str, object]) -> Secret:
    """ValidateSecret, keeping only tls.crt / tls.key. `data` values are base64 (as JSON encodes
    bytes; line breaks are ignored like Go's decoder does), `stringData` values plain text that
    override `data` (the API server merges them on write). Messages never quote a value."""
    meta = read_meta(obj, data, dns1123_subdomain_errors, cluster=False)
    kind = obj.as_str(data.get("type"), "type") or "Opaque"
    values: dict[str, bytes] = {}
    given: set[str] = set()
    for key, raw in (obj.as_map(data.get("data"), "data") or {}).items():
        given.add(key)
        path = join_path("data", key)
        obj.errors(path, config_key_errors(key))
        text = "" if raw is None else obj.as_str(raw, path)
        if text is None:
            continue
        try:
            values[key] = base64.b64decode(_LINE_BREAKS.sub("", text), validate=True)
        except (binascii.Error, ValueError):
            obj.error(path, "illegal base64 data (data values are base64; use stringData for text)")
    for key, raw in (obj.as_map(data.get("stringData"), "stringData") or {}).items():
        given.add(key)
        path = join_path("stringData", key)
        obj.errors(path, config_key_errors(key))
        text = "" if raw is None else obj.as_str(raw, path)
        if text is not None:
            values[key] = text.encode("utf-8")
    if kind == _TLS_SECRET_TYPE:
        for key in _TLS_KEYS:
            if key not in given:
                obj.error(join_path("data", key), f"{key} is required for type {_TLS_SECRET_TYPE}")
    if _LAST_APPLIED in meta.annotations:
        kept = {k: v for k, v in meta.annotations.items() if k != _LAST_APPLIED}
        meta = replace(meta, annotations=frozen_map(kept))
    return Secret(
        meta, kind, values.get("tls.crt"), values.get("tls.key"), MappingProxyType(values)
    )


# --------------------------------------------------------------------------- dispatch

_Decoder = Callable[[ObjectReader, Mapping[str, object]], object]

# (apiVersion, kind) -> (decoder, cluster-scoped)
_KINDS: dict[tuple[str, str], tuple[_Decoder, bool]] = {
    ("networking.k8s.io/v1", "Ingress"): (read_ingress, False),
    ("networking.k8s.io/v1", "IngressClass"): (read_ingress_class, True),
    ("v1", "Service"): (_service, False),
    ("v1", "Endpoints"): (_endpoints, False),
    ("discovery.k8s.io/v1", "EndpointSlice"): (_endpoint_slice, False),
    ("v1", "Secret"): (_secret, False),
    **{(api, "Middleware"): (read_middleware, False) for api in MIDDLEWARE_APIS},
}

# Older versions of the kinds we honour, with the Kubernetes release that stopped serving
# them (kubernetes.io/docs/reference/using-api/deprecation-guide): no current cluster accepts
# them, so neither do we. `ingressproxy convert` writes them as the current version.
_RETIRED: dict[str, dict[str, str]] = {
    "Ingress": {"extensions/v1beta1": "1.22", "networking.k8s.io/v1beta1": "1.22"},
    "IngressClass": {"networking.k8s.io/v1beta1": "1.22"},
    "EndpointSlice": {"discovery.k8s.io/v1beta1": "1.25", "discovery.k8s.io/v1alpha1": "1.21"},
}

_CURRENT: dict[str, str] = {kind: api for api, kind in _KINDS}


def decode(documents: Iterable[RawDocument]) -> tuple[Manifests, tuple[Diagnostic, ...]]:
    """Decode and validate every object we honour; other kinds are skipped quietly."""
    diagnostics: list[Diagnostic] = []
    found: dict[str, list[tuple[object, ObjectRef]]] = {kind: [] for _, kind in _KINDS}
    kept: dict[tuple[str, str, str], RawDocument] = {}
    for doc in sorted(documents, key=lambda d: (d.file, d.line)):
        api = doc.data.get("apiVersion")
        kind = doc.data.get("kind")
        if not isinstance(api, str) or not isinstance(kind, str):
            continue  # the loader reports these as not-an-object
        entry = _KINDS.get((api, kind))
        if entry is None:
            removed = _RETIRED.get(kind, {}).get(api)
            if removed is not None:
                ref = ref_of(doc, kind, cluster=kind == "IngressClass")
                message = (
                    f"{api} {kind} was removed in Kubernetes {removed} and no current cluster"
                    f" accepts it: write it as {_CURRENT[kind]}"
                    + (
                        " (serviceName/servicePort become service.name/service.port, backend"
                        " becomes defaultBackend, every path needs a pathType)"
                        if kind == "Ingress"
                        else ""
                    )
                    + "; `ingressproxy convert FILE` prints it converted; skipped"
                )
                diagnostics.append(
                    Diagnostic(
                        Severity.ERROR,
                        "unsupported-api-version",
                        message,
                        doc.source("apiVersion"),
                        ref,
                        "apiVersion",
                    )
                )
            continue
        decoder, cluster = entry
        obj = ObjectReader(doc, ref_of(doc, kind, cluster=cluster))
        value = decoder(obj, doc.data)
        diagnostics.extend(obj.diagnostics)
        if obj.failed:
            continue
        key = (kind, obj.ref.namespace, obj.ref.name)
        first = kept.get(key)
        if first is not None:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    "duplicate",
                    f"{obj.ref} is also defined at {first.source()}; that one is kept",
                    doc.source(),
                    obj.ref,
                )
            )
            continue
        kept[key] = doc
        found[kind].append((value, obj.ref))

    def ordered(kind: str, cls: type[T]) -> tuple[T, ...]:
        pairs = sorted(found[kind], key=lambda p: (p[1].namespace, p[1].name))
        return tuple(v for v, _ in pairs if isinstance(v, cls))

    manifests = Manifests(
        ingresses=ordered("Ingress", Ingress),
        ingress_classes=ordered("IngressClass", IngressClass),
        services=ordered("Service", Service),
        endpoints=ordered("Endpoints", Endpoints),
        endpoint_slices=ordered("EndpointSlice", EndpointSlice),
        secrets=ordered("Secret", Secret),
        middlewares=ordered("Middleware", Middleware),
    )
    return manifests, tuple(sorted(diagnostics, key=Diagnostic.sort_key))
