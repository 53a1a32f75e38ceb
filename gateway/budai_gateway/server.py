"""The HTTP protocol under uvicorn, with the connection limits uvicorn lacks.

uvicorn's h11 protocol waits for request headers for ever, so a client that sends them a byte
at a time (slowloris), or opens hundreds of connections and sends nothing, holds them open.
:class:`GuardedH11Protocol` closes a connection whose request headers have not all arrived
within ``header_timeout`` seconds, and keeps at most ``max_half_open`` such connections: past
that, the oldest one is closed (a fresh, complete request is never the one turned away).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    header_timeout: ClassVar[float] = 10.0
    max_half_open: ClassVar[int] = 64
    # Insertion-ordered: the first entry is the oldest connection still waiting for headers.
    _half_open: ClassVar[dict[GuardedH11Protocol, None]] = {}

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # (part of) the next request's headers: the clock runs
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is not None or self.transport.is_closing():
            return
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire)
        half_open = GuardedH11Protocol._half_open
        half_open[self] = None
        while len(half_open) > self.max_half_open:
            oldest = next(iter(half_open))
            oldest._expire()

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        GuardedH11Protocol._half_open.pop(self, None)

    def _expire(self) -> None:
        self._disarm()
        # A connection idle between requests is uvicorn's keep-alive timer's business.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.abort()
