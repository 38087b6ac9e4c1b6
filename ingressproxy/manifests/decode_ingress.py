"""Pure: the Ingress and IngressClass decoders, validated as ValidateIngressSpec and
ValidateIngressClass do. Called by decode's dispatch; builds on decode_fields and k8snames.
"""

from __future__ import annotations

from collections.abc import Mapping

from .fields import ObjectReader, absent, join_path, read_meta
from .k8snames import (
    dns1035_label_errors,
    dns1123_subdomain_errors,
    domain_prefixed_path_errors,
    host_errors,
    path_segment_errors,
    port_name_errors,
    port_number_errors,
    wildcard_subdomain_errors,
)
from .model import (
    Ingress,
    IngressBackend,
    IngressClass,
    IngressRule,
    IngressServiceBackend,
    IngressTLS,
    PathRule,
    PathType,
    ResourceRef,
    ServiceBackendPort,
)

__all__ = ["read_ingress", "read_ingress_class"]

# Invalid for Exact and Prefix paths (validateHTTPIngressPath).
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def _backend(obj: ObjectReader, value: object, path: str) -> IngressBackend | None:
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
        resource = _resource(obj, resource_raw, join_path(path, "resource"))
        return None if resource is None else IngressBackend(resource=resource)
    if service_raw is not None:
        service = _service_backend(obj, service_raw, join_path(path, "service"))
        return None if service is None else IngressBackend(service=service)
    obj.error(path, "resource or service backend is required")
    return None


def _resource(obj: ObjectReader, value: object, path: str) -> ResourceRef | None:
    raw = obj.as_map(value, path)
    if raw is None:
        return None
    group = obj.as_str(raw.get("apiGroup"), join_path(path, "apiGroup"))
    if group:
        obj.errors(join_path(path, "apiGroup"), dns1123_subdomain_errors(group))
    fields: dict[str, str] = {}
    for key in ("kind", "name"):
        got = obj.as_str(raw.get(key), join_path(path, key))
        if not got:
            if got is not None or raw.get(key) is None:
                obj.error(join_path(path, key), f"{key} is required")
            continue
        obj.errors(join_path(path, key), path_segment_errors(got))
        fields[key] = got
    if len(fields) < 2:
        return None
    return ResourceRef(group or None, fields["kind"], fields["name"])


def _service_backend(obj: ObjectReader, value: object, path: str) -> IngressServiceBackend | None:
    raw = obj.as_map(value, path)
    if raw is None:
        return None
    name_path = join_path(path, "name")
    name = obj.as_str(raw.get("name"), name_path)
    if name == "" or (name is None and raw.get("name") is None):
        obj.error(name_path, "name is required")
    elif name is not None:
        obj.errors(name_path, dns1035_label_errors(name))
    port_path = join_path(path, "port")
    port_raw = obj.as_map(raw.get("port"), port_path)
    port: ServiceBackendPort | None = None
    if port_raw is None:
        if raw.get("port") is None:
            obj.error(port_path, "port name or number is required")
    else:
        port_name = obj.as_str(port_raw.get("name"), join_path(port_path, "name")) or None
        number = obj.as_int(port_raw.get("number"), join_path(port_path, "number"))
        if port_name is not None and number is not None:
            obj.error(port_path, "cannot set both port name & port number")
        elif port_name is not None:
            obj.errors(join_path(port_path, "name"), port_name_errors(port_name))
            port = ServiceBackendPort(name=port_name)
        elif number is not None:
            obj.errors(join_path(port_path, "number"), port_number_errors(number))
            port = ServiceBackendPort(number=number)
        elif port_raw.get("name") is None and port_raw.get("number") is None:
            obj.error(port_path, "port name or number is required")
    if not name or port is None:
        return None
    return IngressServiceBackend(name, port)


def _http_path(obj: ObjectReader, raw: Mapping[str, object], path: str) -> PathRule | None:
    """validateHTTPIngressPath."""
    type_path = join_path(path, "pathType")
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
    value_path = join_path(path, "path")
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
    backend = _backend(obj, raw.get("backend"), join_path(path, "backend"))
    if path_type is None or backend is None:
        return None
    return PathRule(text, path_type, backend, path)


def _rule(obj: ObjectReader, raw: Mapping[str, object], path: str) -> IngressRule:
    host_path = join_path(path, "host")
    host = obj.as_str(raw.get("host"), host_path) or None
    if host is not None:
        obj.errors(host_path, host_errors(host))
        host = host.lower()
    http_path = join_path(path, "http")
    http = obj.as_map(raw.get("http"), http_path)
    paths: tuple[PathRule, ...] | None = None
    if http is not None:
        paths_path = join_path(http_path, "paths")
        items = obj.items(http.get("paths"), paths_path)
        if not items and not isinstance(http.get("paths"), str | int | float | Mapping):
            obj.error(paths_path, "at least one path is required")
        got = [_http_path(obj, item, item_path) for item_path, item in items]
        paths = tuple(p for p in got if p is not None)
    return IngressRule(host, paths, path)


def _tls(obj: ObjectReader, raw: Mapping[str, object], path: str) -> IngressTLS:
    hosts: list[str] = []
    for i, item in enumerate(obj.as_list(raw.get("hosts"), join_path(path, "hosts"))):
        host_path = f"{path}.hosts[{i}]"
        host = obj.as_str(item, host_path)
        if host is None:
            if item is None:
                obj.error(host_path, "must be a string, not null")
            continue
        checker = wildcard_subdomain_errors if "*" in host else dns1123_subdomain_errors
        obj.errors(host_path, checker(host))
        hosts.append(host)
    secret = obj.as_str(raw.get("secretName"), join_path(path, "secretName")) or None
    if secret is not None:  # validateTLSSecretName: a Secret name
        obj.errors(join_path(path, "secretName"), dns1123_subdomain_errors(secret))
    return IngressTLS(tuple(hosts), secret)


def read_ingress(obj: ObjectReader, data: Mapping[str, object]) -> Ingress:
    """ValidateIngressSpec / validateIngressRules, reporting every problem."""
    meta = read_meta(obj, data, dns1123_subdomain_errors, cluster=False)
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
    if spec_ok and absent(spec.get("rules")) and spec.get("defaultBackend") is None:
        obj.error("spec", "either `defaultBackend` or `rules` must be specified")
    tls = tuple(_tls(obj, item, path) for path, item in obj.items(spec.get("tls"), "spec.tls"))
    legacy = meta.annotations.get(_LEGACY_CLASS_ANNOTATION)
    if legacy is not None and class_name is not None and legacy != class_name:
        # ValidateIngressCreate refuses a contradiction rather than picking one.
        obj.error(
            join_path("metadata.annotations", _LEGACY_CLASS_ANNOTATION),
            f'"{legacy}" must match `ingressClassName` ("{class_name}") when both are specified',
        )
    return Ingress(meta, class_name, default_backend, rules, tls)


def read_ingress_class(obj: ObjectReader, data: Mapping[str, object]) -> IngressClass:
    meta = read_meta(obj, data, dns1123_subdomain_errors, cluster=True)
    spec = obj.as_map(data.get("spec"), "spec") or {}
    controller = obj.as_str(spec.get("controller"), "spec.controller")
    if not controller:
        if spec.get("controller") in (None, ""):
            obj.error("spec.controller", "controller is required")
    else:
        if len(controller) > 250:
            obj.error("spec.controller", "must be no more than 250 characters")
        obj.errors("spec.controller", domain_prefixed_path_errors(controller))
    is_default = meta.annotations.get(_DEFAULT_CLASS_ANNOTATION) == "true"
    return IngressClass(meta, controller, is_default)
