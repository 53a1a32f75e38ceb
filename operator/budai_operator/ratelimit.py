"""A process-wide token bucket for gateway calls (default 10/s, burst 100).

It sits in an httpx request hook, so every real HTTP request (SDK retries included) waits for a
token; the time spent waiting is exported as a metric.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Classic token bucket; `acquire` returns the seconds it waited."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> float:
        """Take one token, sleeping until one is available; FIFO through the lock."""
        waited = 0.0
        async with self._lock:
            self._refill()
            while self._tokens < 1.0:
                delay = (1.0 - self._tokens) / self.rate
                await asyncio.sleep(delay)
                waited += delay
                self._refill()
            self._tokens -= 1.0
        return waited
