"""`BudPipeline`: a DAG of actions registered with the Bud gateway."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from budai import pipeline_rules as R

from ._base import (
    AGE_COLUMN,
    CONNECTION_REF_IMMUTABLE,
    EXTERNAL_ID_IMMUTABLE,
    ID_COLUMN,
    NAME_IMMUTABLE,
    READY_COLUMN,
    REASON_COLUMN,
    STATE_COLUMN,
    CommonStatus,
    CRDInfo,
    CRModel,
    KindDef,
    ManagedSpec,
    PrinterColumn,
    StatusModel,
)

STEP_ID_PATTERN = R.STEP_ID_PATTERN
# The gateway accepts 500 steps, but the API server's CEL cost estimate for the cross-step rules
# (unique ids, dependencies that exist) grows with steps x steps x dependsOn; these bounds keep
# it inside the per-rule budget on a real API server (checked by the e2e tests).
MAX_STEPS = 100
MAX_DEPENDS_ON = 16


class Retry(CRModel):
    """How a failed step is retried."""

    max_attempts: int = Field(default=R.DEFAULT_MAX_ATTEMPTS, ge=1, le=R.MAX_ATTEMPTS)
    """Attempts in total, the first included."""

    backoff_multiplier: float = Field(
        default=R.DEFAULT_BACKOFF_MULTIPLIER, ge=1, le=R.MAX_BACKOFF_MULTIPLIER
    )
    """Each delay is the previous one times this factor."""

    initial_delay_seconds: float | None = Field(default=None, ge=0, le=R.MAX_INITIAL_DELAY_SECONDS)
    """Delay before the second attempt (default 1 s)."""


class Step(CRModel):
    """One step of the pipeline."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.dependsOn) || !(self.id in self.dependsOn)",
                    "messageExpression": "'step ' + self.id + ' depends on itself'",
                    "fieldPath": ".dependsOn",
                }
            ]
        }
    )

    id: str = Field(min_length=1, max_length=63, pattern=STEP_ID_PATTERN)
    """Step id, unique in the pipeline."""

    action: str = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_]*$")
    """Action from the gateway's catalogue (log, transform, http_request, model_add, ...)."""

    params: dict[str, Any] | None = None
    """Parameters of the action, passed through untouched (strings may hold Jinja2 templates)."""

    depends_on: list[str] | None = Field(default=None, max_length=MAX_DEPENDS_ON)
    """Ids of the steps that must complete (or be skipped) before this one starts."""

    condition: str | None = Field(default=None, min_length=1, max_length=1024)
    """Jinja2 expression; the step is skipped when it is false."""

    retry: Retry | None = None
    """Retry policy."""

    timeout_seconds: int | None = Field(default=None, ge=1, le=int(R.MAX_TIMEOUT_SECONDS))
    """Time limit of one attempt."""


class PipelineDefinition(CRModel):
    """The steps of the pipeline."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.steps.all(s, self.steps.exists_one(t, t.id == s.id))",
                    "message": "step ids must be unique",
                    "fieldPath": ".steps",
                },
                {
                    "rule": "self.steps.all(s, !has(s.dependsOn) ||"
                    " s.dependsOn.all(d, self.steps.exists(t, t.id == d)))",
                    "message": "every dependsOn entry must name a step of this pipeline",
                    "fieldPath": ".steps",
                },
            ]
        }
    )

    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    """Steps (at most 100 here; larger pipelines go through the SDK); they must form a DAG."""


class BudPipelineSpec(ManagedSpec):
    """Desired state of a pipeline."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                EXTERNAL_ID_IMMUTABLE,
                NAME_IMMUTABLE,
                CONNECTION_REF_IMMUTABLE,
            ]
        }
    )

    description: str | None = Field(default=None, max_length=4096)
    """What the pipeline does."""

    definition: PipelineDefinition
    """The DAG of steps."""

    paused: bool = False
    """Pause the pipeline: the gateway refuses new executions while true."""


class LastExecution(StatusModel):
    """The most recent execution of this pipeline."""

    id: str | None = None
    """Execution id."""

    state: str | None = None
    """Execution state."""

    started_at: str | None = None
    """Start time (RFC 3339)."""

    completed_at: str | None = None
    """End time (RFC 3339)."""


class BudPipelineStatus(CommonStatus):
    """Observed state of the remote pipeline."""

    state: str | None = None
    """Pipeline state: active, paused or archived."""

    step_count: int | None = Field(default=None, ge=0)
    """Steps in the remote definition."""

    last_execution: LastExecution | None = None
    """The most recent execution the operator saw."""


BUD_PIPELINE = KindDef(
    spec=BudPipelineSpec,
    status=BudPipelineStatus,
    crd=CRDInfo(
        kind="BudPipeline",
        plural="budpipelines",
        short_names=("bp",),
        description="A pipeline (a DAG of actions) registered with the Bud gateway.",
        printer_columns=(
            READY_COLUMN,
            STATE_COLUMN,
            PrinterColumn("Steps", ".status.stepCount", "integer", "Steps in the pipeline"),
            PrinterColumn("Last-Run", ".status.lastExecution.state", description="Last execution"),
            REASON_COLUMN,
            ID_COLUMN,
            AGE_COLUMN,
        ),
    ),
)
