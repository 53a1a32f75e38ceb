"""Sync and async clients behave the same, resource by resource: one scripted sequence of calls
runs through ``BudClient`` and through ``AsyncBudClient`` against the real local gateway (reset
before each), and gives the same results, the same errors and the same requests on the wire
(method, path, query, body, which attempts share an Idempotency-Key), retries after injected
faults included. Ids, times and request ids differ between runs, so both records name them by
order of appearance before they are compared."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from budai import AsyncBudClient, BudClient
from budai import exceptions as exc

Record = list[dict[str, Any]]
_ID = re.compile(r"\b[a-z]+_[0-9a-f]{20}\b|\breq_[0-9a-f]{24}\b")
_VOLATILE = re.compile(r"(_at|_seconds|duration\w*)$")


class Names:
    """Names ids (and Idempotency-Keys) by order of appearance, the same way in both runs."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def name(self, value: str, kind: str = "id") -> str:
        if value not in self.seen:
            self.seen[value] = f"<{kind}{len(self.seen)}>"
        return self.seen[value]

    def text(self, value: str) -> str:
        return _ID.sub(lambda m: self.name(m.group(0)), value)

    def tree(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.tree(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        if _VOLATILE.search(key) and value is not None:
            return "<volatile>"
        if isinstance(value, str):
            return self.text(value)
        return value


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


async def settle(value: Any) -> Any:
    """What a call gives, sync or async: pages walked to the end, coroutines awaited."""
    if hasattr(value, "__aiter__"):
        return [x async for x in value]
    if inspect.isawaitable(value):
        return await value
    if type(value).__name__.endswith(("Page", "Paginator")):
        return list(value)
    return value


@dataclass
class Session:
    """One client running a script; every step's outcome and requests go into ``record``."""

    client: Any
    gateway: Any
    sent: list[httpx.Request]
    record: Record = field(default_factory=list)
    names: Names = field(default_factory=Names)

    async def do(self, step: str, call: Callable[[Any], Any], polls: bool = False) -> Any:
        before = len(self.sent)
        outcome: Any
        result = None
        try:
            result = await settle(call(self.client))
            outcome = {"result": plain(result)}
        except exc.BudAPIError as e:
            outcome = {
                "error": type(e).__name__,
                "status": e.status_code,
                "code": e.code,
                "param": e.param,
                "message": e.message,
            }
        requests = [self.request(r) for r in self.sent[before:]]
        if polls:  # how often a wait polls depends on timing, not on the client
            requests = [r for i, r in enumerate(requests) if i == 0 or r != requests[i - 1]]
        self.record.append({"step": step, **self.names.tree(outcome), "requests": requests})
        return result

    def request(self, r: httpx.Request) -> dict[str, Any]:
        body = json.loads(r.content) if r.content else None
        idem = r.headers.get("idempotency-key")
        return {
            "method": r.method,
            "path": self.names.text(r.url.path),
            "query": sorted(self.names.tree(dict(r.url.params)).items()),
            "body": self.names.tree(body),
            "idempotency_key": None if idem is None else self.names.name(idem, "idem"),
        }

    def fault(self, *args: Any, **kw: Any) -> None:
        self.gateway.add_fault(*args, **kw)


PIPELINE = {
    "steps": [
        {"id": "a", "action": "log", "params": {"message": "hi"}},
        {"id": "b", "action": "transform", "depends_on": ["a"],
         "params": {"value": "{{ steps.a.output.message }}"}},
    ]
}  # fmt: skip


async def models_script(s: Session) -> None:
    m = await s.do("create", lambda c: c.models.create(name="par", source="cloud", uri="gpt-x"))
    await s.do("get", lambda c: c.models.get(m.id))
    await s.do("update", lambda c: c.models.update(m.id, metadata={"team": "a"}))
    await s.do("list", lambda c: c.models.list(name="par"))
    await s.do("get missing", lambda c: c.models.get("model_00000000000000000000"))
    await s.do("bad source", lambda c: c.models.create(name="x", source="ftp", uri="u"))
    s.fault("/v1/models", "POST", drop_after=True, count=1)
    await s.do(
        "create, answer dropped", lambda c: c.models.create(name="once", source="cloud", uri="o")
    )
    await s.do("list once", lambda c: c.models.list(name="once"))
    await s.do(
        "same key",
        lambda c: c.models.create(name="k1", source="cloud", uri="k", idempotency_key="same"),
    )
    await s.do(
        "same key again",
        lambda c: c.models.create(name="k1", source="cloud", uri="k", idempotency_key="same"),
    )
    await s.do(
        "same key, other body",
        lambda c: c.models.create(name="k2", source="cloud", uri="k", idempotency_key="same"),
    )
    await s.do("delete", lambda c: c.models.delete(m.id))
    await s.do("get deleted", lambda c: c.models.get(m.id))  # fmt: skip


async def clusters_script(s: Session) -> None:
    clusters = await s.do("list", lambda c: c.clusters.list())
    await s.do("get", lambda c: c.clusters.get(clusters[0].id))
    s.fault("/v1/clusters", "GET", status=503, retry_after=0, count=2)
    await s.do("list after two 503s", lambda c: c.clusters.list())
    s.fault("/v1/clusters", "GET", drop=True, count=1)
    await s.do("list after a drop", lambda c: c.clusters.list())
    s.fault("/v1/clusters", "GET", status=500, count=10)
    await s.do("list through 500s", lambda c: c.clusters.list())
    s.gateway.clear_faults()
    await s.do("get missing", lambda c: c.clusters.get("cluster_00000000000000000000"))


async def pipelines_script(s: Session) -> None:
    bad = {"steps": [{"id": "a", "action": "log", "params": {"mesage": "hi"}}]}
    await s.do("validate bad", lambda c: c.pipelines.validate(definition=bad))
    await s.do("validate good", lambda c: c.pipelines.validate(definition=PIPELINE))
    p = await s.do("create", lambda c: c.pipelines.create(name="par", definition=PIPELINE))
    await s.do("create bad", lambda c: c.pipelines.create(name="bad", definition=bad))
    await s.do("get", lambda c: c.pipelines.get(p.id))
    await s.do("list", lambda c: c.pipelines.list())
    await s.do("actions", lambda c: c.pipelines.actions())
    await s.do("delete", lambda c: c.pipelines.delete(p.id))


async def executions_script(s: Session) -> None:
    p = await s.do("pipeline", lambda c: c.pipelines.create(name="run", definition=PIPELINE))
    await s.do(
        "run and wait",
        lambda c: c.executions.create(p.id, params={"who": "x"}, wait=True, timeout=60),
        polls=True,
    )
    await s.do("list", lambda c: c.executions.list(pipeline_id=p.id))
    await s.do("missing pipeline", lambda c: c.executions.create("pipeline_00000000000000000000"))
    await s.do("get missing", lambda c: c.executions.get("exec_00000000000000000000"))


async def chat_script(s: Session) -> None:
    hello = [{"role": "user", "content": "hello"}]
    await s.do("unknown model", lambda c: c.chat.completions.create(model="nope", messages=hello))


async def deployments_script(s: Session) -> None:
    await s.do("list", lambda c: c.deployments.list())
    await s.do(
        "unknown model",
        lambda c: c.deployments.create(
            model_id="model_00000000000000000000", cluster_id="cluster_00000000000000000000"
        ),
    )
    await s.do("get missing", lambda c: c.deployments.get("deploy_00000000000000000000"))


SCRIPTS: dict[str, Callable[[Session], Awaitable[None]]] = {
    "models": models_script,
    "clusters": clusters_script,
    "pipelines": pipelines_script,
    "executions": executions_script,
    "chat": chat_script,
    "deployments": deployments_script,
}


def run_sync(gw: Any, script: Callable[[Session], Awaitable[None]]) -> Record:
    import asyncio

    sent: list[httpx.Request] = []
    http = httpx.Client(timeout=30, event_hooks={"request": [sent.append]})
    with http, BudClient(api_key=gw.api_key, base_url=gw.url, http_client=http) as c:
        session = Session(c, gw, sent)
        asyncio.run(script(session))  # the sync client's calls never await: run in order
    return session.record


async def run_async(gw: Any, script: Callable[[Session], Awaitable[None]]) -> Record:
    sent: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request)

    http = httpx.AsyncClient(timeout=30, event_hooks={"request": [hook]})
    async with http, AsyncBudClient(api_key=gw.api_key, base_url=gw.url, http_client=http) as c:
        session = Session(c, gw, sent)
        await script(session)
    return session.record


@pytest.mark.parametrize("resource", list(SCRIPTS))
def test_sync_and_async_behave_the_same(resource: str, gw: Any, no_sleep: list[float]) -> None:
    import asyncio

    script = SCRIPTS[resource]
    sync_record = run_sync(gw, script)
    sync_sleeps = list(no_sleep)
    gw.reset()
    gw.clear_faults()
    no_sleep.clear()
    async_record = asyncio.run(run_async(gw, script))
    for sync_step, async_step in zip(sync_record, async_record, strict=True):
        assert sync_step == async_step, sync_step["step"]
    assert len(sync_sleeps) == len(no_sleep)  # as many retries, each waited for


def test_the_scripts_exercise_what_they_claim(gw: Any, no_sleep: list[float]) -> None:
    """The comparison is worth something only if the scripts hit errors, retries and replays."""
    import asyncio

    models = asyncio.run(run_async(gw, models_script))
    steps = {s["step"]: s for s in models}
    dropped = steps["create, answer dropped"]["requests"]
    assert len(dropped) == 2 and dropped[0]["idempotency_key"] == dropped[1]["idempotency_key"]
    assert len(steps["list once"]["result"]) == 1  # the retry did not create a second model
    assert steps["get missing"]["error"] == "NotFoundError"
    assert steps["same key, other body"]["error"] == "ConflictError"
    assert steps["same key again"]["result"] == steps["same key"]["result"]
    gw.reset()
    gw.clear_faults()
    clusters = {s["step"]: s for s in asyncio.run(run_async(gw, clusters_script))}
    assert len(clusters["list after two 503s"]["requests"]) == 3
    assert clusters["list through 500s"]["status"] == 500
