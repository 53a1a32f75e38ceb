"""Cluster types. ``AvailableResources`` is a ``TypedDict`` as on the reference page, so
``health.available_resources["gpu_count"]`` reads like the page shows it."""

from datetime import datetime
from typing import Literal

from pydantic import with_config
from typing_extensions import TypedDict

from ._base import BudObject

__all__ = ["AvailableResources", "Cluster", "ClusterHealth", "ClusterProvider", "ClusterStatus"]

ClusterProvider = Literal["aws", "azure", "onpremise"]
ClusterStatus = Literal["provisioning", "active", "degraded", "maintenance", "failed"]


@with_config(extra="allow")
class AvailableResources(TypedDict):
    """Free capacity of a cluster; ``cpu`` is a Kubernetes quantity (``"12"``, ``"3500m"``)."""

    cpu: str
    memory_gb: float
    gpu_count: int
    gpu_types: list[str]


class Cluster(BudObject):
    """A Kubernetes cluster models are deployed on."""

    id: str
    name: str
    provider: ClusterProvider
    region: str
    status: ClusterStatus
    node_count: int
    kubernetes_version: str
    created_at: datetime


class ClusterHealth(BudObject):
    """``GET /clusters/{id}/health``."""

    status: Literal["healthy", "degraded", "unhealthy"]
    node_count: int
    available_resources: AvailableResources
