"""Conditions shaped like metav1.Condition, kept kstatus-compatible.

`lastTransitionTime` moves only when a condition's status changes, so idle reconciles leave the
list byte-for-byte identical and GitOps tools never see flapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..models import Condition

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
SYNCED = "Synced"
DELETE_FAILED = "DeleteFailed"
MODEL_AVAILABLE = "ModelAvailable"
REPLICAS_READY = "ReplicasReady"
CLUSTER_HEALTHY = "ClusterHealthy"
EXECUTION_SUCCEEDED = "ExecutionSucceeded"

# Generic types first, in a stable order, so `kubectl describe` reads the same every time.
ORDER = (READY, RECONCILING, STALLED, SYNCED)
MAX_MESSAGE = 32768

Status = Literal["True", "False", "Unknown"]


def rfc3339(when: datetime) -> str:
    """Format a time the way Kubernetes does (UTC, seconds, trailing Z)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(value: bool | Status) -> Status:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value


@dataclass(frozen=True)
class Cond:
    """One desired condition, before times are merged in."""

    type: str
    status: Status
    reason: str
    message: str = ""


def cond(type_: str, status: bool | Status, reason: str, message: str = "") -> Cond:
    """Shorthand for a `Cond` accepting a bool for True/False."""
    return Cond(type_, _status(status), reason, message[:MAX_MESSAGE])


def merged(
    previous: Iterable[Condition] | None,
    updates: Iterable[Cond],
    *,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Apply `updates` to the previous condition list.

    Conditions not mentioned in `updates` are kept as they were. A condition whose status is
    unchanged keeps its `lastTransitionTime`, even when its reason or message changes.
    """
    current = {item.type: item for item in previous or ()}
    stamp = rfc3339(now)
    for update in updates:
        old = current.get(update.type)
        current[update.type] = Condition(
            type=update.type,
            status=update.status,
            reason=update.reason,
            message=update.message,
            last_transition_time=stamp
            if old is None or old.status != update.status
            else old.last_transition_time,
            observed_generation=generation,
        )
    ordered = [current.pop(t) for t in ORDER if t in current]
    ordered.extend(current[t] for t in sorted(current))
    return ordered


def merge(
    previous: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Cond],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """`merged` on conditions in their wire form (camelCase dicts)."""
    typed = [Condition.model_validate(item) for item in previous or ()]
    return [c.to_wire() for c in merged(typed, updates, generation=generation, now=now)]


def find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    """The typed condition of the given type, if present."""
    return next((item for item in conditions or () if item.type == type_), None)


def get(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of the given type, if present."""
    for item in conditions or ():
        if item.get("type") == type_:
            return item
    return None


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    """Whether the condition exists and is True."""
    found = get(conditions, type_)
    return found is not None and found.get("status") == "True"


def without(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> list[dict[str, Any]]:
    """The list minus one condition type (for conditions that only exist while relevant)."""
    return [dict(c) for c in conditions or () if c.get("type") != type_]
