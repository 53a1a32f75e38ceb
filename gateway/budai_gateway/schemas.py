"""Pydantic models of the wire contract: request bodies (validated) and responses (documented).

FastAPI turns these into ``/openapi.json``; the response models are enforced on the way out, so
the published schema is what the gateway really sends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from budai import pipeline_rules as R

# Status and enum values are the SDK's: one definition, so the two cannot drift.
from budai.types.cluster import ClusterProvider, ClusterStatus
from budai.types.deployment import DeploymentStatus
from budai.types.execution import ExecutionStatus, StepStatus
from budai.types.model import ModelSource, ModelStatus
from budai.types.pipeline import PipelineStatus

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$"
DNS_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
STEP_ID = R.STEP_ID_PATTERN
CPU_QUANTITY = r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$"
MEM_QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ----------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None
    param: str | None
    request_id: str


class ErrorBody(BaseModel):
    """Every non-2xx response has this body."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class WhoAmI(BaseModel):
    """The project and scopes of the key that made the request (never the key itself)."""

    object: Literal["whoami"]
    project: str
    scopes: list[str]
    key_name: str


# -- models ----------------------------------------------------------------------------------------


class ModelCreate(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    source: ModelSource
    uri: str = Field(min_length=1, max_length=4096)
    metadata: dict[str, Any] | None = None


class ModelUpdate(Strict):
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    metadata: dict[str, Any] | None = None


class Model(BaseModel):
    object: Literal["model"] = "model"
    id: str
    name: str
    source: ModelSource
    uri: str
    size_bytes: int | None
    status: ModelStatus
    metadata: dict[str, Any]
    progress_percent: float | None
    downloaded_bytes: int | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None
    error: str | None
    created_at: str
    updated_at: str


# -- clusters --------------------------------------------------------------------------------------


class Cluster(BaseModel):
    object: Literal["cluster"] = "cluster"
    id: str
    name: str
    provider: Literal["aws", "azure", "onpremise"]
    region: str
    status: ClusterStatus
    node_count: int
    kubernetes_version: str
    created_at: str
    updated_at: str


class AvailableResources(BaseModel):
    cpu: str
    memory_gb: float
    gpu_count: int
    gpu_types: list[str]


class ClusterHealth(BaseModel):
    object: Literal["cluster.health"] = "cluster.health"
    cluster_id: str
    status: Literal["healthy", "degraded", "unhealthy"]
    node_count: int
    ready_node_count: int
    available_resources: AvailableResources


# -- deployments -----------------------------------------------------------------------------------


class AutoScaling(Strict):
    enabled: bool = False
    min_replicas: int = Field(default=1, ge=0, le=100)
    max_replicas: int = Field(default=1, ge=1, le=100)
    target_cpu: int = Field(default=80, ge=1, le=100)
    target_memory: int = Field(default=80, ge=1, le=100)

    @model_validator(mode="after")
    def _bounds(self) -> AutoScaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class Resources(Strict):
    cpu: str = Field(default="1", pattern=CPU_QUANTITY)
    memory: str = Field(default="2Gi", pattern=MEM_QUANTITY)
    gpu: int = Field(default=0, ge=0, le=64)
    gpu_type: str | None = Field(default=None, max_length=64)


class DeploymentCreate(Strict):
    model_id: str = Field(min_length=1, max_length=128)
    cluster_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, pattern=DNS_NAME)
    replicas: int = Field(default=1, ge=0, le=100)
    auto_scaling: AutoScaling | None = None
    resources: Resources | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free labels; PATCH merges keys (clients mark ownership here)"
    )


class DeploymentUpdate(Strict):
    replicas: int | None = Field(default=None, ge=0, le=100)
    auto_scaling: AutoScaling | None = None
    resources: Resources | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free labels; PATCH merges keys (clients mark ownership here)"
    )


class ScalingDecision(BaseModel):
    time: str
    from_replicas: int
    to_replicas: int
    metric: str
    observed: float
    target: float
    reason: str


class Deployment(BaseModel):
    object: Literal["deployment"] = "deployment"
    id: str
    name: str
    model_id: str
    cluster_id: str
    status: DeploymentStatus
    replicas: int
    ready_replicas: int
    endpoint_url: str | None
    auto_scaling: AutoScaling
    resources: Resources
    error: str | None
    scaling_decisions: list[ScalingDecision] = []
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    updated_at: str


# -- pipelines -------------------------------------------------------------------------------------


class Retry(Strict):
    max_attempts: int = Field(default=R.DEFAULT_MAX_ATTEMPTS, ge=1, le=R.MAX_ATTEMPTS)
    backoff_multiplier: float = Field(
        default=R.DEFAULT_BACKOFF_MULTIPLIER, ge=1, le=R.MAX_BACKOFF_MULTIPLIER
    )
    initial_delay_seconds: float = Field(
        default=R.DEFAULT_INITIAL_DELAY_SECONDS, ge=0, le=R.MAX_INITIAL_DELAY_SECONDS
    )


