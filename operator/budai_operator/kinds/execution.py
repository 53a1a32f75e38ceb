"""`BudExecution`: one run of a BudPipeline (`pipelineRef`, which must be Ready, or
`pipelineId`); polled by id, never listed (executions pile up as history); deleting it cancels a
running execution."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..models import BUD_EXECUTION, BudExecutionSpec
from ..reconcile import conditions as cnd
from ..reconcile.common import Action, Ctx, Observation, Plan
from ..reconcile.execution import delete_execution_plan, reconcile_execution
from .base import Deletion, KindAdapter, Ref, Turn
from .pipeline import PIPELINE

if TYPE_CHECKING:
    from budai import AsyncBudClient


class ExecutionKind(KindAdapter):
    definition = BUD_EXECUTION
    noun = "execution"
    api = "executions"
    listed = False
    ref = Ref(PIPELINE.kind, "pipeline_ref", "pipeline_id", needs_ready=True)

    async def decide(self, turn: Turn, spec: BudExecutionSpec, obs: Observation) -> Plan:
        pipeline_id, wait = turn.resolve_ref(self.ref, spec)
        unauthorized = None
        if pipeline_id is None and spec.pipeline_ref is not None:
            # A pipeline Stalled on its key: the execution says so rather than "not Ready yet".
            target = turn.objects.find(PIPELINE.kind, turn.st.namespace, spec.pipeline_ref.name)
            if target is not None and target.stalled_on("Unauthorized"):
                unauthorized = str(target.condition(cnd.STALLED).get("message") or "")
        return reconcile_execution(
            turn.ctx,
            spec,
            obs,
            pipeline_id=pipeline_id,
            pipeline_wait=wait,
            pipeline_unauthorized=unauthorized,
        )

    def send(self, client: AsyncBudClient, action: Action) -> tuple[str, Awaitable[Any]]:
        body = action.body
        if action.op == "create":
            return f"create execution of pipeline {body['pipeline_id']}", (
                client.executions.with_response.create(
                    body["pipeline_id"],
                    body.get("params") or {},
                    metadata=body.get("metadata"),
                    idempotency_key=action.idempotency_key,
                )
            )
        return self.send_delete(client, action)

    def send_delete(self, client: AsyncBudClient, action: Action) -> tuple[str, Awaitable[Any]]:
        # Executions are never deleted remotely (they are history): only cancelled.
        target = action.target_id or ""
        return f"{action.op} execution {target}", client.executions.cancel(
            target, idempotency_key=action.idempotency_key
        )

    def delete_plan(self, ctx: Ctx, spec: Any, obs: Observation, deletion: Deletion) -> Plan:
        return delete_execution_plan(ctx, spec, obs)

    def direct_ref(self, spec: Any, obs: Observation) -> str | None:
        # Checked before the start only: a running execution keeps the pipeline it started on.
        return super().direct_ref(spec, obs) if obs.remote is None else None


EXECUTION = ExecutionKind()
