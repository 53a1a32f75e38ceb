"""`BudExecution`: one run of a pipeline, like a Job; its spec is immutable except `cancel`."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from ._base import (
    AGE_COLUMN,
    ID_COLUMN,
    READY_COLUMN,
    REASON_COLUMN,
    STATE_COLUMN,
    CommonStatus,
    ConnectionRef,
    CRDInfo,
    CRModel,
    DeletionPolicy,
    KindDef,
    ObjectRef,
    PrinterColumn,
    StatusModel,
)


def _immutable(field: str) -> JsonDict:
    return {
        "rule": f"has(self.{field}) == has(oldSelf.{field})"
        f" && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        "message": f"{field} is immutable: a BudExecution's spec cannot change except cancel",
        "fieldPath": f".{field}",
    }


class BudExecutionSpec(CRModel):
    """Desired state of one execution of a pipeline."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.pipelineRef) != has(self.pipelineId)",
                    "message": "exactly one of pipelineRef and pipelineId must be set",
                },
                _immutable("pipelineRef"),
                _immutable("pipelineId"),
                _immutable("params"),
                _immutable("externalId"),
                _immutable("connectionRef"),
                _immutable("ttlSecondsAfterFinished"),
                _immutable("deletionPolicy"),
                {
                    "rule": "!oldSelf.cancel || self.cancel",
                    "message": "cancel cannot be unset once set",
                    "fieldPath": ".cancel",
                },
            ]
        }
    )

    pipeline_ref: ObjectRef | None = None
    """The BudPipeline to run, in the same namespace (exclusive with pipelineId)."""

    pipeline_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Remote id of the pipeline to run (exclusive with pipelineRef)."""

    params: dict[str, Any] | None = None
    """Execution parameters, available to templates as params.<key>."""

    cancel: bool = False
    """Set to true to cancel the execution; the only mutable field."""

    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=31536000)
    """Delete this resource this many seconds after the execution finished."""

    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """Delete cancels a running execution when this resource is deleted; Orphan lets it run."""

    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Id of an existing execution to track instead of starting one."""

    connection_ref: ConnectionRef | None = None
    """The connection (gateway and API key) to use; default: this namespace's BudConnection
    `default`, else the ClusterBudConnection `default` if it selects this namespace."""


class ExecutionStepStatus(StatusModel):
    """The state of one step."""

    id: str
    """Step id."""

    action: str | None = None
    """Step action."""

    state: str | None = None
    """pending, running, completed, failed or skipped."""

    attempts: int | None = None
    """Attempts made."""

    started_at: str | None = None
    """Start time (RFC 3339)."""

    completed_at: str | None = None
    """End time (RFC 3339)."""

    duration_seconds: float | None = None
    """Run time of the step."""

    error: str | None = None
    """Error of the last failed attempt."""


class BudExecutionStatus(CommonStatus):
    """Observed state of the remote execution."""

    state: str | None = None
    """pending, running, completed, failed or cancelled."""

    pipeline_id: str | None = None
    """Remote id of the pipeline being run."""

    started_at: str | None = None
    """Start time (RFC 3339)."""

    completed_at: str | None = None
    """End time (RFC 3339)."""

    duration_seconds: float | None = None
    """Run time of the execution."""

    steps: list[ExecutionStepStatus] | None = Field(
        default=None,
        max_length=500,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
    )
    """Each step's state."""

    outputs: dict[str, Any] | None = None
    """Step outputs by step id, capped in size (see outputsTruncated)."""

    outputs_truncated: bool | None = None
    """True when outputs were too large and were left out of status."""

    error: str | None = None
    """Why the execution failed."""


BUD_EXECUTION = KindDef(
    spec=BudExecutionSpec,
    status=BudExecutionStatus,
    crd=CRDInfo(
        kind="BudExecution",
        plural="budexecutions",
        short_names=("bx",),
        description="One run of a BudPipeline, like a Job; the spec is immutable except cancel.",
        printer_columns=(
            READY_COLUMN,
            STATE_COLUMN,
            PrinterColumn("Steps", ".status.steps[*].state", description="Step states", priority=1),
            PrinterColumn("Duration", ".status.durationSeconds", "number", "Seconds"),
            REASON_COLUMN,
            ID_COLUMN,
            AGE_COLUMN,
        ),
    ),
)
