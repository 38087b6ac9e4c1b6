"""The cyclic garbage collector paused while a folder is loaded, decoded and compiled.

Building a snapshot allocates millions of long-lived, acyclic objects (plain data, line maps,
decoded objects, routers). CPython's collector runs a full pass each time the tracked heap
grows by a quarter, so a 10,000-Ingress folder paid ~2 s of collection for nothing: the build
frees its temporaries by reference counting and leaves almost no cycles. When the last build
ends, one full collection puts what it made in the oldest generation and collection resumes
with its usual thresholds (docs/performance.md, "The collector after a build").
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["paused_gc"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside; nestable and safe across threads (the reloader's thread
    and a command's build): the collector comes back when the outermost pause ends, and only if
    it was on before the first."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                _age_young_objects()
                gc.enable()


def _age_young_objects() -> None:
    """One full collection, so what the build made ends in the oldest generation with the
    collector's bookkeeping right.

    Moving the objects there without a collection (freeze() then unfreeze()) leaves CPython's
    count of long-lived objects as it was before the build, and its rule for a full pass (a
    quarter more long-lived objects than that count) then fires again and again on a serving
    proxy, each pass walking the whole snapshot: at 10,000 Ingresses that cost a fifth of the
    throughput (docs/performance.md, "The collector after a build"). One pass here costs a fraction
    of a second per build instead.
    """
    gc.collect()
