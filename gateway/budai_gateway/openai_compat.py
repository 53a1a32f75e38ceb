"""The rest of the OpenAI-compatible surface: model names, embeddings and legacy completions.

``/v1/models`` is the Bud model registry (ids like ``model_...``); an OpenAI client asking it
(recognised by the ``X-Stainless-*`` headers or the ``OpenAI/`` user agent its SDKs send) gets
the OpenAI shape instead: one entry per *served name* (the names chat accepts), with
``object``, ``created`` and ``owned_by``. ``/v1/embeddings`` is a deterministic built-in: a
text's vector is derived from its SHA-256, so tests can predict it. A model served by a
configured upstream answers legacy completions through chat.py's forwarding (with its checks
and bounds); its embeddings are refused rather than faked.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import struct
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from budai_gateway import chat
from budai_gateway.errors import APIError

if TYPE_CHECKING:
    from budai_gateway.services.state import State

DEFAULT_DIMENSIONS = 256
MAX_INPUTS = 2048
"""Texts per embeddings request, prompts per legacy completion (OpenAI's own limit)."""
MAX_VALUES = 1 << 20
"""Floats per embeddings answer (inputs x dimensions): bounds the work one request can ask."""
OWNER = "budai"


def is_openai_client(request: Request) -> bool:
    """Whether the caller is an OpenAI SDK (they all send ``X-Stainless-Lang``)."""
    headers = request.headers
    return "x-stainless-lang" in headers or headers.get("user-agent", "").startswith("OpenAI/")


def _epoch(value: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(time.time())


def served_models(state: State) -> list[dict[str, Any]]:
    """One OpenAI model object per name chat answers to: each serving deployment's name and its
    model's name, oldest first, without duplicates."""
    out: dict[str, dict[str, Any]] = {}
    for dep in state.store.all("deployment"):
        if dep["status"] not in ("active", "scaling") or dep.get("ready_replicas", 0) < 1:
            continue
        if state.teardown_scheduled(dep["id"]):
            continue
        model = state.store.get("model", dep["model_id"])
        created = _epoch(dep.get("created_at"))
        for name in (dep["name"], model["name"] if model else None):
            if name and name not in out:
                out[name] = {"id": name, "object": "model", "created": created, "owned_by": OWNER}
    return list(out.values())


def served_model(state: State, name: str) -> dict[str, Any]:
    for entry in served_models(state):
        if entry["id"] == name:
            return entry
    raise APIError(404, "model_not_found", f"No deployment serves model '{name}'.", "model")


def models_list(state: State) -> dict[str, Any]:
    return {"object": "list", "data": served_models(state)}


# -- embeddings ----------------------------------------------------------------------------


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=4096)
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


def embed(text: str, dimensions: int) -> list[float]:
    """A unit vector derived from the SHA-256 of ``text`` (the same text, the same vector)."""
    raw = b""
    block = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{block}\0{text}".encode()).digest()
        block += 1
    ints = struct.unpack(f"<{dimensions}I", raw[: dimensions * 4])
    values = [i / 2**31 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(value: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    """Texts to embed; token arrays are embedded as their decimal spelling."""
    if isinstance(value, str):
        return [value]
    if not value:
        raise APIError(422, "invalid_value", "input must not be empty.", "input")
    out: list[str] = []
    for v in value:
        if isinstance(v, int):  # one array of tokens
            return [" ".join(str(t) for t in value)]
        out.append(v if isinstance(v, str) else " ".join(str(t) for t in v))
    return out


async def embeddings(state: State, body: EmbeddingRequest) -> dict[str, Any]:
    dep, model = chat.resolve_target(state, body.model)
    if chat.upstream_of(state.settings, model) is not None:
        # Only chat is forwarded (through chat.py, which owns every check on upstreams);
        # built-in vectors for a real model would be silently wrong, so refuse instead.
        raise APIError(
            409,
            "embeddings_not_forwarded",
            f"Model '{body.model}' is served by an upstream; embeddings are not forwarded to "
            "upstreams (use the upstream's /embeddings directly).",
            "model",
        )
    state.traffic.record(dep["id"])
    dims = body.dimensions or DEFAULT_DIMENSIONS
    texts = _inputs(body.input)
    if len(texts) > MAX_INPUTS:
        raise APIError(
            422, "invalid_value", f"input: {len(texts)} texts; the limit is {MAX_INPUTS}.", "input"
        )
    if len(texts) * dims > MAX_VALUES:
        raise APIError(
            422,
            "invalid_value",
            f"input x dimensions is {len(texts) * dims:,} values; the limit is {MAX_VALUES:,}.",
            "dimensions",
        )
    data: list[dict[str, Any]] = []
    tokens = 0
    for i, text in enumerate(texts):
        vector = embed(text, dims)
        tokens += chat.count_tokens(text)
        encoded: list[float] | str = vector
        if body.encoding_format == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# -- legacy completions --------------------------------------------------------------------


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=256)
    prompt: str | list[str] = ""
    max_tokens: int | None = Field(default=16, ge=1, le=1_000_000)
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    stream: bool = False
    echo: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None
    user: str | None = None


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: str | None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None


def _chat_request(body: CompletionRequest, prompt: str) -> dict[str, Any]:
    return {
        "model": body.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": body.max_tokens,
        "n": body.n,
        "stop": body.stop,
    }


async def _chat_answer(
    state: State, model: dict[str, Any], req: dict[str, Any], name: str
) -> dict[str, Any]:
    """One chat completion: the configured upstream's when the model names one, else the
    built-in engine's; chat's bounds apply either way. The one place here that knows how
    chat.py reaches an upstream (and it does all the checking)."""
    limits = state.settings.limits
    chat.check_bounds(req, limits)
    up = chat.upstream_of(state.settings, model)
    if up is not None:
        answer: dict[str, Any] = await chat.forward(state, up, model, req)
        return answer
    return chat.completion(req, name, limits)


async def completion(state: State, body: CompletionRequest) -> dict[str, Any]:
    """The answer to each prompt (built-in engine, or the upstream's chat completions) as a
    ``text_completion``."""
    dep, model = chat.resolve_target(state, body.model)
    state.traffic.record(dep["id"])
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) > MAX_INPUTS:
        raise APIError(
            422, "invalid_value", f"prompt: {len(prompts)} prompts; the limit is {MAX_INPUTS}.",
            "prompt",
        )  # fmt: skip
    choices: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    for prompt in prompts or [""]:
        answer = await _chat_answer(state, model, _chat_request(body, prompt), body.model)
        prompt_tokens += chat.count_tokens(prompt)
        completion_tokens += int((answer.get("usage") or {}).get("completion_tokens") or 0)
        for choice in answer.get("choices") or []:
            text = (choice.get("message") or {}).get("content") or ""
            choices.append(
                {
                    "text": (prompt + text) if body.echo else text,
                    "index": len(choices),
                    "logprobs": None,
                    "finish_reason": choice.get("finish_reason"),
                }
            )
    return {
        "id": "cmpl-" + secrets.token_hex(12),
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


async def completion_stream(result: dict[str, Any]) -> AsyncIterator[bytes]:
    """A finished completion as SSE: one chunk per choice, then ``[DONE]``."""
    for choice in result["choices"]:
        chunk = {k: v for k, v in result.items() if k not in ("choices", "usage")}
        chunk["choices"] = [choice]
        yield chat._sse(chunk)
    yield b"data: [DONE]\n\n"
