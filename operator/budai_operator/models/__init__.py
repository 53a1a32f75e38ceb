"""Pydantic models of the custom resources: the single source of truth for the CRDs
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

KINDS: tuple[KindDef, ...] = (BUD_MODEL, BUD_DEPLOYMENT, BUD_PIPELINE, BUD_EXECUTION)
"""The managed kinds (each drives one remote object)."""
CONNECTION_KINDS: tuple[KindDef, ...] = (BUD_CONNECTION, CLUSTER_BUD_CONNECTION)
STATUS_MODELS: dict[str, type[CommonStatus]] = {
    k.crd.kind: k.status for k in (*KINDS, *CONNECTION_KINDS)
}
"""Kind -> the model every status the operator writes for it is built through."""

__all__ = [
    "API_VERSION",
    "BUD_CONNECTION",
    "BUD_DEPLOYMENT",
    "BUD_EXECUTION",
    "BUD_MODEL",
    "BUD_PIPELINE",
    "CLUSTER_BUD_CONNECTION",
    "CONNECTION_KINDS",
    "GROUP",
    "KINDS",
    "STATUS_MODELS",
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
