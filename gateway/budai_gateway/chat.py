"""Chat completions: a deterministic built-in engine, or forwarding to an OpenAI-compatible server.

The built-in engine answers ``"Echo: <last user message>"`` cut to ``max_tokens`` tokens, so
tests can predict every byte; token counts come from a fixed word/punctuation tokenizer. A model
whose ``metadata.upstream_url`` names a server (vLLM, llama.cpp, Ollama, ...) is forwarded there.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from budai_gateway.errors import APIError

if TYPE_CHECKING:
    from budai_gateway.service import Gateway

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Tokens with their leading whitespace kept, so joining them gives the text back."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos : m.end()])
        pos = m.end()
    if out and pos < len(text):
        out[-1] += text[pos:]
    return out


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return " ".join(parts)


def resolve_target(gw: Gateway, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(deployment, model) serving ``name``: a deployment name, a model name or a model id."""
    deps = gw.store.find("deployment", "name", name)
    model: dict[str, Any] | None = None
    if not deps:
        model = gw.store.get("model", name)
        if model is None:
            models = gw.store.find("model", "name", name)
            model = models[0] if models else None
        if model is not None:
            deps = gw.store.find("deployment", "model_id", model["id"])
    if not deps:
        raise APIError(404, "model_not_found", f"No deployment serves model '{name}'.", "model")
    # A deployment keeps serving on its ready replicas while it scales.
    active = [
        d
        for d in deps
        if d["status"] in ("active", "scaling")
        and d["ready_replicas"] > 0
        and not gw._deleting(d["id"])
    ]
    if not active:
        raise APIError(
            409,
            "deployment_not_active",
            f"Deployment '{deps[0]['name']}' for '{name}' is {deps[0]['status']}, not active.",
            "model",
        )
    dep = active[0]
    if dep["ready_replicas"] < 1:
        raise APIError(
            409,
            "deployment_not_active",
            f"Deployment '{dep['name']}' has no ready replicas.",
            "model",
        )
    model = gw.store.get("model", dep["model_id"])
    if model is None:
        raise APIError(404, "model_not_found", f"Model for '{name}' is gone.", "model")
    return dep, model


def _last_text(req: dict[str, Any]) -> tuple[str, str]:
    """The last user (or tool) message's text and its role."""
    for m in reversed(req["messages"]):
        if m.get("role") in ("user", "tool"):
            return _content_text(m.get("content")), str(m["role"])
    return "", ""


class BuiltinEngine:
    """Deterministic echo completions.

    Rules: the answer is ``"Echo: <last user or tool message>"``; with ``response_format`` of
    type ``json_object``/``json_schema`` it is ``{"echo": "<text>"}``. With ``tools``, a tool
    call is made when ``tool_choice`` is ``"required"`` or names a function, or when it is
    ``"auto"`` (the default) and the last user message mentions a tool's name; the arguments
    are ``{"input": "<last user message>"}``.
    """

    @staticmethod
    def tool_call(req: dict[str, Any], index: int) -> dict[str, Any] | None:
        tools = [t for t in req.get("tools") or [] if isinstance(t.get("function"), dict)]
        choice = req.get("tool_choice", "auto")
        text, role = _last_text(req)
        if not tools or choice == "none" or role != "user":
            return None
        names = [str(t["function"].get("name", "tool")) for t in tools]
        name: str | None = None
        if isinstance(choice, dict):
            name = str((choice.get("function") or {}).get("name", names[0]))
        elif choice == "required":
            name = names[0]
        else:
            name = next((n for n in names if n in text), None)
        if name is None:
            return None
        call_id = "call_" + hashlib.sha256(f"{name}:{text}:{index}".encode()).hexdigest()[:24]
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps({"input": text})},
        }

    @staticmethod
    def answer(req: dict[str, Any], index: int) -> tuple[list[str], str]:
        last, _ = _last_text(req)
        text = "Echo: " + last if last else "Hello from the local Bud gateway."
        fmt = (req.get("response_format") or {}).get("type")
        if fmt in ("json_object", "json_schema"):
            text = json.dumps({"echo": last})
        if index:
            text = f"[{index}] {text}"
        tokens = tokenize(text)
        finish = "stop"
        max_tokens = req.get("max_tokens")
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens = tokens[:max_tokens]
            finish = "length"
        stops = req.get("stop")
        if stops:
            joined = "".join(tokens)
            for s in [stops] if isinstance(stops, str) else stops:
                if s and s in joined:
                    joined = joined[: joined.index(s)]
                    tokens = tokenize(joined) if joined else []
                    finish = "stop"
        return tokens, finish

    @staticmethod
    def prompt_tokens(req: dict[str, Any]) -> int:
        return sum(count_tokens(_content_text(m.get("content"))) + 3 for m in req["messages"]) + 3


