"""The state every service shares: store, settings, clock, wake-up, HTTP client, sandbox, traffic.

One instance per app. Services hold a reference to it and to the services below them; nothing
here knows a resource's lifecycle.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from budai_gateway import egress
from budai_gateway.config import Settings
from budai_gateway.store import Store

if TYPE_CHECKING:
    from budai_gateway.sandbox import SandboxPool


def iso(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class Traffic:
    """Requests served per deployment (chat, embeddings, actions), the autoscaler's input."""

    def __init__(self) -> None:
        self.log: dict[str, deque[float]] = {}
        # Load set through /_local/deployments/{id}/load, added to the measured request rate.
        self.synthetic: dict[str, float] = {}

    def record(self, dep_id: str) -> None:
        self.log.setdefault(dep_id, deque()).append(time.monotonic())

    def rate(self, dep_id: str, window: float) -> float:
        synthetic = self.synthetic.get(dep_id, 0.0)
        q = self.log.get(dep_id)
        if not q:
            return synthetic
        cutoff = time.monotonic() - window
        while q and q[0] < cutoff:
            q.popleft()
        # Requests are real events, so the rate is per real second; only the window is scaled.
        return len(q) / window + synthetic

    def forget(self, dep_id: str) -> None:
        self.log.pop(dep_id, None)
        self.synthetic.pop(dep_id, None)

    def clear(self) -> None:
        self.log.clear()
        self.synthetic.clear()


class State:
    """Shared by every service; methods run on the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.data_dir = settings.resolved_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.speed = settings.speed  # /_local/speed changes it at run time
        # Every state change sets it, so the scheduler does not wait for its slow tick.
        self.wakeup = asyncio.Event()
        self.traffic = Traffic()
        self.http: httpx.AsyncClient | None = None  # opened by the app's lifespan
        # Destinations chosen by tenant input (http_request, url models) go through this one.
        self.egress_policy = egress.Policy.of(settings.egress, settings.public_url)
        self.egress_http: httpx.AsyncClient | None = None
        self._sandbox: SandboxPool | None = None

    def scaled(self, seconds: float) -> float:
        """A lifecycle duration at the current speed factor."""
        return seconds / self.speed

    def client(self) -> httpx.AsyncClient:
        assert self.http is not None, "the HTTP client opens with the app's lifespan"
        return self.http

    def egress_client(self) -> httpx.AsyncClient:
        """The client whose every connection the ``egress:`` policy checks."""
        assert self.egress_http is not None, "the HTTP client opens with the app's lifespan"
        return self.egress_http

    def teardown_scheduled(self, obj_id: str) -> bool:
        """A deployment whose delete is under way (it serves and reserves nothing any more)."""
        return bool(self.store.get_internal(obj_id).get("delete_at"))

    def sandbox(self) -> SandboxPool:
        """The template worker pool (started on first use)."""
        if self._sandbox is None:
            # Imported here: the pool's worker machinery is only loaded when budgets are on.
            from budai_gateway.sandbox import Budgets, SandboxPool

            lim = self.settings.limits
            self._sandbox = SandboxPool(
                Budgets(
                    time_seconds=lim.template_time_seconds,
                    memory_mb=lim.template_memory_mb,
                    max_int_digits=lim.template_max_int_digits,
                    max_string_bytes=lim.template_max_string_bytes,
                    max_loop_iterations=lim.template_max_loop_iterations,
                    max_output_bytes=lim.template_max_output_bytes,
                )
            )
        return self._sandbox

    async def open(self) -> None:
        self.http = httpx.AsyncClient(timeout=30)
        self.egress_http = egress.client(self.egress_policy)

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.egress_http is not None:
            await self.egress_http.aclose()
        if self._sandbox is not None:
            self._sandbox.close()
        self.store.close()
