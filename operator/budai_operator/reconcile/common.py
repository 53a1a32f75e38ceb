"""The shapes every kind's decision function shares: context in, plan out.

A reconcile is `plan = reconcile_<kind>(ctx, spec, observation)`: `ctx` carries the resource's
identity, annotations, previous status and `now`; the plan lists the remote writes to make, the
full status to write, the Events to post and when to look again. The handlers do the I/O.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from ..models import CarriedStatus, CommonStatus
from . import conditions as c
from .errors import (
    NOT_FOUND_RECHECK,
    UNAUTHORIZED_RECHECK,
    ErrorClass,
    Failure,
    backoff,
    classify,
    reason_for,
)
from .polling import (
    ANN_EXTERNAL_ID,
    ANN_RECONCILE_REQUESTED_AT,
    IN_FLIGHT_INTERVAL,
    STABLE_INTERVAL,
    is_paused,
    poll_interval,
)

# Namespace for UID-derived idempotency keys (any fixed UUID works; this one is ours).
_KEY_NAMESPACE = uuid.UUID("6b7c1f7e-2d4b-4d38-9a55-1b0f5f1f6a10")
DELETE_FAILED_AFTER = 3

S = TypeVar("S", bound=CommonStatus)

Op = Literal["create", "update", "scale", "stop", "start", "delete", "cancel", "delete_resource"]


@dataclass(frozen=True)
class Ctx:
    """What a decision needs to know about the custom resource itself."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int
    annotations: Mapping[str, str]
    status: Mapping[str, Any]
    now: datetime
    jitter: float = 0.5
    in_flight_interval: float = IN_FLIGHT_INTERVAL
    stable_interval: float = STABLE_INTERVAL
    # The kind's status model: the plans every kind shares (error, stalled, paused, initial,
    # delete) build through it when their caller names none.
    status_model: type[CommonStatus] | None = None

    def poll(self, in_flight: bool, fast: float | None = None) -> float:
        """Seconds until the next poll for this object (annotation override, jitter)."""
        return poll_interval(
            self.annotations,
            in_flight=in_flight,
            jitter=self.jitter,
            in_flight_interval=fast if fast is not None else self.in_flight_interval,
            stable_interval=self.stable_interval,
        )

    @property
    def paused(self) -> bool:
        """Remote writes are suspended by annotation."""
        return is_paused(self.annotations)

    @property
    def spec_changed(self) -> bool:
        """The spec changed since the last reconcile (so a difference is a request, not drift)."""
        return self.status.get("observedGeneration") != self.generation

    def idempotency_key(self, op: str, body: Any = None, nonce: str = "") -> str:
        """An Idempotency-Key derived from the UID: the same call after a crash or a lost
        response replays instead of duplicating. `nonce` separates repeated identical writes
        (a drift fixed twice must really run twice)."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]
        return str(uuid.uuid5(_KEY_NAMESPACE, f"{self.uid}/{op}/{nonce}/{digest}"))


@dataclass(frozen=True)
class Action:
    """One remote write."""

    op: Op
    body: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    target_id: str | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the resource."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Plan:
    """The outcome of one decision."""

    status: dict[str, Any]
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    done: bool = False
    """For deletion: the finalizer may go."""


@dataclass(frozen=True)
class Observation:
    """What the handler found remotely before deciding.

    `remote` is the remote object (snake_case, as the gateway returns it) or None; `via` says how
    it was found; `gone` is True when a known id answered 404.
    """

    remote: Mapping[str, Any] | None = None
    via: Literal["id", "name", "action", "none"] = "none"
    gone: bool = False
    refused: tuple[str, str] | None = None
    """(reason, message) when the object reached is not this resource's to manage (see
    `ownership`): the decision is a Stalled plan and nothing is written remotely."""
    gone_id: str | None = None
    """The id found gone (a 404, or a replayed create answer for an object that no longer
    exists): a re-create uses a fresh Idempotency-Key derived from it, so the gateway cannot
    replay the old answer."""


def create_key(ctx: Ctx, body: Any, obs: Observation) -> str:
    """The Idempotency-Key of a create: stable across crashes and lost answers, and new once
    the object it created is known to be gone."""
    return ctx.idempotency_key("create", body, obs.gone_id or "")


def default_remote_name(ctx: Ctx, spec_name: str | None) -> str:
    """The remote name: `spec.name`, else `<namespace>-<metadata.name>`."""
    return spec_name or f"{ctx.namespace}-{ctx.name}"


def current_id(ctx: Ctx, external_id: str | None) -> str | None:
    """The remote id this resource manages: adopted, recorded in status, or in the annotation
    (which survives a status wipe or a `kubectl replace`)."""
    if external_id:
        return external_id
    from_status = ctx.status.get("id")
    if isinstance(from_status, str) and from_status:
        return from_status
    return ctx.annotations.get(ANN_EXTERNAL_ID) or None


def status_model(ctx: Ctx, model: type[CommonStatus] | None) -> type[CommonStatus]:
    """The model a status is built through: the kind's own (passed by the decision, or carried
    by the context the runtime builds), else the common fields typed and the kind's own carried
    as they were (a context built without a kind, as some tests do)."""
    return model or ctx.status_model or CarriedStatus


def base_status(ctx: Ctx, model: type[S]) -> S:
    """The previous status, typed, with the fields every write refreshes."""
    status = model.carried({k: v for k, v in ctx.status.items() if k != "kopf"})
    status.observed_generation = ctx.generation
    requested = ctx.annotations.get(ANN_RECONCILE_REQUESTED_AT)
    if requested:
        status.last_handled_reconcile_at = requested
    return status


def creating_status(
    ctx: Ctx, model: type[S], obs: Observation, known_id: str | None, noun: str
) -> tuple[S, list[Event]]:
    """The status a create starts from and its Events: when the remote object this resource
    knew (`known_id`) is gone, its id is cleared and a Warning says it is created again."""
    status = base_status(ctx, model)
    events: list[Event] = []
    if obs.gone and known_id:
        status.id = None
        events.append(
            Event(
                "Warning",
                "RemoteNotFound",
                f"the remote {noun} {known_id} disappeared; creating it again",
            )
        )
    return status, events


def with_conditions(ctx: Ctx, status: S, *updates: c.Cond) -> S:
    """Merge condition updates into `status` (in place) and return it."""
    status.conditions = c.merged(status.conditions, updates, generation=ctx.generation, now=ctx.now)
    return status


def initial_status(ctx: Ctx, model: type[CommonStatus] | None = None) -> dict[str, Any] | None:
    """`Ready=False, Initializing` from the very first moment; None when status already exists."""
    if ctx.status.get("conditions"):
        return None
    status = base_status(ctx, status_model(ctx, model))
    status.observed_generation = None
    return with_conditions(
        ctx,
        status,
        c.cond(c.READY, False, "Initializing", "the operator has seen the resource"),
        c.cond(c.RECONCILING, True, "Initializing", "first reconcile in progress"),
        c.cond(c.STALLED, False, "Initializing"),
    ).to_wire()


def in_flight_plan(ctx: Ctx, status: S, reason: str, message: str, *domain: c.Cond) -> S:
    """Conditions for work in progress (kstatus InProgress)."""
    return with_conditions(
        ctx,
        status,
        c.cond(c.READY, False, reason, message),
        c.cond(c.RECONCILING, True, reason, message),
        c.cond(c.STALLED, False, reason),
        c.cond(c.SYNCED, True, "ReconcileSuccess", "the gateway accepted the last reconcile"),
        *domain,
    )


def ready_plan(ctx: Ctx, status: S, reason: str, message: str, *domain: c.Cond) -> S:
    """Conditions for a usable, in-sync resource (kstatus Current)."""
    return with_conditions(
        ctx,
        status,
        c.cond(c.READY, True, reason, message),
        c.cond(c.RECONCILING, False, reason),
        c.cond(c.STALLED, False, reason),
        c.cond(c.SYNCED, True, "ReconcileSuccess", "the remote object matches the spec"),
        *domain,
    )


def stalled_status(ctx: Ctx, status: S, reason: str, message: str, *domain: c.Cond) -> S:
    """Conditions for a resource a human must fix (kstatus Failed)."""
    return with_conditions(
        ctx,
        status,
        c.cond(c.READY, False, reason, message),
        c.cond(c.RECONCILING, False, reason),
        c.cond(c.STALLED, True, reason, message),
        c.cond(c.SYNCED, False, reason, message),
        *domain,
    )


def paused_plan(ctx: Ctx, model: type[CommonStatus] | None = None) -> Plan:
    """`bud.studio/paused: "true"`: no remote writes, `Synced=False, Paused`."""
    status = with_conditions(
        ctx,
        base_status(ctx, status_model(ctx, model)),
        c.cond(c.SYNCED, False, "Paused", "bud.studio/paused is true: remote writes are stopped"),
        c.cond(c.RECONCILING, False, "Paused"),
    )
    return Plan(
        status=status.to_wire(),
        requeue_after=ctx.poll(False),
    )


def error_plan(
    ctx: Ctx,
    failure: Failure,
    *,
    attempt: int,
    doing: str,
    creating: bool = False,
    model: type[CommonStatus] | None = None,
) -> Plan:
    """What a failed gateway call does to status, and when to try again.

    `doing` names the step that failed ("create model", "observe deployment") so the message
    says what happened, not only what the gateway said. `creating`: the call was a create, so a
    404 means something the spec refers to (a pipeline id, a model id) does not exist.
    """
    kind = classify(failure)
    reason = reason_for(failure)
    message = f"{doing} failed: {failure.describe()}"
    status = base_status(ctx, status_model(ctx, model))
    if kind is ErrorClass.NOT_FOUND and creating:
        # Retrying cannot conjure the referenced object: stall, re-check slowly.
        reason = "RemoteNotFound"
        message += "; a remote object the spec refers to does not exist, fix the spec"
        stalled_status(ctx, status, reason, message)
        return Plan(
            status=status.to_wire(),
            events=[Event("Warning", reason, message)],
            requeue_after=NOT_FOUND_RECHECK,
        )
    if kind is ErrorClass.INVALID:
        # No hot retry: the next reconcile comes from a spec change (or a manual request).
        stalled_status(ctx, status, reason, message)
        return Plan(
            status=status.to_wire(), events=[Event("Warning", reason, message)], requeue_after=None
        )
    if kind is ErrorClass.UNAUTHORIZED:
        stalled_status(ctx, status, reason, message + "; check the operator's API key and scope")
        return Plan(
            status=status.to_wire(),
            events=[Event("Warning", reason, message)],
            requeue_after=UNAUTHORIZED_RECHECK,
        )
    delay = backoff(attempt, failure.retry_after, ctx.jitter)
    retry = f"{message}; retrying in {delay:.0f}s"
    with_conditions(
        ctx,
        status,
        c.cond(c.RECONCILING, True, reason, retry),
        c.cond(c.STALLED, False, reason),
        c.cond(c.SYNCED, False, reason, retry),
    )
    if not c.find(status.conditions, c.READY):
        with_conditions(ctx, status, c.cond(c.READY, False, reason, retry))
    # Warn on the first failure of a streak only: Events are for transitions, not for each retry.
    events = [Event("Warning", reason, retry)] if attempt == 0 else []
    return Plan(status=status.to_wire(), events=events, requeue_after=delay)


def stalled_plan(
    ctx: Ctx,
    reason: str,
    message: str,
    *,
    event: bool = True,
    model: type[CommonStatus] | None = None,
) -> Plan:
    """A terminal problem found without calling the gateway (a cycle, an unknown action)."""
    status = stalled_status(ctx, base_status(ctx, status_model(ctx, model)), reason, message)
    events = [Event("Warning", reason, message)] if event else []
    return Plan(status=status.to_wire(), events=events, requeue_after=None)


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def strip_none(value: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None values recursively (the gateway treats absent and null alike)."""
    return {k: _strip(v) for k, v in value.items() if v is not None}


