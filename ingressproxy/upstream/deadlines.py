"""Coarse timers for the per-request hot path: many deadlines, one event-loop timer.

Every proxied request used to arm two timers of its own (the upstream read timeout and the
client-disconnect watch, exchange.ClientWatch) and cancel both a few hundred microseconds
later. An event-loop timer costs a handle object and a heap or libuv operation each way,
several microseconds a request in all (docs/performance.md); here arming is a dict insert and
disarming a dict pop, and one loop timer wakes every `resolution` seconds while anything is
armed, to fire what is due. A deadline therefore fires up to `resolution` late, which is
fine for timeouts counted in seconds, and never early.

`Sweep` is cheaper still for short-lived items that only need "still here after a while"
(the disconnect watch): a set add and two set discards per item, no clock read.

One Deadlines (or Sweep) serves one event loop: the one running at its first `arm` (owners
make a new one when they start on another loop: ProxyApp.startup, a new UpstreamTransport), or
the one given to `Deadlines.for_loop`, which shares one instance per loop and resolution among
objects that have no owner to hold it (the guard's connections).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["DEFAULT_RESOLUTION", "Deadlines", "Sweep"]

# Late by at most this much: small beside the timeouts armed here (--read-timeout, seconds).
DEFAULT_RESOLUTION = 0.05


class Deadlines:
    """`arm(key, delay, callback, *args)` calls `callback(*args)` once, `delay` seconds from
    now (up to `resolution` later), unless `disarm(key)` came first. Arming a key again
    replaces its deadline."""

    __slots__ = ("__weakref__", "_due", "_handle", "_loop", "_resolution")

    def __init__(self, resolution: float = DEFAULT_RESOLUTION) -> None:
        self._resolution = resolution
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: dict[Hashable, tuple[float, Callable[..., None], tuple[Any, ...]]] = {}
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop, resolution: float) -> Deadlines:
        """The instance shared by everything on `loop` that asks for this resolution."""
        key = (loop, resolution)
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = cls(resolution)
            shared._loop = loop
        return shared

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop this serves (None before the first `arm`)."""
        return self._loop

    def __len__(self) -> int:
        return len(self._due)

    def arm(self, key: Hashable, delay: float, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            # Once: on Python 3.11 every get_running_loop() is a getpid() system call.
            loop = self._loop = asyncio.get_running_loop()
        self._due[key] = (loop.time() + delay, callback, args)
        if self._handle is None:
            self._handle = loop.call_later(self._resolution, self._tick)

    def disarm(self, key: Hashable) -> None:
        self._due.pop(key, None)

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        due = self._due
        try:
            for key in [key for key, (when, _, _) in due.items() if when <= now]:
                entry = due.pop(key, None)  # an earlier callback may have disarmed it
                if entry is None:
                    continue
                _, callback, args = entry
                try:
                    callback(*args)
                except Exception as exc:  # one failing callback must not stop the others
                    loop.call_exception_handler(
                        {"message": f"deadline callback {callback!r} failed", "exception": exc}
                    )
        finally:
            # Stop ticking when idle, so an idle proxy has no timer at all.
            self._handle = loop.call_later(self._resolution, self._tick) if due else None

    def close(self) -> None:
        """Drop every deadline without firing it, and the loop timer."""
        self._due.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Sweep:
    """`callback(item)` once for each added item still there `period` to 2 x `period`
    seconds after its `add`, unless `discard(item)` came first.

    Two generations on one loop timer: each tick calls back the items that were already
    there at the previous tick, then the young become the old. The callback may `add` its
    item again (it is then called back a generation later). Items must be hashable by
    identity or value; the timer runs only while some item is added.
    """

    __slots__ = ("_callback", "_handle", "_old", "_period", "_young", "loop")

    def __init__(self, period: float, callback: Callable[[Any], None]) -> None:
        self._period = period
        self._callback = callback
        # The loop this serves (None before the first `add`); an attribute, not a property:
        # read once per request (ClientWatch).
        self.loop: asyncio.AbstractEventLoop | None = None
        self._young: set[Any] = set()
        self._old: set[Any] = set()
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def add(self, item: Hashable) -> None:
        self._young.add(item)
        if self._handle is None:
            loop = self.loop
            if loop is None:
                # Once: on Python 3.11 every get_running_loop() is a getpid() system call.
                loop = self.loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self._period, self._tick)

    def discard(self, item: Hashable) -> None:
        self._young.discard(item)
        self._old.discard(item)

    def _tick(self) -> None:
        loop = self.loop
        assert loop is not None
        due, self._old, self._young = self._old, self._young, set()
        try:
            for item in due:
                try:
                    self._callback(item)
                except Exception as exc:  # one failing callback must not stop the others
                    loop.call_exception_handler(
                        {"message": f"sweep callback for {item!r} failed", "exception": exc}
                    )
        finally:
            busy = self._young or self._old
            self._handle = loop.call_later(self._period, self._tick) if busy else None

    def close(self) -> None:
        """Drop every item without calling back, and the loop timer."""
        self._young.clear()
        self._old.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


# Deadlines.for_loop's instances: dropped with their loop (the values hold it only weakly).
_SHARED: weakref.WeakValueDictionary[tuple[asyncio.AbstractEventLoop, float], Deadlines] = (
    weakref.WeakValueDictionary()
)
