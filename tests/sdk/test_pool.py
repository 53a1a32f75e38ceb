"""Connections go back to the pool: after retried errors, streams read to the end, streams
abandoned early and stream errors, a two-connection pool still serves new requests
(openai-python #763 was a pool exhausted by unclosed streams)."""

from __future__ import annotations

import httpx
import pytest

from budai import AsyncBudClient, BudClient
from budai import exceptions as exc

from ._server import API_KEY, FakeBud, Reply, ScriptedServer

CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
LIMITS = httpx.Limits(max_connections=2, max_keepalive_connections=2)
TIMEOUT = httpx.Timeout(5.0, pool=1.0)  # an exhausted pool fails fast, as PoolTimeout


def test_sync_pool_is_not_exhausted(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    http = httpx.Client(limits=LIMITS, timeout=TIMEOUT)
    with BudClient(api_key=API_KEY, base_url=server.url, http_client=http) as c:
        for _ in range(6):
            server.script("GET", "/models/model_abc", Reply(503), Reply(500))
            assert c.models.get("model_abc").id == "model_abc"
            server.script("GET", "/models/missing", Reply(404, body=b"gone"))
            with pytest.raises(exc.NotFoundError):
                c.models.get("missing")
            assert list(c.chat.completions.create(model="m", messages=[], stream=True))
            s = c.chat.completions.create(model="m", messages=[], stream=True)
            next(iter(s))
            s.close()  # abandoned early
            server.script("POST", "/chat/completions",
                          Reply(sse=[CHUNK, {"error": {"message": "x", "type": "server_error"}}]))
            with pytest.raises(exc.ServerError):
                list(c.chat.completions.create(model="m", messages=[], stream=True))
        assert len(list(c.models.list())) >= 1
    http.close()


async def test_async_pool_is_not_exhausted(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    http = httpx.AsyncClient(limits=LIMITS, timeout=TIMEOUT)
    async with AsyncBudClient(api_key=API_KEY, base_url=server.url, http_client=http) as c:
        for _ in range(6):
            server.script("GET", "/models/model_abc", Reply(503))
            assert (await c.models.get("model_abc")).id == "model_abc"
            s = await c.chat.completions.create(model="m", messages=[], stream=True)
            assert [x async for x in s]
            s = await c.chat.completions.create(model="m", messages=[], stream=True)
            async with s:
                await s.__anext__()
            server.script("POST", "/chat/completions",
                          Reply(sse=[CHUNK, {"error": {"message": "x", "type": "server_error"}}]))
            s = await c.chat.completions.create(model="m", messages=[], stream=True)
            with pytest.raises(exc.ServerError):
                _ = [x async for x in s]
        server.script("POST", "/chat/completions", Reply(sse=[CHUNK, CHUNK], sse_gap=0.8))
        slow = c.with_options(timeout=0.3)
        s = await slow.chat.completions.create(model="m", messages=[], stream=True)
        with pytest.raises(exc.TimeoutError, match="idle"):
            _ = [x async for x in s]
        assert (await c.models.get("model_abc")).id == "model_abc"
    await http.aclose()
