"""Every resource method against the local server: paths, bodies, parsing, pagination,
streaming, ``with_response``, ``executions.wait`` and the builder protocol of ``pipelines``."""

from __future__ import annotations

import time

import pytest

from budai import AsyncBudClient, BudClient
from budai import exceptions as exc
from budai.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Execution,
    Model,
    PipelineDefinition,
    Response,
    SyncPage,
)

from ._server import API_KEY, READ_KEY, FakeBud, Reply, ScriptedServer

STEPS: PipelineDefinition = {
    "steps": [
        {"id": "fetch", "action": "log", "params": {"message": "hi"}},
        {"id": "after", "action": "log", "params": {}, "depends_on": ["fetch"],
         "retry": {"max_attempts": 2, "backoff_multiplier": 2.0}},
    ]
}


def add_models(client: BudClient, n: int) -> list[Model]:
    return [client.models.create(name=f"m{i}", source="url", uri=f"https://x/{i}") for i in
            range(n)]


def test_models_crud(client: BudClient, server: ScriptedServer) -> None:
    m = client.models.create(name="m", source="hugging_face", uri="org/m", metadata={"a": 1})
    assert isinstance(m, Model) and m.id.startswith("model_") and m.metadata == {"a": 1}
    assert m.progress_percent == 0.0
    assert server.requests[-1].json == {"name": "m", "source": "hugging_face", "uri": "org/m",
                                        "metadata": {"a": 1}}
    assert client.models.get(m.id).name == "m"
    client.models.delete(m.id)
    with pytest.raises(exc.NotFoundError) as info:
        client.models.get(m.id)
    assert info.value.code == "model_not_found"


def test_list_iterates_across_pages(client: BudClient, server: ScriptedServer) -> None:
    made = add_models(client, 7)
    page = client.models.list(limit=3, source="url")
    assert isinstance(page, SyncPage) and len(page.data) == 3 and page.has_more
    assert [m.id for m in page] == [m.id for m in made]
    gets = server.requests_to("GET", "/models")
    assert [r.query.get("after") for r in gets] == [None, made[2].id, made[5].id]
    assert all(r.query["source"] == "url" and r.query["limit"] == "3" for r in gets)
    pages = list(client.models.list(limit=3, source="url").iter_pages())
    assert [len(p.data) for p in pages] == [3, 3, 1]
    assert not pages[-1].has_next_page()
    with pytest.raises(RuntimeError):
        pages[-1].get_next_page()


def test_deployments_lifecycle(client: BudClient, server: ScriptedServer) -> None:
    d = client.deployments.create(
        model_id="model_abc", cluster_id="cluster_prod", replicas=2,
        auto_scaling={"enabled": False}, resources={"cpu": "2", "memory": "4Gi", "gpu": None},
    )
    assert d.status == "pending" and d.resources["cpu"] == "2"
    assert d.auto_scaling is not None and d.auto_scaling["enabled"] is False
    assert server.requests[-1].json["resources"] == {"cpu": "2", "memory": "4Gi", "gpu": None}
    scaled = client.deployments.scale(d.id, 3)
    assert scaled.replicas == 3 and scaled.status == "scaling"
    assert server.requests[-1].method == "PATCH" and server.requests[-1].json == {"replicas": 3}
    assert client.deployments.stop(d.id).status == "stopped"
    assert server.requests[-1].path == f"/deployments/{d.id}/stop"
    assert client.deployments.start(d.id).status == "deploying"
    assert [x.id for x in client.deployments.list(model_id="model_abc")] == [d.id]
    assert client.deployments.delete(d.id).status == "deleting"


def test_clusters_and_health(client: BudClient) -> None:
    clusters = list(client.clusters.list(provider="onpremise"))
    assert [c.id for c in clusters] == ["cluster_prod"]
    health = client.clusters.health("cluster_prod")
    assert health.status == "healthy"
    assert health.available_resources["cpu"] == "15500m"
    assert health.available_resources["gpu_types"] == []


