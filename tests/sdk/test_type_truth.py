"""Type truth: every response of every resource, as the real gateway sends it, validates
*strictly* (no lenient fallback, no type coercion) against the type the SDK declares for it.

The lenient parser would keep a value whose type is wrong (``size_bytes: null`` on an ``int``
field), so a passing SDK call proves nothing; this test validates the raw JSON itself, over
objects in every state a user meets: cloud and downloaded models, a model in error, pending
(short of CPU), active and stopped deployments, valid and invalid pipelines, completed and
failed executions, chat completions and stream chunks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter

from budai.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Cluster,
    ClusterHealth,
    Deployment,
    Execution,
    Model,
    Pipeline,
    PipelineValidation,
)


@pytest.fixture
def raw(gateway: Any) -> Iterator[httpx.Client]:
    gateway.reset()
    with gateway.client() as c:
        yield c


def strict(cls: type[BaseModel], response: httpx.Response) -> BaseModel:
    """``response``'s JSON validated strictly as ``cls`` (fails on any false declared type)."""
    assert response.is_success, response.text
    return cls.model_validate_json(response.content, strict=True)


def strict_page(cls: type[BaseModel], response: httpx.Response) -> list[BaseModel]:
    assert response.is_success, response.text
    body = response.json()
    assert isinstance(body["data"], list) and isinstance(body["has_more"], bool)
    return [cls.model_validate_json(json.dumps(item), strict=True) for item in body["data"]]


