"""Field access shared by the per-kind decoders (decode, decode_ingress): typed getters that turn
a wrong type into an "invalid" Diagnostic naming the field path, and object metadata.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from .k8snames import dns1123_label_errors
from .model import DEFAULT_NAMESPACE, Diagnostic, Meta, ObjectRef, RawDocument, Severity, frozen_map

__all__ = ["NameRule", "ObjectReader", "absent", "join_path", "read_meta", "ref_of"]

# --------------------------------------------------------------------------- field access


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def absent(value: object) -> bool:
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


class ObjectReader:
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
            field = join_path(path, key)
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

_RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


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


NameRule = Callable[[str], list[str]]


def read_meta(
    obj: ObjectReader, data: Mapping[str, object], name_rule: NameRule, *, cluster: bool
) -> Meta:
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


def ref_of(doc: RawDocument, kind: str, *, cluster: bool) -> ObjectRef:
    """The object's name as best we can tell before validating, for diagnostics."""
    metadata = doc.data.get("metadata")
    name: object = None
    namespace: object = None
    if isinstance(metadata, Mapping):
        name = metadata.get("name")
        namespace = metadata.get("namespace")
    ns = "" if cluster else (namespace if isinstance(namespace, str) else DEFAULT_NAMESPACE)
    return ObjectRef(kind, ns or "", name if isinstance(name, str) else "")
