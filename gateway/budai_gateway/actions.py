"""Built-in pipeline actions. Each does its real work against the gateway's own state.

An action receives the rendered params and returns the step's output; raising
:class:`StepFailed` (or any exception) fails the attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from budai_gateway import chat, egress
from budai_gateway.errors import APIError, printable
from budai_gateway.schemas import DeploymentCreate, ModelCreate
from budai_gateway.services.clusters import Clusters
from budai_gateway.services.common import settle
from budai_gateway.services.deployments import Deployments
from budai_gateway.services.models import Models
from budai_gateway.services.state import State
from budai_gateway.store import Doc

log = logging.getLogger("budai_gateway.actions")


@dataclass(frozen=True)
class Context:
    """What an action may act on: the same services the REST routes call."""

    state: State
    models: Models
    deployments: Deployments
    clusters: Clusters


ActionFunc = Callable[[Context, dict[str, Any]], Awaitable[Any]]


class StepFailed(Exception):
    """A step attempt failed with a message meant for the user."""


def _api(exc: APIError) -> StepFailed:
    return StepFailed(f"{exc.code}: {exc.message}")


async def log_action(ctx: Context, p: dict[str, Any]) -> Any:
    level = p.get("level", "info")
    cap = ctx.state.settings.limits.max_log_message_bytes
    message = str(p.get("message", ""))
    truncated = len(message) > cap
    if truncated:
        message = message[:cap]
    # Escaped: a message cannot start a line of its own in the gateway's log.
    log.log(logging.getLevelName(str(level).upper()), "pipeline log: %s", printable(message, cap))
    out = {"message": message, "level": level, "logged": True}
    if truncated:
        out["truncated"] = f"cut to {cap:,} characters (limits.max_log_message_bytes)"
    return out


async def transform(ctx: Context, p: dict[str, Any]) -> Any:
    return p["value"]


async def set_output(ctx: Context, p: dict[str, Any]) -> Any:
    return p["outputs"] if "outputs" in p else dict(p)


async def fail(ctx: Context, p: dict[str, Any]) -> Any:
    raise StepFailed(str(p.get("message", "Intentional failure")))


async def wait(ctx: Context, p: dict[str, Any]) -> Any:
    seconds = float(p["seconds"])
    if seconds < 0:
        raise StepFailed("seconds must be >= 0")
    await asyncio.sleep(seconds)
    return {"waited_seconds": seconds}


async def http_request(ctx: Context, p: dict[str, Any]) -> Any:
    client = ctx.state.egress_client()  # the URL is the pipeline author's: egress: applies
    method = str(p.get("method", "GET")).upper()
    kwargs: dict[str, Any] = {"headers": p.get("headers") or {}}
    if "json" in p:
        kwargs["json"] = p["json"]
    elif "body" in p:
        kwargs["content"] = str(p["body"]).encode()
    timeout = float(p.get("timeout_seconds", 30))
    cap = ctx.state.settings.limits.max_step_output_bytes
    try:
        request = client.build_request(method, str(p["url"]), timeout=timeout, **kwargs)
        resp = await client.send(request, stream=True)
        try:
            raw = b""
            async for chunk in resp.aiter_bytes():
                raw += chunk
                if len(raw) > cap:
                    raise StepFailed(
                        f"response body is over the {cap:,}-byte cap (limits.max_step_output_bytes)"
                    )
        finally:
            await resp.aclose()
    except egress.EgressRefused as exc:
        raise StepFailed(str(exc)) from None  # nothing was sent; the target said nothing
    except httpx.HTTPError as exc:
        raise StepFailed(f"request to {p['url']} failed: {exc!r}") from exc
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(resp.encoding or "utf-8", errors="replace")
    output = {"status_code": resp.status_code, "headers": dict(resp.headers), "body": body}
    expected = p.get("expected_status")
    if expected is not None:
        allowed = expected if isinstance(expected, list) else [expected]
        if resp.status_code not in [int(x) for x in allowed]:
            raise StepFailed(f"expected status {expected}, got {resp.status_code}")
    elif resp.status_code >= 400:
        raise StepFailed(f"{method} {p['url']} answered {resp.status_code}")
    return output


def _wait_flag(p: dict[str, Any]) -> tuple[bool, float]:
    return bool(p.get("wait", True)), float(p.get("wait_timeout_seconds", 600))


async def _wait_until(
    ctx: Context, p: dict[str, Any], doc: Doc, until: set[str], failed: str | None = None
) -> Doc:
    """Unless the step says ``wait: false``: the object once it reaches ``until`` (the step
    fails when it disappears, or when it lands in ``failed``)."""
    should_wait, timeout = _wait_flag(p)
    if not should_wait:
        return doc
    kind = doc["object"]
    settled = await settle(ctx.state, kind, doc["id"], until, timeout)
    if settled is None:
        raise StepFailed(f"{kind} {doc['id']} disappeared")
    if failed is not None and settled["status"] == failed:
        raise StepFailed(f"{kind} {doc['id']} failed: {settled['error']}")
    return settled


async def model_add(ctx: Context, p: dict[str, Any]) -> Any:
    body = {
        "name": p["name"],
        "source": p["source"],
        "uri": p["uri"],
        "metadata": p.get("metadata"),
    }
    try:
        ModelCreate.model_validate(body)
        doc = await ctx.models.add(body)
    except APIError as exc:
        if exc.code != "already_exists":
            raise _api(exc) from exc
        # Re-running a pipeline reuses the model it added before.
        doc = ctx.models.get(exc.headers["Location"].rsplit("/", 1)[-1])
    doc = await _wait_until(ctx, p, doc, {"available", "error"}, failed="error")
    return {**doc, "model_id": doc["id"]}


async def model_delete(ctx: Context, p: dict[str, Any]) -> Any:
    try:
        doc = ctx.models.delete(str(p["model_id"]))
    except APIError as exc:
        raise _api(exc) from exc
    should_wait, timeout = _wait_flag(p)
    if should_wait:
        await settle(ctx.state, "model", doc["id"], set(), timeout)
    return {"model_id": doc["id"], "deleted": True}


async def deployment_create(ctx: Context, p: dict[str, Any]) -> Any:
    body: dict[str, Any] = {
        k: p[k]
        for k in ("model_id", "cluster_id", "name", "replicas", "resources", "auto_scaling")
        if k in p
    }
    try:
        DeploymentCreate.model_validate(body)
        doc = ctx.deployments.create(body)
    except APIError as exc:
        raise _api(exc) from exc
    except ValueError as exc:
        raise StepFailed(f"invalid deployment parameters: {exc}") from exc
    doc = await _wait_until(ctx, p, doc, {"active", "failed"}, failed="failed")
    return {**doc, "deployment_id": doc["id"]}


async def deployment_scale(ctx: Context, p: dict[str, Any]) -> Any:
    try:
        replicas = int(p["replicas"])
        if not 0 <= replicas <= 100:
            raise StepFailed("replicas must be between 0 and 100")
        doc = ctx.deployments.update(str(p["deployment_id"]), {"replicas": replicas})
    except APIError as exc:
        raise _api(exc) from exc
    doc = await _wait_until(ctx, p, doc, {"active", "failed", "stopped"})
    return {**doc, "deployment_id": doc["id"]}


async def deployment_delete(ctx: Context, p: dict[str, Any]) -> Any:
    try:
        doc = ctx.deployments.delete(str(p["deployment_id"]))
    except APIError as exc:
        raise _api(exc) from exc
    should_wait, timeout = _wait_flag(p)
    if should_wait:
        await settle(ctx.state, "deployment", doc["id"], set(), timeout)
    return {"deployment_id": doc["id"], "deleted": True}


async def cluster_health(ctx: Context, p: dict[str, Any]) -> Any:
    try:
        health = ctx.clusters.health(str(p["cluster_id"]))
    except APIError as exc:
        raise _api(exc) from exc
    return {**health, "healthy": health["status"] == "healthy"}


async def chat_completion(ctx: Context, p: dict[str, Any]) -> Any:
    messages = p.get("messages") or [{"role": "user", "content": str(p.get("prompt", ""))}]
    req: dict[str, Any] = {"model": p["model"], "messages": messages, "n": 1}
    for k in ("max_tokens", "temperature"):
        if k in p:
            req[k] = p[k]
    try:
        dep, model = chat.resolve_target(ctx.state, str(p["model"]))
    except APIError as exc:
        raise _api(exc) from exc
    try:
        chat.check_bounds(req, ctx.state.settings.limits)
        up = chat.upstream_of(ctx.state.settings, model)
        ctx.state.traffic.record(dep["id"])
        if up is not None:
            result = await chat.forward(ctx.state, up, model, req)
        else:
            result = chat.completion(req, str(p["model"]), ctx.state.settings.limits)
    except APIError as exc:
        raise _api(exc) from exc
    choice = result["choices"][0]
    return {
        "content": choice["message"]["content"],
        "finish_reason": choice["finish_reason"],
        "usage": result.get("usage"),
        "model": result.get("model"),
    }


ACTION_FUNCS: dict[str, ActionFunc] = {
    "log": log_action,
    "transform": transform,
    "set_output": set_output,
    "fail": fail,
    "wait": wait,
    "http_request": http_request,
    "model_add": model_add,
    "model_delete": model_delete,
    "deployment_create": deployment_create,
    "deployment_scale": deployment_scale,
    "deployment_delete": deployment_delete,
    "cluster_health": cluster_health,
    "chat_completion": chat_completion,
}
