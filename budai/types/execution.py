"""Execution types: a pipeline run and the state of each of its steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ._base import BudObject

__all__ = ["TERMINAL_STATUSES", "Execution", "ExecutionStatus", "ExecutionStep", "StepStatus"]

ExecutionStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""Statuses after which an execution never changes again."""


class ExecutionStep(BudObject):
    """The state of one step within an execution."""

    id: str
    action: str
    status: StepStatus
    output: Any = None
    """What the step produced. The reference page says ``Optional[dict]``, and most actions do
    return an object, but ``transform`` returns whatever its ``value`` renders to (a number, a
    string, a list); typing it as any JSON value keeps such steps parseable, and code written
    against the page's annotation still type-checks."""
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    attempts: int = 0


class Execution(BudObject):
    """One run of a pipeline."""

    id: str
    pipeline_id: str
    status: ExecutionStatus
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    outputs: dict[str, Any] = {}
    steps: dict[str, ExecutionStep] = {}
    error: str | None = None
    params: dict[str, Any] = {}
    created_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the execution has finished (completed, failed or cancelled)."""
        return self.status in TERMINAL_STATUSES
