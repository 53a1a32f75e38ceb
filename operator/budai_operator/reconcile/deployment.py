"""Decisions for `BudDeployment`: create on the cluster, hold replicas (unless the autoscaler owns
them), stop/start, mirror rollout and cluster health into status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budai.readiness import deployment_readiness

from ..models import BudDeploymentSpec, BudDeploymentStatus
from ..models.deployment import (
    AutoScalingStatus,
    ClusterResources,
    ClusterStatus,
    ScalingDecisionStatus,
)
from . import conditions as c
from . import quantity
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
    with_conditions,
)
from .ownership import Claim, claim_of, marker_patch
from .polling import ANN_EXTERNAL_ID


def auto_scaling_body(spec: BudDeploymentSpec) -> dict[str, Any] | None:
    """The API's `auto_scaling` object for the spec, or None when the spec has none."""
    a = spec.auto_scaling
    if a is None:
        return None
    return strip_none(
        {
            "enabled": a.enabled,
            "min_replicas": a.min_replicas,
            "max_replicas": a.max_replicas,
            "target_cpu": a.target_cpu,
            "target_memory": a.target_memory,
        }
    )


def resources_body(spec: BudDeploymentSpec) -> dict[str, Any] | None:
    """The API's `resources` object (quantities as strings)."""
    r = spec.resources
    if r is None:
        return None
    return strip_none(
        {
            "cpu": None if r.cpu is None else str(r.cpu),
            "memory": None if r.memory is None else str(r.memory),
            "gpu": r.gpu,
            "gpu_type": r.gpu_type,
        }
    )


def autoscaling_on(spec: BudDeploymentSpec) -> bool:
    """Whether the gateway owns the replica count."""
    return bool(spec.auto_scaling and spec.auto_scaling.enabled)


def _auto_scaling_differs(want: Mapping[str, Any], have: Mapping[str, Any] | None) -> bool:
    have = have or {}
    if bool(want.get("enabled")) != bool(have.get("enabled")):
        return True
    return any(have.get(k) != v for k, v in want.items() if k != "enabled")


def _resources_differ(want: Mapping[str, Any], have: Mapping[str, Any] | None) -> bool:
    have = have or {}
    for key, value in want.items():
        if key in ("cpu", "memory"):
            if not quantity.same(value, have.get(key)):
                return True
        elif have.get(key) != value:
            return True
    return False


def _cluster_status(
    cluster_id: str, cluster: Mapping[str, Any] | None, health: Mapping[str, Any] | None, now: str
) -> ClusterStatus:
    out = ClusterStatus(id=cluster_id)
    if cluster:
        out.updated(
            ClusterStatus(
                name=cluster.get("name"),
                state=cluster.get("status"),
                node_count=cluster.get("node_count"),
            )
        )
    if health:
        res = health.get("available_resources") or {}
        free = ClusterResources(
            cpu=None if res.get("cpu") is None else str(res.get("cpu")),
            memory_gb=res.get("memory_gb"),
            gpu_count=res.get("gpu_count"),
            gpu_types=res.get("gpu_types"),
        )
        out.updated(
            ClusterStatus(
                health=health.get("status"),
                node_count=health.get("node_count"),
                # Nothing known about free capacity: leave the field out, not an empty object.
                available_resources=free if free.to_wire() else None,
                last_check_time=now,
            )
        )
    return out


DECISIONS_KEPT = 5


def scaling_decisions(
    previous: BudDeploymentStatus, remote: Mapping[str, Any]
) -> tuple[list[ScalingDecisionStatus] | None, list[Event]]:
    """The autoscaler's last decisions for status, and an Event for each one status has not
    recorded yet (newer than the newest decision already in status)."""
    raw = remote.get("scaling_decisions")
    if not isinstance(raw, list) or not raw:
        return None, []
    kept = [
        ScalingDecisionStatus(
            time=d.get("time"),
            from_replicas=d.get("from_replicas"),
            to_replicas=d.get("to_replicas"),
            metric=d.get("metric"),
            observed=d.get("observed"),
            target=d.get("target"),
            reason=d.get("reason"),
        )
        for d in raw[-DECISIONS_KEPT:]
        if isinstance(d, Mapping)
    ]
    before = (previous.auto_scaling.last_decisions if previous.auto_scaling else None) or []
    newest_seen = (before[-1].time or "") if before else ""
    events = [
        Event(
            "Normal",
            "Scaled",
            d.reason or f"scaled from {d.from_replicas} to {d.to_replicas}",
        )
        for d in kept
        if (d.time or "") > newest_seen
    ]
    return kept, events