def completion(req: dict[str, Any], model_name: str) -> dict[str, Any]:
    choices = []
    completion_tokens = 0
    for i in range(req.get("n") or 1):
        call = BuiltinEngine.tool_call(req, i)
        if call is not None:
            completion_tokens += count_tokens(call["function"]["arguments"])
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                    "finish_reason": "tool_calls",
                }
            )
            continue
        tokens, finish = BuiltinEngine.answer(req, i)
        completion_tokens += len(tokens)
        choices.append(
            {
                "index": i,
                "message": {"role": "assistant", "content": "".join(tokens), "tool_calls": None},
                "finish_reason": finish,
            }
        )
    prompt = BuiltinEngine.prompt_tokens(req)
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


async def stream(req: dict[str, Any], model_name: str) -> AsyncIterator[bytes]:
    cid = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    completion_tokens = 0

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out

    for i in range(req.get("n") or 1):
        call = BuiltinEngine.tool_call(req, i)
        if call is not None:
            completion_tokens += count_tokens(call["function"]["arguments"])
            delta = {"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]}
            yield _sse(chunk([{"index": i, "delta": delta, "finish_reason": None}]))
            yield _sse(chunk([{"index": i, "delta": {}, "finish_reason": "tool_calls"}]))
            continue
        tokens, finish = BuiltinEngine.answer(req, i)
        completion_tokens += len(tokens)
        yield _sse(
            chunk(
                [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            )
        )
        for tok in tokens:
            yield _sse(chunk([{"index": i, "delta": {"content": tok}, "finish_reason": None}]))
        yield _sse(chunk([{"index": i, "delta": {}, "finish_reason": finish}]))
    opts = req.get("stream_options") or {}
    if opts.get("include_usage"):
        prompt = BuiltinEngine.prompt_tokens(req)
        yield _sse(
            chunk(
                [],
                {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt + completion_tokens,
                },
            )
        )
    yield b"data: [DONE]\n\n"


def _upstream_request(
    model: dict[str, Any], req: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    meta = model["metadata"]
    url = str(meta["upstream_url"]).rstrip("/") + "/chat/completions"
    body = {k: v for k, v in req.items() if v is not None}
    body["model"] = meta.get("upstream_model", model["name"])
    headers = {}
    if meta.get("upstream_api_key_env"):
        import os

        key = os.environ.get(str(meta["upstream_api_key_env"]))
        if key:
            headers["Authorization"] = f"Bearer {key}"
    return url, body, headers


async def forward(
    client: httpx.AsyncClient, model: dict[str, Any], req: dict[str, Any]
) -> dict[str, Any]:
    url, body, headers = _upstream_request(model, req)
    try:
        resp = await client.post(url, json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise APIError(502, "upstream_unreachable", f"Upstream {url} failed: {exc!r}") from exc
    if resp.status_code >= 400:
        raise APIError(
            502 if resp.status_code >= 500 else resp.status_code,
            "upstream_error",
            f"Upstream answered {resp.status_code}: {resp.text[:500]}",
        )
    try:
        data: dict[str, Any] = resp.json()
    except ValueError as exc:
        raise APIError(502, "upstream_error", "Upstream answered with a non-JSON body.") from exc
    return data


async def open_upstream_stream(
    client: httpx.AsyncClient, model: dict[str, Any], req: dict[str, Any], request_id: str
) -> AsyncIterator[bytes]:
    """Connect to the upstream first, so a refused or failed call is a plain error response
    (502, or the upstream's 4xx); only failures after the first byte become an SSE error."""
    url, body, headers = _upstream_request(model, req)
    request = client.build_request("POST", url, json=body, headers=headers, timeout=120)
    try:
        resp = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise APIError(502, "upstream_unreachable", f"Upstream {url} failed: {exc!r}") from exc
    if resp.status_code >= 400:
        text = (await resp.aread()).decode(errors="replace")[:500]
        await resp.aclose()
        raise APIError(
            502 if resp.status_code >= 500 else resp.status_code,
            "upstream_error",
            f"Upstream answered {resp.status_code}: {text}",
        )

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    yield line.encode() + b"\n\n"
        except httpx.HTTPError as exc:
            yield _sse(
                {
                    "error": {
                        "message": f"Upstream stream broke: {exc!r}",
                        "type": "server_error",
                        "code": "upstream_error",
                        "param": None,
                        "request_id": request_id,
                    }
                }
            )
        finally:
            await resp.aclose()

    return relay()
