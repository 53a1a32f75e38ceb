"""``/models``: the model registry (and, for an OpenAI client, the names chat answers to)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from budai_gateway import openai_compat
from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc

router = APIRouter(tags=["models"], dependencies=AUTH)


@router.post("/models", status_code=201, response_model=S.Model)
async def create_model(svc: Svc, body: S.ModelCreate) -> Any:
    return await svc.models.add(body.model_dump(mode="json"))


@router.get("/models", response_model=S.ModelList)
async def list_models(
    request: Request, svc: Svc, query: Annotated[S.ModelListQuery, Query()]
) -> Any:
    if openai_compat.is_openai_client(request):
        # An OpenAI SDK wants the names it can chat with, not the registry's ids.
        return JSONResponse(openai_compat.models_list(svc.state))
    return svc.models.list(query.filters(), query.limit, query.after)


@router.get("/models/{model_id}", response_model=S.Model)
async def get_model(request: Request, svc: Svc, model_id: str) -> Any:
    if openai_compat.is_openai_client(request):
        return JSONResponse(openai_compat.served_model(svc.state, model_id))
    return svc.models.get(model_id)


@router.patch("/models/{model_id}", response_model=S.Model)
async def update_model(svc: Svc, model_id: str, body: S.ModelUpdate) -> Any:
    return svc.models.update(model_id, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/models/{model_id}", status_code=202, response_model=S.Model)
async def delete_model(svc: Svc, model_id: str) -> Any:
    return svc.models.delete(model_id)