def reconcile_deployment(
    ctx: Ctx,
    spec: BudDeploymentSpec,
    obs: Observation,
    *,
    model_id: str | None,
    model_wait: str | None = None,
    cluster_id: str | None = None,
    cluster: Mapping[str, Any] | None = None,
    health: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
) -> Plan:
    """One level-based decision for a BudDeployment.

    `model_id` is the resolved model (spec.modelId, or the referenced BudModel's id); when it is
    None, `model_wait` says why. `cluster_id` is spec.clusterId or the id clusterName resolved
    to (None: no such cluster). `cluster` and `health` are the cluster and its health as last read.
    """
    if ctx.paused:
        return paused_plan(ctx, BudDeploymentStatus)
    cluster_id = cluster_id or spec.cluster_id
    if cluster_id is None:
        missing = stalled_plan(
            ctx,
            "ClusterNotFound",
            f"no cluster named {spec.cluster_name} in the gateway",
            model=BudDeploymentStatus,
        )
        missing.requeue_after = ctx.poll(False)
        return missing
    known_id = current_id(ctx, spec.external_id)
    remote = obs.remote
    if remote is None:
        return _absent_plan(ctx, spec, obs, known_id, model_id, model_wait, cluster_id)

    remote_id = str(remote.get("id"))
    if obs.via == "name" and (
        (model_id is not None and remote.get("model_id") != model_id)
        or remote.get("cluster_id") != cluster_id
    ):
        return stalled_plan(
            ctx,
            "NameConflict",
            f"a remote deployment named {remote.get('name')} ({remote_id}) exists for model "
            f"{remote.get('model_id')} on cluster {remote.get('cluster_id')}; set spec.name to a "
            "free name or adopt it with spec.externalId",
            model=BudDeploymentStatus,
        )
    plan = Plan(status={})  # the status is built below, once the remote object is mirrored
    if ctx.annotations.get(ANN_EXTERNAL_ID) != remote_id:
        plan.annotations[ANN_EXTERNAL_ID] = remote_id
    if obs.via == "name":
        plan.events.append(Event("Normal", "Found", f"found remote deployment {remote_id} by name"))
    if obs.via == "action" and not known_id:
        plan.events.append(Event("Normal", "Created", f"created remote deployment {remote_id}"))

    mismatch = []
    if model_id is not None and remote.get("model_id") != model_id:
        mismatch.append(f"model {remote.get('model_id')} (spec wants {model_id})")
    if remote.get("cluster_id") != cluster_id:
        mismatch.append(f"cluster {remote.get('cluster_id')} (spec wants {cluster_id})")
    if mismatch:
        message = (
            f"the remote deployment {remote_id} runs "
            + " and ".join(mismatch)
            + "; a deployment cannot move: create a new BudDeployment instead"
        )
        status = stalled_status(ctx, base_status(ctx, BudDeploymentStatus), "SpecMismatch", message)
        plan.events.append(Event("Warning", "SpecMismatch", message))
        plan.status = status.to_wire()
        return plan

    if remote.get("status") != "deleting":
        plan.actions.extend(_corrections(ctx, spec, remote, remote_id))
    status = _mirrored(ctx, plan, remote, remote_id, cluster_id, cluster, health)
    in_flight = _judge(ctx, spec, plan, status, remote, cluster_id, health, model)
    plan.status = status.to_wire()
    plan.requeue_after = ctx.poll(in_flight)
    return plan


