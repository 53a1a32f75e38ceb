"""Executions: a pipeline run's record and its steps. Running them is the engine's job, injected as
an :class:`ExecutionRunner` so this module never imports the engine."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from budai.types.execution import ExecutionStatus
from budai_gateway.errors import APIError
from budai_gateway.services.common import get_or_404, page
from budai_gateway.services.pipelines import Pipelines
from budai_gateway.services.state import State, iso, new_id
from budai_gateway.store import Doc

TERMINAL: tuple[ExecutionStatus, ...] = ("completed", "failed", "cancelled")
UNFINISHED: tuple[ExecutionStatus, ...] = ("pending", "running")


class ExecutionRunner(Protocol):
    """What the executions service needs from the pipeline engine."""

    def active(self) -> int:
        """How many executions are running now."""
        ...

    def start(self, exec_id: str) -> None:
        """Run an execution (no-op when it already runs)."""
        ...

    def cancel(self, exec_id: str) -> None:
        """Ask a running execution to stop (its record already says cancel_requested)."""
        ...


class Executions:
    def __init__(self, state: State, pipelines: Pipelines, runner: ExecutionRunner) -> None:
        self.state = state
        self.pipelines = pipelines
        self.runner = runner

    def view(self, doc: Doc) -> Doc:
        """The execution as the API shows it: with its steps and the outputs of finished ones."""
        steps = self.state.store.steps(doc["id"])
        doc = dict(doc)
        doc["steps"] = {s["id"]: s for s in steps}
        doc["outputs"] = {s["id"]: s["output"] for s in steps if s["status"] == "completed"}
        return doc

    def list(self, filters: dict[str, Any], limit: int, after: str | None) -> dict[str, Any]:
        # Executions are looked at by "what ran last": newest first, as the CLI and SDK say.
        store = self.state.store
        return page(store, "execution", filters, limit, after, newest_first=True, view=self.view)

    def _get(self, exec_id: str) -> Doc:
        return get_or_404(self.state.store, "execution", exec_id, "execution_id")

    def get(self, exec_id: str) -> Doc:
        return self.view(self._get(exec_id))

    def create(self, body: dict[str, Any]) -> Doc:
        pipe = self.pipelines.get(body["pipeline_id"])
        if pipe["status"] != "active":
            raise APIError(
                409,
                "pipeline_not_active",
                f"Pipeline '{pipe['id']}' is {pipe['status']}; only active pipelines run.",
                "pipeline_id",
            )
        lim = self.state.settings.limits
        running = self.runner.active()
        if running >= lim.max_active_executions:
            raise APIError(
                429,
                "too_many_executions",
                f"{running} executions are running, the limit is "
                f"{lim.max_active_executions} (limits.max_active_executions); retry later.",
                None,
                {"retry-after": "1"},
            )
        self._prune(lim.max_stored_executions - 1)
        doc: Doc = {
            "object": "execution",
            "id": new_id("exec"),
            "pipeline_id": pipe["id"],
            "status": "pending",
            "params": dict(body.get("params") or {}),
            "metadata": dict(body.get("metadata") or {}),
            "started_at": None,
            "completed_at": None,
            "duration_seconds": None,
            "error": None,
            "created_at": iso(),
        }
        steps = [
            {
                "id": s["id"],
                "action": s["action"],
                "status": "pending",
                "output": None,
                "error": None,
                "attempts": 0,
                "started_at": None,
                "completed_at": None,
                "duration_seconds": None,
            }
            for s in pipe["definition"]["steps"]
        ]
        self.state.store.insert("execution", doc, {"definition": pipe["definition"]}, steps)
        self.runner.start(doc["id"])
        return self.view(doc)

    def _prune(self, keep: int) -> None:
        """Drop the oldest finished executions beyond ``keep`` (limits.max_stored_executions)."""
        store = self.state.store
        excess = store.count("execution") - keep
        if excess <= 0:
            return
        for exec_id in store.oldest_finished_executions(excess, TERMINAL):
            store.delete("execution", exec_id)

    async def cancel(self, exec_id: str) -> Doc:
        doc = self._get(exec_id)
        if doc["status"] in TERMINAL:
            raise APIError(
                409,
                "execution_finished",
                f"Execution '{exec_id}' is already {doc['status']}.",
                "execution_id",
            )
        store = self.state.store
        internal = store.get_internal(exec_id)
        internal["cancel_requested"] = True
        store.put_internal(exec_id, internal)
        self.runner.cancel(exec_id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._get(exec_id)["status"] in TERMINAL:
                break
            await asyncio.sleep(0.01)
        return self.get(exec_id)

    def resume_unfinished(self) -> None:
        """Start a runner for every unfinished execution (e.g. after a restart)."""
        for status in UNFINISHED:
            for doc in self.state.store.find("execution", "status", status):
                self.runner.start(doc["id"])
