"""Chat completions: a deterministic built-in engine, or forwarding to an OpenAI-compatible server.

The built-in engine answers ``"Echo: <last user message>"`` cut to ``max_tokens`` tokens, so
tests can predict every byte; token counts come from a fixed word/punctuation tokenizer. A model
whose ``metadata.upstream`` names an entry of the config's ``upstreams:`` (vLLM, llama.cpp,
Ollama, ...) is forwarded there; nothing in a request or in metadata picks a URL or a key.

Bounds (``limits.chat_*``): ``n``, ``max_tokens`` and the prompt size are checked before any
work, and the built-in engine stops a reply at ``chat_max_reply_bytes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from budai_gateway import egress
from budai_gateway.errors import APIError, printable

if TYPE_CHECKING:
    from budai_gateway.config import Limits, Settings, Upstream
    from budai_gateway.services.state import State

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str, limit: int | None = None) -> list[str]:
    """Tokens with their leading whitespace kept, so joining them gives the text back.

    With ``limit``, stop after that many tokens (the last one keeps no trailing text): a
    capped reply never tokenizes the whole of a large prompt.
    """
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if limit is not None and len(out) >= limit:
            return out
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


def resolve_target(state: State, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(deployment, model) serving ``name``: a deployment name, a model name or a model id."""
    deps = state.store.find("deployment", "name", name)
    model: dict[str, Any] | None = None
    if not deps:
        model = state.store.get("model", name)
        if model is None:
            models = state.store.find("model", "name", name)
            model = models[0] if models else None
        if model is not None:
            deps = state.store.find("deployment", "model_id", model["id"])
    if not deps:
        raise APIError(404, "model_not_found", f"No deployment serves model '{name}'.", "model")
    # A deployment keeps serving on its ready replicas while it scales.
    active = [
        d
        for d in deps
        if d["status"] in ("active", "scaling")
        and d["ready_replicas"] > 0
        and not state.teardown_scheduled(d["id"])
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
    model = state.store.get("model", dep["model_id"])
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
    def answer(
        req: dict[str, Any], index: int, token_cap: int | None = None
    ) -> tuple[list[str], str]:
        last, _ = _last_text(req)
        text = "Echo: " + last if last else "Hello from the local Bud gateway."
        fmt = (req.get("response_format") or {}).get("type")
        if fmt in ("json_object", "json_schema"):
            text = json.dumps({"echo": last})
        if index:
            text = f"[{index}] {text}"
        finish = "stop"
        max_tokens = req.get("max_tokens")
        if token_cap is not None:
            max_tokens = token_cap if max_tokens is None else min(max_tokens, token_cap)
        tokens = tokenize(text, None if max_tokens is None else max_tokens + 1)
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


def check_bounds(req: dict[str, Any], limits: Limits) -> None:
    """Refuse a request whose reply could be out of proportion (422 naming the limit)."""
    n = int(req.get("n") or 1)
    if n > limits.chat_max_n:
        raise APIError(
            422, "invalid_value", f"n: {n} choices asked; the limit is {limits.chat_max_n}"
            " (limits.chat_max_n)", "n"
        )  # fmt: skip
    max_tokens = req.get("max_tokens")
    if max_tokens is not None and int(max_tokens) > limits.chat_max_tokens:
        raise APIError(
            422, "invalid_value", f"max_tokens: {max_tokens} asked; the limit is "
            f"{limits.chat_max_tokens} (limits.chat_max_tokens)", "max_tokens"
        )  # fmt: skip
    size = sum(len(_content_text(m.get("content")).encode()) for m in req["messages"])
    if size > limits.chat_max_prompt_bytes:
        raise APIError(
            422, "invalid_value", f"messages: the prompt is {size:,} bytes; the limit is "
            f"{limits.chat_max_prompt_bytes:,} (limits.chat_max_prompt_bytes)", "messages"
        )  # fmt: skip


def completion(
    req: dict[str, Any], model_name: str, limits: Limits | None = None
) -> dict[str, Any]:
    choices = []
    completion_tokens = 0
    token_cap = limits.chat_max_tokens if limits is not None else None
    room = limits.chat_max_reply_bytes if limits is not None else None
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
        tokens, finish = BuiltinEngine.answer(req, i, token_cap)
        if room is not None:
            tokens, finish, room = _fit(tokens, finish, room)
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


def _fit(tokens: list[str], finish: str, room: int) -> tuple[list[str], str, int]:
    """Keep the tokens that fit in ``room`` bytes (limits.chat_max_reply_bytes)."""
    kept: list[str] = []
    for tok in tokens:
        room -= len(tok.encode())
        if room < 0:
            return kept, "length", 0
        kept.append(tok)
    return kept, finish, room


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


async def stream(
    req: dict[str, Any], model_name: str, limits: Limits | None = None
) -> AsyncIterator[bytes]:
    token_cap = limits.chat_max_tokens if limits is not None else None
    room = limits.chat_max_reply_bytes if limits is not None else None
    async for part in _stream(req, model_name, token_cap):
        if room is not None:
            room -= len(part)
            if room < 0:
                # Over the reply budget: end the stream the way a length stop does.
                yield _sse(
                    {
                        "id": "chatcmpl-capped",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model_name,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                    }
                )
                yield b"data: [DONE]\n\n"
                return
        yield part
        # Give other requests the loop between chunks (a long stream must not hog it).
        await asyncio.sleep(0)


async def _stream(
    req: dict[str, Any], model_name: str, token_cap: int | None
) -> AsyncIterator[bytes]:
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
        tokens, finish = BuiltinEngine.answer(req, i, token_cap)
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


# -- forwarding to configured upstreams ------------------------------------------------------


def upstream_of(settings: Settings, model: dict[str, Any]) -> Upstream | None:
    """The configured upstream a model forwards to (``metadata.upstream``), or None."""
    meta = model.get("metadata") or {}
    if "upstream_url" in meta or "upstream_api_key_env" in meta:
        raise APIError(
            409,
            "upstream_not_configured",
            f"Model '{model['name']}' names an upstream URL in its metadata, which is not "
            "honoured; name an upstream of the gateway's config with metadata.upstream.",
            "model",
        )
    name = meta.get("upstream")
    if name is None:
        return None
    up = settings.upstream(str(name))
    if up is None:
        raise APIError(
            409,
            "upstream_not_configured",
            f"Model '{model['name']}' forwards to upstream '{printable(name, 64)}', which the "
            "gateway's config does not define.",
            "model",
        )
    return up


def _upstream_key(up: Upstream) -> str | None:
    if up.api_key_env:
        return os.environ.get(up.api_key_env) or None
    if up.api_key_file:
        try:
            return Path(up.api_key_file).expanduser().read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return None


async def check_destination(settings: Settings, up: Upstream) -> None:
    """Refuse targets the config did not allow: loopback and link-local addresses (unless the
    entry says so) and the gateway itself (always). Names are resolved now, so a DNS name
    pointing at 127.0.0.1 is caught as well as a literal address."""
    url = httpx.URL(up.url)
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addrs = await egress.resolve(host, port)
    except OSError as exc:
        raise APIError(
            502, "upstream_unreachable", f"Upstream '{up.name}' could not be resolved."
        ) from exc
    own = httpx.URL(settings.public_url)
    own_port = own.port or 80
    mine = await asyncio.to_thread(egress.own_addresses)  # cached; a resolver may be slow
    for addr in addrs:
        kind = egress.address_class(addr)
        if egress.is_gateway(addr, port, own_port, mine):
            raise APIError(502, "upstream_refused", f"Upstream '{up.name}' points at this gateway.")
        if kind in ("loopback", "unspecified") and not up.allow_loopback:
            raise APIError(
                502,
                "upstream_refused",
                f"Upstream '{up.name}' resolves to a loopback address; set allow_loopback "
                "on its entry in the gateway's config to allow it.",
            )
        if kind == "link-local" and not up.allow_link_local:
            raise APIError(
                502,
                "upstream_refused",
                f"Upstream '{up.name}' resolves to a link-local address; set "
                "allow_link_local on its entry in the gateway's config to allow it.",
            )


def _upstream_request(
    up: Upstream, model: dict[str, Any], req: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    meta = model["metadata"]
    url = up.url.rstrip("/") + "/chat/completions"
    body = {k: v for k, v in req.items() if v is not None}
    body["model"] = str(meta.get("upstream_model", model["name"]))
    headers = {"accept-encoding": "identity"}
    key = _upstream_key(up)
    if key:
        headers["authorization"] = f"Bearer {key}"
    return url, body, headers


def _upstream_failed(up: Upstream, status: int) -> APIError:
    # The upstream's body is not echoed: it may be anything the target chose to say.
    return APIError(
        502 if status >= 500 or status < 400 else status,
        "upstream_error",
        f"Upstream '{up.name}' answered HTTP {status}.",
    )


async def _read_capped(resp: httpx.Response, cap: int, up: Upstream) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_raw():
        size += len(chunk)
        if size > cap:
            raise APIError(
                502,
                "upstream_error",
                f"Upstream '{up.name}' answered more than {cap:,} bytes "
                "(limits.upstream_max_response_bytes).",
            )
        parts.append(chunk)
    return b"".join(parts)


async def _send(
    state: State, up: Upstream, model: dict[str, Any], req: dict[str, Any]
) -> httpx.Response:
    """The upstream's streamed response to ``req``, once its destination is allowed."""
    await check_destination(state.settings, up)
    client = state.client()
    url, body, headers = _upstream_request(up, model, req)
    request = client.build_request("POST", url, json=body, headers=headers,
                                    timeout=up.timeout_seconds)  # fmt: skip
    try:
        return await client.send(request, stream=True, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise APIError(
            502, "upstream_unreachable", f"Upstream '{up.name}' failed: {type(exc).__name__}."
        ) from exc


async def forward(state: State, up: Upstream, model: dict[str, Any], req: dict[str, Any]) -> Any:
    cap = state.settings.limits.upstream_max_response_bytes
    resp = await _send(state, up, model, req)
    try:
        if resp.status_code != 200:
            raise _upstream_failed(up, resp.status_code)
        try:
            raw = await _read_capped(resp, cap, up)
        except httpx.HTTPError as exc:
            raise APIError(
                502, "upstream_unreachable", f"Upstream '{up.name}' failed: {type(exc).__name__}."
            ) from exc
    finally:
        await resp.aclose()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise APIError(
            502, "upstream_error", f"Upstream '{up.name}' answered with a non-JSON body."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise APIError(502, "upstream_error", f"Upstream '{up.name}' answered without choices.")
    return data


async def open_upstream_stream(
    state: State, up: Upstream, model: dict[str, Any], req: dict[str, Any], request_id: str
) -> AsyncIterator[bytes]:
    """Connect to the upstream first, so a refused or failed call is a plain error response
    (502, or the upstream's 4xx); only failures after the first byte become an SSE error."""
    cap = state.settings.limits.upstream_max_response_bytes
    resp = await _send(state, up, model, req)
    if resp.status_code != 200:
        await resp.aclose()
        raise _upstream_failed(up, resp.status_code)

    def sse_error(message: str) -> bytes:
        return _sse(
            {
                "error": {
                    "message": message,
                    "type": "server_error",
                    "code": "upstream_error",
                    "param": None,
                    "request_id": request_id,
                }
            }
        )

    async def relay() -> AsyncIterator[bytes]:
        size = 0
        try:
            async for line in resp.aiter_lines():
                size += len(line)
                if size > cap:
                    yield sse_error(
                        f"Upstream '{up.name}' sent more than {cap:,} bytes "
                        "(limits.upstream_max_response_bytes)."
                    )
                    return
                if line.startswith("data:"):
                    yield line.encode() + b"\n\n"
                    await asyncio.sleep(0)
        except httpx.HTTPError as exc:
            yield sse_error(f"Upstream '{up.name}' stream broke: {type(exc).__name__}.")
        finally:
            await resp.aclose()

    return relay()