def _absent_plan(
    ctx: Ctx,
    spec: BudDeploymentSpec,
    obs: Observation,
    known_id: str | None,
    model_id: str | None,
    model_wait: str | None,
    cluster_id: str,
) -> Plan:
    """No remote deployment: stall on a missing adopted one, wait for the model, or create it."""
    if spec.external_id:
        return stalled_plan(
            ctx,
            "RemoteNotFound",
            f"the adopted deployment {spec.external_id} does not exist in the gateway",
            model=BudDeploymentStatus,
        )
    if model_id is None:
        message = model_wait or "waiting for the model"
        status = base_status(ctx, BudDeploymentStatus)
        in_flight_plan(
            ctx,
            status,
            "WaitingForModel",
            message,
            c.cond(c.REPLICAS_READY, False, "WaitingForModel", message),
        )
        return Plan(
            status=status.to_wire(),
            requeue_after=ctx.poll(True),
        )
    name = default_remote_name(ctx, spec.name)
    body = strip_none(
        {
            "name": name,
            "model_id": model_id,
            "cluster_id": cluster_id,
            "replicas": None if autoscaling_on(spec) else spec.replicas,
            "auto_scaling": auto_scaling_body(spec),
            "resources": resources_body(spec),
            "metadata": marker_patch(ctx.uid),
        }
    )
    action = Action(
        "create",
        body=body,
        idempotency_key=create_key(ctx, body, obs),
        reason="Creating",
        message=f"creating remote deployment {name} on cluster {cluster_id}",
    )
    status, events = creating_status(ctx, BudDeploymentStatus, obs, known_id, "deployment")
    in_flight_plan(
        ctx,
        status,
        "Creating",
        action.message,
        c.cond(c.REPLICAS_READY, False, "Creating", action.message),
    )
    return Plan(status=status.to_wire(), actions=[action], events=events, requeue_after=2.0)


def _corrections(
    ctx: Ctx, spec: BudDeploymentSpec, remote: Mapping[str, Any], remote_id: str
) -> list[Action]:
    """The writes that bring the remote deployment back to the spec (stop/start, then one
    update with every differing field)."""
    state = remote.get("status")
    drift = not ctx.spec_changed
    nonce = str(remote.get("updated_at"))
    actions: list[Action] = []

    def add(op: Any, body: Mapping[str, Any], what: str) -> None:
        message = (
            f"remote deployment {remote_id} drifted ({what}); putting the spec back"
            if drift
            else f"updating remote deployment {remote_id}: {what}"
        )
        actions.append(
            Action(
                op,
                body=body,
                target_id=remote_id,
                idempotency_key=ctx.idempotency_key(op, body, nonce),
                reason="DriftCorrected" if drift else "Updating",
                message=message,
            )
        )

    if spec.stopped and state != "stopped":
        add("stop", {}, "stopping")
    elif not spec.stopped and state == "stopped":
        add("start", {}, "starting")
    patch: dict[str, Any] = {}
    want_as = auto_scaling_body(spec)
    if want_as is not None and _auto_scaling_differs(want_as, remote.get("auto_scaling")):
        patch["auto_scaling"] = want_as
    elif want_as is None and (remote.get("auto_scaling") or {}).get("enabled"):
        patch["auto_scaling"] = {"enabled": False}
    want_res = resources_body(spec)
    if want_res is not None and _resources_differ(want_res, remote.get("resources")):
        patch["resources"] = want_res
    # The autoscaler owns replicas while enabled: never write them back then.
    if not autoscaling_on(spec) and not spec.stopped and remote.get("replicas") != spec.replicas:
        patch["replicas"] = spec.replicas
    if claim_of(ctx.uid, remote) is not Claim.OURS:
        # Adopted, or created before markers existed: mark it as this resource's.
        patch["metadata"] = marker_patch(ctx.uid)
    if patch:
        what = ", ".join(
            f"replicas {remote.get('replicas')} -> {spec.replicas}" if k == "replicas" else k
            for k in sorted(patch)
        )
        add("update", patch, what)
    return actions


