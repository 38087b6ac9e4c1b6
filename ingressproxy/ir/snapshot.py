"""The current compiled configuration and the one place that swaps it.

Flow: reloader/app -> SnapshotHolder.swap(...) -> proxy reads `holder.current` once per request
and keeps that Snapshot for the whole exchange, so a reload never changes a request mid-flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..frontends.certs import CertTable
from ..manifests.model import Diagnostic, Severity
from .model import Router
from .table import EntryPoints, RouteTable

__all__ = ["Snapshot", "SnapshotHolder"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    table: RouteTable
    diagnostics: tuple[Diagnostic, ...] = ()
    generation: int = 0
    loaded_at: float = 0.0  # time.time() of the load that produced it
    digest: str = ""  # content digest of the files it was built from
    objects: int = 0
    routes: int = 0
    certs: CertTable = field(default_factory=CertTable)  # SNI name -> certificate
    entrypoints: EntryPoints = field(default_factory=EntryPoints)  # the websecure table
    # Routers the manifests ask for that the table does not route (frontends.unrouted):
    # for tools, which show them as disabled.
    unrouted: tuple[Router, ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


@dataclass(slots=True)
class SnapshotHolder:
    """The only mutable routing configuration. Reading `current` is a single attribute load,
    atomic under the GIL; writers serialise through a lock and bump the generation."""

    current: Snapshot = field(default_factory=lambda: Snapshot(RouteTable()))
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def swap(self, snapshot: Snapshot) -> Snapshot:
        """Install `snapshot` with the next generation number and return what was installed."""
        with self._lock:
            installed = Snapshot(
                table=snapshot.table,
                diagnostics=snapshot.diagnostics,
                generation=self.current.generation + 1,
                loaded_at=snapshot.loaded_at,
                digest=snapshot.digest,
                objects=snapshot.objects,
                routes=snapshot.routes,
                certs=snapshot.certs,
                entrypoints=snapshot.entrypoints,
                unrouted=snapshot.unrouted,
            )
            self.current = installed
            self._changed.notify_all()
            return installed

    def wait_for_generation(self, generation: int, timeout: float) -> bool:
        """Block until the generation is at least `generation` (for tests and tools)."""
        with self._lock:
            return self._changed.wait_for(
                lambda: self.current.generation >= generation, timeout=timeout
            )
