"""``/_local/`` controls for tests and demos (admin key only): faults, cluster and deployment
changes made out of band, a synthetic request load for the autoscaler, the speed factor, rate
limits and reset.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from budai.types.cluster import ClusterStatus
from budai.types.deployment import DeploymentStatus
from budai_gateway.errors import APIError

if TYPE_CHECKING:
    from budai_gateway.middleware import RequestPolicy
    from budai_gateway.wiring import Services


class FaultCreate(BaseModel):
    """A fault rule. ``path`` is a glob on the URL path (``/v1/models*``)."""

    model_config = ConfigDict(extra="forbid")
    method: str = Field(default="*", pattern=r"^(\*|GET|POST|PATCH|PUT|DELETE|HEAD|OPTIONS)$")
    path: str = Field(default="*", min_length=1, max_length=500)
    action: Literal["status", "latency", "drop", "drop_after"] = "status"
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    latency_seconds: float = Field(default=0.0, ge=0, le=600)
    count: int | None = Field(default=None, ge=1)
    probability: float = Field(default=1.0, gt=0, le=1)


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    cpu: float = Field(default=8, gt=0)
    memory_gb: float = Field(default=32, gt=0)
    gpu: int = Field(default=0, ge=0)
    gpu_type: str | None = None
    ready: bool = True


class ClusterChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready_nodes: int | None = Field(default=None, ge=0)
    nodes: list[NodeIn] | None = None
    status: ClusterStatus | None = None


class DeploymentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: DeploymentStatus | None = None
    replicas: int | None = Field(default=None, ge=0)
    ready_replicas: int | None = Field(default=None, ge=0)
    error: str | None = None
    endpoint_url: str | None = None


class LoadChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests_per_second: float = Field(ge=0, le=1_000_000)


class SpeedChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(gt=0, le=10_000)


class RateLimitChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capacity: int = Field(ge=1)
    refill_per_second: float = Field(gt=0)


def local_router(svc: Services, rt: RequestPolicy) -> APIRouter:
    from budai_gateway.middleware import FaultRule

    r = APIRouter(tags=["local controls"])

    @r.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {"object": "list", "data": [f.view() for f in rt.faults]}

    @r.post("/faults", status_code=201)
    async def add_fault(body: FaultCreate) -> dict[str, Any]:
        rule = FaultRule(id="fault_" + secrets.token_hex(6), **body.model_dump())
        rt.faults.append(rule)
        return rule.view()

    @r.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        n = len(rt.faults)
        rt.faults.clear()
        return {"deleted": n}

    @r.delete("/faults/{fault_id}")
    async def delete_fault(fault_id: str) -> dict[str, Any]:
        before = len(rt.faults)
        rt.faults[:] = [f for f in rt.faults if f.id != fault_id]
        if len(rt.faults) == before:
            raise APIError(404, "fault_not_found", f"No fault '{fault_id}'.", "fault_id")
        return {"deleted": 1}

    @r.post("/clusters/{cluster_id}")
    async def change_cluster(cluster_id: str, body: ClusterChange) -> dict[str, Any]:
        return svc.clusters.local_update(cluster_id, body.model_dump(exclude_unset=True))

    @r.get("/clusters/{cluster_id}")
    async def cluster_internals(cluster_id: str) -> dict[str, Any]:
        doc = svc.clusters.get(cluster_id)
        return {**doc, **svc.store.get_internal(cluster_id)}

    @r.post("/deployments/{deployment_id}")
    async def change_deployment(deployment_id: str, body: DeploymentChange) -> dict[str, Any]:
        return svc.deployments.local_update(deployment_id, body.model_dump(exclude_unset=True))

    @r.post("/deployments/{deployment_id}/load")
    async def deployment_load(deployment_id: str, body: LoadChange) -> dict[str, Any]:
        return svc.autoscaler.set_load(deployment_id, body.requests_per_second)

    @r.get("/deployments/{deployment_id}/rate")
    async def deployment_rate(deployment_id: str) -> dict[str, Any]:
        svc.deployments.get(deployment_id)
        return {
            "deployment_id": deployment_id,
            "requests_per_second": svc.autoscaler.rate(deployment_id),
        }

    @r.get("/speed")
    async def get_speed() -> dict[str, float]:
        return {"factor": svc.state.speed}

    @r.post("/speed")
    async def set_speed(body: SpeedChange) -> dict[str, float]:
        svc.state.speed = body.factor
        return {"factor": svc.state.speed}

    @r.post("/rate_limit")
    async def set_rate_limit(body: RateLimitChange) -> dict[str, Any]:
        rt.rate_limit.capacity = body.capacity
        rt.rate_limit.refill_per_second = body.refill_per_second
        rt.buckets.clear()
        return body.model_dump()

    @r.post("/tick")
    async def tick() -> dict[str, bool]:
        svc.scheduler.tick()
        return {"ok": True}

    @r.post("/reset")
    async def reset() -> dict[str, bool]:
        svc.reset()
        rt.faults.clear()
        rt.buckets.clear()
        rt.rate_limit.capacity = svc.settings.rate_limit.capacity
        rt.rate_limit.refill_per_second = svc.settings.rate_limit.refill_per_second
        svc.state.speed = svc.settings.speed
        return {"ok": True}

    return r
