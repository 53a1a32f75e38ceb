"""Pydantic models of the custom resources: the single source of truth for the CRDs
(`budai_operator.crdgen`) and the typed view the handlers parse each object into."""

from ._base import (
    API_VERSION,
    GROUP,
    VERSION,
    CarriedStatus,
    CommonStatus,
    Condition,
    CRModel,
    DeletionPolicy,
    KindDef,
    ManagedSpec,
    ObjectRef,
    StatusModel,
)
from .connection import (
    BUD_CONNECTION,
    CLUSTER_BUD_CONNECTION,
    BudConnectionSpec,
    BudConnectionStatus,
    ClusterBudConnectionSpec,
    ConnectionKind,
    ConnectionRef,
    LabelSelector,
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

# The list of kinds the operator serves is `budai_operator.kinds.registry.REGISTRY`.

__all__ = [
    "API_VERSION",
    "BUD_CONNECTION",
    "BUD_DEPLOYMENT",
    "BUD_EXECUTION",
    "BUD_MODEL",
    "BUD_PIPELINE",
    "CLUSTER_BUD_CONNECTION",
    "GROUP",
    "VERSION",
    "AutoScaling",
    "BudConnectionSpec",
    "BudConnectionStatus",
    "BudDeploymentSpec",
    "BudDeploymentStatus",
    "BudExecutionSpec",
    "BudExecutionStatus",
    "BudModelSpec",
    "BudModelStatus",
    "BudPipelineSpec",
    "BudPipelineStatus",
    "CRModel",
    "CarriedStatus",
    "ClusterBudConnectionSpec",
    "CommonStatus",
    "Condition",
    "ConnectionKind",
    "ConnectionRef",
    "DeletionPolicy",
    "KindDef",
    "LabelSelector",
    "ManagedSpec",
    "ModelSource",
    "ObjectRef",
    "PipelineDefinition",
    "Resources",
    "StatusModel",
    "Step",
]
