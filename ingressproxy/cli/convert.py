"""`ingressproxy convert FILE|DIR|-`: retired Ingress, IngressClass and EndpointSlice API
versions rewritten as the current ones, comments and every other document kept.

The field mapping is Kubernetes' own conversion (pkg/apis/networking/v1beta1 and
extensions/v1beta1 conversion.go): serviceName/servicePort become service.name and
service.port.number (an integer) or service.port.name (a string); `backend` becomes
`defaultBackend`; a path without pathType gets ImplementationSpecific, the v1beta1 default.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

__all__ = ["ConvertError", "Converted", "convert_text"]

_CURRENT = {
    "Ingress": "networking.k8s.io/v1",
    "IngressClass": "networking.k8s.io/v1",
    "EndpointSlice": "discovery.k8s.io/v1",
}
_RETIRED = {
    ("extensions/v1beta1", "Ingress"),
    ("networking.k8s.io/v1beta1", "Ingress"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"),
}


class ConvertError(Exception):
    """The text is not YAML we can rewrite; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Converted:
    text: str
    converted: int  # documents rewritten
    notes: tuple[str, ...]  # what a person should look at, one line each


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value onto a new line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def convert_text(text: str, name: str = "-") -> Converted:
    """Every document of `text`, the retired ones converted; the others as they were."""
    yaml = _yaml()
    try:
        documents = list(yaml.load_all(text))
    except YAMLError as exc:
        raise ConvertError(f"{name}: cannot parse YAML: {exc}") from None
    notes: list[str] = []
    converted = 0
    for doc in documents:
        if isinstance(doc, CommentedMap) and _convert(doc, notes, name):
            converted += 1
    out = io.StringIO()
    if converted == 0:
        return Converted(text, 0, tuple(notes))
    yaml.dump_all([d for d in documents if d is not None], out)
    return Converted(out.getvalue(), converted, tuple(notes))


def _convert(doc: CommentedMap, notes: list[str], name: str) -> bool:
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if (api, kind) not in _RETIRED:
        return False
    doc["apiVersion"] = _CURRENT[str(kind)]
    if kind == "Ingress":
        spec = doc.get("spec")
        if isinstance(spec, CommentedMap):
            _ingress_spec(spec, notes, f"{name}: Ingress {_name(doc)}")
    if kind == "EndpointSlice":
        for ep in _seq(doc.get("endpoints")):
            if isinstance(ep, CommentedMap) and "topology" in ep:
                # v1 keeps the v1beta1 topology map as deprecatedTopology.
                _rename(ep, "topology", "deprecatedTopology")
    return True


def _name(doc: CommentedMap) -> str:
    meta = doc.get("metadata")
    if not isinstance(meta, CommentedMap):
        return "?"
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def _seq(value: object) -> Iterable[Any]:
    return value if isinstance(value, CommentedSeq) else ()


def _rename(m: CommentedMap, old: str, new: str, value: object = None) -> None:
    """Replace key `old` by `new` at the same position (and with `value` when given)."""
    keys = list(m.keys())
    position = keys.index(old)
    kept = m.pop(old) if value is None else (m.pop(old), value)[1]
    m.insert(position, new, kept)


def _ingress_spec(spec: CommentedMap, notes: list[str], where: str) -> None:
    if "backend" in spec:
        _rename(spec, "backend", "defaultBackend", _backend(spec["backend"], notes, where))
    for rule in _seq(spec.get("rules")):
        http = rule.get("http") if isinstance(rule, CommentedMap) else None
        if not isinstance(http, CommentedMap):
            continue
        for path in _seq(http.get("paths")):
            if not isinstance(path, CommentedMap):
                continue
            if "backend" in path:
                path["backend"] = _backend(path["backend"], notes, where)
            if "pathType" not in path:
                # v1beta1 defaulted pathType to ImplementationSpecific; v1 requires it.
                position = list(path.keys()).index("path") + 1 if "path" in path else 0
                path.insert(position, "pathType", "ImplementationSpecific")


def _backend(backend: object, notes: list[str], where: str) -> object:
    if not isinstance(backend, CommentedMap) or "serviceName" not in backend:
        return backend  # a resource backend has the same shape in v1
    port = backend.get("servicePort")
    service = CommentedMap()
    service["name"] = backend["serviceName"]
    if isinstance(port, int) and not isinstance(port, bool):
        service["port"] = CommentedMap([("number", port)])
    elif port is not None:
        # IntOrString: a string is a port name (conversion.go), even one of digits.
        service["port"] = CommentedMap([("name", str(port))])
        if str(port).isdigit():
            notes.append(
                f'{where}: servicePort "{port}" is a string, so it becomes port.name as'
                " Kubernetes converts it; write it unquoted for port.number"
            )
    out = CommentedMap()
    out["service"] = service
    return out
