"""Pure reconcile decisions: `(ctx, spec, observation) -> Plan`.

Nothing here does I/O or reads the clock (`ctx.now` is given); kopf, httpx and kubernetes are
off limits (an import-linter contract enforces it), so every decision is table-tested.
"""

from .common import Action, Ctx, Event, Observation, Plan
from .deployment import reconcile_deployment
from .errors import ErrorClass, Failure, backoff, classify
from .execution import delete_execution_plan, reconcile_execution
from .model import reconcile_model
from .pipeline import reconcile_pipeline

__all__ = [
    "Action",
    "Ctx",
    "ErrorClass",
    "Event",
    "Failure",
    "Observation",
    "Plan",
    "backoff",
    "classify",
    "delete_execution_plan",
    "reconcile_deployment",
    "reconcile_execution",
    "reconcile_model",
    "reconcile_pipeline",
]
