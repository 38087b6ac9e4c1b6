"""The cyclic garbage collector paused while a folder is loaded, decoded and compiled.

Building a snapshot allocates millions of long-lived, acyclic objects (plain data, line maps,
decoded objects, routers). CPython's collector runs a full pass each time the tracked heap grows
by a quarter, so a 10,000-Ingress folder paid ~2 s of collection for nothing: the build frees
its temporaries by reference counting and leaves almost no cycles (docs/performance.md,
"Loading big folders"). When the last build ends, what it made joins the oldest generation
and collection resumes with its usual thresholds.
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
    """Move every tracked object into the oldest generation without a collection.

    Re-enabled as is, the collector's next young pass would walk every object the build
    made (~0.3 s for 10,000 Ingresses) and a middle pass would walk them again. freeze()
    then unfreeze() moves them all into the oldest generation, where they stay collectable
    (the next full pass looks at them). Skipped when someone else has frozen objects, which
    unfreeze() would release.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
