"""Decisions for `BudModel`: create or adopt the remote model, keep metadata in line, mirror the
download into status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budai.readiness import model_readiness

from ..models import BudModelSpec, BudModelStatus
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
    stalled_status,
    strip_none,
)
from .ownership import MARKER, judge
from .polling import ANN_EXTERNAL_ID

# Stamped into the metadata of every model this resource manages (created or adopted): see
# `ownership` for what it allows.
IDENTITY_KEY = MARKER


def desired_metadata(ctx: Ctx, spec: BudModelSpec) -> dict[str, Any]:
    """Metadata the remote model must carry: the spec's keys plus our identity marker."""
    return {**(spec.metadata or {}), IDENTITY_KEY: ctx.uid}


def create_action(ctx: Ctx, spec: BudModelSpec, obs: Observation) -> Action:
    """The POST /models call for this resource."""
    name = default_remote_name(ctx, spec.name)
    body = strip_none(
        {
            "name": name,
            "source": spec.source.value,
            "uri": spec.uri,
            "metadata": desired_metadata(ctx, spec),
        }
    )
    return Action(
        "create",
        body=body,
        idempotency_key=create_key(ctx, body, obs),
        reason="Creating",
        message=f"creating remote model {name}",
    )


def identity_problem(ctx: Ctx, spec: BudModelSpec, remote: Mapping[str, Any]) -> str | None:
    """Why our own model found by name (a create whose answer was lost) does not fit the spec.

    The runtime refuses any model without this resource's marker before deciding; the same
    check here keeps the decision safe on its own. Nothing of another resource's model reaches
    the message.
    """
    name = default_remote_name(ctx, spec.name)
    verdict = judge(ctx.uid, remote, "name", "model", name)
    if not verdict.manage:
        return verdict.message
    if remote.get("source") != spec.source.value or remote.get("uri") != spec.uri:
        return (
            f"this resource's remote model {remote.get('name')} has source "
            f"{remote.get('source')} and uri {remote.get('uri')}; source and uri cannot change, "
            f"set spec.name to a free name"
        )
    return None


def reconcile_model(ctx: Ctx, spec: BudModelSpec, obs: Observation) -> Plan:
    """One level-based decision for a BudModel."""
    if ctx.paused:
        return paused_plan(ctx, BudModelStatus)
    known_id = current_id(ctx, spec.external_id)
    remote = obs.remote
    if remote is None:
        if spec.external_id:
            return stalled_plan(
                ctx,
                "RemoteNotFound",
                f"the adopted model {spec.external_id} does not exist in the gateway; "
                "recreate this resource without spec.externalId to let the operator create one",
                model=BudModelStatus,
            )
        action = create_action(ctx, spec, obs)
        status, events = creating_status(ctx, BudModelStatus, obs, known_id, "model")
        in_flight_plan(
            ctx,
            status,
            "Creating",
            action.message,
            c.cond(c.MODEL_AVAILABLE, False, "Creating", action.message),
        )
        return Plan(status=status.to_wire(), actions=[action], events=events, requeue_after=2.0)

    if obs.via == "name":
        problem = identity_problem(ctx, spec, remote)
        if problem:
            return stalled_plan(ctx, "NameConflict", problem, model=BudModelStatus)
    if spec.external_id and (
        remote.get("source") != spec.source.value or remote.get("uri") != spec.uri
    ):
        message = (
            f"the adopted model {spec.external_id} has source {remote.get('source')} and uri "
            f"{remote.get('uri')}, which cannot change remotely; make the spec match"
        )
        status = stalled_status(ctx, base_status(ctx, BudModelStatus), "SpecMismatch", message)
        return Plan(status=status.to_wire(), events=[Event("Warning", "SpecMismatch", message)])

    remote_id = str(remote.get("id"))
    plan = Plan(status={})  # the status is built below, once the remote object is mirrored
    if ctx.annotations.get(ANN_EXTERNAL_ID) != remote_id:
        plan.annotations[ANN_EXTERNAL_ID] = remote_id
    if obs.via == "name":
        plan.events.append(
            Event("Normal", "Found", f"found remote model {remote_id} by name; managing it")
        )
    if obs.via == "action" and not known_id:
        plan.events.append(Event("Normal", "Created", f"created remote model {remote_id}"))

    # Drift: only keys the spec owns; the gateway may add its own metadata keys.
    remote_meta = dict(remote.get("metadata") or {})
    wanted_meta = desired_metadata(ctx, spec)
    patch: dict[str, Any] = {}
    if any(remote_meta.get(k) != v for k, v in wanted_meta.items()):
        patch["metadata"] = {**remote_meta, **wanted_meta}
    wanted_name = default_remote_name(ctx, spec.name)
    if not spec.external_id and remote.get("name") != wanted_name:
        patch["name"] = wanted_name
    if patch and remote.get("status") != "deleting":
        drift = not ctx.spec_changed
        what = ", ".join(sorted(patch))
        message = (
            f"remote model {remote_id} drifted ({what}); putting the spec back"
            if drift
            else f"updating remote model {remote_id} ({what})"
        )
        plan.actions.append(
            Action(
                "update",
                body=patch,
                target_id=remote_id,
                idempotency_key=ctx.idempotency_key("update", patch, str(remote.get("updated_at"))),
                reason="DriftCorrected" if drift else "Updating",
                message=message,
            )
        )

    state = remote.get("status")
    downloading = state == "downloading"
    status = base_status(ctx, BudModelStatus).updated(
        BudModelStatus(
            id=remote_id,
            state=state,
            size_bytes=remote.get("size_bytes"),
            downloaded_bytes=remote.get("downloaded_bytes"),
            progress_percent=remote.get("progress_percent"),
            bytes_per_second=remote.get("bytes_per_second") if downloading else None,
            eta_seconds=remote.get("eta_seconds") if downloading else None,
            download_simulated=True
            if (remote.get("metadata") or {}).get("simulated_download")
            else None,
            error=remote.get("error"),
            last_sync_time=c.rfc3339(ctx.now),
        )
    )
    verdict = model_readiness(remote)
    available = c.cond(c.MODEL_AVAILABLE, verdict.ready, verdict.reason, verdict.message)
    in_flight = bool(plan.actions) or verdict.in_flight
    if verdict.ready and plan.actions:
        in_flight_plan(ctx, status, "Updating", plan.actions[0].message, available)
    elif verdict.ready:
        ready_plan(ctx, status, verdict.reason, verdict.message, available)
    elif verdict.stalled:
        stalled_status(ctx, status, verdict.reason, verdict.message, available)
    else:
        if state == "deleting":
            available = c.cond(c.MODEL_AVAILABLE, False, "Deleting", verdict.message)
        elif verdict.reason == "Unknown":
            available = c.cond(c.MODEL_AVAILABLE, "Unknown", "Unknown", verdict.message)
        in_flight_plan(ctx, status, verdict.reason, verdict.message, available)
    plan.status = status.to_wire()
    plan.requeue_after = ctx.poll(in_flight)
    return plan
