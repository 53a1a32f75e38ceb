"""Deployment types.

``AutoScaling`` and ``Resources`` are ``TypedDict``s as on the reference page: they are what one
passes to ``deployments.create/update``, and ``deployment.auto_scaling`` / ``deployment.resources``
come back in the same dict shape (``deployment.resources["cpu"]``).
"""

from datetime import datetime
from typing import Literal, NotRequired

from pydantic import field_validator, with_config
from typing_extensions import TypedDict

from ._base import BudObject

__all__ = ["AutoScaling", "Deployment", "DeploymentStatus", "Resources", "ScalingDecision"]

DeploymentStatus = Literal["pending", "deploying", "active", "scaling", "failed", "stopped"]


@with_config(extra="allow")
class AutoScaling(TypedDict):
    """Autoscaler settings; while ``enabled`` the gateway owns ``replicas``."""

    enabled: bool
    min_replicas: NotRequired[int]
    max_replicas: NotRequired[int]
    target_cpu: NotRequired[int]
    """Target CPU utilisation, percent."""
    target_memory: NotRequired[int]
    """Target memory utilisation, percent."""


@with_config(extra="allow")
class Resources(TypedDict):
    """Per-replica resources; ``cpu``/``memory`` are Kubernetes quantities (``"2"``, ``"8Gi"``)."""

    cpu: str
    memory: str
    gpu: NotRequired[int | None]
    gpu_type: NotRequired[str | None]


@with_config(extra="allow")
class ScalingDecision(TypedDict):
    """One decision of the gateway's autoscaler: when, from and to how many replicas, and why."""

    time: datetime
    from_replicas: int
    to_replicas: int
    metric: str
    """What was measured (``requests_per_second``)."""
    observed: float
    target: float
    """The target per replica the observed value was held against."""
    reason: str


class Deployment(BudObject):
    """A model served on a cluster."""

    id: str
    name: str
    model_id: str
    cluster_id: str
    status: DeploymentStatus
    replicas: int
    """The desired replica count."""
    endpoint_url: str = ""
    auto_scaling: AutoScaling | None = None
    resources: Resources
    created_at: datetime
    updated_at: datetime | None = None
    ready_replicas: int = 0
    error: str | None = None
    """Why the deployment is pending or failed (for example which resource is short)."""
    scaling_decisions: list[ScalingDecision] = []
    """The autoscaler's last decisions, oldest first."""

    @field_validator("endpoint_url", mode="before")
    @classmethod
    def _no_endpoint_yet(cls, value: object) -> object:
        # The gateway sends null until the deployment serves; the page types it `str`.
        return "" if value is None else value
