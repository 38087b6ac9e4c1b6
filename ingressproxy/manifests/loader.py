"""I/O edge: find *.yaml/*.yml/*.json files and parse them into RawDocuments with line numbers.

Flow: files -> loader -> decode. YAML 1.2 as ruamel.yaml speaks it (`on`/`yes`/`no` stay strings,
unlike kubectl's YAML 1.1); we only compose nodes, so no tag can build Python objects or run code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from .model import Diagnostic, RawDocument, Severity, Source

__all__ = [
    "MANIFEST_SUFFIXES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "LoadResult",
    "ParseCache",
    "is_ignored_name",
    "load_path",
    "load_text",
]

# Values produced per file after expanding aliases: a "billion laughs" document is a few hundred
# bytes but expands exponentially, so we count while converting and stop at this cap.
MAX_NODES = 1_000_000
# Nesting depth of one document; Kubernetes objects are far shallower, and a self-referencing
# alias (`&a [*a]`) would otherwise recurse forever.
MAX_DEPTH = 100
# etcd caps an object at ~1.5 MiB; anything this big in a manifest folder is a mistake.
MAX_FILE_BYTES = 32 * 1024 * 1024

# kubectl's `-f <dir>` reads exactly these extensions (case-sensitive).
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _TIMESTAMP = (_TAG + t for t in ("map", "seq", "merge", "timestamp"))


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Everything read from one folder (or file): the objects, the problems, and a content digest
    that is equal for byte-identical inputs (the reloader skips a rebuild on an equal digest)."""

    documents: tuple[RawDocument, ...]
    diagnostics: tuple[Diagnostic, ...]
    digest: str
    files: tuple[str, ...]


class _DocumentError(Exception):
    """One document cannot be turned into plain data; it is skipped with this diagnostic."""

    def __init__(self, code: str, message: str, line: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


class _BudgetExceeded(_DocumentError):
    """The per-file node cap was hit: the rest of the file is not converted."""


# --------------------------------------------------------------------------- finding files


def is_ignored_name(name: str) -> bool:
    """Hidden entries (also a ConfigMap mount's `..data` folders), editor backups, swap files."""
    if name.startswith("."):
        return True
    if name.endswith(("~", ".swp", ".swx", ".tmp")):
        return True
    return len(name) > 1 and name.startswith("#") and name.endswith("#")  # emacs autosave


def _find_files(root: Path, diagnostics: list[Diagnostic]) -> list[str]:
    """Relative POSIX paths of manifest files under `root`, sorted.

    Symlinks are followed (a ConfigMap mount exposes its files as links into `..data/`); each real
    folder is read once, which stops symlink loops and a folder linked twice.
    """
    found: list[str] = []
    visited: set[tuple[int, int]] = set()
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        directory, rel = pending.pop()
        try:
            st = directory.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:
            continue
        visited.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except FileNotFoundError:
            continue
        except OSError as exc:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    "unreadable",
                    f"cannot read folder: {exc.strerror or exc}",
                    Source(str(directory)),
                )
            )
            continue
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            entry_rel = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks; a dangling link is neither
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_dir:
                pending.append((Path(entry.path), entry_rel))
            elif is_file and entry.name.endswith(MANIFEST_SUFFIXES):
                found.append(entry_rel)
    found.sort()
    return found


# --------------------------------------------------------------------------- public API


