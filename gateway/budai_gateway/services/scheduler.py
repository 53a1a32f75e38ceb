"""The lifecycle clock: one tick advances every resource one step, from what is persisted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from budai_gateway.services.autoscaler import Autoscaler
from budai_gateway.services.clusters import Clusters
from budai_gateway.services.deployments import Deployments
from budai_gateway.services.executions import Executions
from budai_gateway.services.models import Models
from budai_gateway.services.state import State

log = logging.getLogger("budai_gateway")


class Scheduler:
    def __init__(
        self,
        state: State,
        models: Models,
        clusters: Clusters,
        deployments: Deployments,
        autoscaler: Autoscaler,
        executions: Executions,
    ) -> None:
        self.state = state
        self.models = models
        self.clusters = clusters
        self.deployments = deployments
        self.autoscaler = autoscaler
        self.executions = executions

    def tick(self) -> bool:
        """Advance every lifecycle one step; True while something is in flight."""
        now = time.time()
        busy = self.models.tick(now)
        busy = self.deployments.tick(now) or busy
        self.clusters.tick()
        self.autoscaler.tick(now)
        self.executions.resume_unfinished()
        return busy

    async def run(self) -> None:
        """Tick fast while lifecycles are in flight, slowly when idle; every state change
        sets ``wakeup`` so nothing waits for the slow tick."""
        state = self.state
        tick = state.settings.timings.tick_seconds
        idle_tick = max(tick, 0.5)
        last_expire = 0.0
        while True:
            busy = True
            try:
                busy = self.tick()
                if time.time() - last_expire > 300:
                    last_expire = time.time()
                    state.store.idem_expire(state.settings.idempotency_ttl_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wakeup.wait(), timeout=tick if busy else idle_tick)
            state.wakeup.clear()
