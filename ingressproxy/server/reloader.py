"""Files -> loader -> decode -> compiler -> SnapshotHolder.swap, at start and on every change.

The I/O edge of the dynamic configuration: watches the manifests folder with watchfiles, rebuilds
the whole table off the event loop, skips unchanged content, and never installs nothing in place
of something: on any failure the last good snapshot keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from ..frontends.backends import unbacked_services
from ..frontends.certs import compile_certs
from ..frontends.options import CompileOptions
from ..frontends.pipeline import compile_routes
from ..frontends.unrouted import unrouted
from ..ir.snapshot import Snapshot, SnapshotHolder
from ..manifests.decode import decode
from ..manifests.gcpause import paused_gc
from ..manifests.lastgood import (
    GoodState,
    carry_forward_files,
    carry_forward_objects,
    objects_by_ref,
)
from ..manifests.loader import MAX_FILE_BYTES, LoadResult, ParseCache, load_path
from ..manifests.model import Diagnostic, Severity, Source
from ..observe.record import diagnostic_fields, logfmt
from .overrides import override_diagnostics
from .settings import Settings

__all__ = ["STDIN", "STDIN_NAME", "Reloader", "build_snapshot", "compile_options", "read_stdin"]

log = logging.getLogger("ingressproxy.reload")


def compile_options(settings: Settings) -> CompileOptions:
    return CompileOptions(
        ingress_classes=settings.ingress_classes,
        allow_external_name=settings.allow_external_name,
        allow_cross_namespace=settings.allow_cross_namespace,
        flavor=settings.flavor,
        backend_overrides=settings.backend_overrides,
        dns_pattern=settings.dns_pattern,
        default_certificate=settings.default_certificate,
    )


# `-` as the manifests path: read them once from standard input (`helm template ... | ingressproxy
# serve -`), as kubectl's `-f -`. Diagnostics name the stream <stdin>, like compilers do.
STDIN = Path("-")
STDIN_NAME = "<stdin>"


def read_stdin() -> bytes:
    """All of standard input (one more byte than we accept, so an oversize input is seen)."""
    return sys.stdin.buffer.read(MAX_FILE_BYTES + 1)


def _load_stdin(data: bytes) -> LoadResult:
    digest = hashlib.sha256(b"stdin\0" + data).hexdigest()
    if len(data) > MAX_FILE_BYTES:
        msg = f"standard input is more than the {MAX_FILE_BYTES} bytes we accept"
        problem = Diagnostic(Severity.ERROR, "unreadable", msg, Source(STDIN_NAME))
        return LoadResult((), (problem,), digest, (STDIN_NAME,))
    documents, diagnostics = ParseCache().load(data, STDIN_NAME)
    return LoadResult(tuple(documents), tuple(diagnostics), digest, (STDIN_NAME,))


@paused_gc()  # a build leaves no cycles to collect; collecting cost ~40% of it
def build_snapshot(
    root: Path,
    options: CompileOptions,
    previous: GoodState | None = None,
    *,
    cache: ParseCache | None = None,
    unless_digest: str | None = None,
    stdin: bytes | None = None,
) -> tuple[Snapshot, GoodState] | None:
    """One full load + compile, falling back per file and per object on `previous`.

    Pure apart from reading the files under `root`. Returns the snapshot and what to remember
    as good for the next load, or None when the files' digest equals `unless_digest`.
    When `root` is STDIN, the manifests are `stdin` (read from standard input when None).
    """
    previous = GoodState() if previous is None else previous
    if root == STDIN:
        loaded = _load_stdin(read_stdin() if stdin is None else stdin)
    else:
        loaded = load_path(root, cache)
    if unless_digest is not None and loaded.digest == unless_digest:
        return None
    documents, file_diags, good_files = carry_forward_files(
        loaded.documents, loaded.diagnostics, previous
    )
    decoded, decode_diags = decode(documents)
    manifests, object_diags = carry_forward_objects(decoded, decode_diags, previous)
    # Certificates first: which hosts have TLS decides the HTTPS redirects.
    certs = compile_certs(manifests, options, now=datetime.now(UTC))
    result, entrypoints = compile_routes(manifests, options, certs.table)
    objects = (
        len(manifests.ingresses)
        + len(manifests.ingress_classes)
        + len(manifests.services)
        + len(manifests.endpoints)
        + len(manifests.endpoint_slices)
        + len(manifests.secrets)
        + len(manifests.middlewares)
    )
    diagnostics = tuple(
        sorted(
            (
                *loaded.diagnostics,
                *file_diags,
                *decode_diags,
                *object_diags,
                *result.diagnostics,
                *certs.diagnostics,
                *unbacked_services(manifests, result.table),
                *override_diagnostics(manifests, options.backend_overrides),
            ),
            key=lambda d: d.sort_key(),
        )
    )
    snapshot = Snapshot(
        table=result.table,
        diagnostics=diagnostics,
        loaded_at=time.time(),
        digest=loaded.digest,
        objects=objects,
        routes=result.routes,
        certs=certs.table,
        entrypoints=entrypoints,
        unrouted=unrouted(manifests, result.table),
    )
    good = GoodState(
        documents_by_file=MappingProxyType(good_files),
        objects=MappingProxyType(objects_by_ref(manifests)),
    )
    return snapshot, good


_LOG_LEVELS = {
    Severity.ERROR: logging.ERROR,
    Severity.WARNING: logging.WARNING,
    Severity.INFO: logging.INFO,
}


@dataclass(slots=True)
class Reloader:
    """Owns the watch loop for one manifests folder and feeds the holder."""

    settings: Settings
    holder: SnapshotHolder
    debounce_ms: int = 50
    on_swap: Callable[[Snapshot], None] | None = None
    # Called (on the reloading thread) when a rebuild fails outright, with the error text.
    on_failure: Callable[[str], None] | None = None
    good: GoodState = field(default_factory=GoodState)
    _cache: ParseCache = field(default_factory=ParseCache)
    # Serialises rebuilds: the watcher and SIGHUP may ask at the same time.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # How many rebuilds ran, installed or not (tests and tools wait on it, never sleep).
    checks: int = 0
    _checked: threading.Condition = field(default_factory=threading.Condition)
    # The manifests when they come from standard input: read at the first load, then kept.
    stdin: bytes | None = None

    def reload(self, *, force: bool = False) -> Snapshot | None:
        """Rebuild now (blocking; call from a thread when on the event loop).

        Returns the installed snapshot, or None when nothing changed or the build failed.
        """
        with self._lock:
            try:
                return self._reload(force)
            finally:
                with self._checked:
                    self.checks += 1
                    self._checked.notify_all()

    def wait_for_checks(self, count: int, timeout: float) -> bool:
        """Block until at least `count` rebuilds have run."""
        with self._checked:
            return self._checked.wait_for(lambda: self.checks >= count, timeout=timeout)

    def _reload(self, force: bool) -> Snapshot | None:
        root = self.settings.manifests
        if root is None:
            return None
        started = time.perf_counter()
        current = self.holder.current
        unless = None if force or current.generation == 0 else current.digest
        try:
            if root == STDIN and self.stdin is None:
                self.stdin = read_stdin()
            built = build_snapshot(
                root,
                compile_options(self.settings),
                self.good,
                cache=self._cache,
                unless_digest=unless,
                stdin=self.stdin,
            )
        except Exception as exc:  # a bug in our pipeline must never drop the last good table
            self.holder.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("reload failed; keeping generation %d", self.holder.current.generation)
            if self.on_failure is not None:
                self.on_failure(self.holder.last_error)
            return None
        if built is None:
            return None  # same bytes as what is serving: nothing to do
        snap, good = built
        self.good = good
        installed = self.holder.swap(snap)
        errors = sum(1 for d in snap.diagnostics if d.severity is Severity.ERROR)
        self.holder.last_error = next(
            (str(d) for d in snap.diagnostics if d.severity is Severity.ERROR), None
        )
        log.info(
            "config generation=%d objects=%d routes=%d errors=%d warnings=%d took=%.1fms",
            installed.generation,
            installed.objects,
            installed.routes,
            errors,
            sum(1 for d in snap.diagnostics if d.severity is Severity.WARNING),
            (time.perf_counter() - started) * 1000,
        )
        for d in snap.diagnostics:
            # Traefik-style: the message, then key=value fields a log pipeline can index
            # (namespace, ingress, service, port, file, line), also passed as `extra`.
            fields = diagnostic_fields(d, good.objects)
            level = _LOG_LEVELS[d.severity]
            log.log(level, "%s %s", d.message, logfmt(fields), extra={"fields": fields})
        if self.on_swap is not None:
            self.on_swap(installed)
        return installed

    async def watch(self, stop: asyncio.Event) -> None:
        """Follow the folder until `stop` is set. Survives a missing folder and our own bugs."""
        import watchfiles  # imported here: only the serving process needs it

        root = self.settings.manifests
        if root is None:
            return
        if root == STDIN:
            log.info("manifests read from standard input: no hot reload (restart to change them)")
            return
        while not stop.is_set():
            target = root if root.exists() else _existing_parent(root)
            try:
                async for _changes in watchfiles.awatch(
                    target,
                    stop_event=stop,
                    debounce=self.debounce_ms,
                    step=25,
                    watch_filter=None,  # the digest decides; editors' swap files are no-ops
                    force_polling=self.settings.poll or None,
                    poll_delay_ms=300,
                    ignore_permission_denied=True,
                ):
                    await asyncio.to_thread(self.reload)
                    if target != root and root.exists():
                        break  # the folder appeared: watch it directly from now on
            except Exception:
                log.exception("watching %s failed; retrying", target)
                await _wait(stop, 1.0)


def _existing_parent(p: Path) -> Path:
    for parent in p.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
