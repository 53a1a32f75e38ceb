"""Pydantic models of the four custom resources: the single source of truth for the CRDs
(`budai_operator.crdgen`) and the typed view the handlers parse each object into."""

from ._base import (
    API_VERSION,
    GROUP,
    VERSION,
    CommonStatus,
    Condition,
    CRModel,
    DeletionPolicy,
    KindDef,
    ManagedSpec,
    ObjectRef,
)
from .deployment import (
    BUD_DEPLOYMENT,
    AutoScaling,
    BudDeploymentSpec,
    BudDeploymentStatus,
    Resources,
)
from .execution import BUD_EXECUTION, BudExecutionSpec, BudExecutionStatus
from .model import BUD_MODEL, BudModelSpec, BudModelStatus, ModelSource
from .pipeline import BUD_PIPELINE, BudPipelineSpec, BudPipelineStatus, PipelineDefinition, Step

KINDS: tuple[KindDef, ...] = (BUD_MODEL, BUD_DEPLOYMENT, BUD_PIPELINE, BUD_EXECUTION)

__all__ = [
    "API_VERSION",
    "BUD_DEPLOYMENT",
    "BUD_EXECUTION",
    "BUD_MODEL",
    "BUD_PIPELINE",
    "GROUP",
    "KINDS",
    "VERSION",
    "AutoScaling",
    "BudDeploymentSpec",
    "BudDeploymentStatus",
    "BudExecutionSpec",
    "BudExecutionStatus",
    "BudModelSpec",
    "BudModelStatus",
    "BudPipelineSpec",
    "BudPipelineStatus",
    "CRModel",
    "CommonStatus",
    "Condition",
    "DeletionPolicy",
    "KindDef",
    "ManagedSpec",
    "ModelSource",
    "ObjectRef",
    "PipelineDefinition",
    "Resources",
    "Step",
]