class ParseCache:
    """Parsed documents by (file, content hash), so a reload parses only the files that changed.

    Holds only the files of the latest load, so memory follows the folder, not its history.
    Safe to share results: RawDocument and Diagnostic are immutable.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bytes], tuple[list[RawDocument], list[Diagnostic]]] = {}
        self._next: dict[tuple[str, bytes], tuple[list[RawDocument], list[Diagnostic]]] = {}

    def load(self, data: bytes, file: str) -> tuple[list[RawDocument], list[Diagnostic]]:
        key = (file, hashlib.sha256(data).digest())
        got = self._entries.get(key) or self._next.get(key)
        if got is None:
            got = _load_bytes(data, file)
        self._next[key] = got
        return got

    def finish(self) -> None:
        """End of one load: forget files that were not seen in it."""
        self._entries, self._next = self._next, {}


def load_path(root: Path, cache: ParseCache | None = None) -> LoadResult:
    """Load every manifest under the folder `root` (recursively), or the single file `root`."""
    diagnostics: list[Diagnostic] = []
    documents: list[RawDocument] = []
    digest = hashlib.sha256()
    if root.is_dir():
        targets = [(str(root / rel), rel) for rel in _find_files(root, diagnostics)]
    elif root.exists():
        targets = [(str(root), root.name)]
    else:
        # The proxy keeps running (serving 404s) and picks the folder up when it appears (a
        # volume mounted later); the absolute path says where it looks.
        digest.update(b"missing-folder\0")
        diagnostics.append(
            Diagnostic(
                Severity.WARNING,
                "missing-folder",
                f"manifest folder {root.absolute()} does not exist; serving no routes, waiting"
                " for it to appear",
                Source(str(root)),
            )
        )
        return LoadResult((), tuple(diagnostics), digest.hexdigest(), ())

    files: list[str] = []
    for name, rel in targets:
        read = _read(Path(name))
        if read is None:  # vanished between listing and reading
            continue
        files.append(name)
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if isinstance(read, OSError):
            digest.update(b"E\0")
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    "unreadable",
                    f"cannot read file: {read.strerror or read}",
                    Source(name),
                )
            )
            continue
        digest.update(b"F" + len(read).to_bytes(8, "big"))
        digest.update(read)
        docs, diags = _load_bytes(read, name) if cache is None else cache.load(read, name)
        documents.extend(docs)
        diagnostics.extend(diags)
    if cache is not None:
        cache.finish()
    return LoadResult(tuple(documents), tuple(diagnostics), digest.hexdigest(), tuple(files))


def load_text(text: str, file: str) -> tuple[tuple[RawDocument, ...], tuple[Diagnostic, ...]]:
    """Parse one file's text (YAML, or JSON when `file` ends in .json) into objects."""
    diagnostics: list[Diagnostic] = []
    documents = _parse(text, file, diagnostics)
    return tuple(documents), tuple(diagnostics)


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> bytes | OSError | None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return OSError(f"file is {size} bytes, more than the {MAX_FILE_BYTES} we accept")
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc


def _load_bytes(data: bytes, file: str) -> tuple[list[RawDocument], list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "unreadable",
                f"not UTF-8 text (byte 0x{data[exc.start]:02x}); the file is skipped",
                Source(file, line),
            )
        )
        return [], diagnostics
    return _parse(text, file, diagnostics), diagnostics


# --------------------------------------------------------------------------- parsing


# `{{ .Values.x }}`, `{{- include "x" . }}`: Go template actions, outside a YAML comment.
_TEMPLATE_ACTION = re.compile(r"\{\{-?\s.*?\s-?\}\}")


def _template_line(text: str) -> int | None:
    """The first line holding a Go template action, or None. Helm charts' templates/ files
    are not YAML until rendered; parsing them gives errors about the wrong thing."""
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if _TEMPLATE_ACTION.search(code):
            return number
    return None


def _error_line(exc: MarkedYAMLError) -> tuple[int, str]:
    """The line a person must fix, and where the parser noticed when that is elsewhere.

    An unclosed quote or bracket is noticed lines later (often at the end of the file): the
    line to fix is where it opened, the context mark. Other errors (indentation, a stray
    key) are at the problem mark.
    """
    problem, context = exc.problem_mark, exc.context_mark
    opened = "end of stream" in (exc.problem or "") or any(
        word in (exc.context or "") for word in ("quoted scalar", "flow")
    )
    if opened and context is not None and problem is not None and context.line < problem.line:
        return context.line + 1, f"; noticed at line {problem.line + 1}"
    mark = problem or context
    return (mark.line + 1 if mark is not None else 0), ""


def _parse(text: str, file: str, diagnostics: list[Diagnostic]) -> list[RawDocument]:
    is_json = file.endswith(".json")
    if is_json:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    "yaml-error",
                    f"cannot parse JSON: {exc.msg} (column {exc.colno}); the file is skipped",
                    Source(file, exc.lineno),
                )
            )
            return []
        # JSON allows tabs as whitespace where YAML does not; a valid JSON text has no raw tab
        # inside a string, so replacing them changes nothing else (and keeps line numbers).
        text = text.replace("\t", " ")
    template = None if is_json else _template_line(text)
    if template is not None:
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "template-syntax",
                "this is a Helm/Go template ({{ ... }}), not a manifest: render it first, e.g."
                " `helm template RELEASE CHART | ingressproxy check -`; the file is skipped",
                Source(file, template),
            )
        )
        return []
    try:
        nodes, version = _compose(text)
    except MarkedYAMLError as exc:
        line, where = _error_line(exc)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "yaml-error",
                f"cannot parse YAML: {problem}{context}{where}; the file is skipped",
                Source(file, line),
            )
        )
        return []
    except (YAMLError, RecursionError) as exc:
        message = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "yaml-error",
                f"cannot parse YAML: {message}; the file is skipped",
                Source(file),
            )
        )
        return []

    converter = _Converter(file, version, diagnostics)
    documents: list[RawDocument] = []
    for node in nodes:
        if isinstance(node, ScalarNode) and _tag(node) == _NULL:
            continue  # empty document (`---` followed by nothing, or only comments)
        try:
            data, lines = converter.document(node)
        except _BudgetExceeded as exc:
            diagnostics.append(_doc_diagnostic(file, exc))
            break
        except _DocumentError as exc:
            diagnostics.append(_doc_diagnostic(file, exc))
            continue
        _emit(data, lines, file, documents, diagnostics)
    return documents