def settle(c: httpx.Client, path: str, statuses: set[str], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = c.get(path).json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_every_resource_response_matches_the_declared_types(raw: httpx.Client) -> None:
    seen: dict[str, int] = {}

    def check(cls: type[BaseModel], response: httpx.Response) -> Any:
        strict(cls, response)
        seen[cls.__name__] = seen.get(cls.__name__, 0) + 1
        return response.json()

    def check_page(cls: type[BaseModel], response: httpx.Response) -> None:
        seen[cls.__name__] = seen.get(cls.__name__, 0) + len(strict_page(cls, response))

    # Models: cloud (no size ever), hugging_face (downloading, then available), error.
    cloud = check(Model, raw.post("/models", json={"name": "c", "source": "cloud", "uri": "x"}))
    assert cloud["size_bytes"] is None  # what the gateway sends; the SDK type must absorb it
    hf = check(Model, raw.post("/models", json={"name": "h", "source": "hugging_face",
                                                "uri": "org/h"}))
    bad = check(Model, raw.post("/models", json={"name": "b", "source": "local",
                                                 "uri": "/nonexistent/budai/model"}))
    settle(raw, f"/models/{hf['id']}", {"available"})
    settle(raw, f"/models/{bad['id']}", {"error"})
    for m in (cloud, hf, bad):
        check(Model, raw.get(f"/models/{m['id']}"))
    check(Model, raw.patch(f"/models/{cloud['id']}", json={"metadata": {"k": 1}}))
    check_page(Model, raw.get("/models"))

    # Clusters and their health.
    check_page(Cluster, raw.get("/clusters"))
    for cl in raw.get("/clusters").json()["data"]:
        check(Cluster, raw.get(f"/clusters/{cl['id']}"))
        check(ClusterHealth, raw.get(f"/clusters/{cl['id']}/health"))
    cluster_id = raw.get("/clusters").json()["data"][0]["id"]

    # Deployments: pending (short of CPU, with a reason), active, stopped, failed.
    dep = check(Deployment, raw.post("/deployments", json={
        "model_id": hf["id"], "cluster_id": cluster_id, "name": "d"}))
    huge = check(Deployment, raw.post("/deployments", json={
        "model_id": hf["id"], "cluster_id": cluster_id, "name": "huge",
        "resources": {"cpu": "9999", "memory": "1Gi"}}))
    failed = check(Deployment, raw.post("/deployments", json={
        "model_id": bad["id"], "cluster_id": cluster_id, "name": "f"}))
    settle(raw, f"/deployments/{dep['id']}", {"active"})
    settle(raw, f"/deployments/{failed['id']}", {"failed"})
    pending = check(Deployment, raw.get(f"/deployments/{huge['id']}"))
    assert pending["status"] == "pending"
    check(Deployment, raw.get(f"/deployments/{dep['id']}"))
    check(Deployment, raw.get(f"/deployments/{failed['id']}"))
    check(Deployment, raw.patch(f"/deployments/{dep['id']}", json={"replicas": 2}))
    settle(raw, f"/deployments/{dep['id']}", {"active"})
    check_page(Deployment, raw.get("/deployments"))

    # Chat: a completion and every chunk of a stream.
    msgs = [{"role": "user", "content": "hi"}]
    check(ChatCompletion, raw.post("/chat/completions", json={"model": "d", "messages": msgs}))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    called = check(ChatCompletion, raw.post("/chat/completions", json={
        "model": "d", "messages": msgs, "tools": tools, "tool_choice": "required", "n": 2}))
    assert called["choices"][0]["message"]["tool_calls"]
    check(ChatCompletion, raw.post("/chat/completions", json={
        "model": "d", "messages": msgs, "max_tokens": 1,
        "response_format": {"type": "json_object"}}))
    with raw.stream("POST", "/chat/completions", json={
            "model": "d", "messages": msgs, "stream": True, "tools": tools,
            "tool_choice": "required"}) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                ChatCompletionChunk.model_validate_json(line[6:], strict=True)
    with raw.stream("POST", "/chat/completions",
                    json={"model": "d", "messages": msgs, "stream": True,
                          "stream_options": {"include_usage": True}}) as r:
        chunks = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    for data in chunks[:-1]:
        ChatCompletionChunk.model_validate_json(data, strict=True)
    check(Deployment, raw.post(f"/deployments/{dep['id']}/stop"))
    check(Deployment, raw.get(f"/deployments/{dep['id']}"))
    check(Deployment, raw.post(f"/deployments/{dep['id']}/start"))
    check(Deployment, raw.delete(f"/deployments/{huge['id']}"))

    # Pipelines, validation results, executions (completed and failed).
    steps = [{"id": "a", "action": "log", "params": {"message": "x"}},
             {"id": "b", "action": "transform", "params": {"value": 3}, "depends_on": ["a"]}]
    p = check(Pipeline, raw.post("/pipelines", json={"name": "p", "definition": {"steps": steps}}))
    check(Pipeline, raw.get(f"/pipelines/{p['id']}"))
    check(Pipeline, raw.patch(f"/pipelines/{p['id']}", json={"description": "d"}))
    check_page(Pipeline, raw.get("/pipelines"))
    valid = {"definition": {"steps": steps}}
    check(PipelineValidation, raw.post("/pipelines/validate", json=valid))
    check(PipelineValidation, raw.post("/pipelines/validate", json={"definition": {"steps": [
        {"id": "a", "action": "log", "depends_on": ["nope"]}]}}))
    boom = check(Pipeline, raw.post("/pipelines", json={"name": "boom", "definition": {"steps": [
        {"id": "x", "action": "fail", "params": {"message": "on purpose"}}]}}))
    ex = check(Execution, raw.post("/executions", json={"pipeline_id": p["id"], "params": {}}))
    exf = check(Execution, raw.post("/executions", json={"pipeline_id": boom["id"]}))
    settle(raw, f"/executions/{ex['id']}", {"completed"})
    settle(raw, f"/executions/{exf['id']}", {"failed"})
    check(Execution, raw.get(f"/executions/{ex['id']}"))
    check(Execution, raw.get(f"/executions/{exf['id']}"))
    slow = check(Pipeline, raw.post("/pipelines", json={"name": "slow", "definition": {"steps": [
        {"id": "nap", "action": "wait", "params": {"seconds": 30}}]}}))
    running = check(Execution, raw.post("/executions", json={"pipeline_id": slow["id"]}))
    check(Execution, raw.post(f"/executions/{running['id']}/cancel"))
    settle(raw, f"/executions/{running['id']}", {"cancelled"})
    check(Execution, raw.get(f"/executions/{running['id']}"))
    check_page(Execution, raw.get("/executions"))
    check_page(Execution, raw.get("/executions", params={"status": "failed"}))

    # Deletes answer with the object on its way out.
    check(Deployment, raw.delete(f"/deployments/{failed['id']}"))
    deadline = time.monotonic() + 20
    while raw.get(f"/deployments/{failed['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    check(Model, raw.delete(f"/models/{bad['id']}"))
    assert raw.delete(f"/pipelines/{boom['id']}").json()["deleted"] is True

    # Actions: `pipelines.actions()` is declared list[dict[str, Any]].
    actions = raw.get("/actions").json()["data"]
    TypeAdapter(list[dict[str, Any]]).validate_python(actions, strict=True)

    assert set(seen) == {"Model", "Cluster", "ClusterHealth", "Deployment", "ChatCompletion",
                         "Pipeline", "PipelineValidation", "Execution"}, seen


def test_the_sdk_parses_what_it_declares(gateway: Any) -> None:
    """The declared type of ``size_bytes`` holds on a parsed cloud model (the issue's case)."""
    from budai import BudClient

    gateway.reset()
    with BudClient(api_key=gateway.api_key, base_url=gateway.url) as bud:
        m = bud.models.create(name="cloudy", source="cloud", uri="gpt-x")
        assert isinstance(m.size_bytes, int) and m.size_bytes + 1 == 1
        raw = httpx.get(f"{gateway.url}/models/{m.id}",
                        headers={"Authorization": f"Bearer {gateway.api_key}"}).json()
        assert raw["size_bytes"] is None
        assert Model.model_validate(raw).size_bytes == 0  # the gateway's own JSON validates
