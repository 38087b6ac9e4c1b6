"""Last good configuration, per file and per object (pure; used by the reloader).

One team's typo must never freeze everyone's updates (ingress-nginx rejects the whole reload)
nor make routes vanish: a file that stops parsing keeps its previous documents, and an object
that stops validating keeps its previous valid version, while every other change applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from .model import (
    Diagnostic,
    Endpoints,
    EndpointSlice,
    Ingress,
    IngressClass,
    Manifests,
    Middleware,
    ObjectRef,
    RawDocument,
    Secret,
    Service,
    Severity,
)

__all__ = ["GoodState", "carry_forward_files", "carry_forward_objects", "objects_by_ref"]

KObject = Ingress | IngressClass | Service | Endpoints | EndpointSlice | Secret | Middleware

# Loader codes meaning "this file could not be read as a whole" (its documents were dropped).
FILE_FAILURES = frozenset({"yaml-error", "unreadable", "too-large"})


@dataclass(frozen=True, slots=True)
class GoodState:
    """What the last load knew to be good, to fall back on in the next one."""

    documents_by_file: Mapping[str, tuple[RawDocument, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    objects: Mapping[ObjectRef, KObject] = field(default_factory=lambda: MappingProxyType({}))


def objects_by_ref(m: Manifests) -> dict[ObjectRef, KObject]:
    out: dict[ObjectRef, KObject] = {}
    groups = (
        m.ingresses,
        m.ingress_classes,
        m.services,
        m.endpoints,
        m.endpoint_slices,
        m.secrets,
        m.middlewares,
    )
    for group in groups:
        for obj in group:
            out[obj.ref] = obj
    return out


def carry_forward_files(
    documents: Iterable[RawDocument],
    diagnostics: Iterable[Diagnostic],
    previous: GoodState,
) -> tuple[tuple[RawDocument, ...], tuple[Diagnostic, ...], dict[str, tuple[RawDocument, ...]]]:
    """Add back the previous documents of files that failed to parse this time.

    Returns (documents to decode, extra diagnostics, documents by file to remember as good).
    A file that parsed keeps only its new documents; a deleted file is simply absent.
    """
    docs = list(documents)
    by_file: dict[str, list[RawDocument]] = {}
    for d in docs:
        by_file.setdefault(d.file, []).append(d)
    extra: list[Diagnostic] = []
    failed = {
        d.source.file
        for d in diagnostics
        if d.code in FILE_FAILURES and d.source is not None and d.severity is Severity.ERROR
    }
    for file in sorted(failed):
        kept = previous.documents_by_file.get(file)
        if kept and file not in by_file:
            docs.extend(kept)
            by_file[file] = list(kept)
            extra.append(
                Diagnostic(
                    Severity.WARNING,
                    "kept-last-good",
                    f"keeping the last good version of this file ({len(kept)} objects) "
                    "until it parses again",
                    source=kept[0].source(),
                )
            )
    remembered = {f: tuple(ds) for f, ds in by_file.items()}
    return tuple(docs), tuple(extra), remembered


def carry_forward_objects(
    manifests: Manifests,
    diagnostics: Iterable[Diagnostic],
    previous: GoodState,
) -> tuple[Manifests, tuple[Diagnostic, ...]]:
    """Keep serving the previous valid version of each object that is now invalid."""
    present = objects_by_ref(manifests)
    rejected = {
        d.obj
        for d in diagnostics
        if d.code == "invalid" and d.obj is not None and d.severity is Severity.ERROR
    }
    kept: list[KObject] = []
    extra: list[Diagnostic] = []
    for ref in sorted(rejected):
        old = previous.objects.get(ref)
        if old is None or ref in present:
            continue
        kept.append(old)
        extra.append(
            Diagnostic(
                Severity.WARNING,
                "kept-last-good",
                f"still serving its last good version (from {old.meta.source}) until the "
                "errors above are fixed",
                source=old.meta.source,
                obj=ref,
            )
        )
    if not kept:
        return manifests, ()
    return _with(manifests, kept), tuple(extra)


T = TypeVar("T", Ingress, IngressClass, Service, Endpoints, EndpointSlice, Secret, Middleware)


def _merged(current: tuple[T, ...], extra: list[KObject], kind: type[T]) -> tuple[T, ...]:
    items: list[T] = list(current)
    for o in extra:
        if isinstance(o, kind):
            items.append(o)
    if len(items) == len(current):
        return current
    items.sort(key=lambda o: (o.meta.namespace, o.meta.name))
    return tuple(items)


def _with(m: Manifests, extra: list[KObject]) -> Manifests:
    return replace(
        m,
        ingresses=_merged(m.ingresses, extra, Ingress),
        ingress_classes=_merged(m.ingress_classes, extra, IngressClass),
        services=_merged(m.services, extra, Service),
        endpoints=_merged(m.endpoints, extra, Endpoints),
        endpoint_slices=_merged(m.endpoint_slices, extra, EndpointSlice),
        secrets=_merged(m.secrets, extra, Secret),
        middlewares=_merged(m.middlewares, extra, Middleware),
    )
