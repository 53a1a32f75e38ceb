"""A work queue for level-based reconciles: a fixed pool of workers, one timer, no task per object.

The semantics are those of controller-runtime's rate-limited work queue, which kopf's per-object
daemons gave us at a cost of about 100 KB and one asyncio task per object:

- `wake(key, delay)` asks for a reconcile of `key` no later than `delay` seconds from now; an
  earlier request wins over a later one, so repeated wake-ups coalesce.
- A key is never reconciled by two workers at once. A wake-up that arrives while its key is being
  reconciled is kept and runs right after, so no change is ever lost between two reconciles.
- The reconcile function returns the next poll (seconds, or None for "only on change").
- While inactive (another replica leads) workers take no new key; keys that came due meanwhile
  wait and run when the scheduler is active again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
INF = float("inf")


class Scheduler(Generic[K]):
    """Reconcile keys with `workers` concurrent workers, each key at most once at a time."""

    def __init__(
        self,
        reconcile: Callable[[K], Awaitable[float | None]],
        *,
        workers: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._reconcile = reconcile
        self._workers = workers
        self._clock = clock
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # the live heap entry of each scheduled key
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._running: set[K] = set()
        self._after: dict[K, float] = {}  # wake-ups that arrived while the key was running
        self._parked: set[K] = set()  # came due while inactive
        self._seq = itertools.count()
        self._timer_kick = asyncio.Event()
        self._active = asyncio.Event()
        self._active.set()
        self._tasks: list[asyncio.Task[None]] = []

    # --- requests ----------------------------------------------------------------------------

    def wake(self, key: K, delay: float = 0.0) -> None:
        """Reconcile `key` within `delay` seconds (now by default)."""
        due = self._clock() + max(delay, 0.0)
        if key in self._running:
            self._after[key] = min(self._after.get(key, INF), due)
        elif key in self._queued or key in self._parked:
            return
        elif delay <= 0:
            self._enqueue(key)
        elif due < self._due.get(key, INF):
            self._schedule(key, due)

    def forget(self, key: K) -> None:
        """Drop every pending request for `key` (the object is gone)."""
        self._due.pop(key, None)
        self._after.pop(key, None)
        self._parked.discard(key)
        self._queued.discard(key)  # a queued copy is skipped by the worker that takes it

    def clear(self) -> None:
        """Drop every pending request (keys being reconciled finish; none follows unless woken)."""
        self._heap.clear()
        self._due.clear()
        self._after.clear()
        self._parked.clear()
        self._queued.clear()

    def pending(self, key: K, within: float = 0.0) -> bool:
        """Whether `key` will be reconciled within `within` seconds (for tests and metrics)."""
        limit = self._clock() + within
        return (
            key in self._queued
            or key in self._parked
            or self._after.get(key, INF) <= limit
            or self._due.get(key, INF) <= limit
        )

    @property
    def depth(self) -> int:
        """Keys ready to run now (queued or parked while inactive)."""
        return len(self._queued) + len(self._parked)

    # --- leadership ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active.is_set()

    def set_active(self, active: bool) -> None:
        """Pause (another replica leads) or resume taking work."""
        if active == self.active:
            return
        if active:
            self._active.set()
            parked, self._parked = self._parked, set()
            for key in parked:
                self._enqueue(key)
        else:
            self._active.clear()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer and the workers on the running loop."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._timer(), name="scheduler timer"))
        for n in range(self._workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"reconcile worker {n}"))

    async def stop(self) -> None:
        """Cancel the workers (in-flight reconciles are cancelled too)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals ----------------------------------------------------------------------------

    def _enqueue(self, key: K) -> None:
        self._due.pop(key, None)
        if not self.active:
            self._parked.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def _schedule(self, key: K, due: float) -> None:
        kick = not self._heap or due < self._heap[0][0]
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        if kick:
            self._timer_kick.set()

    async def _timer(self) -> None:
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == due:  # else a stale entry: rescheduled or forgotten
                    self._enqueue(key)
            self._timer_kick.clear()
            timeout = (self._heap[0][0] - now) if self._heap else None
            try:
                async with asyncio.timeout(timeout):
                    await self._timer_kick.wait()
            except TimeoutError:
                pass

    async def _worker(self) -> None:
        while True:
            key = await self._ready.get()
            if key not in self._queued:
                continue  # forgotten while queued
            if not self.active:
                self._queued.discard(key)
                self._parked.add(key)
                continue
            self._queued.discard(key)
            self._running.add(key)
            delay: float | None = None
            try:
                delay = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The reconcile function handles its own errors; this is a last resort so that
                # a bug never kills a worker (the key is retried on its next wake-up).
                log.exception("reconcile of %r crashed", key)
                delay = 5.0
            finally:
                self._running.discard(key)
            after = self._after.pop(key, INF)
            due = min(after, self._clock() + delay if delay is not None else INF)
            if due <= self._clock():
                self._enqueue(key)
            elif due < INF:
                self._schedule(key, due)


__all__ = ["Scheduler"]
