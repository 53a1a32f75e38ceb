"""The SDK against the real local gateway (``gateway`` fixture): idempotent retries after the
server did the work, injected faults, the contract's errors, pagination, executions, streaming."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from budai import AsyncBudClient, BudClient
from budai import exceptions as exc
from budai.types import Deployment, Model


@pytest.fixture
def bud(gw: Any) -> Iterator[BudClient]:
    with BudClient(api_key=gw.api_key, base_url=gw.url, timeout=10) as c:
        yield c


@pytest.fixture
async def abud(gw: Any) -> AsyncIterator[AsyncBudClient]:
    async with AsyncBudClient(api_key=gw.api_key, base_url=gw.url, timeout=10) as c:
        yield c


def available_model(bud: BudClient, name: str = "llama-3.2-1b") -> Model:
    m = bud.models.create(name=name, source="hugging_face", uri=f"org/{name}")
    deadline = time.monotonic() + 30
    while m.status != "available":
        assert time.monotonic() < deadline, m
        time.sleep(0.05)
        m = bud.models.get(m.id)
    return m


def active_deployment(bud: BudClient, model: Model, **kw: Any) -> Deployment:
    cluster = next(iter(bud.clusters.list()))
    d = bud.deployments.create(model_id=model.id, cluster_id=cluster.id, **kw)
    deadline = time.monotonic() + 30
    while d.status != "active":
        assert time.monotonic() < deadline, d
        time.sleep(0.05)
        d = bud.deployments.get(d.id)
    return d


def test_retried_create_after_a_dropped_response_creates_once(
    bud: BudClient, gw: Any, no_sleep: list[float]
) -> None:
    # The gateway creates the model, then drops the connection before answering: only the
    # Idempotency-Key, reused by the retry, keeps the retry from creating a second model.
    gw.add_fault("/v1/models", "POST", drop_after=True, count=1)
    m = bud.models.create(name="once", source="url", uri="https://x/once.bin")
    assert len(no_sleep) == 1
    assert [x.id for x in bud.models.list(name="once")] == [m.id]


def test_injected_503s_are_retried(bud: BudClient, gw: Any, no_sleep: list[float]) -> None:
    gw.add_fault("/v1/clusters", "GET", status=503, retry_after=0, count=2)
    r = bud.clusters.with_response.list()
    assert len(r.data.data) >= 1 and r.retries_taken == 2
    assert no_sleep == [0.0, 0.0]


def test_dropped_connection_is_retried(bud: BudClient, gw: Any, no_sleep: list[float]) -> None:
    gw.add_fault("/v1/clusters", "GET", drop=True, count=1)
    assert list(bud.clusters.list())
    assert len(no_sleep) == 1


def test_long_retry_after_is_raised(bud: BudClient, gw: Any, no_sleep: list[float]) -> None:
    gw.add_fault("/v1/clusters", "GET", status=429, retry_after=120, count=1)
    with pytest.raises(exc.RateLimitError) as info:
        bud.clusters.list()
    assert info.value.retry_after == 120 and info.value.request_id.startswith("req_")
    assert no_sleep == []


def test_contract_errors(bud: BudClient, gw: Any) -> None:
    with pytest.raises(exc.NotFoundError) as nf:
        bud.models.get("model_nope")
    assert nf.value.status_code == 404 and nf.value.type == "not_found_error"
    p = bud.pipelines.create(name="dup", definition={"steps": [{"id": "a", "action": "log"}]})
    with pytest.raises(exc.ConflictError) as cf:
        bud.pipelines.create(name="dup", definition={"steps": [{"id": "a", "action": "log"}]})
    assert cf.value.code == "already_exists" and cf.value.param == "name"
    assert cf.value.existing_id == p.id
    with pytest.raises(exc.ValidationError) as ve:
        bud.pipelines.create(name="bad", definition={"steps": [
            {"id": "a", "action": "log"}, {"id": "b", "action": "log", "depends_on": ["zz"]}]})
    assert ve.value.param is not None and "steps[1]" in ve.value.param
    with BudClient(api_key="bud_wrong", base_url=gw.url) as c, pytest.raises(
        exc.AuthenticationError
    ):
        c.models.list()
    with BudClient(api_key=gw.read_key, base_url=gw.url) as c:
        assert list(c.clusters.list())
        with pytest.raises(exc.PermissionError) as pe:
            c.models.create(name="x", source="url", uri="u")
        assert pe.value.status_code == 403


def test_pagination_walks_every_page(bud: BudClient, gw: Any) -> None:
    made = {bud.models.create(name=f"m{i}", source="url", uri=f"https://x/{i}").id
            for i in range(7)}
    page = bud.models.list(limit=3)
    assert len(page.data) == 3 and page.has_more and page.next_cursor
    assert {m.id for m in page} == made
    assert [len(p.data) for p in bud.models.list(limit=3).iter_pages()] == [3, 3, 1]


def test_executions_end_to_end(bud: BudClient, gw: Any) -> None:
    ok = bud.pipelines.create(name="ok", definition={"steps": [
        {"id": "a", "action": "set_output", "params": {"value": {"n": "{{ params.n }}"}}},
        {"id": "b", "action": "log", "params": {"message": "{{ steps.a.output.value.n }}"},
         "depends_on": ["a"]},
    ]})
    seen: list[str] = []
    ex = bud.executions.create(ok.id, {"n": 3}, wait=True, timeout=60,
                               on_update=lambda e: seen.append(e.status))
    assert ex.status == "completed" and ex.steps["b"].status == "completed"
    assert seen[-1] == "completed"

    bad = bud.pipelines.create(name="bad", definition={"steps": [
        {"id": "boom", "action": "fail", "params": {"message": "nope"}}]})
    failed = bud.executions.create(bad.id, wait=True, timeout=60)
    assert failed.status == "failed" and failed.error and "boom" in failed.error

    slow = bud.pipelines.create(name="slow", definition={"steps": [
        {"id": "w", "action": "wait", "params": {"seconds": 600}}]})
    running = bud.executions.create(slow.id)
    with pytest.raises(exc.TimeoutError) as info:
        bud.executions.wait(running.id, timeout=0.5)
    assert info.value.execution.status in ("pending", "running")
    bud.executions.cancel(running.id)
    assert bud.executions.wait(running.id, timeout=30).status == "cancelled"
    assert {e.id for e in bud.executions.list(pipeline_id=bad.id)} == {failed.id}

    result = bud.pipelines.validate({"steps": [{"id": "a", "action": "nope"}]})
    assert not result.valid and result.errors[0].param


def test_deployments_and_chat(bud: BudClient, gw: Any) -> None:
    model = available_model(bud)
    dep = active_deployment(bud, model)
    assert dep.endpoint_url.startswith("http") and dep.ready_replicas == 1
    scaled = bud.deployments.scale(dep.id, 2)
    assert scaled.replicas == 2
    assert bud.deployments.stop(dep.id).status == "stopped"
    with pytest.raises(exc.ConflictError):
        bud.chat.completions.create(model=model.name, messages=[{"role": "user", "content": "x"}])
    bud.deployments.start(dep.id)
    deadline = time.monotonic() + 30
    while bud.deployments.get(dep.id).status != "active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reply = bud.chat.completions.create(
        model=model.name, messages=[{"role": "user", "content": "hi"}], max_tokens=16
    )
    assert reply.choices[0].message.content and reply.usage.total_tokens > 0
    chunks = list(bud.chat.completions.create(
        model=model.name, messages=[{"role": "user", "content": "hi"}], stream=True
    ))
    assert chunks and chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content
    health = bud.clusters.health(dep.cluster_id)
    assert health.status in ("healthy", "degraded") and health.available_resources["cpu"]


async def test_async_against_the_gateway(abud: AsyncBudClient, gw: Any) -> None:
    for i in range(4):
        await abud.models.create(name=f"a{i}", source="local", uri=f"/m/{i}")
    assert len([m async for m in abud.models.list(limit=3)]) == 4
    p = await abud.pipelines.create(name="ap", definition={"steps": [{"id": "a", "action": "log"}]})
    ex = await abud.executions.create(p.id, wait=True, timeout=60)
    assert ex.status == "completed"
    r = await abud.executions.with_response.get(ex.id)
    assert r.data.id == ex.id and r.rate_limit_remaining is not None
    assert (await abud.health())["status"] == "ok"


def test_gateway_retry_after_is_honoured(bud: BudClient, gw: Any, no_sleep: list[float]) -> None:
    gw.add_fault("/v1/models", "POST", status=429, retry_after=2, count=1)
    gw.add_fault("/v1/models", "POST", status=503, count=1)  # the gateway adds Retry-After: 1
    m = bud.models.create(name="patient", source="url", uri="https://x/p.bin")
    assert no_sleep == [2.0, 1.0]
    assert [x.id for x in bud.models.list(name="patient")] == [m.id]


def test_steps_with_non_object_outputs_parse(bud: BudClient, gw: Any) -> None:
    """`transform` outputs any JSON value; every step must still parse as an ExecutionStep."""
    pipe = bud.pipelines.create(
        name=f"outputs-{time.monotonic_ns()}",
        definition={
            "steps": [
                {"id": "num", "action": "transform", "params": {"value": 42}},
                {"id": "text", "action": "transform", "params": {"value": "hi"}},
                {"id": "obj", "action": "set_output", "params": {"outputs": {"k": "v"}}},
            ]
        },
    )
    run = bud.executions.create(pipe.id, params={}, wait=True, timeout=30)
    assert run.status == "completed", run
    outputs = {sid: (step.status, step.output) for sid, step in run.steps.items()}
    assert outputs == {
        "num": ("completed", 42),
        "text": ("completed", "hi"),
        "obj": ("completed", {"k": "v"}),
    }, outputs
