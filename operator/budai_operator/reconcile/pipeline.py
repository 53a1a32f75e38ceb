"""Decisions for `BudPipeline`: check what CEL cannot (cycles, unknown actions), create, keep the
definition, description and paused state in line with the spec."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from budai import pipeline_rules as R

from ..models import BudPipelineSpec, BudPipelineStatus, Step
from ..models.pipeline import LastExecution
from . import conditions as c
from .common import (
    Action,
    Ctx,
    Event,
    Observation,
    Plan,
    base_status,
    create_key,
    creating_status,
    current_id,
    default_remote_name,
    in_flight_plan,
    paused_plan,
    ready_plan,
    stalled_plan,
    strip_none,
)
from .ownership import Claim, claim_of, marker_patch
from .polling import ANN_EXTERNAL_ID

# What an absent retry field means on the gateway; spec and remote compare after filling these.
_RETRY_DEFAULTS = {
    "max_attempts": R.DEFAULT_MAX_ATTEMPTS,
    "backoff_multiplier": R.DEFAULT_BACKOFF_MULTIPLIER,
    "initial_delay_seconds": R.DEFAULT_INITIAL_DELAY_SECONDS,
}


def step_body(step: Step) -> dict[str, Any]:
    """One step in the API's snake_case; params pass through untouched."""
    retry = step.retry
    return strip_none(
        {
            "id": step.id,
            "action": step.action,
            "params": step.params,
            "depends_on": step.depends_on,
            "condition": step.condition,
            "retry": None
            if retry is None
            else {
                "max_attempts": retry.max_attempts,
                "backoff_multiplier": retry.backoff_multiplier,
                "initial_delay_seconds": retry.initial_delay_seconds,
            },
            "timeout_seconds": step.timeout_seconds,
        }
    )


def definition_body(spec: BudPipelineSpec) -> dict[str, Any]:
    """The API's `definition`."""
    return {"steps": [step_body(s) for s in spec.definition.steps]}


def _normal_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step with defaults filled in, so spec and remote compare equal when they mean the same."""
    retry = dict(_RETRY_DEFAULTS)
    retry.update({k: v for k, v in (step.get("retry") or {}).items() if v is not None})
    return {
        "id": step.get("id"),
        "action": step.get("action"),
        "params": step.get("params") or {},
        "depends_on": sorted(step.get("depends_on") or []),
        "condition": step.get("condition") or None,
        "retry": {k: float(retry[k]) for k in _RETRY_DEFAULTS},
        "timeout_seconds": step.get("timeout_seconds"),
    }


def definitions_equal(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Semantic equality of two definitions (step order matters; defaults do not)."""
    steps_a = [_normal_step(s) for s in (a or {}).get("steps") or []]
    steps_b = [_normal_step(s) for s in (b or {}).get("steps") or []]
    return steps_a == steps_b


def find_cycle(steps: Sequence[Step]) -> list[str] | None:
    """A dependency cycle as a path of step ids (first id repeated at the end), or None."""
    found = R.find_cycle([(s.id, s.depends_on or []) for s in steps])
    return found[2] if found else None


def spec_problem(spec: BudPipelineSpec, known_actions: Collection[str] | None) -> str | None:
    """What CEL could not check, naming the step: a cycle or an unknown action."""
    cycle = find_cycle(spec.definition.steps)
    if cycle:
        return f"step {cycle[0]} is in a dependency cycle: {' -> '.join(cycle)}"
    if known_actions:
        for step in spec.definition.steps:
            if step.action not in known_actions:
                return (
                    f"step {step.id} uses unknown action {step.action!r}; "
                    f"known actions: {', '.join(sorted(known_actions))}"
                )
    return None