def delete_plan(
    ctx: Ctx,
    *,
    policy: str,
    remote_id: str | None,
    observation: Observation,
    attempt: int,
    last_failure: Failure | None,
    noun: str,
    model: type[CommonStatus] | None = None,
) -> Plan:
    """Deletion: `Orphan` lets go at once; `Delete` deletes and waits until the object is gone.

    After `DELETE_FAILED_AFTER` failed attempts `DeleteFailed=True` says what failed and how to
    get out (switch to Orphan).
    """
    status = base_status(ctx, status_model(ctx, model))
    if policy == "Orphan" or remote_id is None:
        why = "deletionPolicy is Orphan" if remote_id else "no remote object was created"
        message = f"left the remote {noun} {remote_id} in place: {why}" if remote_id else why
        return Plan(
            status=status.to_wire(), events=[Event("Normal", "Orphaned", message)], done=True
        )
    if observation.gone:
        return Plan(
            status=status.to_wire(),
            events=[Event("Normal", "Deleted", f"deleted the remote {noun} {remote_id}")],
            done=True,
        )
    if last_failure is not None and attempt >= DELETE_FAILED_AFTER:
        message = (
            f"deleting the remote {noun} {remote_id} failed {attempt} times: "
            f"{last_failure.describe()}. To release this resource without deleting the remote "
            f"object, set spec.deletionPolicy to Orphan"
        )
        with_conditions(ctx, status, c.cond(c.DELETE_FAILED, True, "DeleteFailed", message))
        events = (
            [Event("Warning", "DeleteFailed", message)] if attempt == DELETE_FAILED_AFTER else []
        )
    else:
        events = []
    with_conditions(
        ctx,
        status,
        c.cond(c.READY, False, "Deleting", f"deleting the remote {noun} {remote_id}"),
        c.cond(c.RECONCILING, True, "Deleting", f"deleting the remote {noun} {remote_id}"),
    )
    remote = observation.remote or {}
    if remote.get("status") == "deleting":
        return Plan(status=status.to_wire(), events=events, requeue_after=2.0)
    delay = backoff(attempt, last_failure.retry_after if last_failure else None, ctx.jitter)
    action = Action(
        "delete",
        target_id=remote_id,
        idempotency_key=ctx.idempotency_key("delete", remote_id, str(attempt)),
        reason="Deleting",
        message=f"deleting the remote {noun} {remote_id}",
    )
    return Plan(
        status=status.to_wire(),
        actions=[action],
        events=events,
        requeue_after=delay if last_failure else 2.0,
    )
