"""``/clusters``: the configured clusters, their capacity and health (read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc

router = APIRouter(tags=["clusters"], dependencies=AUTH)


@router.get("/clusters", response_model=S.ClusterList)
async def list_clusters(svc: Svc, query: Annotated[S.ClusterListQuery, Query()]) -> Any:
    return svc.clusters.list(query.filters(), query.limit, query.after)


@router.get("/clusters/{cluster_id}", response_model=S.Cluster)
async def get_cluster(svc: Svc, cluster_id: str) -> Any:
    return svc.clusters.get(cluster_id)


@router.get("/clusters/{cluster_id}/health", response_model=S.ClusterHealth)
async def cluster_health(svc: Svc, cluster_id: str) -> Any:
    return svc.clusters.health(cluster_id)
