# The page's own spelling (List, Dict, Optional) is kept on purpose.
# ruff: noqa: UP006, UP045
"""Every code snippet of the SDK reference page (seed-sdk-reference.txt), as real code.

Each function is one section of the page, in page order, written as the page writes it; the page's
``...`` placeholders are filled with real arguments (ids come from ``prepare``), and its
``obj.attr: T`` lines become ``name: T = obj.attr``, so ``mypy --strict`` checks every type the
page promises. ``test_seed.py`` runs them against the local server and the local gateway, and
type-checks this file and ``seed_typed.py`` (the snippets that cannot run as written).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Literal, Optional  # noqa: UP035

from budai import BudClient
from budai.types import (
    AutoScaling,
    AvailableResources,
    ChatCompletion,
    Choice,
    Cluster,
    ClusterHealth,
    Deployment,
    Execution,
    ExecutionStep,
    Message,
    Model,
    ModelSource,
    Pipeline,
    PipelineDefinition,
    Resources,
    Response,
    RetryConfig,
    Step,
    ToolCall,
    Usage,
)


@dataclass
class Ctx:
    """Objects the snippets refer to with ``...`` on the page."""

    api_key: str
    base_url: str
    model_name: str
    model_id: str
    cluster_id: str
    deployment_id: str
    pipeline_id: str
    execution_id: str


def _until(fetch: Any, done: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    obj = fetch()
    while not done(obj):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last state: {obj!r}")
        time.sleep(0.1)
        obj = fetch()
    return obj


def prepare(client: BudClient, api_key: str, base_url: str) -> Ctx:
    """A model, an active deployment of it, a pipeline and a finished execution."""
    cluster = next(iter(client.clusters.list()))
    model = client.models.create(
        name="llama-3.2-1b", source="hugging_face", uri="meta-llama/Llama-3.2-1B"
    )
    _until(lambda: client.models.get(model.id), lambda m: m.status == "available")
    dep = client.deployments.create(model_id=model.id, cluster_id=cluster.id)
    _until(lambda: client.deployments.get(dep.id), lambda d: d.status == "active")
    pipe = client.pipelines.create(
        name="seed", definition={"steps": [{"id": "hello", "action": "log",
                                            "params": {"message": "hi"}}]}
    )
    ex = client.executions.create(pipe.id, wait=True, timeout=60)
    return Ctx(api_key, base_url, model.name, model.id, cluster.id, dep.id, pipe.id, ex.id)


# --- Core Types -------------------------------------------------------------------------------


def budclient(ctx: Ctx) -> BudClient:
    client: BudClient = BudClient(
        api_key=ctx.api_key,
        base_url=ctx.base_url,
        timeout=30,
        max_retries=3,
        verify_ssl=True,
        proxy=None,
    )
    return client


def chat_completion(client: BudClient, ctx: Ctx) -> ChatCompletion:
    response: ChatCompletion = client.chat.completions.create(
        model=ctx.model_name, messages=[{"role": "user", "content": "Hello"}]
    )

    id_: str = response.id
    object_: Literal["chat.completion"] = response.object
    created: int = response.created
    model: str = response.model
    choices: List[Choice] = response.choices
    usage: Usage = response.usage
    assert id_ and object_ == "chat.completion" and created > 0 and model == ctx.model_name
    assert len(choices) == 1 and usage.total_tokens >= usage.completion_tokens
    return response


def choice(response: ChatCompletion) -> Choice:
    choice: Choice = response.choices[0]

    index: int = choice.index
    message: Message = choice.message
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] = choice.finish_reason
    assert index == 0 and finish_reason == "stop" and message.role == "assistant"
    return choice


def message(choice: Choice) -> None:
    message: Message = choice.message

    role: Literal["system", "user", "assistant", "tool"] = message.role
    content: Optional[str] = message.content
    tool_calls: Optional[List[ToolCall]] = message.tool_calls
    assert role == "assistant" and content and tool_calls is None


# --- Pipeline Types ---------------------------------------------------------------------------


def pipeline(client: BudClient, ctx: Ctx) -> None:
    pipeline: Pipeline = client.pipelines.get(ctx.pipeline_id)

    id_: str = pipeline.id
    name: str = pipeline.name
    description: Optional[str] = pipeline.description
    definition: PipelineDefinition = pipeline.definition
    created_at: datetime = pipeline.created_at
    updated_at: datetime = pipeline.updated_at
    status: Literal["active", "paused", "archived"] = pipeline.status
    assert id_ == ctx.pipeline_id and name == "seed" and description is None
    assert definition["steps"][0]["id"] == "hello" and status == "active"
    assert created_at.tzinfo is not None and updated_at >= created_at


def pipeline_definition() -> PipelineDefinition:
    steps: List[Step] = [{"id": "fetch", "action": "log", "params": {}}]
    definition: PipelineDefinition = {
        "steps": steps
    }
    return definition


def step_and_retry() -> Step:
    retry: RetryConfig = {"max_attempts": 3, "backoff_multiplier": 2.0}
    step: Step = {
        "id": "fetch",
        "action": "http_request",
        "params": {"method": "GET", "url": "http://127.0.0.1:9/"},
        "depends_on": None,
        "condition": None,
        "retry": retry,
    }
    return step


# --- Execution Types --------------------------------------------------------------------------


def execution(client: BudClient, ctx: Ctx) -> ExecutionStep:
    execution: Execution = client.executions.get(ctx.execution_id)

    id_: str = execution.id
    pipeline_id: str = execution.pipeline_id
    status: Literal["pending", "running", "completed", "failed", "cancelled"] = execution.status
    started_at: Optional[datetime] = execution.started_at
    completed_at: Optional[datetime] = execution.completed_at
    duration_seconds: Optional[float] = execution.duration_seconds
    outputs: dict[str, Any] = execution.outputs
    steps: dict[str, ExecutionStep] = execution.steps
    error: Optional[str] = execution.error
    assert id_ == ctx.execution_id and pipeline_id == ctx.pipeline_id and status == "completed"
    assert started_at and completed_at and duration_seconds is not None and error is None
    assert "hello" in outputs
    return steps["hello"]


def execution_step(step: ExecutionStep) -> None:
    id_: str = step.id
    action: str = step.action
    status: Literal["pending", "running", "completed", "failed", "skipped"] = step.status
    output: Optional[dict[str, Any]] = step.output
    error: Optional[str] = step.error
    started_at: Optional[datetime] = step.started_at
    completed_at: Optional[datetime] = step.completed_at
    duration_seconds: Optional[float] = step.duration_seconds
    assert (id_, action, status) == ("hello", "log", "completed")
    assert output is not None and error is None and started_at and completed_at
    assert duration_seconds is not None


# --- Model Types ------------------------------------------------------------------------------


def model(client: BudClient, ctx: Ctx) -> None:
    model: Model = client.models.get(ctx.model_id)

    id_: str = model.id
    name: str = model.name
    source: ModelSource = model.source
    uri: str = model.uri
    size_bytes: int = model.size_bytes
    status: Literal["downloading", "available", "error", "deleting"] = model.status
    metadata: dict[str, Any] = model.metadata
    created_at: datetime = model.created_at
    assert id_ == ctx.model_id and name == ctx.model_name and source == "hugging_face"
    assert uri and size_bytes >= 0 and status == "available" and isinstance(metadata, dict)
    assert created_at.tzinfo is not None


def model_source() -> ModelSource:
    source: ModelSource = "hugging_face"
    return source


# --- Deployment Types -------------------------------------------------------------------------


def deployment(client: BudClient, ctx: Ctx) -> None:
    deployment: Deployment = client.deployments.get(ctx.deployment_id)

    id_: str = deployment.id
    name: str = deployment.name
    model_id: str = deployment.model_id
    cluster_id: str = deployment.cluster_id
    status: Literal[
        "pending", "deploying", "active", "scaling", "failed", "stopped"
    ] = deployment.status
    replicas: int = deployment.replicas
    endpoint_url: str = deployment.endpoint_url
    auto_scaling: Optional[AutoScaling] = deployment.auto_scaling
    resources: Resources = deployment.resources
    created_at: datetime = deployment.created_at
    assert id_ == ctx.deployment_id and name and model_id == ctx.model_id
    assert cluster_id == ctx.cluster_id and status == "active" and replicas == 1
    assert endpoint_url.startswith("http") and resources["cpu"] and created_at
    assert auto_scaling is None or isinstance(auto_scaling["enabled"], bool)


def auto_scaling_and_resources() -> tuple[AutoScaling, Resources]:
    auto_scaling: AutoScaling = {
        "enabled": True,
        "min_replicas": 1,
        "max_replicas": 3,
        "target_cpu": 70,
        "target_memory": 80,
    }
    resources: Resources = {
        "cpu": "2",
        "memory": "4Gi",
        "gpu": None,
        "gpu_type": None,
    }
    return auto_scaling, resources


# --- Cluster Types ----------------------------------------------------------------------------


def cluster(client: BudClient, ctx: Ctx) -> None:
    cluster: Cluster = client.clusters.get(ctx.cluster_id)

    id_: str = cluster.id
    name: str = cluster.name
    provider: Literal["aws", "azure", "onpremise"] = cluster.provider
    region: str = cluster.region
    status: Literal[
        "provisioning", "active", "degraded", "maintenance", "failed"
    ] = cluster.status
    node_count: int = cluster.node_count
    kubernetes_version: str = cluster.kubernetes_version
    created_at: datetime = cluster.created_at
    assert id_ == ctx.cluster_id and name and provider and region and status == "active"
    assert node_count > 0 and kubernetes_version and created_at


def cluster_health(client: BudClient, ctx: Ctx) -> None:
    health: ClusterHealth = client.clusters.health(ctx.cluster_id)

    status: Literal["healthy", "degraded", "unhealthy"] = health.status
    node_count: int = health.node_count
    available_resources: AvailableResources = health.available_resources
    assert status == "healthy" and node_count > 0

    resources: AvailableResources = available_resources
    cpu: str = resources["cpu"]
    memory_gb: float = resources["memory_gb"]
    gpu_count: int = resources["gpu_count"]
    gpu_types: List[str] = resources["gpu_types"]
    assert cpu and memory_gb > 0 and gpu_count >= 0 and isinstance(gpu_types, list)


# --- Exception Types --------------------------------------------------------------------------


def exception_types(client: BudClient) -> None:
    from budai.exceptions import (
        AuthenticationError,  # 401
        BudAPIError,  # Base exception
        ConflictError,  # 409
        NotFoundError,  # 404
        PermissionError,  # 403
        RateLimitError,  # 429
        ServerError,  # 5xx
        TimeoutError,  # Request timeout
        ValidationError,  # 422
    )

    for cls in (AuthenticationError, PermissionError, NotFoundError, ValidationError,
                RateLimitError, ConflictError, ServerError, TimeoutError):
        assert issubclass(cls, BudAPIError)

    try:
        client.models.get("model_does_not_exist")
    except BudAPIError as caught:
        error: BudAPIError = caught
        status_code: int = error.status_code
        message: str = error.message
        type_: str = error.type
        request_id: str = error.request_id
        param: Optional[str] = error.param  # For validation errors
        assert isinstance(error, NotFoundError) and status_code == 404
        assert message and type_ == "not_found_error" and request_id.startswith("req_")
        assert param is None or isinstance(param, str)
    else:
        raise AssertionError("expected NotFoundError")

    rate_error: RateLimitError = RateLimitError("slow down", status_code=429, retry_after=3)
    retry_after: int = rate_error.retry_after  # Seconds to wait
    assert retry_after == 3


# --- Generic Types ----------------------------------------------------------------------------


def response_wrapper(client: BudClient, ctx: Ctx) -> None:
    wrapped: Response[Model] = client.models.with_response.get(ctx.model_id)

    data: Model = wrapped.data
    headers: dict[str, str] = wrapped.headers
    status_code: int = wrapped.status_code
    request_id: str = wrapped.request_id
    rate_limit_remaining: Optional[int] = wrapped.rate_limit_remaining
    rate_limit_reset: Optional[int] = wrapped.rate_limit_reset
    assert data.id == ctx.model_id and status_code == 200 and request_id.startswith("req_")
    assert headers["x-request-id"] == request_id
    assert rate_limit_remaining is not None and rate_limit_reset is not None


# --- Type Checking ----------------------------------------------------------------------------


def with_mypy(ctx: Ctx) -> None:
    client: BudClient = BudClient(api_key=ctx.api_key)  # base URL from BUD_BASE_URL

    # Type-checked
    response: ChatCompletion = client.chat.completions.create(
        model=ctx.model_name,
        messages=[{"role": "user", "content": "Hello"}]
    )

    deployment: Deployment = client.deployments.create(
        model_id=ctx.model_id,
        cluster_id=ctx.cluster_id
    )
    assert response.choices and deployment.status == "pending"
    client.deployments.delete(deployment.id)
    client.close()


def with_ide_autocomplete(ctx: Ctx) -> None:
    client = BudClient(api_key=ctx.api_key)

    # IDE shows available methods
    response = client.chat.completions.create(
        # IDE autocompletes parameters
        model=ctx.model_name,
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0.7,
        # ... all available params
    )

    # IDE knows response structure
    content = response.choices[0].message.content
    # Type: Optional[str]
    checked: Optional[str] = content
    assert checked
    client.close()


def process_batch(
    client: BudClient,
    prompts: List[str]
) -> List[ChatCompletion]:
    return [
        client.chat.completions.create(
            model=MODEL_NAME,
            messages=[{"role": "user", "content": p}]
        )
        for p in prompts
    ]


def create_deployment_pipeline(
    client: BudClient,
    model_id: str,
    cluster_id: str
) -> Pipeline:
    return client.pipelines.create(
        name="Deploy",
        definition={
            "steps": [
                {"id": "deploy", "action": "deployment_create",
                 "params": {"model_id": model_id, "cluster_id": cluster_id}},
            ]
        }
    )


def run_and_wait(
    client: BudClient,
    pipeline_id: str,
    params: Dict[str, Any]
) -> Execution:
    return client.executions.create(
        pipeline_id=pipeline_id,
        params=params,
        wait=True
    )


MODEL_NAME = "llama-3.2-1b"


def custom_type_annotations(client: BudClient, ctx: Ctx) -> None:
    replies = process_batch(client, ["a", "b"])
    assert [r.object for r in replies] == ["chat.completion"] * 2
    pipe = create_deployment_pipeline(client, ctx.model_id, ctx.cluster_id)
    assert pipe.definition["steps"][0]["action"] == "deployment_create"
    ex = run_and_wait(client, ctx.pipeline_id, {"env": "test"})
    assert ex.status == "completed" and ex.params == {"env": "test"}


# --- Pydantic Models --------------------------------------------------------------------------


def pydantic_models() -> None:
    from budai.models import (
        ClusterModel,
        DeploymentModel,
        ExecutionModel,
        ModelModel,
        PipelineModel,
    )

    # These are Pydantic models with full validation
    pipeline = PipelineModel(
        name="Test",
        definition={
            "steps": [{"id": "hello", "action": "log", "params": {"message": "hi"}}]
        }
    )

    # Serialize to JSON
    json_str = pipeline.model_dump_json()

    # Parse from JSON
    parsed = PipelineModel.model_validate_json(json_str)
    assert parsed == pipeline
    for model_cls, data in (
        (ExecutionModel, {"pipeline_id": "pipe_1"}),
        (DeploymentModel, {"model_id": "model_1", "cluster_id": "cluster_1"}),
        (ModelModel, {"name": "m", "source": "url", "uri": "https://x"}),
        (ClusterModel, {"name": "c", "provider": "aws", "region": "us-east-1"}),
    ):
        obj = model_cls.model_validate(data)
        assert model_cls.model_validate_json(obj.model_dump_json()) == obj


def run_all(ctx: Ctx) -> list[str]:
    """Run every snippet in page order; returns the names run."""
    os.environ["BUD_BASE_URL"] = ctx.base_url
    ran: list[str] = []
    with budclient(ctx) as client:
        response = chat_completion(client, ctx)
        first = choice(response)
        message(first)
        pipeline(client, ctx)
        assert pipeline_definition()["steps"][0]["id"] == "fetch"
        assert client.pipelines.validate({"steps": [step_and_retry()]}).valid
        step = execution(client, ctx)
        execution_step(step)
        model(client, ctx)
        assert model_source() == "hugging_face"
        deployment(client, ctx)
        auto_scaling, resources = auto_scaling_and_resources()
        assert auto_scaling["enabled"] and resources["cpu"] == "2"
        cluster(client, ctx)
        cluster_health(client, ctx)
        exception_types(client)
        response_wrapper(client, ctx)
        with_mypy(ctx)
        with_ide_autocomplete(ctx)
        custom_type_annotations(client, ctx)
        pydantic_models()
        ran = [
            "budclient", "chat_completion", "choice", "message", "pipeline",
            "pipeline_definition", "step_and_retry", "execution", "execution_step", "model",
            "model_source", "deployment", "auto_scaling_and_resources", "cluster",
            "cluster_health", "exception_types", "response_wrapper", "with_mypy",
            "with_ide_autocomplete", "custom_type_annotations", "pydantic_models",
        ]
    return ran
