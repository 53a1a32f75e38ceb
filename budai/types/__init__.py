"""Every type of the reference page: response objects (Pydantic v2 models with attribute access,
unknown fields kept) and input shapes (``TypedDict``s, so dict literals type-check).

Where the page types a response attribute with a ``TypedDict`` (``pipeline.definition``,
``deployment.auto_scaling``, ``deployment.resources``, ``health.available_resources``), the
attribute *is* that dict: read it with ``["key"]``, and pass it straight back to a create/update.
"""

from ._base import BudObject
from ._pages import AsyncPage, AsyncPaginator, SyncPage
from ._response import Response
from .chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChunkChoice,
    FunctionCall,
    Message,
    ToolCall,
    Usage,
)
from .cluster import AvailableResources, Cluster, ClusterHealth, ClusterProvider, ClusterStatus
from .deployment import AutoScaling, Deployment, DeploymentStatus, Resources, ScalingDecision
from .execution import TERMINAL_STATUSES, Execution, ExecutionStatus, ExecutionStep, StepStatus
from .model import Model, ModelSource, ModelStatus
from .pipeline import (
    DefinitionBuilder,
    DefinitionExporter,
    DefinitionSource,
    LastExecution,
    Pipeline,
    PipelineDefinition,
    PipelineStatus,
    PipelineValidation,
    RetryConfig,
    Step,
    ValidationIssue,
)

__all__ = [
    "TERMINAL_STATUSES",
    "AsyncPage",
    "AsyncPaginator",
    "AutoScaling",
    "AvailableResources",
    "BudObject",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessageParam",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChunkChoice",
    "Cluster",
    "ClusterHealth",
    "ClusterProvider",
    "ClusterStatus",
    "DefinitionBuilder",
    "DefinitionExporter",
    "DefinitionSource",
    "Deployment",
    "DeploymentStatus",
    "Execution",
    "ExecutionStatus",
    "ExecutionStep",
    "FunctionCall",
    "LastExecution",
    "Message",
    "Model",
    "ModelSource",
    "ModelStatus",
    "Pipeline",
    "PipelineDefinition",
    "PipelineStatus",
    "PipelineValidation",
    "Resources",
    "Response",
    "RetryConfig",
    "ScalingDecision",
    "Step",
    "StepStatus",
    "SyncPage",
    "ToolCall",
    "Usage",
    "ValidationIssue",
]
