"""Composed YAML nodes -> plain data (dict/list/str/int/float/bool/None) and a field-path -> line
map, with aliases expanded under a budget. Flow: loader -> compose -> convert -> RawDocument.
"""

from __future__ import annotations

from sys import intern
from typing import Any

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .compose import MAP_TAG, SEQ_TAG, STR_TAG, tag_of
from .limits import MAX_DEPTH, MAX_NODES
from .model import Diagnostic, Severity, Source

__all__ = ["BudgetExceeded", "Converter", "DocumentError"]

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _TIMESTAMP = (_TAG + t for t in ("map", "seq", "merge", "timestamp"))


class DocumentError(Exception):
    """One document cannot be turned into plain data; it is skipped with this diagnostic."""

    def __init__(self, code: str, message: str, line: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


class BudgetExceeded(DocumentError):
    """The per-file node cap was hit: the rest of the file is not converted."""


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


class Converter:
    """Turns composed nodes into plain data plus a field-path -> line map.

    Aliases are expanded, so every produced value is counted against MAX_NODES for the file.
    A plain string value (most of a manifest) is taken inline by its collection's loop instead
    of through value(): the same count, depth cap and line, without a call per scalar. Tags
    are compared by identity first (the composers share ruamel's default tag objects), then by
    text, so an explicit `!!str` still reads as a string.
    """

    def __init__(self, file: str, version: tuple[int, int], diagnostics: list[Diagnostic]):
        self.file = file
        self.version = version
        self.diagnostics = diagnostics
        self.count = 0
        self.lines: dict[str, int] = {}
        self.active: set[int] = set()

    def document(self, node: Any) -> tuple[object, dict[str, int]]:
        self.lines = {"": _line(node)}
        self.active = set()
        data = self.value(node, "", 0)
        return data, self.lines

    def value(self, node: Any, path: str, depth: int) -> object:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.over_budget(node)
        if depth > MAX_DEPTH:
            raise DocumentError("too-deep", f"nested more than {MAX_DEPTH} levels", _line(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        active = self.active
        key = id(node)
        if key in active:
            raise DocumentError("yaml-error", "an alias refers to its own anchor", _line(node))
        active.add(key)
        try:
            if isinstance(node, MappingNode):
                if node.ctag is not MAP_TAG:
                    self.expect_tag(node, _MAP)
                return self.mapping(node, path, depth)
            if isinstance(node, SequenceNode):
                if node.ctag is not SEQ_TAG:
                    self.expect_tag(node, _SEQ)
                return self.sequence(node, path, depth)
        finally:
            active.discard(key)
        raise DocumentError("yaml-error", "unknown YAML node", _line(node))

    def over_budget(self, node: Any) -> BudgetExceeded:
        return BudgetExceeded(
            "too-large",
            f"more than {MAX_NODES} values after expanding aliases (an alias bomb?)",
            _line(node),
        )

    def expect_tag(self, node: Any, tag: str) -> None:
        if tag_of(node) != tag:
            raise DocumentError("unsupported-tag", f"unsupported YAML tag {node.tag}", _line(node))

    def sequence(self, node: Any, path: str, depth: int) -> list[object]:
        out: list[object] = []
        lines = self.lines
        inline = depth < MAX_DEPTH  # an item sits at depth + 1
        for i, item in enumerate(node.value):
            item_path = intern(f"{path}[{i}]")
            lines[item_path] = item.start_mark.line + 1
            if inline and item.__class__ is ScalarNode and item.ctag is STR_TAG:
                self.count += 1
                if self.count > MAX_NODES:
                    raise self.over_budget(item)
                out.append(item.value)
            else:
                out.append(self.value(item, item_path, depth + 1))
        return out

    def mapping(self, node: Any, path: str, depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        merges: list[Any] = []
        explicit: list[tuple[str, Any, Any]] = []
        seen: set[str] = set()
        # Every key is read before any value, so a bad key is reported before a bad value.
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode and key_node.ctag is STR_TAG:
                key = intern(key_node.value)
            elif isinstance(key_node, ScalarNode) and tag_of(key_node) == _MERGE:
                merges.append(value_node)
                continue
            else:
                key = self.key(key_node)
            if key in seen:
                raise DocumentError("duplicate-key", f"duplicate key {key!r}", _line(key_node))
            seen.add(key)
            explicit.append((key, key_node, value_node))
        # YAML merge keys (`<<: *base`): explicit keys win, then earlier merged mappings.
        if merges:
            for source in reversed(self.merge_sources(merges)):
                merged = self.value(source, path, depth + 1)
                if isinstance(merged, dict):
                    out.update(merged)
        lines = self.lines
        inline = depth < MAX_DEPTH  # a value sits at depth + 1
        prefix = f"{path}." if path else ""
        for key, key_node, value_node in explicit:
            key_path = intern(prefix + key)
            lines[key_path] = key_node.start_mark.line + 1
            if inline and value_node.__class__ is ScalarNode and value_node.ctag is STR_TAG:
                self.count += 1
                if self.count > MAX_NODES:
                    raise self.over_budget(value_node)
                out[key] = value_node.value
            else:
                out[key] = self.value(value_node, key_path, depth + 1)
        return out

    def merge_sources(self, merges: list[Any]) -> list[Any]:
        sources: list[Any] = []
        for node in merges:
            items = node.value if isinstance(node, SequenceNode) else [node]
            for item in items:
                if not isinstance(item, MappingNode):
                    raise DocumentError(
                        "yaml-error", "a merge key (<<) must refer to mappings", _line(item)
                    )
                sources.append(item)
        return sources

    def key(self, node: Any) -> str:
        if not isinstance(node, ScalarNode):
            raise DocumentError("non-string-key", "a mapping key must be a string", _line(node))
        if tag_of(node) == _STR:
            return str(node.value)
        value = self.scalar(node)
        if isinstance(value, bool | int | float):
            # sigs.k8s.io/yaml (kubectl) turns number and boolean keys into their JSON text.
            text = _key_text(value)
            self.diagnostics.append(
                Diagnostic(
                    Severity.WARNING,
                    "non-string-key",
                    f"mapping key {node.value} is not a string; read as {text!r}",
                    Source(self.file, _line(node)),
                )
            )
            return text
        raise DocumentError(
            "non-string-key", f"mapping key {node.value!r} is not a string", _line(node)
        )

    def scalar(self, node: Any) -> object:
        tag = tag_of(node)
        text = str(node.value)
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() in ("true", "yes", "on", "y")
        if tag == _INT:
            return self.integer(text)
        if tag == _FLOAT:
            return _float(text)
        if tag == _TIMESTAMP:
            # Kubernetes goes through JSON, where timestamps are strings; decode parses them.
            return text
        raise DocumentError("unsupported-tag", f"unsupported YAML tag {tag}", _line(node))

    def integer(self, text: str) -> int | str:
        digits = text.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        digits = digits.lstrip("+-")
        try:
            if digits[:2] in ("0x", "0X"):
                return sign * int(digits[2:], 16)
            if digits[:2] in ("0o", "0O"):
                return sign * int(digits[2:], 8)
            if digits[:2] in ("0b", "0B"):
                return sign * int(digits[2:], 2)
            if self.version == (1, 1) and ":" in digits:  # YAML 1.1 sexagesimal
                total = 0
                for part in digits.split(":"):
                    total = total * 60 + int(part)
                return sign * total
            if self.version == (1, 1) and len(digits) > 1 and digits.startswith("0"):
                return sign * int(digits, 8)
            return sign * int(digits, 10)
        except ValueError:
            return text


def _key_text(value: bool | int | float) -> str:
    """A number or boolean key as sigs.k8s.io/yaml writes it (strconv.Format*)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _float(text: str) -> float | str:
    lowered = text.replace("_", "").lower()
    if lowered in (".inf", "+.inf"):
        return float("inf")
    if lowered == "-.inf":
        return float("-inf")
    if lowered == ".nan":
        return float("nan")
    try:
        return float(lowered)
    except ValueError:
        return text
