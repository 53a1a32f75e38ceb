"""The OpenAI-compatible surface: chat completions, embeddings, legacy completions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from budai_gateway import chat, openai_compat
from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc, request_id

router = APIRouter(tags=["chat"], dependencies=AUTH)


def _or_stream(description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 response documented as JSON or, with ``stream: true``, server-sent events."""
    return {200: {"content": {"text/event-stream": {}}, "description": description}}


def _sse(gen: Any) -> StreamingResponse:
    return StreamingResponse(
        gen, media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )


@router.post(
    "/chat/completions",
    response_model=S.ChatCompletion,
    responses=_or_stream(
        "A completion, or an SSE stream of chat.completion.chunk when stream is true"
    ),
)
async def chat_completions(request: Request, svc: Svc, body: S.ChatCompletionRequest) -> Any:
    state = svc.state
    req = body.model_dump(mode="json", exclude_none=True)
    limits = state.settings.limits
    chat.check_bounds(req, limits)
    dep, model = chat.resolve_target(state, body.model)
    up = chat.upstream_of(state.settings, model)
    state.traffic.record(dep["id"])
    if body.stream:
        if up is None:
            return _sse(chat.stream(req, body.model, limits))
        return _sse(await chat.open_upstream_stream(state, up, model, req, request_id(request)))
    if up is not None:
        return JSONResponse(await chat.forward(state, up, model, req))
    return chat.completion(req, body.model, limits)


@router.post("/embeddings", response_model=openai_compat.EmbeddingList)
async def create_embeddings(svc: Svc, body: openai_compat.EmbeddingRequest) -> Any:
    return await openai_compat.embeddings(svc.state, body)


@router.post(
    "/completions",
    response_model=openai_compat.Completion,
    responses=_or_stream("A legacy text completion (an SSE stream when stream is true)"),
)
async def create_completion(svc: Svc, body: openai_compat.CompletionRequest) -> Any:
    result = await openai_compat.completion(svc.state, body)
    if body.stream:
        return _sse(openai_compat.completion_stream(result))
    return result
