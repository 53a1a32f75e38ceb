"""Everyday use against the real gateway: waiters, openai-python conventions, errors that say
where they went, newest-first executions, and the OpenAI-compatible surface through the real
``openai`` package."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
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


def cluster_id(bud: BudClient) -> str:
    return next(iter(bud.clusters.list())).id


# -- waiters -----------------------------------------------------------------------------------


def test_waiters_follow_a_model_and_a_deployment_to_the_end(bud: BudClient) -> None:
    m = bud.models.create(name="w-model", source="hugging_face", uri="org/w-model")
    seen: list[Model] = []
    ready = bud.models.wait_until_available(m.id, timeout=30, on_update=seen.append)
    assert ready.status == "available" and seen and seen[-1].status == "available"
    d = bud.deployments.create(model_id=m.id, cluster_id=cluster_id(bud), name="w-dep")
    states: list[Deployment] = []
    active = bud.deployments.wait_until_active(d.id, timeout=30, on_update=states.append)
    assert active.status == "active" and active.ready_replicas == active.replicas
    assert {s.status for s in states} >= {"active"}


def test_waiters_raise_with_the_gateways_reason(bud: BudClient) -> None:
    bad = bud.models.create(name="w-bad", source="local", uri="/nonexistent/budai/model")
    with pytest.raises(exc.WaitError) as failed:
        bud.models.wait_until_available(bad.id, timeout=30)
    assert bad.id in str(failed.value) and failed.value.obj.status == "error"
    assert failed.value.obj.error and failed.value.obj.error in str(failed.value)

    ok = bud.models.wait_until_available(
        bud.models.create(name="w-ok", source="cloud", uri="x").id, timeout=30
    )
    huge = bud.deployments.create(
        model_id=ok.id, cluster_id=cluster_id(bud), name="w-huge",
        resources={"cpu": "9999", "memory": "1Gi"},
    )
    with pytest.raises(exc.WaitError) as stuck:
        bud.deployments.wait_until_active(huge.id, timeout=30, pending_timeout=0.5)
    assert "stuck pending" in str(stuck.value) and "cpu" in str(stuck.value).lower()
    assert stuck.value.obj.status == "pending"

    with pytest.raises(exc.TimeoutError) as late:
        bud.deployments.wait_until_active(huge.id, timeout=0.3, pending_timeout=math.inf)
    assert late.value.obj.status == "pending" and "0.3s" in str(late.value)


async def test_async_waiters(abud: AsyncBudClient) -> None:
    m = await abud.models.create(name="aw", source="hugging_face", uri="org/aw")
    calls: list[str] = []
    ready = await abud.models.wait_until_available(
        m.id, timeout=30, on_update=lambda x: calls.append(x.status)
    )
    assert ready.status == "available" and calls[-1] == "available"
    cl = (await abud.clusters.list()).data[0]
    d = await abud.deployments.create(model_id=m.id, cluster_id=cl.id, name="aw-dep")
    assert (await abud.deployments.wait_until_active(d.id, timeout=30)).status == "active"
    boom = await abud.pipelines.create(
        name="aw-boom", definition={"steps": [{"id": "x", "action": "fail",
                                               "params": {"message": "on purpose"}}]}
    )
    ex = await abud.executions.create(boom.id)
    with pytest.raises(exc.WaitError) as failed:
        await abud.executions.wait(ex.id, timeout=30, raise_on_failure=True)
    assert "failed" in str(failed.value) and failed.value.obj.status == "failed"
    # Without raise_on_failure the failed run is returned, as the reference page says.
    assert (await abud.executions.wait(ex.id, timeout=30)).status == "failed"


def test_executions_list_newest_first(bud: BudClient) -> None:
    p = bud.pipelines.create(name="order", definition={"steps": [{"id": "a", "action": "log"}]})
    ids = [bud.executions.create(p.id).id for _ in range(5)]
    listed = [e.id for e in bud.executions.list(pipeline_id=p.id)]
    assert listed == ids[::-1]
    first = bud.executions.list(pipeline_id=p.id, limit=2)
    assert [e.id for e in first.data] == ids[:-3:-1] and first.has_more
    assert [e.id for e in first.get_next_page().data] == ids[2:0:-1]


# -- openai-python conventions -----------------------------------------------------------------


def test_request_options_on_every_call(bud: BudClient, gw: Any) -> None:
    seen: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [seen.append]})
    with BudClient(api_key=gw.api_key, base_url=gw.url, http_client=http) as c:
        m = c.models.create(
            name="opts", source="cloud", uri="x",
            extra_body={"metadata": {"from": "extra_body"}},
            extra_headers={"X-Trace": "t1"},
            timeout=httpx.Timeout(5.0, connect=2.0),
        )
        assert m.metadata == {"from": "extra_body"}
        assert seen[-1].headers["x-trace"] == "t1"
        assert seen[-1].extensions["timeout"]["connect"] == 2.0
        c.models.get(m.id, timeout=7)
        assert seen[-1].extensions["timeout"]["read"] == 7.0
        c.models.get(m.id, timeout=None)
        assert seen[-1].extensions["timeout"]["read"] is None
        page = c.models.list(extra_query={"name": "opts"})
        assert "name=opts" in str(seen[-1].url) and [x.id for x in page] == [m.id]
        with pytest.raises(exc.BadRequestError):  # extra_query really reaches the gateway
            c.models.list(extra_query={"bogus": "1"})
        # httpx.Timeout is accepted at every level: client, with_options and per call.
        slow = c.with_options(timeout=httpx.Timeout(11.0, connect=3.0))
        slow.models.get(m.id)
        assert seen[-1].extensions["timeout"] == {"connect": 3.0, "read": 11.0,
                                                  "write": 11.0, "pool": 11.0}
    with BudClient(api_key=gw.api_key, base_url=gw.url,
                   timeout=httpx.Timeout(8.0), http_client=http) as c2:
        c2.models.get(m.id)
        assert seen[-1].extensions["timeout"]["read"] == 8.0
        with pytest.raises(ValueError, match="timeout must be > 0"):
            c2.models.get(m.id, timeout=0)
    http.close()


def test_request_id_and_raw_and_streaming_responses(bud: BudClient) -> None:
    m = bud.models.create(name="rid", source="cloud", uri="x")
    assert m._request_id
    assert "_request_id" not in m.model_dump()
    page = bud.models.list()
    assert page._request_id and page.data[0]._request_id == page._request_id
    raw = bud.models.with_raw_response.get(m.id)
    assert raw.status_code == 200 and raw.parse().id == m.id
    assert raw.request_id == raw.parse()._request_id
    with bud.models.with_streaming_response.get(m.id) as resp:
        assert resp.data.id == m.id and resp.headers["x-request-id"] == resp.request_id


def test_call_after_close_is_a_budai_error(gw: Any) -> None:
    c = BudClient(api_key=gw.api_key, base_url=gw.url)
    c.close()
    with pytest.raises(exc.ClientClosedError) as info:
        c.models.list()
    assert isinstance(info.value, exc.BudAPIError) and "closed" in str(info.value)


async def test_async_call_after_close_is_a_budai_error(gw: Any) -> None:
    c = AsyncBudClient(api_key=gw.api_key, base_url=gw.url)
    await c.close()
    with pytest.raises(exc.ClientClosedError):
        await c.models.get("model_x")


def test_bud_log_debug_logs_4xx_answers(gw: Any) -> None:
    code = (
        "from budai import BudClient\n"
        "from budai.exceptions import NotFoundError\n"
        f"c = BudClient(api_key={gw.api_key!r}, base_url={gw.url!r})\n"
        "try:\n    c.models.get('model_nope')\nexcept NotFoundError:\n    pass\n"
    )
    env = {**os.environ, "BUD_LOG": "debug"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "GET /models/model_nope -> 404" in out.stderr
    assert gw.api_key not in out.stderr


# -- errors ------------------------------------------------------------------------------------


def test_connection_error_names_the_url_and_the_cloud_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        BudClient(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0) as c,
        pytest.raises(exc.APIConnectionError) as info,
    ):
        c.models.list()
    assert "http://127.0.0.1:9/v1/models" in str(info.value)
    monkeypatch.delenv("BUD_BASE_URL", raising=False)
    with BudClient(api_key="k", max_retries=0) as c:
        assert "BUD_BASE_URL is not set" in c._url_hint() and "gateway.bud.studio" in c._url_hint()


def test_a_base_url_without_v1_gets_a_hint(gw: Any) -> None:
    root = gw.url.removesuffix("/v1")
    with (
        BudClient(api_key=gw.api_key, base_url=root, max_retries=0) as c,
        pytest.raises(exc.NotFoundError) as info,
    ):
        c.models.list()
    assert f"did you mean {root}/v1" in str(info.value)


def test_conflict_param_names_the_field(bud: BudClient) -> None:
    m = bud.models.create(name="dupe", source="cloud", uri="x")
    with pytest.raises(exc.ConflictError) as info:
        bud.models.create(name="dupe", source="cloud", uri="y")
    assert info.value.param == "name" and info.value.existing_id == m.id


# -- the OpenAI-compatible surface, through the real openai package ----------------------------


def test_openai_package_models_embeddings_completions(bud: BudClient, gw: Any) -> None:
    import openai

    m = bud.models.create(name="oai-model", source="cloud", uri="x")
    d = bud.deployments.create(model_id=m.id, cluster_id=cluster_id(bud), name="oai-dep")
    bud.deployments.wait_until_active(d.id, timeout=30)
    oai = openai.OpenAI(base_url=gw.url, api_key=gw.api_key, max_retries=0)

    listed = {x.id: x for x in oai.models.list()}
    assert set(listed) == {"oai-dep", "oai-model"}
    assert listed["oai-dep"].owned_by == "budai" and listed["oai-dep"].created > 0
    got = oai.models.retrieve("oai-model")
    assert got.id == "oai-model" and got.object == "model"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("ghost")
    # Every listed name is one chat accepts.
    for name in listed:
        out = oai.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
        assert out.choices[0].message.content == "Echo: x"

    e1 = oai.embeddings.create(model="oai-dep", input=["hello", "world"])
    e2 = oai.embeddings.create(model="oai-dep", input="hello", encoding_format="float")
    assert len(e1.data) == 2 and len(e1.data[0].embedding) == 256
    assert e1.data[0].embedding == pytest.approx(e2.data[0].embedding, rel=1e-6)
    assert e1.data[0].embedding != e1.data[1].embedding
    assert math.isclose(sum(v * v for v in e2.data[0].embedding), 1.0, rel_tol=1e-6)
    small = oai.embeddings.create(model="oai-dep", input="hi", dimensions=8)
    assert len(small.data[0].embedding) == 8 and small.usage.prompt_tokens == 1

    c = oai.completions.create(model="oai-dep", prompt="Say this", max_tokens=50)
    assert c.object == "text_completion" and c.choices[0].text == "Echo: Say this"
    streamed = "".join(
        ch.choices[0].text for ch in oai.completions.create(
            model="oai-dep", prompt="Say this", stream=True) if ch.choices
    )
    assert streamed == "Echo: Say this"
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="ghost", input="x")

    # The budai SDK still gets the registry from the same /v1/models.
    assert {x.name for x in bud.models.list()} == {"oai-model"}


async def test_async_request_options_request_id_and_responses(gw: Any) -> None:
    seen: list[httpx.Request] = []

    async def remember(request: httpx.Request) -> None:
        seen.append(request)

    http = httpx.AsyncClient(event_hooks={"request": [remember]})
    async with AsyncBudClient(api_key=gw.api_key, base_url=gw.url, http_client=http) as c:
        m = await c.models.create(
            name="a-opts", source="cloud", uri="x", extra_body={"metadata": {"a": 1}},
            extra_headers={"X-Trace": "a1"}, timeout=httpx.Timeout(4.0, connect=1.5),
        )
        assert m.metadata == {"a": 1} and m._request_id
        assert seen[-1].headers["x-trace"] == "a1"
        assert seen[-1].extensions["timeout"]["connect"] == 1.5
        page = await c.models.list(extra_query={"name": "a-opts"}, timeout=3)
        assert [x.id for x in page.data] == [m.id] and page._request_id
        assert seen[-1].extensions["timeout"]["read"] == 3.0
        raw = await c.models.with_raw_response.get(m.id)
        assert raw.parse().id == m.id and raw.status_code == 200
        async with c.models.with_streaming_response.get(m.id) as resp:
            assert resp.data._request_id == resp.request_id
        with pytest.raises(exc.ConflictError) as info:
            await c.models.create(name="a-opts", source="cloud", uri="y")
        assert info.value.param == "name" and info.value.existing_id == m.id
    await http.aclose()
