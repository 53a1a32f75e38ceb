"""``/executions``: runs of pipelines, newest first; cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc

router = APIRouter(tags=["executions"], dependencies=AUTH)


@router.post("/executions", status_code=201, response_model=S.Execution)
async def create_execution(svc: Svc, body: S.ExecutionCreate) -> Any:
    return svc.executions.create(body.model_dump(mode="json"))


@router.get("/executions", response_model=S.ExecutionList)
async def list_executions(svc: Svc, query: Annotated[S.ExecutionListQuery, Query()]) -> Any:
    """Executions, newest first."""
    return svc.executions.list(query.filters(), query.limit, query.after)


@router.get("/executions/{execution_id}", response_model=S.Execution)
async def get_execution(svc: Svc, execution_id: str) -> Any:
    return svc.executions.get(execution_id)


@router.post("/executions/{execution_id}/cancel", response_model=S.Execution)
async def cancel_execution(svc: Svc, execution_id: str) -> Any:
    return await svc.executions.cancel(execution_id)