def _doc_diagnostic(file: str, exc: _DocumentError) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR, exc.code, f"{exc.message}; the document is skipped", Source(file, exc.line)
    )


# Tokens that matter for flow nesting: brackets, and the quoted strings/comments that hide them.
_FLOW_TOKEN = re.compile(r"""[\[\]{}]|"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|(?:^|(?<=\s))#[^\n]*""")
# ruamel's scanner is quadratic in flow nesting (`[[[[...`): refuse absurd depths before parsing.
_MAX_FLOW_DEPTH = 2 * MAX_DEPTH


def _flow_depth(text: str) -> int:
    if text.count("[") + text.count("{") <= _MAX_FLOW_DEPTH:
        return 0  # fast path: every real manifest
    depth = deepest = 0
    for m in _FLOW_TOKEN.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth = max(depth - 1, 0)
    return deepest


# The C extension of ruamel.yaml.clib (a dependency; without it we fall back to pure Python).
_HAVE_CLIB = importlib.util.find_spec("_ruamel_yaml") is not None


class _Resolver(VersionedResolver):
    """ruamel's resolver, with the version's table of implicit resolvers looked up once per
    file instead of once per scalar (that look-up was a third of loading a big folder). The
    table and the answers are ruamel's own: the same tags for the same scalars."""

    _table: Any = None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            table = self._table
            if table is None:
                table = self._table = self.versioned_resolver
            resolvers = table.get(value[0] if value else "", [])
            resolvers = resolvers + table.get(None, [])
            for tag, regexp in resolvers:
                if regexp.match(value):
                    return Tag(suffix=tag)
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


_LOCAL = threading.local()


def _fast_yaml() -> YAML:
    """One C-parser YAML object per thread: making one scans for plug-ins on disk, which cost
    more than parsing a small file. Each compose_all makes its own parser and resolver."""
    yaml: YAML | None = getattr(_LOCAL, "yaml", None)
    if yaml is None:
        yaml = YAML(typ="safe", pure=False)
        yaml.Resolver = _Resolver
        _LOCAL.yaml = yaml
    return yaml


def _tag(node: Any) -> str:
    """A node's tag as text (Node.tag, without its property and str() for resolved tags)."""
    ctag = node.ctag
    return str(ctag.suffix) if ctag.handle is None else str(ctag)


def _compose(text: str) -> tuple[list[Any], tuple[int, int]]:
    """All documents' node trees (nothing is constructed), and the YAML version in effect."""
    if _flow_depth(text) > _MAX_FLOW_DEPTH:
        raise YAMLError(f"flow collections nested more than {_MAX_FLOW_DEPTH} levels")
    # The C parser (ruamel.yaml.clib) composes ~6x faster than the pure-Python round-trip one
    # and its nodes carry the same line marks (we never use round-trip's comment handling). But
    # libyaml scans YAML 1.1: it ignores a `%YAML 1.1` directive when resolving scalars, and it
    # refuses some valid YAML 1.2 (`[-listen=:8080]`). So files with directives, and any file
    # the C parser refuses, go through the pure-Python parser, whose verdict is final.
    directive = text.startswith("%") or "\n%" in text
    if _HAVE_CLIB and not directive:
        try:
            return list(_fast_yaml().compose_all(text)), (1, 2)
        except YAMLError:
            pass
    yaml = YAML(typ="rt")
    nodes = list(yaml.compose_all(text))
    version = getattr(yaml.resolver, "processing_version", None) or (1, 2)
    return nodes, (int(version[0]), int(version[1]))


def _emit(
    data: object,
    lines: dict[str, int],
    file: str,
    out: list[RawDocument],
    diagnostics: list[Diagnostic],
) -> None:
    """Append `data` as a RawDocument, flattening `kind: List` / `*List` into its items."""
    line = lines.get("", 0)
    problem = _not_an_object(data)
    if problem is not None or not isinstance(data, dict):
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "not-an-object",
                f"not a Kubernetes object: {problem}; skipped",
                Source(file, line),
            )
        )
        return
    kind = data["kind"]
    items = data.get("items")
    if kind.endswith("List") and isinstance(items, list):
        per_item = _split_item_lines(lines, len(items))
        item_kind = kind[: -len("List")]
        for i, item in enumerate(items):
            item_lines = per_item[i]
            item_lines.setdefault("", lines.get(f"items[{i}]", line))
            # A typed list (`IngressList` from the API) leaves kind/apiVersion off its items.
            if isinstance(item, dict) and item_kind:
                item.setdefault("kind", item_kind)
                item.setdefault("apiVersion", data["apiVersion"])
            _emit(item, item_lines, file, out, diagnostics)
        return
    out.append(RawDocument(file, line, data, MappingProxyType(lines)))


