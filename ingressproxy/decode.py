"""Pure: RawDocuments -> model objects (Manifests), validated as the Kubernetes API server would.

Flow: loader -> decode -> compiler. An object that fails validation is skipped whole, with one
"invalid" Diagnostic per problem naming file:line, `Kind ns/name` and the field path.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from .model import (
    DEFAULT_NAMESPACE,
    Diagnostic,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointsSubset,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressRule,
    IngressServiceBackend,
    IngressTLS,
    Manifests,
    Meta,
    ObjectRef,
    PathRule,
    PathType,
    RawDocument,
    ResourceRef,
    Secret,
    Service,
    ServiceBackendPort,
    ServicePort,
    Severity,
    SliceEndpoint,
    frozen_map,
)

__all__ = [
    "decode",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "host_errors",
    "port_name_errors",
]

T = TypeVar("T")

# --------------------------------------------------------------------------- name rules
# k8s.io/apimachinery/pkg/util/validation/validation.go

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_WILDCARD_SUBDOMAIN_RE = re.compile(rf"^\*\.{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PORT_NAME_CHARSET_RE = re.compile(r"^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE = re.compile(r"[a-z]")
_DOMAIN_PATH_RE = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
_RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def dns1123_label_errors(value: str) -> list[str]:
    """IsDNS1123Label: namespaces, Service/Endpoints port names."""
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.match(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character"
        )
    return errors


def dns1123_subdomain_errors(value: str) -> list[str]:
    """IsDNS1123Subdomain: most object names, hosts, ingressClassName."""
    errors: list[str] = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )
    return errors


def dns1035_label_errors(value: str) -> list[str]:
    """IsDNS1035Label: Service names (they become DNS labels inside the cluster)."""
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1035_LABEL_RE.match(value):
        errors.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character"
        )
    return errors


def _wildcard_subdomain_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _WILDCARD_SUBDOMAIN_RE.match(value):
        errors.append(
            "a wildcard RFC 1123 subdomain must start with '*.', followed by a valid RFC 1123 "
            "subdomain (the wildcard may only be the whole first label)"
        )
    return errors


def port_name_errors(value: str) -> list[str]:
    """IsValidPortName: an IANA service name (RFC 6335)."""
    errors: list[str] = []
    if len(value) > 15:
        errors.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARSET_RE.match(value):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _port_number_errors(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def _path_segment_errors(value: str) -> list[str]:
    """IsValidPathSegmentName: resource backend kind/name."""
    if value in (".", ".."):
        return [f"may not be {value!r}"]
    return [f"may not contain {c!r}" for c in ("/", "%") if c in value]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def host_errors(host: str) -> list[str]:
    """validateIngressRules' host checks: a DNS name (optionally `*.`-prefixed), not an IP, no
    port. Kubernetes rejects upper case (RFC 1123 names are lower case); we say so plainly."""
    if _is_ip(host):
        return ["must be a DNS name, not an IP address"]
    if ":" in host:
        return ["must not contain a port (':'); the port belongs to the backend"]
    errors: list[str] = []
    if host != host.lower():
        errors.append("must be lower case")
        host = host.lower()
    if "*" in host:
        errors.extend(_wildcard_subdomain_errors(host))
    else:
        errors.extend(dns1123_subdomain_errors(host))
    return errors


def _domain_prefixed_path_errors(value: str) -> list[str]:
    """IsDomainPrefixedPath: IngressClass spec.controller, e.g. `k8s.io/ingress-nginx`."""
    host, sep, path = value.partition("/")
    if not sep or not host or not path:
        return ['must be a domain-prefixed path (such as "acme.io/foo")']
    errors = dns1123_subdomain_errors(host)
    if not _DOMAIN_PATH_RE.match(path):
        errors.append("the path part contains characters that are not allowed")
    return errors


# Invalid for Exact and Prefix paths (validateHTTPIngressPath).
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")

_PROTOCOLS = ("TCP", "UDP", "SCTP")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
_LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_TLS_SECRET_TYPE = "kubernetes.io/tls"
_TLS_KEYS = ("tls.crt", "tls.key")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_LINE_BREAKS = re.compile(r"[\r\n]")
# kubectl keeps a plain copy of the whole applied object here, Secret data included.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# --------------------------------------------------------------------------- field access


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _absent(value: object) -> bool:
    """Unset, null or an empty list: what Kubernetes' `len(x) == 0` checks see."""
    return value is None or value == []


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    return "a number"


