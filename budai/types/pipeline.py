"""Pipeline types.

``PipelineDefinition``, ``Step`` and ``RetryConfig`` are ``TypedDict``s, as the reference page
shows them: users write definitions as dict literals and mypy checks them. The same TypedDicts
type the ``definition`` attribute of a returned ``Pipeline``, so ``pipeline.definition["steps"]``
is a list of plain dicts, exactly the shape one passes to ``pipelines.create``; a definition read
from the API can be sent back unchanged.
"""

from datetime import datetime
from typing import Any, Literal, NotRequired, Protocol, runtime_checkable

from pydantic import with_config
from typing_extensions import TypedDict

from ._base import BudObject

__all__ = [
    "DefinitionBuilder",
    "DefinitionExporter",
    "DefinitionSource",
    "LastExecution",
    "Pipeline",
    "PipelineDefinition",
    "PipelineStatus",
    "PipelineValidation",
    "RetryConfig",
    "Step",
    "ValidationIssue",
]

PipelineStatus = Literal["active", "paused", "archived"]


@with_config(extra="allow")
class RetryConfig(TypedDict):
    """How a failed step is retried: ``initial_delay_seconds * backoff_multiplier ** (n - 1)``."""

    max_attempts: int
    backoff_multiplier: float
    initial_delay_seconds: NotRequired[float]


@with_config(extra="allow")
class Step(TypedDict):
    """One step of a pipeline; only ``id`` and ``action`` are required."""

    id: str
    action: str
    params: NotRequired[dict[str, Any]]
    depends_on: NotRequired[list[str] | None]
    condition: NotRequired[str | None]
    retry: NotRequired[RetryConfig | None]
    timeout_seconds: NotRequired[float | None]


@with_config(extra="allow")
class PipelineDefinition(TypedDict):
    """The graph of a pipeline."""

    steps: list[Step]


@runtime_checkable
class DefinitionBuilder(Protocol):
    """Anything with ``build() -> PipelineDefinition`` (the ``budai.dsl`` builder)."""

    def build(self) -> PipelineDefinition: ...


@runtime_checkable
class DefinitionExporter(Protocol):
    """Anything with ``to_definition() -> PipelineDefinition``."""

    def to_definition(self) -> PipelineDefinition: ...


DefinitionSource = PipelineDefinition | DefinitionBuilder | DefinitionExporter
"""What ``pipelines.create/update/validate`` accept as ``definition``."""


@with_config(extra="allow")
class LastExecution(TypedDict):
    """The newest execution of a pipeline, as the pipeline reports it."""

    id: str
    status: str
    started_at: NotRequired[datetime | None]
    completed_at: NotRequired[datetime | None]


class Pipeline(BudObject):
    """A stored pipeline."""

    id: str
    name: str
    description: str | None = None
    definition: PipelineDefinition
    created_at: datetime
    updated_at: datetime
    status: PipelineStatus
    last_execution: LastExecution | None = None
    """The newest execution (any state), or None before the first run."""


class ValidationIssue(BudObject):
    """One problem found by ``pipelines.validate``; ``param`` is a path such as
    ``definition.steps[2].depends_on[0]``."""

    param: str | None = None
    message: str


class PipelineValidation(BudObject):
    """The result of ``pipelines.validate``; an invalid definition is a result, not an error."""

    valid: bool
    errors: list[ValidationIssue] = []

    def __bool__(self) -> bool:
        return self.valid