def _not_an_object(data: object) -> str | None:
    if not isinstance(data, dict):
        return f"the document is a {_type_name(data)}, not a mapping"
    for key in ("apiVersion", "kind"):
        value = data.get(key)
        if value is None:
            return f"`{key}` is missing"
        if not isinstance(value, str) or not value:
            return f"`{key}` must be a non-empty string"
    return None


def _split_item_lines(lines: dict[str, int], count: int) -> list[dict[str, int]]:
    """Re-root `items[i]...` paths to each item, in one pass over the map."""
    out: list[dict[str, int]] = [{} for _ in range(count)]
    for path, line in lines.items():
        if not path.startswith("items["):
            continue
        end = path.find("]", 6)
        index = path[6:end]
        if end < 0 or not index.isdigit() or int(index) >= count:
            continue
        rest = path[end + 1 :]
        out[int(index)][rest[1:] if rest.startswith(".") else rest] = line
    return out


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return "number"


# --------------------------------------------------------------------------- node conversion


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Converter:
    """Turns composed nodes into plain data plus a field-path -> line map.

    Aliases are expanded, so every produced value is counted against MAX_NODES for the file.
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
            raise _BudgetExceeded(
                "too-large",
                f"more than {MAX_NODES} values after expanding aliases (an alias bomb?)",
                _line(node),
            )
        if depth > MAX_DEPTH:
            raise _DocumentError("too-deep", f"nested more than {MAX_DEPTH} levels", _line(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            raise _DocumentError("yaml-error", "an alias refers to its own anchor", _line(node))
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self.expect_tag(node, _SEQ)
                return self.sequence(node, path, depth)
            if isinstance(node, MappingNode):
                self.expect_tag(node, _MAP)
                return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        raise _DocumentError("yaml-error", "unknown YAML node", _line(node))

    def expect_tag(self, node: Any, tag: str) -> None:
        if _tag(node) != tag:
            raise _DocumentError("unsupported-tag", f"unsupported YAML tag {node.tag}", _line(node))

    def sequence(self, node: Any, path: str, depth: int) -> list[object]:
        out: list[object] = []
        for i, item in enumerate(node.value):
            item_path = f"{path}[{i}]"
            self.lines[item_path] = _line(item)
            out.append(self.value(item, item_path, depth + 1))
        return out

    def mapping(self, node: Any, path: str, depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        merges: list[Any] = []
        explicit: list[tuple[str, Any, Any]] = []
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and _tag(key_node) == _MERGE:
                merges.append(value_node)
                continue
            key = self.key(key_node)
            if key in seen:
                raise _DocumentError("duplicate-key", f"duplicate key {key!r}", _line(key_node))
            seen.add(key)
            explicit.append((key, key_node, value_node))
        # YAML merge keys (`<<: *base`): explicit keys win, then earlier merged mappings.
        for source in reversed(self.merge_sources(merges)):
            merged = self.value(source, path, depth + 1)
            if isinstance(merged, dict):
                out.update(merged)
        for key, key_node, value_node in explicit:
            key_path = _join(path, key)
            self.lines[key_path] = _line(key_node)
            out[key] = self.value(value_node, key_path, depth + 1)
        return out

    def merge_sources(self, merges: list[Any]) -> list[Any]:
        sources: list[Any] = []
        for node in merges:
            items = node.value if isinstance(node, SequenceNode) else [node]
            for item in items:
                if not isinstance(item, MappingNode):
                    raise _DocumentError(
                        "yaml-error", "a merge key (<<) must refer to mappings", _line(item)
                    )
                sources.append(item)
        return sources

    def key(self, node: Any) -> str:
        if not isinstance(node, ScalarNode):
            raise _DocumentError("non-string-key", "a mapping key must be a string", _line(node))
        if _tag(node) == _STR:
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
        raise _DocumentError(
            "non-string-key", f"mapping key {node.value!r} is not a string", _line(node)
        )

    def scalar(self, node: Any) -> object:
        tag = _tag(node)
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
        raise _DocumentError("unsupported-tag", f"unsupported YAML tag {tag}", _line(node))

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