def test_pipelines_and_executions(client: BudClient, server: ScriptedServer) -> None:
    p = client.pipelines.create(name="p", definition=STEPS, description="d")
    assert p.status == "active" and p.definition["steps"][1]["depends_on"] == ["fetch"]
    assert client.pipelines.get(p.id).description == "d"
    with pytest.raises(exc.ConflictError) as info:
        client.pipelines.create(name="p", definition=STEPS)
    assert info.value.code == "already_exists" and info.value.param == "name"
    assert info.value.existing_id == p.id

    started = time.monotonic()
    seen: list[str] = []
    ex = client.executions.create(p.id, {"env": "dev"}, wait=True, timeout=30,
                                  on_update=lambda e: seen.append(e.status))
    assert isinstance(ex, Execution) and ex.status == "completed"
    assert ex.steps["after"].status == "completed" and ex.outputs["fetch"] == {"ok": True}
    assert ex.params == {"env": "dev"} and ex.duration_seconds is not None
    assert seen == ["running", "completed"]
    assert 0.4 <= time.monotonic() - started < 15  # first poll after 0.5 s
    assert [e.id for e in client.executions.list(pipeline_id=p.id)] == [ex.id]
    assert server.requests_to("GET", "/executions")[-1].query == {"pipeline_id": p.id}
    client.pipelines.delete(p.id)
    with pytest.raises(exc.NotFoundError):
        client.pipelines.get(p.id)


def test_failed_execution_is_returned_not_raised(client: BudClient) -> None:
    p = client.pipelines.create(name="f", definition={"steps": [{"id": "x", "action": "fail"}]})
    ex = client.executions.create(pipeline_id=p.id, wait=True)
    assert ex.status == "failed" and ex.error == "step failed"


def test_wait_deadline_raises_timeout_with_last_state(
    client: BudClient, fake: FakeBud
) -> None:
    fake.polls_to_finish = 1000
    p = client.pipelines.create(name="slow", definition=STEPS)
    ex = client.executions.create(p.id)
    started = time.monotonic()
    with pytest.raises(exc.TimeoutError) as info:
        client.executions.wait(ex.id, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 10  # deadline 0.3 s (loose bound)
    assert info.value.execution.id == ex.id and info.value.execution.status == "running"
    assert client.executions.cancel(ex.id).status == "cancelled"


def test_validate_returns_a_result(client: BudClient) -> None:
    ok = client.pipelines.validate(STEPS)
    assert ok.valid and ok.errors == [] and bool(ok)
    bad = client.pipelines.validate({"steps": [{"id": "a", "action": "log", "depends_on": ["z"]}]})
    assert not bad.valid
    assert bad.errors[0].param == "definition.steps[0].depends_on[0]"
    assert "unknown step z" in bad.errors[0].message


class Builder:
    def build(self) -> PipelineDefinition:
        return STEPS


class Exporter:
    def to_definition(self) -> PipelineDefinition:
        return {"steps": [{"id": "only", "action": "log"}]}


def test_pipelines_accept_builders(client: BudClient, server: ScriptedServer) -> None:
    a = client.pipelines.create(name="built", definition=Builder())
    assert a.definition == STEPS
    b = client.pipelines.create(name="exported", definition=Exporter())
    assert b.definition["steps"][0]["id"] == "only"
    assert client.pipelines.validate(Builder()).valid
    with pytest.raises(TypeError, match="build"):
        client.pipelines.create(name="x", definition=42)  # type: ignore[arg-type]


def test_chat_completion(client: BudClient, server: ScriptedServer) -> None:
    r = client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}],
                                       temperature=0.2, max_tokens=5)
    assert isinstance(r, ChatCompletion) and r.object == "chat.completion"
    assert r.choices[0].message.content == "Hello from llama" and r.usage.total_tokens == 6
    body = server.requests[-1].json
    assert body == {"model": "llama", "messages": [{"role": "user", "content": "hi"}],
                    "temperature": 0.2, "max_tokens": 5}


