"""I/O edge: find *.yaml/*.yml/*.json files and parse them into RawDocuments with line numbers.

Flow: files -> loader -> decode. YAML 1.2 as ruamel.yaml speaks it (`on`/`yes`/`no` stay strings,
unlike kubectl's YAML 1.1); we only compose nodes, so no tag can build Python objects or run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .compose import compose, is_null_document
from .convert import BudgetExceeded, Converter, DocumentError
from .limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
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

# kubectl's `-f <dir>` reads exactly these extensions (case-sensitive).
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Everything read from one folder (or file): the objects, the problems, and a content digest
    that is equal for byte-identical inputs (the reloader skips a rebuild on an equal digest)."""

    documents: tuple[RawDocument, ...]
    diagnostics: tuple[Diagnostic, ...]
    digest: str
    files: tuple[str, ...]


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
    if "{{" not in text:
        return None  # every manifest that is not a template, without a look at each line
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
        nodes, version = compose(text)
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

    converter = Converter(file, version, diagnostics)
    documents: list[RawDocument] = []
    for node in nodes:
        if is_null_document(node):
            continue
        try:
            data, lines = converter.document(node)
        except BudgetExceeded as exc:
            diagnostics.append(_doc_diagnostic(file, exc))
            break
        except DocumentError as exc:
            diagnostics.append(_doc_diagnostic(file, exc))
            continue
        _emit(data, lines, file, documents, diagnostics)
    return documents


def _doc_diagnostic(file: str, exc: DocumentError) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR, exc.code, f"{exc.message}; the document is skipped", Source(file, exc.line)
    )


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
