"""``/pipelines`` (definitions, validation) and ``/actions`` (the catalogue steps may use)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from budai_gateway import dag
from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc, no_query

router = APIRouter(tags=["pipelines"], dependencies=AUTH)


@router.post("/pipelines", status_code=201, response_model=S.Pipeline)
async def create_pipeline(svc: Svc, body: S.PipelineCreate) -> Any:
    data = body.model_dump(mode="json")
    data["definition"] = svc.pipelines.check(body.definition)
    return svc.pipelines.view(svc.pipelines.create(data))


@router.get("/pipelines", response_model=S.PipelineList)
async def list_pipelines(svc: Svc, query: Annotated[S.PipelineListQuery, Query()]) -> Any:
    return svc.pipelines.list(query.filters(), query.limit, query.after)


@router.post("/pipelines/validate", response_model=S.ValidateResult)
async def validate_pipeline(svc: Svc, body: S.ValidateRequest) -> Any:
    return svc.pipelines.validate(body.definition)


@router.get("/pipelines/{pipeline_id}", response_model=S.Pipeline)
async def get_pipeline(svc: Svc, pipeline_id: str) -> Any:
    return svc.pipelines.view(svc.pipelines.get(pipeline_id))


@router.patch("/pipelines/{pipeline_id}", response_model=S.Pipeline)
async def update_pipeline(svc: Svc, pipeline_id: str, body: S.PipelineUpdate) -> Any:
    data = body.model_dump(mode="json", exclude_unset=True)
    if body.definition is not None:
        data["definition"] = svc.pipelines.check(body.definition)
    return svc.pipelines.view(svc.pipelines.update(pipeline_id, data))


@router.delete("/pipelines/{pipeline_id}", response_model=S.Deleted)
async def delete_pipeline(svc: Svc, pipeline_id: str) -> Any:
    return svc.pipelines.delete(pipeline_id)


@router.get("/actions", response_model=S.ActionList, dependencies=[Depends(no_query)])
async def list_actions() -> Any:
    return {"object": "list", "data": dag.catalogue(), "has_more": False, "next_cursor": None}
