"""Download progress a person can plan with: bytes done, size, percent, rate and ETA.

``url`` downloads measure real bytes over a sliding window; simulated Hugging Face downloads
(repository not in the local cache) report the simulated rate, and the model's metadata says
``simulated_download: true``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

RATE_WINDOW_SECONDS = 3.0


def progress_fields(done: int, total: int | None, rate: float | None) -> dict[str, Any]:
    """The model fields for ``done`` of ``total`` bytes at ``rate`` bytes per second."""
    percent = round(min(100.0 * done / total, 100.0), 1) if total else None
    eta = None
    if total and rate and rate > 0:
        eta = round(max(total - done, 0) / rate, 1)
    return {
        "downloaded_bytes": done,
        "size_bytes": total,
        "progress_percent": percent,
        "bytes_per_second": None if rate is None else round(rate, 1),
        "eta_seconds": eta,
    }


class DownloadProgress:
    """Rate over the last few seconds of one real download, so the ETA follows the link."""

    def __init__(
        self,
        total: int | None,
        *,
        window: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.window = window
        self._clock = clock
        self.done = 0
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def update(self, done: int) -> None:
        """Record the bytes written so far."""
        now = self._clock()
        self.done = done
        self._samples.append((now, done))
        # Keep one sample older than the window, so the rate spans the whole window.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    @property
    def rate(self) -> float | None:
        """Bytes per second over the window, None before any time has passed."""
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return None
        return (d1 - d0) / (t1 - t0)

    def fields(self) -> dict[str, Any]:
        return progress_fields(self.done, self.total, self.rate)
