"""Traefik's router.entrypoints annotation: which listeners an Ingress's routers attach to."""

from __future__ import annotations

from collections.abc import Callable

from ...ir.model import ALL_ENTRYPOINTS, EntryPoint
from ...manifests.model import Diagnostic, Ingress, Severity
from .annotations import ENTRYPOINTS

__all__ = ["entrypoints", "entrypoints_of"]


def entrypoints_of(ing: Ingress) -> tuple[frozenset[EntryPoint], tuple[str, ...]]:
    """The entry points an Ingress serves, and the names in its annotation we do not have.

    Traefik's `router.entrypoints` is a comma list (the blog writes `web, websecure`); without
    it, or with an empty one, a router is attached to every entry point.
    """
    raw = ing.meta.annotations.get(ENTRYPOINTS)
    if raw is None:
        return ALL_ENTRYPOINTS, ()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        return ALL_ENTRYPOINTS, ()
    known = frozenset(EntryPoint(n) for n in names if n in ALL_ENTRYPOINTS)
    unknown = tuple(dict.fromkeys(n for n in names if n not in ALL_ENTRYPOINTS))
    return known, unknown


def entrypoints(ing: Ingress, report: Callable[[Diagnostic], None]) -> frozenset[EntryPoint]:
    """entrypoints_of, with a diagnostic for each entry point name that does not exist here."""
    eps, unknown = entrypoints_of(ing)
    if unknown:
        names = ", ".join(f'"{n}"' for n in unknown)
        served = " and ".join(sorted(eps)) if eps else "no entry point: it gets no traffic"
        msg = (
            f"entry point {names} does not exist here (only web = --port and websecure ="
            f" --https-port); this Ingress is served on {served}"
        )
        where = f"metadata.annotations.{ENTRYPOINTS}"
        report(
            Diagnostic(
                Severity.WARNING,
                "unknown-entrypoint",
                msg,
                ing.meta.source_of(where),
                ing.ref,
                where,
            )
        )
    return eps