def test_chat_stream(client: BudClient, server: ScriptedServer) -> None:
    stream = client.chat.completions.create(
        model="llama", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hellofromllama"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert server.requests[-1].json["stream"] is True
    assert server.requests[-1].headers["accept"] == "text/event-stream"
    assert stream.response.is_closed


def test_stream_error_event_and_early_close(client: BudClient, server: ScriptedServer) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
    server.script("POST", "/chat/completions", Reply(sse=[chunk, {"error": {
        "message": "deployment stopped", "type": "conflict_error", "code": "not_active"}}]))
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    it = iter(stream)
    assert next(it).choices[0].delta.content == "a"
    with pytest.raises(exc.ConflictError, match="deployment stopped") as info:
        next(it)
    assert info.value.code == "not_active"
    assert stream.response.is_closed

    server.script("POST", "/chat/completions", Reply(sse=[chunk] * 50, sse_gap=0.001))
    with client.chat.completions.create(model="m", messages=[], stream=True) as s:
        first = next(iter(s))
        assert first.id == "c"
    assert s.response.is_closed


def test_stream_idle_timeout(server: ScriptedServer, fake: FakeBud) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
    server.script("POST", "/chat/completions", Reply(sse=[chunk, chunk], sse_gap=0.8))
    with BudClient(api_key=API_KEY, base_url=server.url, timeout=0.3) as c:
        stream = c.chat.completions.create(model="m", messages=[], stream=True)
        with pytest.raises(exc.TimeoutError, match="idle"):
            list(stream)


def test_with_response(client: BudClient, server: ScriptedServer) -> None:
    r = client.models.with_response.get("model_abc", extra_headers={"X-Request-ID": "req_mine"})
    assert isinstance(r, Response) and isinstance(r.data, Model)
    assert r.status_code == 200 and r.request_id == "req_mine"
    assert r.rate_limit_remaining == 999 and r.rate_limit_reset is not None
    assert r.headers["x-ratelimit-limit"] == "1000" and r.retries_taken == 0
    created = client.deployments.with_response.create(model_id="model_abc",
                                                      cluster_id="cluster_prod")
    assert created.status_code == 201 and created.data.status == "pending"
    page = client.models.with_response.list()
    assert page.data.data[0].id == "model_abc"
    chat = client.chat.completions.with_response.create(model="m", messages=[])
    assert chat.data.choices[0].message.role == "assistant"
    s = client.chat.completions.with_response.create(model="m", messages=[], stream=True)
    assert s.status_code == 200 and len(list(s.data)) > 1
    health = client.clusters.with_response.health("cluster_prod")
    assert health.data.node_count == 2


def test_auth_errors(server: ScriptedServer, fake: FakeBud) -> None:
    with BudClient(api_key="wrong", base_url=server.url) as c, pytest.raises(
        exc.AuthenticationError
    ):
        c.models.get("model_abc")
    with BudClient(api_key=READ_KEY, base_url=server.url) as c:
        assert c.models.get("model_abc").id == "model_abc"
        with pytest.raises(PermissionError) as info:  # the builtin catches it too
            c.models.delete("model_abc")
        assert isinstance(info.value, exc.PermissionError) and info.value.status_code == 403


def test_empty_ids_are_refused_before_sending(client: BudClient, server: ScriptedServer) -> None:
    n = len(server.requests)
    with pytest.raises(ValueError, match="deployment_id"):
        client.deployments.get("")
    assert len(server.requests) == n


# --- async ------------------------------------------------------------------------------------


async def test_async_flows(aclient: AsyncBudClient, server: ScriptedServer) -> None:
    for i in range(5):
        await aclient.models.create(name=f"a{i}", source="local", uri=f"/m/{i}")
    ids = [m.id async for m in aclient.models.list(limit=2, source="local")]
    assert len(ids) == 5
    first = await aclient.models.list(limit=2)
    assert len(first.data) == 2 and first.has_next_page()
    second = await first.get_next_page()
    assert second.data[0].id != first.data[0].id

    p = await aclient.pipelines.create(name="ap", definition=Builder())
    ex = await aclient.executions.create(p.id, wait=True)
    assert ex.status == "completed"
    assert [e.id async for e in aclient.executions.list(pipeline_id=p.id)] == [ex.id]
    assert (await aclient.pipelines.validate(STEPS)).valid

    health = await aclient.clusters.health("cluster_prod")
    assert health.available_resources["memory_gb"] == 60.0
    d = await aclient.deployments.create(model_id="model_abc", cluster_id="cluster_prod")
    assert (await aclient.deployments.scale(d.id, 2)).replicas == 2

    reply = await aclient.chat.completions.create(model="m", messages=[{"role": "user",
                                                                          "content": "x"}])
    assert reply.choices[0].finish_reason == "stop"
    stream = await aclient.chat.completions.create(model="m", messages=[], stream=True)
    chunks = [c async for c in stream]
    assert chunks[-1].choices[0].finish_reason == "stop" and stream.response.is_closed

    r = await aclient.models.with_response.get("model_abc")
    assert r.status_code == 200 and r.data.id == "model_abc" and r.request_id
    lr = await aclient.models.with_response.list(limit=1)
    assert len(lr.data.data) == 1
    sr = await aclient.chat.completions.with_response.create(model="m", messages=[],
                                                             stream=True)
    assert [c async for c in sr.data]
    assert (await aclient.health())["status"] == "ok"


async def test_async_wait_timeout(aclient: AsyncBudClient, fake: FakeBud) -> None:
    fake.polls_to_finish = 1000
    p = await aclient.pipelines.create(name="aslow", definition=STEPS)
    ex = await aclient.executions.create(p.id)
    with pytest.raises(exc.TimeoutError) as info:
        await aclient.executions.wait(ex.id, timeout=0.2)
    assert info.value.execution.status == "running"
    assert (await aclient.executions.cancel(ex.id)).status == "cancelled"
