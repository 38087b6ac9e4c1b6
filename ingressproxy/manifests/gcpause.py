"""The cyclic garbage collector paused while a folder is loaded, decoded and compiled.

Building a snapshot allocates millions of long-lived, acyclic objects (plain data, line maps,
decoded objects, routers). CPython's collector runs a full pass each time the tracked heap grows
by a quarter, so a 10,000-Ingress folder paid ~2 s of collection for nothing: the build frees
its temporaries by reference counting and leaves almost no cycles (docs/performance.md,
"Loading big folders"). Collection resumes, with its usual thresholds, when the last build ends.
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
                gc.enable()
