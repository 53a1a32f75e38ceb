"""``/deployments``: models served on clusters; create, scale, stop, start, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc

router = APIRouter(tags=["deployments"], dependencies=AUTH)


@router.post("/deployments", status_code=201, response_model=S.Deployment)
async def create_deployment(svc: Svc, body: S.DeploymentCreate) -> Any:
    return svc.deployments.create(body.model_dump(mode="json", exclude_unset=True))


@router.get("/deployments", response_model=S.DeploymentList)
async def list_deployments(svc: Svc, query: Annotated[S.DeploymentListQuery, Query()]) -> Any:
    return svc.deployments.list(query.filters(), query.limit, query.after)


@router.get("/deployments/{deployment_id}", response_model=S.Deployment)
async def get_deployment(svc: Svc, deployment_id: str) -> Any:
    return svc.deployments.get(deployment_id)


@router.patch("/deployments/{deployment_id}", response_model=S.Deployment)
async def update_deployment(svc: Svc, deployment_id: str, body: S.DeploymentUpdate) -> Any:
    data = body.model_dump(mode="json", exclude_unset=True)
    return svc.deployments.update(deployment_id, data)


@router.post("/deployments/{deployment_id}/stop", response_model=S.Deployment)
async def stop_deployment(svc: Svc, deployment_id: str) -> Any:
    return svc.deployments.stop(deployment_id)


@router.post("/deployments/{deployment_id}/start", response_model=S.Deployment)
async def start_deployment(svc: Svc, deployment_id: str) -> Any:
    return svc.deployments.start(deployment_id)


@router.delete("/deployments/{deployment_id}", status_code=202, response_model=S.Deployment)
async def delete_deployment(svc: Svc, deployment_id: str) -> Any:
    return svc.deployments.delete(deployment_id)