def reconcile_pipeline(
    ctx: Ctx,
    spec: BudPipelineSpec,
    obs: Observation,
    *,
    known_actions: Collection[str] | None = None,
    last_execution: Mapping[str, Any] | None = None,
) -> Plan:
    """One level-based decision for a BudPipeline."""
    if ctx.paused:
        return paused_plan(ctx, BudPipelineStatus)
    problem = spec_problem(spec, known_actions)
    if problem:
        return stalled_plan(
            ctx, "InvalidDefinition", problem, event=ctx.spec_changed, model=BudPipelineStatus
        )
    known_id = current_id(ctx, spec.external_id)
    remote = obs.remote
    name = default_remote_name(ctx, spec.name)
    wanted_state = "paused" if spec.paused else "active"
    if remote is None:
        if spec.external_id:
            return stalled_plan(
                ctx,
                "RemoteNotFound",
                f"the adopted pipeline {spec.external_id} does not exist in the gateway",
                model=BudPipelineStatus,
            )
        body = strip_none(
            {
                "name": name,
                "description": spec.description,
                "definition": definition_body(spec),
                "metadata": marker_patch(ctx.uid),
            }
        )
        action = Action(
            "create",
            body=body,
            idempotency_key=create_key(ctx, body, obs),
            reason="Creating",
            message=f"creating remote pipeline {name}",
        )
        status, events = creating_status(ctx, BudPipelineStatus, obs, known_id, "pipeline")
        in_flight_plan(ctx, status, "Creating", action.message)
        return Plan(status=status.to_wire(), actions=[action], events=events, requeue_after=2.0)

    remote_id = str(remote.get("id"))
    plan = Plan(status={})  # the status is built below, once the remote object is mirrored
    if ctx.annotations.get(ANN_EXTERNAL_ID) != remote_id:
        plan.annotations[ANN_EXTERNAL_ID] = remote_id
    if obs.via == "name":
        plan.events.append(Event("Normal", "Found", f"found remote pipeline {remote_id} by name"))
    if obs.via == "action" and not known_id:
        plan.events.append(Event("Normal", "Created", f"created remote pipeline {remote_id}"))

    patch: dict[str, Any] = {}
    want_def = definition_body(spec)
    if not definitions_equal(want_def, remote.get("definition")):
        patch["definition"] = want_def
    if (remote.get("description") or None) != (spec.description or None):
        patch["description"] = spec.description or ""
    if remote.get("status") != wanted_state:
        patch["status"] = wanted_state
    if not spec.external_id and remote.get("name") != name:
        patch["name"] = name
    if claim_of(ctx.uid, remote) is not Claim.OURS:
        # Adopted, or created before markers existed: mark it as this resource's.
        patch["metadata"] = marker_patch(ctx.uid)
    if patch:
        drift = not ctx.spec_changed
        what = ", ".join(sorted(patch))
        plan.actions.append(
            Action(
                "update",
                body=patch,
                target_id=remote_id,
                idempotency_key=ctx.idempotency_key("update", patch, str(remote.get("updated_at"))),
                reason="DriftCorrected" if drift else "Updating",
                message=(
                    f"remote pipeline {remote_id} drifted ({what}); putting the spec back"
                    if drift
                    else f"updating remote pipeline {remote_id} ({what})"
                ),
            )
        )

    steps = (remote.get("definition") or {}).get("steps") or []
    status = base_status(ctx, BudPipelineStatus).updated(
        BudPipelineStatus(
            id=remote_id,
            state=remote.get("status"),
            step_count=len(steps),
            last_sync_time=c.rfc3339(ctx.now),
        )
    )
    if last_execution:
        last = LastExecution(
            id=last_execution.get("id"),
            state=last_execution.get("status"),
            started_at=last_execution.get("started_at"),
            completed_at=last_execution.get("completed_at"),
        )
        # An execution with nothing to show leaves the one status recorded in place.
        if last.to_wire():
            status.last_execution = last
    if plan.actions:
        in_flight_plan(ctx, status, "Updating", plan.actions[0].message)
    else:
        state = remote.get("status")
        ready_plan(
            ctx, status, "Active" if state == "active" else "Paused", f"the pipeline is {state}"
        )
    plan.status = status.to_wire()
    plan.requeue_after = ctx.poll(bool(plan.actions))
    return plan
