"""Decisions for `BudExecution`: start the run once, mirror each step's state, cancel on request,
delete the resource itself `ttlSecondsAfterFinished` after it finished."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..models import BudExecutionSpec, BudExecutionStatus
from ..models.execution import ExecutionStepStatus
from . import conditions as c
from .common import (
    Action,
    Ctx,
    Event,
    Observation,
    Plan,
    base_status,
    create_key,
    current_id,
    in_flight_plan,
    paused_plan,
    ready_plan,
    stalled_plan,
    stalled_status,
    strip_none,
    with_conditions,
)
from .errors import UNAUTHORIZED_RECHECK
from .ownership import marker_patch
from .polling import ANN_EXTERNAL_ID

TERMINAL = frozenset({"completed", "failed", "cancelled"})
RUNNING_INTERVAL = 3.0
# Status lives in etcd next to everything else: keep outputs well under the object size limit.
MAX_OUTPUTS_BYTES = 16 * 1024


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def step_statuses(remote: Mapping[str, Any]) -> list[ExecutionStepStatus]:
    """Each step's state, in a stable order (by start time, then id)."""
    steps = remote.get("steps") or {}
    items = steps.values() if isinstance(steps, Mapping) else steps
    out = [
        ExecutionStepStatus(
            id=step.get("id"),
            action=step.get("action"),
            state=step.get("status"),
            attempts=step.get("attempts"),
            started_at=step.get("started_at"),
            completed_at=step.get("completed_at"),
            duration_seconds=step.get("duration_seconds"),
            error=step.get("error"),
        )
        for step in items
        if isinstance(step, Mapping)
    ]
    return sorted(out, key=lambda s: (s.started_at or "~", s.id))


def capped_outputs(outputs: Any) -> tuple[dict[str, Any] | None, bool]:
    """The outputs if they fit in `MAX_OUTPUTS_BYTES`, else None and a truncated flag."""
    if not isinstance(outputs, Mapping) or not outputs:
        return None, False
    if len(json.dumps(outputs, default=str)) > MAX_OUTPUTS_BYTES:
        return None, True
    return dict(outputs), False


def reconcile_execution(
    ctx: Ctx,
    spec: BudExecutionSpec,
    obs: Observation,
    *,
    pipeline_id: str | None,
    pipeline_wait: str | None = None,
    pipeline_unauthorized: str | None = None,
) -> Plan:
    """One level-based decision for a BudExecution.

    `pipeline_unauthorized`: the referenced BudPipeline is Stalled/Unauthorized (its message)."""
    if ctx.paused:
        return paused_plan(ctx, BudExecutionStatus)
    known_id = current_id(ctx, spec.external_id)
    remote = obs.remote
    if remote is None:
        return _absent_plan(
            ctx, spec, obs, known_id, pipeline_id, pipeline_wait, pipeline_unauthorized
        )

    remote_id = str(remote.get("id"))
    plan = Plan(status={})  # the status is built below, once the remote object is mirrored
    if ctx.annotations.get(ANN_EXTERNAL_ID) != remote_id:
        plan.annotations[ANN_EXTERNAL_ID] = remote_id
    if obs.via == "action" and not known_id:
        plan.events.append(Event("Normal", "Started", f"started execution {remote_id}"))
    state = remote.get("status")
    if spec.cancel and state not in TERMINAL:
        plan.actions.append(
            Action(
                "cancel",
                target_id=remote_id,
                idempotency_key=ctx.idempotency_key("cancel", remote_id),
                reason="Cancelling",
                message=f"cancelling execution {remote_id} (spec.cancel is true)",
            )
        )
    outputs, truncated = capped_outputs(remote.get("outputs"))
    status = base_status(ctx, BudExecutionStatus)
    previous_state = status.state
    status.updated(
        BudExecutionStatus(
            id=remote_id,
            state=state,
            pipeline_id=remote.get("pipeline_id"),
            started_at=remote.get("started_at"),
            completed_at=remote.get("completed_at"),
            duration_seconds=remote.get("duration_seconds"),
            steps=step_statuses(remote) or None,
            outputs=outputs,
            outputs_truncated=True if truncated else None,
            error=remote.get("error"),
            last_sync_time=c.rfc3339(ctx.now),
        )
    )
    _judge(ctx, status, state, remote, cancelling=bool(plan.actions))
    if state in TERMINAL and previous_state != state:
        plan.events.append(
            Event(
                "Normal" if state == "completed" else "Warning",
                state.capitalize(),
                f"execution {remote_id} {state}"
                + (f": {remote.get('error')}" if remote.get("error") else ""),
            )
        )

    plan.status = status.to_wire()
    if state in TERMINAL:
        _after_finish(ctx, spec, plan, remote)
    else:
        plan.requeue_after = ctx.poll(True, fast=RUNNING_INTERVAL)
    return plan