class _Object:
    """Collects the diagnostics of one object; `failed` means it must be skipped."""

    def __init__(self, doc: RawDocument, ref: ObjectRef) -> None:
        self.doc = doc
        self.ref = ref
        self.diagnostics: list[Diagnostic] = []
        self.failed = False

    def error(self, path: str, message: str, code: str = "invalid") -> None:
        self.failed = True
        self.diagnostics.append(
            Diagnostic(Severity.ERROR, code, message, self.doc.source(path), self.ref, path)
        )

    def warn(self, path: str, message: str, code: str) -> None:
        self.diagnostics.append(
            Diagnostic(Severity.WARNING, code, message, self.doc.source(path), self.ref, path)
        )

    def errors(self, path: str, messages: Iterable[str]) -> None:
        for message in messages:
            self.error(path, message)

    # Typed getters: None when absent (or null, which Kubernetes treats as absent); a wrong type
    # is an error naming the field, never an exception.

    def as_map(self, value: object, path: str) -> Mapping[str, object] | None:
        if value is None:
            return None
        if isinstance(value, Mapping):
            return value
        self.error(path, f"must be a mapping, not {_type_name(value)}")
        return None

    def as_list(self, value: object, path: str) -> list[object]:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.error(path, f"must be a list, not {_type_name(value)}")
        return []

    def as_str(self, value: object, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        self.error(path, f"must be a string, not {_type_name(value)}")
        return None

    def as_int(self, value: object, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.error(path, f"must be an integer, not {_type_name(value)}")
        return None

    def as_bool(self, value: object, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.error(path, f"must be a boolean, not {_type_name(value)}")
        return None

    def items(self, value: object, path: str) -> list[tuple[str, Mapping[str, object]]]:
        """The mappings of a list, each with its field path; non-mappings are errors."""
        out: list[tuple[str, Mapping[str, object]]] = []
        for i, item in enumerate(self.as_list(value, path)):
            item_path = f"{path}[{i}]"
            got = self.as_map(item, item_path)
            if got is None and item is None:
                self.error(item_path, "must be a mapping, not null")
            if got is not None:
                out.append((item_path, got))
        return out

    def string_map(self, value: object, path: str) -> dict[str, str]:
        """Labels/annotations. The API server refuses non-string values; we are lenient and
        convert scalars (booleans as `true`/`false`, like the JSON they came from) with a
        warning, because an unquoted `true` is the most common YAML slip."""
        got = self.as_map(value, path)
        out: dict[str, str] = {}
        for key, item in (got or {}).items():
            field = _join(path, key)
            if isinstance(item, str):
                out[key] = item
            elif isinstance(item, bool):
                out[key] = "true" if item else "false"
                self.warn(field, f"value {out[key]} is not a string; quote it", "non-string-value")
            elif isinstance(item, int | float) or item is None:
                # JSON null decodes to "" in a Go map[string]string.
                out[key] = "" if item is None else str(item)
                shown = "null" if item is None else out[key]
                self.warn(field, f"value {shown} is not a string; quote it", "non-string-value")
            else:
                self.error(field, f"must be a string, not {_type_name(item)}")
        return out


# --------------------------------------------------------------------------- metadata


def _parse_time(value: str) -> datetime | None:
    """RFC 3339 as metav1.Time writes it (`2022-02-04T16:23:46Z`), to an aware datetime."""
    m = _RFC3339_RE.match(value)
    if m is None:
        return None
    date, clock, fraction, zone = m.groups()
    fraction = (fraction or "")[:7]  # Python keeps microseconds; drop finer digits
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{clock}{fraction}{zone}")
    except ValueError:
        return None


_NameRule = Callable[[str], list[str]]


def _meta(obj: _Object, data: Mapping[str, object], name_rule: _NameRule, *, cluster: bool) -> Meta:
    raw = obj.as_map(data.get("metadata"), "metadata") or {}
    name = obj.as_str(raw.get("name"), "metadata.name")
    if (name is None and raw.get("name") is None) or name == "":
        obj.error("metadata.name", "name is required")
    elif name is not None:
        obj.errors("metadata.name", name_rule(name))
    namespace = ""
    if not cluster:
        namespace = obj.as_str(raw.get("namespace"), "metadata.namespace") or DEFAULT_NAMESPACE
        obj.errors("metadata.namespace", dns1123_label_errors(namespace))
    created = None
    stamp = raw.get("creationTimestamp")
    if stamp is not None:
        text = obj.as_str(stamp, "metadata.creationTimestamp")
        if text is not None:
            created = _parse_time(text)
            if created is None:
                obj.error(
                    "metadata.creationTimestamp",
                    f"{text!r} is not an RFC 3339 time (like 2022-02-04T16:23:46Z)",
                )
    return Meta(
        name=name or "",
        namespace=namespace,
        source=obj.doc.source(""),
        creation_timestamp=created,
        labels=frozen_map(obj.string_map(raw.get("labels"), "metadata.labels")),
        annotations=frozen_map(obj.string_map(raw.get("annotations"), "metadata.annotations")),
        lines=obj.doc.lines,
    )


def _ref_of(doc: RawDocument, kind: str, *, cluster: bool) -> ObjectRef:
    """The object's name as best we can tell before validating, for diagnostics."""
    metadata = doc.data.get("metadata")
    name: object = None
    namespace: object = None
    if isinstance(metadata, Mapping):
        name = metadata.get("name")
        namespace = metadata.get("namespace")
    ns = "" if cluster else (namespace if isinstance(namespace, str) else DEFAULT_NAMESPACE)
    return ObjectRef(kind, ns or "", name if isinstance(name, str) else "")


# --------------------------------------------------------------------------- Ingress


def _backend(obj: _Object, value: object, path: str) -> IngressBackend | None:
    """validateIngressBackend: exactly one of service/resource."""
    raw = obj.as_map(value, path)
    if raw is None:
        if value is None:
            obj.error(path, "resource or service backend is required")
        return None
    service_raw = raw.get("service")
    resource_raw = raw.get("resource")
    if service_raw is not None and resource_raw is not None:
        obj.error(path, "cannot set both resource and service backends")
        return None
    if resource_raw is not None:
        resource = _resource(obj, resource_raw, _join(path, "resource"))
        return None if resource is None else IngressBackend(resource=resource)
    if service_raw is not None:
        service = _service_backend(obj, service_raw, _join(path, "service"))
        return None if service is None else IngressBackend(service=service)
    obj.error(path, "resource or service backend is required")
    return None


def _resource(obj: _Object, value: object, path: str) -> ResourceRef | None:
    raw = obj.as_map(value, path)
    if raw is None:
        return None
    group = obj.as_str(raw.get("apiGroup"), _join(path, "apiGroup"))
    if group:
        obj.errors(_join(path, "apiGroup"), dns1123_subdomain_errors(group))
    fields: dict[str, str] = {}
    for key in ("kind", "name"):
        got = obj.as_str(raw.get(key), _join(path, key))
        if not got:
            if got is not None or raw.get(key) is None:
                obj.error(_join(path, key), f"{key} is required")
            continue
        obj.errors(_join(path, key), _path_segment_errors(got))
        fields[key] = got
    if len(fields) < 2:
        return None
    return ResourceRef(group or None, fields["kind"], fields["name"])


def _service_backend(obj: _Object, value: object, path: str) -> IngressServiceBackend | None:
    raw = obj.as_map(value, path)
    if raw is None:
        return None
    name_path = _join(path, "name")
    name = obj.as_str(raw.get("name"), name_path)
    if name == "" or (name is None and raw.get("name") is None):
        obj.error(name_path, "name is required")
    elif name is not None:
        obj.errors(name_path, dns1035_label_errors(name))
    port_path = _join(path, "port")
    port_raw = obj.as_map(raw.get("port"), port_path)
    port: ServiceBackendPort | None = None
    if port_raw is None:
        if raw.get("port") is None:
            obj.error(port_path, "port name or number is required")
    else:
        port_name = obj.as_str(port_raw.get("name"), _join(port_path, "name")) or None
        number = obj.as_int(port_raw.get("number"), _join(port_path, "number"))
        if port_name is not None and number is not None:
            obj.error(port_path, "cannot set both port name & port number")
        elif port_name is not None:
            obj.errors(_join(port_path, "name"), port_name_errors(port_name))
            port = ServiceBackendPort(name=port_name)
        elif number is not None:
            obj.errors(_join(port_path, "number"), _port_number_errors(number))
            port = ServiceBackendPort(number=number)
        elif port_raw.get("name") is None and port_raw.get("number") is None:
            obj.error(port_path, "port name or number is required")
    if not name or port is None:
        return None
    return IngressServiceBackend(name, port)


def _http_path(obj: _Object, raw: Mapping[str, object], path: str) -> PathRule | None:
    """validateHTTPIngressPath."""
    type_path = _join(path, "pathType")
    type_raw = obj.as_str(raw.get("pathType"), type_path)
    path_type: PathType | None = None
    if type_raw is None:
        if raw.get("pathType") is None:
            obj.error(type_path, "pathType must be specified")
    else:
        try:
            path_type = PathType(type_raw)
        except ValueError:
            obj.error(
                type_path,
                f'unsupported value "{type_raw}": supported values: '
                '"Exact", "ImplementationSpecific", "Prefix"',
            )
    value_path = _join(path, "path")
    value = obj.as_str(raw.get("path"), value_path)
    text = value or ""
    if path_type in (PathType.EXACT, PathType.PREFIX):
        if not text.startswith("/"):
            obj.error(value_path, "must be an absolute path")
        for seq in _INVALID_PATH_SEQUENCES:
            if seq in text:
                obj.error(value_path, f"must not contain '{seq}'")
        for suffix in _INVALID_PATH_SUFFIXES:
            if text.endswith(suffix):
                obj.error(value_path, f"cannot end with '{suffix}'")
    elif path_type is PathType.IMPLEMENTATION_SPECIFIC:
        if text and not text.startswith("/"):
            obj.error(value_path, "must be an absolute path")
        # An empty ImplementationSpecific path matches everything (ingress-nginx, Traefik).
        text = text or "/"
    backend = _backend(obj, raw.get("backend"), _join(path, "backend"))
    if path_type is None or backend is None:
        return None
    return PathRule(text, path_type, backend, path)


def _rule(obj: _Object, raw: Mapping[str, object], path: str) -> IngressRule:
    host_path = _join(path, "host")
    host = obj.as_str(raw.get("host"), host_path) or None
    if host is not None:
        obj.errors(host_path, host_errors(host))
        host = host.lower()
    http_path = _join(path, "http")
    http = obj.as_map(raw.get("http"), http_path)
    paths: tuple[PathRule, ...] | None = None
    if http is not None:
        paths_path = _join(http_path, "paths")
        items = obj.items(http.get("paths"), paths_path)
        if not items and not isinstance(http.get("paths"), str | int | float | Mapping):
            obj.error(paths_path, "at least one path is required")
        got = [_http_path(obj, item, item_path) for item_path, item in items]
        paths = tuple(p for p in got if p is not None)
    return IngressRule(host, paths, path)


def _tls(obj: _Object, raw: Mapping[str, object], path: str) -> IngressTLS:
    hosts: list[str] = []
    for i, item in enumerate(obj.as_list(raw.get("hosts"), _join(path, "hosts"))):
        host_path = f"{path}.hosts[{i}]"
        host = obj.as_str(item, host_path)
        if host is None:
            if item is None:
                obj.error(host_path, "must be a string, not null")
            continue
        checker = _wildcard_subdomain_errors if "*" in host else dns1123_subdomain_errors
        obj.errors(host_path, checker(host))
        hosts.append(host)
    secret = obj.as_str(raw.get("secretName"), _join(path, "secretName")) or None
    if secret is not None:  # validateTLSSecretName: a Secret name
        obj.errors(_join(path, "secretName"), dns1123_subdomain_errors(secret))
    return IngressTLS(tuple(hosts), secret)


def _ingress(obj: _Object, data: Mapping[str, object]) -> Ingress:
    """ValidateIngressSpec / validateIngressRules, reporting every problem."""
    meta = _meta(obj, data, dns1123_subdomain_errors, cluster=False)
    spec_ok = data.get("spec") is None or isinstance(data.get("spec"), Mapping)
    spec = obj.as_map(data.get("spec"), "spec") or {}
    class_name = obj.as_str(spec.get("ingressClassName"), "spec.ingressClassName")
    if class_name is not None:
        obj.errors("spec.ingressClassName", dns1123_subdomain_errors(class_name))
    default_backend = None
    if spec.get("defaultBackend") is not None:
        default_backend = _backend(obj, spec["defaultBackend"], "spec.defaultBackend")
    rule_items = obj.items(spec.get("rules"), "spec.rules")
    rules = tuple(_rule(obj, item, path) for path, item in rule_items)
    if spec_ok and _absent(spec.get("rules")) and spec.get("defaultBackend") is None:
        obj.error("spec", "either `defaultBackend` or `rules` must be specified")
    tls = tuple(_tls(obj, item, path) for path, item in obj.items(spec.get("tls"), "spec.tls"))
    legacy = meta.annotations.get(_LEGACY_CLASS_ANNOTATION)
    if legacy is not None and class_name is not None and legacy != class_name:
        # ValidateIngressCreate refuses a contradiction rather than picking one.
        obj.error(
            _join("metadata.annotations", _LEGACY_CLASS_ANNOTATION),
            f'"{legacy}" must match `ingressClassName` ("{class_name}") when both are specified',
        )
    return Ingress(meta, class_name, default_backend, rules, tls)


def _ingress_class(obj: _Object, data: Mapping[str, object]) -> IngressClass:
    meta = _meta(obj, data, dns1123_subdomain_errors, cluster=True)
    spec = obj.as_map(data.get("spec"), "spec") or {}
    controller = obj.as_str(spec.get("controller"), "spec.controller")
    if not controller:
        if spec.get("controller") in (None, ""):
            obj.error("spec.controller", "controller is required")
    else:
        if len(controller) > 250:
            obj.error("spec.controller", "must be no more than 250 characters")
        obj.errors("spec.controller", _domain_prefixed_path_errors(controller))
    is_default = meta.annotations.get(_DEFAULT_CLASS_ANNOTATION) == "true"
    return IngressClass(meta, controller, is_default)


# --------------------------------------------------------------------------- Service & endpoints


def _protocol(obj: _Object, raw: Mapping[str, object], path: str) -> str:
    protocol = obj.as_str(raw.get("protocol"), _join(path, "protocol")) or "TCP"
    if protocol not in _PROTOCOLS:
        obj.error(
            _join(path, "protocol"),
            f'unsupported value "{protocol}": supported values: "SCTP", "TCP", "UDP"',
        )
    return protocol


def _named_port(
    obj: _Object, raw: Mapping[str, object], path: str, *, require_name: bool
) -> tuple[str | None, int | None, str]:
    """A Service/Endpoints port's name (DNS-1123 label, required when there are several),
    number and protocol (ValidateServicePort / validateEndpointPort)."""
    name = obj.as_str(raw.get("name"), _join(path, "name")) or None
    if name is None and require_name and raw.get("name") in (None, ""):
        obj.error(_join(path, "name"), "name is required when there is more than one port")
    elif name is not None:
        obj.errors(_join(path, "name"), dns1123_label_errors(name))
    number = obj.as_int(raw.get("port"), _join(path, "port"))
    if number is None:
        if raw.get("port") is None:
            obj.error(_join(path, "port"), "port is required")
    else:
        obj.errors(_join(path, "port"), _port_number_errors(number))
    return name, number, _protocol(obj, raw, path)


def _unique_names(obj: _Object, names: list[tuple[str, str | None]]) -> None:
    seen: set[str] = set()
    for path, name in names:
        if name is None:
            continue
        if name in seen:
            obj.error(path, f'duplicate port name "{name}"')
        seen.add(name)


def _service(obj: _Object, data: Mapping[str, object]) -> Service:
    meta = _meta(obj, data, dns1035_label_errors, cluster=False)
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
        names.append((_join(path, "name"), name))
        target = _target_port(obj, raw.get("targetPort"), _join(path, "targetPort"))
        app_protocol = obj.as_str(raw.get("appProtocol"), _join(path, "appProtocol")) or None
        if number is not None:
            ports.append(ServicePort(name, number, target, protocol, app_protocol))
    _unique_names(obj, names)
    return Service(meta, kind, tuple(ports), external)


def _target_port(obj: _Object, value: object, path: str) -> int | str | None:
    """An IntOrString: a number 1-65535 or an IANA port name of the Pod's container port."""
    if value is None:
        return None
    if isinstance(value, str):
        obj.errors(path, port_name_errors(value))
        return value
    number = obj.as_int(value, path)
    if number is not None:
        obj.errors(path, _port_number_errors(number))
    return number


def _ip(obj: _Object, value: object, path: str) -> str | None:
    """validateEndpointAddress checks the IP syntax. Unlike the API server we accept loopback
    and link-local addresses: outside a cluster, 127.0.0.1 backends are the normal case."""
    text = obj.as_str(value, path)
    if text is None:
        if value is None:
            obj.error(path, "ip is required")
        return None
    if not _is_ip(text):
        obj.error(path, f'"{text}" must be a valid IP address')
        return None
    return text


def _endpoint_ports(obj: _Object, value: object, path: str) -> tuple[EndpointPort, ...]:
    items = obj.items(value, path)
    ports: list[EndpointPort] = []
    names: list[tuple[str, str | None]] = []
    for item_path, raw in items:
        name, number, protocol = _named_port(obj, raw, item_path, require_name=len(items) > 1)
        names.append((_join(item_path, "name"), name))
        if number is not None:
            ports.append(EndpointPort(name, number, protocol))
    _unique_names(obj, names)
    return tuple(ports)


def _endpoints(obj: _Object, data: Mapping[str, object]) -> Endpoints:
    meta = _meta(obj, data, dns1123_subdomain_errors, cluster=False)
    subsets: list[EndpointsSubset] = []
    for path, raw in obj.items(data.get("subsets"), "subsets"):
        groups: dict[str, list[str]] = {"addresses": [], "notReadyAddresses": []}
        for key, found in groups.items():
            for item_path, address in obj.items(raw.get(key), _join(path, key)):
                ip = _ip(obj, address.get("ip"), _join(item_path, "ip"))
                if ip is not None:
                    found.append(ip)
        ports = _endpoint_ports(obj, raw.get("ports"), _join(path, "ports"))
        subsets.append(
            EndpointsSubset(tuple(groups["addresses"]), tuple(groups["notReadyAddresses"]), ports)
        )
    return Endpoints(meta, tuple(subsets))


def _slice_address(obj: _Object, value: object, path: str, address_type: str | None) -> str | None:
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


def _endpoint_slice(obj: _Object, data: Mapping[str, object]) -> EndpointSlice:
    meta = _meta(obj, data, dns1123_subdomain_errors, cluster=False)
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
        addresses_path = _join(path, "addresses")
        raw_addresses = obj.as_list(raw.get("addresses"), addresses_path)
        if _absent(raw.get("addresses")):
            obj.error(addresses_path, "must contain at least 1 address")
        elif len(raw_addresses) > 100:
            obj.error(addresses_path, "must contain at most 100 addresses")
        addresses = [
            _slice_address(obj, item, f"{addresses_path}[{i}]", address_type)
            for i, item in enumerate(raw_addresses)
            if address_type in _ADDRESS_TYPES  # else addressType itself is the reported error
        ]
        conditions = obj.as_map(raw.get("conditions"), _join(path, "conditions")) or {}
        ready = obj.as_bool(conditions.get("ready"), _join(path, "conditions.ready"))
        endpoints.append(SliceEndpoint(tuple(a for a in addresses if a is not None), ready))
    ports: list[EndpointPort] = []
    names: list[tuple[str, str | None]] = []
    for path, raw in obj.items(data.get("ports"), "ports"):
        name = obj.as_str(raw.get("name"), _join(path, "name")) or None
        if name is not None:
            obj.errors(_join(path, "name"), dns1123_label_errors(name))
        names.append((_join(path, "name"), name))
        protocol = _protocol(obj, raw, path)
        number = obj.as_int(raw.get("port"), _join(path, "port"))
        if number is None:
            if raw.get("port") is None:
                # A null port means "all ports" in the API; we cannot proxy to that.
                obj.warn(
                    _join(path, "port"),
                    "port is null (all ports); this port entry is ignored",
                    "unusable-port",
                )
            continue
        obj.errors(_join(path, "port"), _port_number_errors(number))
        ports.append(EndpointPort(name, number, protocol))
    _unique_names(obj, names)
    service_name = meta.labels.get(_SERVICE_NAME_LABEL)
    return EndpointSlice(meta, service_name, address_type or "", tuple(endpoints), tuple(ports))


# --------------------------------------------------------------------------- Secret


def _config_key_errors(key: str) -> list[str]:
    """IsConfigMapKey: the keys of Secret data."""
    errors: list[str] = []
    if len(key) > 253:
        errors.append("must be no more than 253 characters")
    if not _CONFIG_KEY_RE.match(key):
        errors.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    if key in (".", "..") or key.startswith(".."):
        errors.append("must not be '.' or '..' or start with '..'")
    return errors


def _secret(obj: _Object, data: Mapping[str, object]) -> Secret:
    """ValidateSecret, keeping only tls.crt / tls.key. `data` values are base64 (as JSON encodes
    bytes; line breaks are ignored like Go's decoder does), `stringData` values plain text that
    override `data` (the API server merges them on write). Messages never quote a value."""
    meta = _meta(obj, data, dns1123_subdomain_errors, cluster=False)
    kind = obj.as_str(data.get("type"), "type") or "Opaque"
    values: dict[str, bytes] = {}
    given: set[str] = set()
    for key, raw in (obj.as_map(data.get("data"), "data") or {}).items():
        given.add(key)
        path = _join("data", key)
        obj.errors(path, _config_key_errors(key))
        text = "" if raw is None else obj.as_str(raw, path)
        if text is None:
            continue
        try:
            values[key] = base64.b64decode(_LINE_BREAKS.sub("", text), validate=True)
        except (binascii.Error, ValueError):
            obj.error(path, "illegal base64 data (data values are base64; use stringData for text)")
    for key, raw in (obj.as_map(data.get("stringData"), "stringData") or {}).items():
        given.add(key)
        path = _join("stringData", key)
        obj.errors(path, _config_key_errors(key))
        text = "" if raw is None else obj.as_str(raw, path)
        if text is not None:
            values[key] = text.encode("utf-8")
    if kind == _TLS_SECRET_TYPE:
        for key in _TLS_KEYS:
            if key not in given:
                obj.error(_join("data", key), f"{key} is required for type {_TLS_SECRET_TYPE}")
    if _LAST_APPLIED in meta.annotations:
        kept = {k: v for k, v in meta.annotations.items() if k != _LAST_APPLIED}
        meta = replace(meta, annotations=frozen_map(kept))
    return Secret(meta, kind, values.get("tls.crt"), values.get("tls.key"))


# --------------------------------------------------------------------------- dispatch

_Decoder = Callable[[_Object, Mapping[str, object]], object]

# (apiVersion, kind) -> (decoder, cluster-scoped)
_KINDS: dict[tuple[str, str], tuple[_Decoder, bool]] = {
    ("networking.k8s.io/v1", "Ingress"): (_ingress, False),
    ("networking.k8s.io/v1", "IngressClass"): (_ingress_class, True),
    ("v1", "Service"): (_service, False),
    ("v1", "Endpoints"): (_endpoints, False),
    ("discovery.k8s.io/v1", "EndpointSlice"): (_endpoint_slice, False),
    ("v1", "Secret"): (_secret, False),
}

# Older versions of the kinds we honour (removed in Kubernetes 1.22 / 1.25): say so, skip them.
_RETIRED: dict[str, tuple[str, ...]] = {
    "Ingress": ("extensions/v1beta1", "networking.k8s.io/v1beta1"),
    "IngressClass": ("networking.k8s.io/v1beta1",),
    "EndpointSlice": ("discovery.k8s.io/v1beta1", "discovery.k8s.io/v1alpha1"),
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
            if api in _RETIRED.get(kind, ()):
                ref = _ref_of(doc, kind, cluster=kind == "IngressClass")
                diagnostics.append(
                    Diagnostic(
                        Severity.WARNING,
                        "unsupported-api-version",
                        f"{api} is no longer served by Kubernetes; use {_CURRENT[kind]}; skipped",
                        doc.source("apiVersion"),
                        ref,
                        "apiVersion",
                    )
                )
            continue
        decoder, cluster = entry
        obj = _Object(doc, _ref_of(doc, kind, cluster=cluster))
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
    )
    return manifests, tuple(sorted(diagnostics, key=Diagnostic.sort_key))