# The SDK's `Step` TypedDict types `depends_on` as Optional, so `null` means "no dependencies".
DependsOn = Annotated[
    list[str],
    BeforeValidator(lambda v: [] if v is None else v),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}, "maxItems": 500},
                {"type": "null"},
            ],
            "default": [],
        }
    ),
]


class Step(Strict):
    id: str = Field(pattern=STEP_ID)
    action: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: DependsOn = Field(default_factory=list, max_length=500)
    condition: str | None = Field(default=None, max_length=4096)
    retry: Retry | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=R.MAX_TIMEOUT_SECONDS)


class Definition(BaseModel):
    """A pipeline's DAG. Unknown top-level keys are kept (clients may annotate definitions)."""

    model_config = ConfigDict(extra="allow")
    # The step limit (500 by default) is a gateway setting, checked in dag.semantic_problems.
    steps: list[Step]


class PipelineCreate(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=4096)
    definition: Definition
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free labels; PATCH merges keys (clients mark ownership here)"
    )


class PipelineUpdate(Strict):
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=4096)
    definition: Definition | None = None
    status: PipelineStatus | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free labels; PATCH merges keys (clients mark ownership here)"
    )


class LastExecution(BaseModel):
    id: str
    status: str
    started_at: str | None = None
    completed_at: str | None = None


class Pipeline(BaseModel):
    object: Literal["pipeline"] = "pipeline"
    id: str
    name: str
    description: str | None
    definition: dict[str, Any]
    status: PipelineStatus
    last_execution: LastExecution | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    updated_at: str


class ValidateRequest(Strict):
    definition: dict[str, Any]


class ValidationProblem(BaseModel):
    param: str
    message: str


class ValidateResult(BaseModel):
    valid: bool
    errors: list[ValidationProblem]


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool


class ActionInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class ActionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ActionInfo]
    has_more: bool
    next_cursor: str | None


# -- executions ------------------------------------------------------------------------------------


class ExecutionCreate(Strict):
    pipeline_id: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free labels; PATCH merges keys (clients mark ownership here)"
    )


class ExecutionStep(BaseModel):
    id: str
    action: str
    status: StepStatus
    output: Any
    error: str | None
    attempts: int
    started_at: str | None
    completed_at: str | None
    duration_seconds: float | None


class Execution(BaseModel):
    object: Literal["execution"] = "execution"
    id: str
    pipeline_id: str
    status: ExecutionStatus
    params: dict[str, Any]
    started_at: str | None
    completed_at: str | None
    duration_seconds: float | None
    outputs: dict[str, Any]
    steps: dict[str, ExecutionStep]
    error: str | None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str


# -- chat ------------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI-compatible request. Unknown fields are accepted and ignored, as OpenAI servers do."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=2048)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None


class ChatResponseMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatResponseMessage
    finish_reason: str | None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


# -- lists -----------------------------------------------------------------------------------------


class ListQuery(BaseModel):
    """The query of a list route: paging, plus the collection's filters in a subclass. Any other
    query parameter is refused (400 ``unknown_filter``, see app.py)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100, description="Page size (1..100)")
    after: str | None = Field(default=None, max_length=128, description="Cursor: the last id seen")

    def filters(self) -> dict[str, Any]:
        """The filters given (field names are this model's, never the client's)."""
        return self.model_dump(exclude={"limit", "after"}, exclude_none=True)


class ModelListQuery(ListQuery):
    name: str | None = None
    status: ModelStatus | None = None
    source: ModelSource | None = None


class ClusterListQuery(ListQuery):
    name: str | None = None
    status: ClusterStatus | None = None
    provider: ClusterProvider | None = None


class DeploymentListQuery(ListQuery):
    name: str | None = None
    model_id: str | None = None
    cluster_id: str | None = None
    status: DeploymentStatus | None = None


class PipelineListQuery(ListQuery):
    name: str | None = None
    status: PipelineStatus | None = None


class ExecutionListQuery(ListQuery):
    pipeline_id: str | None = None
    status: ExecutionStatus | None = None


class NoQuery(BaseModel):
    """A route that takes no query parameter refuses any (``GET /actions``)."""

    model_config = ConfigDict(extra="forbid")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
    has_more: bool
    next_cursor: str | None


class ClusterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Cluster]
    has_more: bool
    next_cursor: str | None


class DeploymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Deployment]
    has_more: bool
    next_cursor: str | None


class PipelineList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Pipeline]
    has_more: bool
    next_cursor: str | None


class ExecutionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Execution]
    has_more: bool
    next_cursor: str | None
