"""deadlines.Deadlines: coarse timers that fire late by at most the resolution, never early."""

from __future__ import annotations

import asyncio
import gc
import itertools

from ingressproxy.upstream import deadlines
from ingressproxy.upstream.deadlines import Deadlines, Sweep


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


def test_for_loop_shares_one_instance_per_loop_and_resolution_and_lets_it_go() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loops.append(loop)
        a = Deadlines.for_loop(loop, 1.0)
        assert Deadlines.for_loop(loop, 1.0) is a
        assert Deadlines.for_loop(loop, 0.5) is not a
        assert a.loop is loop  # bound before any arm
        fired: list[str] = []
        a.arm("k", 0.0, fired.append, "k")
        await asyncio.sleep(1.2)
        assert fired == ["k"]

    asyncio.run(main())
    gc.collect()
    # Nobody holds this loop's instances any more: nothing is kept for it.
    assert not [key for key in deadlines._SHARED if key[0] is loops[0]]


# ---------------------------------------------------------------- Sweep


class _Item:
    """Hashable by identity, like the ClientWatch the proxy adds."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_sweep_calls_back_items_still_there_after_one_to_two_periods() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        called: list[tuple[str, float]] = []
        sweep = Sweep(0.05, lambda item: called.append((item.name, loop.time())))
        start = loop.time()
        stays, leaves = _Item("stays"), _Item("leaves")
        sweep.add(stays)
        sweep.add(leaves)
        await asyncio.sleep(0.02)
        sweep.discard(leaves)
        await asyncio.sleep(0.3)
        assert [name for name, _ in called] == ["stays"]  # once, and never the discarded one
        assert 0.05 <= called[0][1] - start <= 0.1 + 0.05  # two periods, plus scheduling slack
        assert len(sweep) == 0 and sweep._handle is None  # idle: no loop timer left

    asyncio.run(main())


def test_sweep_an_item_added_again_by_its_callback_comes_back_a_period_later() -> None:
    async def main() -> None:
        item = _Item("again")
        calls: list[float] = []
        loop = asyncio.get_running_loop()

        def callback(got: _Item) -> None:
            calls.append(loop.time())
            if len(calls) < 3:
                sweep.add(got)

        sweep = Sweep(0.03, callback)
        sweep.add(item)
        await asyncio.sleep(0.4)
        assert len(calls) == 3
        assert all(later - earlier >= 0.03 for earlier, later in itertools.pairwise(calls))
        assert len(sweep) == 0

    asyncio.run(main())


def test_sweep_a_failing_callback_does_not_stop_the_others_and_close_drops_everything() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[object] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))
        called: list[str] = []

        def callback(item: _Item) -> None:
            if item.name == "boom":
                raise RuntimeError("boom")
            called.append(item.name)

        sweep = Sweep(0.02, callback)
        sweep.add(_Item("boom"))
        sweep.add(_Item("ok"))
        await asyncio.sleep(0.12)
        assert called == ["ok"]
        assert [str(e) for e in errors] == ["boom"]
        sweep.add(_Item("never"))
        sweep.close()
        await asyncio.sleep(0.08)
        assert called == ["ok"] and sweep._handle is None

    asyncio.run(main())
