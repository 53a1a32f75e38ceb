"""The operator's work queue: coalescing, one reconcile per key at a time, no lost wake-up,
requeue times, pausing (another replica leads), and a crashing reconcile not killing a worker."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from budai_operator.scheduler import Scheduler


class Recorder:
    def __init__(self, delay: float | None = None, hold: float = 0.0) -> None:
        self.calls: list[str] = []
        self.running: Counter[str] = Counter()
        self.overlap = 0
        self.delay = delay
        self.hold = hold
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str) -> float | None:
        self.running[key] += 1
        self.overlap = max(self.overlap, self.running[key])
        self.calls.append(key)
        try:
            await self.release.wait()
            await asyncio.sleep(self.hold)
        finally:
            self.running[key] -= 1
        return self.delay


async def settle(seconds: float = 0.05) -> None:
    """Give the workers a moment (for checks that something did *not* happen)."""
    await asyncio.sleep(seconds)


async def until(what: str, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for `cond` (a loaded CI machine may delay the workers well past a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_wakeups_coalesce_and_each_key_runs_once() -> None:
    rec = Recorder()
    sched: Scheduler[str] = Scheduler(rec, workers=4)
    for _ in range(10):
        sched.wake("a")
        sched.wake("b")
    sched.start()
    try:
        await until("both keys", lambda: len(rec.calls) >= 2)
        await settle()
        assert sorted(rec.calls) == ["a", "b"]
    finally:
        await sched.stop()


async def test_a_wakeup_during_a_reconcile_runs_right_after_never_alongside() -> None:
    rec = Recorder()
    rec.release.clear()
    sched: Scheduler[str] = Scheduler(rec, workers=4)
    sched.start()
    try:
        sched.wake("a")
        await until("the first reconcile", lambda: rec.calls == ["a"])
        for _ in range(5):
            sched.wake("a")  # the object changed while it was being reconciled
        await settle()
        assert rec.calls == ["a"], "a second reconcile started alongside the first"
        rec.release.set()
        await until("the change seen mid-reconcile", lambda: rec.calls == ["a", "a"])
        await settle()
        assert rec.calls == ["a", "a"]
        assert rec.overlap == 1
    finally:
        await sched.stop()


async def test_requeue_after_delay_and_an_earlier_wakeup_wins() -> None:
    rec = Recorder(delay=0.3)
    sched: Scheduler[str] = Scheduler(rec, workers=2)
    sched.start()
    try:
        sched.wake("a")
        await until(
            "the requeue to be scheduled",
            lambda: len(rec.calls) == 1 and sched.pending("a", within=0.35),
        )
        rec.delay = None  # from now on: only on change
        await until("the requeue after 0.3 s", lambda: len(rec.calls) == 2)
        assert not sched.pending("a", within=10)
        sched.wake("a", delay=0.1)
        sched.wake("a", delay=5.0)  # later than a pending request: ignored
        assert sched.pending("a", within=0.2)
        await until("the earlier wake-up", lambda: len(rec.calls) == 3, timeout=3.0)
        assert not sched.pending("a", within=10)
    finally:
        await sched.stop()


async def test_forget_drops_pending_work() -> None:
    rec = Recorder()
    sched: Scheduler[str] = Scheduler(rec, workers=1)
    sched.wake("gone", delay=0.1)
    sched.wake("queued")
    sched.forget("gone")
    sched.forget("queued")
    sched.start()
    try:
        await settle(0.3)
        assert rec.calls == []
    finally:
        await sched.stop()


async def test_paused_takes_no_work_and_resuming_runs_what_came_due() -> None:
    rec = Recorder()
    sched: Scheduler[str] = Scheduler(rec, workers=2)
    sched.start()
    try:
        sched.set_active(False)
        sched.wake("a")
        sched.wake("b", delay=0.05)
        await until("b to come due", lambda: sched.depth == 2)
        await settle(0.1)
        assert rec.calls == []
        sched.set_active(True)
        await until("what came due while paused", lambda: sorted(rec.calls) == ["a", "b"])
        sched.set_active(False)
        sched.wake("c")
        sched.clear()  # what a pause with forgetting does
        sched.set_active(True)
        await settle()
        assert "c" not in rec.calls
    finally:
        await sched.stop()


async def test_a_crashing_reconcile_is_retried_and_the_worker_survives() -> None:
    calls: list[str] = []

    async def flaky(key: str) -> float | None:
        calls.append(key)
        if key == "bad" and calls.count("bad") == 1:
            raise RuntimeError("boom")
        return None

    sched: Scheduler[str] = Scheduler(flaky, workers=1)
    sched.start()
    try:
        sched.wake("bad")
        await until("the crashing reconcile", lambda: calls == ["bad"])
        sched.wake("good")
        # The one worker is alive after the crash.
        await until("the worker to go on", lambda: calls == ["bad", "good"])
        assert sched.pending("bad", within=5.0)  # and the crashed key comes back
    finally:
        await sched.stop()


async def test_concurrency_is_bounded_by_workers() -> None:
    rec = Recorder(hold=0.05)
    peak = 0

    async def counting(key: str) -> float | None:
        nonlocal peak
        peak = max(peak, sum(rec.running.values()) + 1)
        return await rec(key)

    sched: Scheduler[str] = Scheduler(counting, workers=3)
    for n in range(12):
        sched.wake(f"k{n}")
    sched.start()
    try:
        await until("every key", lambda: len(rec.calls) == 12)
        assert peak == 3
    finally:
        await sched.stop()


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        Scheduler(Recorder(), workers=0)