def _mirrored(
    ctx: Ctx,
    plan: Plan,
    remote: Mapping[str, Any],
    remote_id: str,
    cluster_id: str,
    cluster: Mapping[str, Any] | None,
    health: Mapping[str, Any] | None,
) -> BudDeploymentStatus:
    """The status with the remote deployment's fields mirrored (conditions come after); new
    autoscaler decisions become `Scaled` Events on the plan."""
    now = c.rfc3339(ctx.now)
    remote_as = remote.get("auto_scaling")
    status = base_status(ctx, BudDeploymentStatus)
    decisions, scaled = scaling_decisions(status, remote)
    plan.events.extend(scaled)
    status.updated(
        BudDeploymentStatus(
            id=remote_id,
            state=remote.get("status"),
            replicas=int(remote.get("ready_replicas") or 0),
            desired_replicas=remote.get("replicas"),
            endpoint_url=remote.get("endpoint_url") or None,
            model_id=remote.get("model_id"),
            error=remote.get("error"),
            auto_scaling=AutoScalingStatus(
                enabled=remote_as.get("enabled"),
                min_replicas=remote_as.get("min_replicas"),
                max_replicas=remote_as.get("max_replicas"),
                target_cpu=remote_as.get("target_cpu"),
                target_memory=remote_as.get("target_memory"),
                last_decisions=decisions,
            )
            if isinstance(remote_as, Mapping)
            else None,
            cluster=_cluster_status(cluster_id, cluster, health, now),
            last_sync_time=now,
        )
    )
    return status


def _cluster_condition(cluster_id: str, health: Mapping[str, Any] | None) -> c.Cond:
    health_state = (health or {}).get("status")
    if health_state == "healthy":
        return c.cond(c.CLUSTER_HEALTHY, True, "Healthy", "the cluster is healthy")
    if health_state in ("degraded", "unhealthy"):
        nodes = (health or {}).get("node_count")
        return c.cond(
            c.CLUSTER_HEALTHY,
            False,
            health_state.capitalize(),
            f"cluster {cluster_id} is {health_state} ({nodes} ready nodes)",
        )
    return c.cond(c.CLUSTER_HEALTHY, "Unknown", "Unknown", "cluster health not read yet")


def _replicas_condition(spec: BudDeploymentSpec, state: Any, ready: int, desired: Any) -> c.Cond:
    if state == "stopped" and spec.stopped:
        return c.cond(c.REPLICAS_READY, False, "Stopped", "the deployment is stopped")
    if desired is not None and ready >= max(int(desired), 1):
        return c.cond(c.REPLICAS_READY, True, "ReplicasReady", f"{ready}/{desired} ready")
    return c.cond(c.REPLICAS_READY, False, "ReplicasNotReady", f"{ready}/{desired} ready")


def _judge(
    ctx: Ctx,
    spec: BudDeploymentSpec,
    plan: Plan,
    status: BudDeploymentStatus,
    remote: Mapping[str, Any],
    cluster_id: str,
    health: Mapping[str, Any] | None,
    model: Mapping[str, Any] | None,
) -> bool:
    """Set the conditions on `status` (in place); True while something is still moving."""
    state = remote.get("status")
    ready = int(remote.get("ready_replicas") or 0)
    desired = remote.get("replicas")
    cluster_cond = _cluster_condition(cluster_id, health)
    replicas_cond = _replicas_condition(spec, state, ready, desired)
    verdict = deployment_readiness(remote, health, model)
    in_flight = bool(plan.actions) or state in ("pending", "deploying", "scaling", "deleting")
    in_flight = in_flight or (state == "active" and desired is not None and ready != desired)
    if state == "failed":
        stalled_status(ctx, status, verdict.reason, verdict.message, replicas_cond, cluster_cond)
    elif state == "stopped" and spec.stopped and not plan.actions:
        with_conditions(
            ctx,
            status,
            c.cond(c.READY, False, "Stopped", "spec.stopped is true"),
            c.cond(c.RECONCILING, False, "Stopped"),
            c.cond(c.STALLED, False, "Stopped"),
            c.cond(c.SYNCED, True, "ReconcileSuccess", "the remote object matches the spec"),
            replicas_cond,
            cluster_cond,
        )
    elif verdict.reason == "ClusterUnhealthy":
        in_flight_plan(ctx, status, verdict.reason, verdict.message, replicas_cond, cluster_cond)
        in_flight = True
    elif verdict.ready and not plan.actions:
        ready_plan(ctx, status, verdict.reason, verdict.message, replicas_cond, cluster_cond)
    else:
        if plan.actions:
            reason, message = "Updating", plan.actions[0].message
        else:
            reason, message = verdict.reason, verdict.message
        in_flight_plan(ctx, status, reason, message, replicas_cond, cluster_cond)
    return in_flight
