"""Pydantic models of the platform's objects for users who build or store them themselves.

Unlike the response types in ``budai.types`` (where server-assigned fields such as ``id`` and
``created_at`` are always present), these models leave server-assigned fields optional, so a
``PipelineModel(name=..., definition=...)`` can be built locally, validated, serialized with
``model_dump_json()`` and parsed back with ``model_validate_json()``. They validate fully
(types, literals, the step-id pattern) and keep unknown fields. ``PipelineModel.from_api`` and
friends convert from the response types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator

from .pipeline_rules import STEP_ID
from .types.cluster import AvailableResources, ClusterProvider, ClusterStatus
from .types.deployment import AutoScaling, DeploymentStatus, Resources
from .types.execution import ExecutionStatus, ExecutionStep
from .types.model import ModelSource, ModelStatus
from .types.pipeline import PipelineDefinition, PipelineStatus

__all__ = [
    "ClusterHealthModel",
    "ClusterModel",
    "DeploymentModel",
    "ExecutionModel",
    "ModelModel",
    "PipelineModel",
]

_STEP_ID = STEP_ID


class _Base(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=(), validate_assignment=True)

    @classmethod
    def from_api(cls, obj: BaseModel) -> Self:
        """Build this model from the matching ``budai.types`` response object."""
        return cls.model_validate(obj.model_dump())


class PipelineModel(_Base):
    """A pipeline: ``name`` and ``definition`` are required, the rest is set by the server."""

    id: str | None = None
    name: str
    description: str | None = None
    definition: PipelineDefinition
    status: PipelineStatus | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("definition")
    @classmethod
    def _check_step_ids(cls, definition: PipelineDefinition) -> PipelineDefinition:
        bad = [s["id"] for s in definition["steps"] if not _STEP_ID.match(s["id"])]
        if bad:
            raise ValueError(f"step ids must match {_STEP_ID.pattern}: {', '.join(bad)}")
        return definition


class ExecutionModel(_Base):
    """A pipeline execution."""

    id: str | None = None
    pipeline_id: str
    status: ExecutionStatus = "pending"
    params: dict[str, Any] = {}
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    outputs: dict[str, Any] = {}
    steps: dict[str, ExecutionStep] = {}
    error: str | None = None
    created_at: datetime | None = None


class ModelModel(_Base):
    """A registered model."""

    id: str | None = None
    name: str
    source: ModelSource
    uri: str
    size_bytes: int | None = None
    status: ModelStatus | None = None
    metadata: dict[str, Any] = {}
    progress_percent: float | None = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class DeploymentModel(_Base):
    """A deployment of a model on a cluster."""

    id: str | None = None
    name: str | None = None
    model_id: str
    cluster_id: str
    status: DeploymentStatus | None = None
    replicas: int = 1
    ready_replicas: int | None = None
    endpoint_url: str | None = None
    auto_scaling: AutoScaling | None = None
    resources: Resources | None = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ClusterModel(_Base):
    """A cluster."""

    id: str | None = None
    name: str
    provider: ClusterProvider
    region: str
    status: ClusterStatus | None = None
    node_count: int | None = None
    kubernetes_version: str | None = None
    created_at: datetime | None = None


class ClusterHealthModel(_Base):
    """A cluster's health report."""

    status: Literal["healthy", "degraded", "unhealthy"]
    node_count: int
    available_resources: AvailableResources
