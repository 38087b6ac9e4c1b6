"""YAML text -> ruamel node trees with line marks: libyaml's C parser when it can, else ruamel's
pure-Python round-trip parser, whose verdict (and error messages) are final.

Flow: loader -> compose -> convert. Only nodes are composed, so no tag can build Python objects.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from .limits import MAX_DEPTH

__all__ = [
    "HAVE_CLIB",
    "MAP_TAG",
    "SEQ_TAG",
    "STR_TAG",
    "compose",
    "compose_fast",
    "is_null_document",
    "resolve_plain",
    "tag_of",
]

_TAG = "tag:yaml.org,2002:"

# ruamel.yaml.clib's CParser (a dependency; without it everything takes the pure-Python path).
try:
    _CParser: Any = importlib.import_module("_ruamel_yaml").CParser
except ImportError:  # pragma: no cover - the wheel exists for every platform we support
    _CParser = None
HAVE_CLIB = _CParser is not None


def _implicit_table() -> dict[str, tuple[tuple[Tag, Callable[[str], object]], ...]]:
    """ruamel's YAML 1.2 implicit resolvers by a plain scalar's first character ('' for the
    empty scalar), with the catch-all (None) resolvers appended as ruamel's resolve() does, and
    each pattern's match method taken out of ruamel's lazy wrapper once."""
    versioned = VersionedResolver().versioned_resolver  # (1, 2): no version given
    tags: dict[str, Tag] = {}
    catch_all = list(versioned.get(None, []))
    table: dict[str, tuple[tuple[Tag, Callable[[str], object]], ...]] = {}
    for first, resolvers in versioned.items():
        if first is None:
            continue
        table[first] = tuple(
            (tags.setdefault(tag, Tag(suffix=tag)), _pattern(regexp).match)
            for tag, regexp in resolvers + catch_all
        )
    return table


def _pattern(regexp: Any) -> Any:
    lazy = getattr(regexp, "lazy_self", None)  # ruamel.yaml.util.LazyEval around re.compile
    return regexp if lazy is None else lazy()


_IMPLICIT = _implicit_table()
# ruamel's own default tags: shared, so the converter can compare tags by identity.
STR_TAG: Tag = VersionedResolver.DEFAULT_SCALAR_TAG
SEQ_TAG: Tag = VersionedResolver.DEFAULT_SEQUENCE_TAG
MAP_TAG: Tag = VersionedResolver.DEFAULT_MAPPING_TAG


def resolve_plain(value: str) -> Tag:
    """The tag of a plain (unquoted) scalar, as ruamel's VersionedResolver gives it for YAML 1.2."""
    for tag, match in _IMPLICIT.get(value[:1], ()):
        if match(value):
            return tag
    return STR_TAG


if HAVE_CLIB:

    class _CLoader(_CParser):  # type: ignore[misc]
        """libyaml's parser and ruamel's C composer with the resolver methods it calls.

        ruamel's own C-backed YAML object defines a new loader class on every call (its
        constructor and resolver mixed in) and tags each node with a new Tag object; for a
        folder of 10,000 small files that bookkeeping cost more than parsing. The tags are the
        same: resolve_plain is ruamel's 1.2 table, and the defaults are ruamel's own objects.
        """

        def descend_resolver(self, parent: Any, index: Any) -> None:
            return None  # path resolvers: none are registered

        def ascend_resolver(self) -> None:
            return None

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Tag:
            if kind is ScalarNode:
                if implicit[0]:  # plain: resolve_plain, inlined (it runs for every scalar)
                    for tag, match in _IMPLICIT.get(value[:1], ()):
                        if match(value):
                            return tag
                return STR_TAG
            return SEQ_TAG if kind is SequenceNode else MAP_TAG


def compose_fast(text: str) -> list[Any]:
    """Every document's node tree from libyaml; raises YAMLError where libyaml refuses."""
    loader = _CLoader(text)
    nodes = []
    while loader.check_node():
        nodes.append(loader.get_node())
    return nodes


def tag_of(node: Any) -> str:
    """A node's tag as text (Node.tag, without its property and str() for resolved tags)."""
    ctag = node.ctag
    return str(ctag.suffix) if ctag.handle is None else str(ctag)


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


def compose(text: str) -> tuple[list[Any], tuple[int, int]]:
    """All documents' node trees (nothing is constructed), and the YAML version in effect."""
    if _flow_depth(text) > _MAX_FLOW_DEPTH:
        raise YAMLError(f"flow collections nested more than {_MAX_FLOW_DEPTH} levels")
    # The C parser composes many times faster than the pure-Python round-trip one and its nodes
    # carry the same line marks (we never use round-trip's comment handling). But libyaml scans
    # YAML 1.1: it ignores a `%YAML 1.1` directive when resolving scalars, and it refuses some
    # valid YAML 1.2 (`[-listen=:8080]`). So files with directives, and any file the C parser
    # refuses, go through the pure-Python parser, whose verdict is final.
    directive = text.startswith("%") or "\n%" in text
    if HAVE_CLIB and not directive:
        try:
            return compose_fast(text), (1, 2)
        except YAMLError:
            pass
    yaml = YAML(typ="rt")
    nodes = list(yaml.compose_all(text))
    _unmark_folds(nodes)
    version = getattr(yaml.resolver, "processing_version", None) or (1, 2)
    return nodes, (int(version[0]), int(version[1]))


def _unmark_folds(nodes: list[Any]) -> None:
    """Take out the BEL characters ruamel's round-trip scanner leaves in a folded (`>`) scalar
    where it folded a line break (its constructor removes them to remember the folds; we read
    node values, so `one\nline` would become `one\a line`). libyaml gives no such marks, and a
    file cannot hold a raw BEL, so the two parsers agree after this."""
    seen: set[int] = set()
    pending = list(nodes)
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if node.style == ">" and "\a" in node.value:
                node.value = node.value.replace("\a", "")
        elif isinstance(node, SequenceNode):
            pending.extend(node.value)
        else:  # MappingNode
            for key, value in node.value:
                pending.append(key)
                pending.append(value)


def is_null_document(node: Any) -> bool:
    """An empty document (`---` followed by nothing, or only comments)."""
    return isinstance(node, ScalarNode) and tag_of(node) == _TAG + "null"
