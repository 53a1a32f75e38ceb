"""``Services``: the shared state, one service per resource, and the pipeline engine, wired.

The one place that knows every service: it builds them bottom-up and injects the engine into
the executions service (the engine's actions call the other services, so the engine cannot be
imported by them). Routers, the middleware and the ``/_local/`` controls take a ``Services``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator

from budai_gateway import __version__
from budai_gateway.actions import Context
from budai_gateway.config import Settings
from budai_gateway.engine import Engine
from budai_gateway.services.autoscaler import Autoscaler
from budai_gateway.services.clusters import Clusters
from budai_gateway.services.deployments import Deployments
from budai_gateway.services.executions import Executions
from budai_gateway.services.models import Models
from budai_gateway.services.pipelines import Pipelines
from budai_gateway.services.scheduler import Scheduler
from budai_gateway.services.state import State


class Services:
    """One instance per app; ``app.state.services``."""

    def __init__(self, settings: Settings) -> None:
        self.state = state = State(settings)
        # The middleware reads these two; they are the shared state's.
        self.settings = settings
        self.store = state.store
        self.clusters = Clusters(state)
        self.models = Models(state)
        self.deployments = Deployments(state, self.clusters)
        self.autoscaler = Autoscaler(state, self.deployments)
        self.pipelines = Pipelines(state)
        self.engine = Engine(Context(state, self.models, self.deployments, self.clusters))
        self.executions = Executions(state, self.pipelines, self.engine)
        self.scheduler = Scheduler(
            state, self.models, self.clusters, self.deployments, self.autoscaler, self.executions
        )
        if self.store.kv_get("seeded") is None:
            self.clusters.seed()

    def health(self) -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's lifespan: HTTP client and scheduler up; every task stopped after."""
        await self.state.open()
        task = asyncio.create_task(self.scheduler.run())
        try:
            yield
        finally:
            task.cancel()
            self.engine.stop_all()
            self.models.cancel_downloads()
            await self.state.aclose()

    def reset(self) -> None:
        """``/_local/reset``: back to a freshly seeded gateway."""
        self.engine.stop_all()
        self.models.cancel_downloads()
        self.state.traffic.clear()
        self.store.clear()
        shutil.rmtree(self.state.data_dir / "models", ignore_errors=True)
        self.clusters.seed()
