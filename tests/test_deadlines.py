"""deadlines.Deadlines: coarse timers that fire late by at most the resolution, never early."""

from __future__ import annotations

import asyncio

from ingressproxy.deadlines import Deadlines


def test_fires_once_after_the_delay_and_never_early() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(resolution=0.02)
        fired: list[tuple[str, float]] = []
        start = loop.time()
        deadlines.arm("a", 0.1, lambda name: fired.append((name, loop.time())), "a")
        deadlines.arm("b", 0.03, lambda: fired.append(("b", loop.time())))
        await asyncio.sleep(0.3)
        assert [name for name, _ in fired] == ["b", "a"]
        at = dict(fired)
        assert at["b"] - start >= 0.03 and at["a"] - start >= 0.1
        assert len(deadlines) == 0 and deadlines._handle is None  # idle: no loop timer left

    asyncio.run(main())


def test_disarm_and_rearm() -> None:
    async def main() -> None:
        deadlines = Deadlines(resolution=0.01)
        fired: list[str] = []
        deadlines.arm("gone", 0.02, fired.append, "gone")
        deadlines.disarm("gone")
        deadlines.arm("moved", 0.02, fired.append, "moved")
        deadlines.arm("moved", 0.15, fired.append, "moved later")  # replaces the first
        await asyncio.sleep(0.08)
        assert fired == []
        await asyncio.sleep(0.15)
        assert fired == ["moved later"]

    asyncio.run(main())


def test_a_failing_callback_does_not_stop_the_others() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[object] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))
        deadlines = Deadlines(resolution=0.01)
        fired: list[str] = []

        def boom() -> None:
            raise RuntimeError("boom")

        deadlines.arm(1, 0.01, boom)
        deadlines.arm(2, 0.01, fired.append, "ok")
        deadlines.arm(3, 0.05, fired.append, "later")
        await asyncio.sleep(0.15)
        assert fired == ["ok", "later"]
        assert [str(e) for e in errors] == ["boom"]

    asyncio.run(main())