def _absent_plan(
    ctx: Ctx,
    spec: BudExecutionSpec,
    obs: Observation,
    known_id: str | None,
    pipeline_id: str | None,
    pipeline_wait: str | None,
    pipeline_unauthorized: str | None,
) -> Plan:
    """No remote execution: stall (gone, cancelled, pipeline Unauthorized), wait for the
    pipeline, or start it exactly once."""
    if spec.external_id or (obs.gone and known_id):
        missing = spec.external_id or known_id
        return stalled_plan(
            ctx,
            "RemoteNotFound",
            f"the execution {missing} does not exist in the gateway; an execution is never "
            "started twice, create a new BudExecution to run the pipeline again",
            model=BudExecutionStatus,
        )
    if spec.cancel:
        status = stalled_status(
            ctx,
            base_status(ctx, BudExecutionStatus),
            "Cancelled",
            "cancelled before it started",
        )
        return Plan(status=status.to_wire())
    if pipeline_id is None and pipeline_unauthorized:
        # The referenced pipeline cannot reach the gateway with the operator's key, so this
        # execution cannot either: say so instead of waiting (woken when the pipeline heals).
        message = f"the pipeline is Unauthorized: {pipeline_unauthorized}"
        status = base_status(ctx, BudExecutionStatus)
        previous = c.find(status.conditions, c.STALLED)
        fresh = not (previous and previous.status == "True" and previous.reason == "Unauthorized")
        stalled_status(ctx, status, "Unauthorized", message)
        return Plan(
            status=status.to_wire(),
            events=[Event("Warning", "Unauthorized", message)] if fresh else [],
            requeue_after=UNAUTHORIZED_RECHECK,
        )
    if pipeline_id is None:
        message = pipeline_wait or "waiting for the pipeline"
        status = in_flight_plan(
            ctx, base_status(ctx, BudExecutionStatus), "WaitingForPipeline", message
        )
        return Plan(
            status=status.to_wire(),
            requeue_after=ctx.poll(True),
        )
    body = strip_none(
        {
            "pipeline_id": pipeline_id,
            "params": spec.params or {},
            "metadata": marker_patch(ctx.uid),
        }
    )
    action = Action(
        "create",
        body=body,
        # The spec is immutable, so the key is stable for the life of the resource: a lost
        # response or a crash replays the first start instead of starting a second run.
        idempotency_key=create_key(ctx, body, obs),
        reason="Starting",
        message=f"starting an execution of pipeline {pipeline_id}",
    )
    status = in_flight_plan(
        ctx,
        base_status(ctx, BudExecutionStatus),
        "Starting",
        action.message,
        c.cond(c.EXECUTION_SUCCEEDED, "Unknown", "Starting", action.message),
    )
    return Plan(status=status.to_wire(), actions=[action], requeue_after=1.0)


def _judge(
    ctx: Ctx, status: BudExecutionStatus, state: Any, remote: Mapping[str, Any], cancelling: bool
) -> None:
    """Set the conditions on `status` (in place) from the execution's state."""
    if state == "completed":
        ready_plan(
            ctx,
            status,
            "Succeeded",
            "the execution completed",
            c.cond(c.EXECUTION_SUCCEEDED, True, "Succeeded", "every step completed or was skipped"),
        )
    elif state == "failed":
        message = f"the execution failed: {remote.get('error') or 'no reason given'}"
        stalled_status(
            ctx, status, "Failed", message, c.cond(c.EXECUTION_SUCCEEDED, False, "Failed", message)
        )
    elif state == "cancelled":
        message = "the execution was cancelled"
        with_conditions(
            ctx,
            status,
            c.cond(c.READY, False, "Cancelled", message),
            c.cond(c.RECONCILING, False, "Cancelled"),
            c.cond(c.STALLED, True, "Cancelled", message),
            c.cond(c.SYNCED, True, "ReconcileSuccess", "status mirrors the gateway"),
            c.cond(c.EXECUTION_SUCCEEDED, False, "Cancelled", message),
        )
    else:
        running = [s.id for s in status.steps or [] if s.state == "running"]
        message = f"the execution is {state}" + (
            f"; running: {', '.join(running)}" if running else ""
        )
        reason = "Cancelling" if cancelling else (state or "Unknown").capitalize()
        in_flight_plan(
            ctx,
            status,
            reason,
            message,
            c.cond(c.EXECUTION_SUCCEEDED, "Unknown", reason, message),
        )


def _after_finish(ctx: Ctx, spec: BudExecutionSpec, plan: Plan, remote: Mapping[str, Any]) -> None:
    """A finished execution is not polled again; with a TTL it deletes itself when it runs out."""
    plan.requeue_after = None
    finished = _parse_time(remote.get("completed_at"))
    ttl = spec.ttl_seconds_after_finished
    if ttl is not None:
        left = ttl if finished is None else ttl - (ctx.now - finished).total_seconds()
        if left <= 0:
            plan.actions.append(
                Action(
                    "delete_resource",
                    reason="TTLExpired",
                    message=f"deleting this BudExecution {ttl}s after it finished",
                )
            )
        else:
            plan.requeue_after = left


def delete_execution_plan(ctx: Ctx, spec: BudExecutionSpec, obs: Observation) -> Plan:
    """Deleting a BudExecution cancels a still-running execution (policy Delete); executions
    themselves stay in the gateway's history."""
    remote_id = current_id(ctx, spec.external_id)
    remote = obs.remote
    status = base_status(ctx, BudExecutionStatus).to_wire()
    if remote is None or remote_id is None or remote.get("status") in TERMINAL:
        return Plan(status=status, done=True)
    if spec.deletion_policy.value == "Orphan":
        return Plan(
            status=status,
            events=[Event("Normal", "Orphaned", f"left execution {remote_id} running")],
            done=True,
        )
    action = Action(
        "cancel",
        target_id=remote_id,
        idempotency_key=ctx.idempotency_key("cancel", remote_id),
        reason="Cancelling",
        message=f"cancelling execution {remote_id} because its BudExecution is being deleted",
    )
    return Plan(status=status, actions=[action], requeue_after=1.0, done=True)
