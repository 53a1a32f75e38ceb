"""The OpenAI-compatible surface with a model served by an upstream (a real uvicorn server of
our own, configured in `upstreams:`): legacy completions come from its chat completions,
embeddings are refused (never faked); a read-scoped key may embed and complete, as it may
chat."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from budai_gateway.testing import LocalGateway, free_port
from tests.gateway.conftest import cluster_ids, make_model, wait_status


@pytest.fixture
def upstream() -> Iterator[str]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = await request.json()
        text = f"upstream {body['model']} got {body['messages'][-1]['content']}"
        return JSONResponse({
            "id": "up", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6},
        })

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5]}
                     for i, t in enumerate(inputs)],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        })

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                            Route("/v1/embeddings", embeddings, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(5)


def test_upstream_models_answer_completions_and_refuse_embeddings(upstream: str) -> None:
    # Upstreams are entries of the gateway's config; the model names one.
    config = {"upstreams": [{"name": "up", "url": upstream, "allow_loopback": True}]}
    with LocalGateway(speed=20, config=config) as gw, gw.client() as client:
        _through_upstream(gw, client)


def _through_upstream(gw: LocalGateway, client: httpx.Client) -> None:
    import openai

    model = make_model(client, "up-m", metadata={"upstream": "up", "upstream_model": "real"})
    dep = client.post("/deployments", json={"model_id": model["id"], "name": "up-d",
                                            "cluster_id": cluster_ids(client)["local-cpu"]})
    wait_status(client, f"/deployments/{dep.json()['id']}", {"active"})
    oai = openai.OpenAI(base_url=gw.url, api_key=gw.api_key, max_retries=0)
    with pytest.raises(openai.ConflictError) as refused:  # not faked, not forwarded
        oai.embeddings.create(model="up-d", input=["abc", "hello"])
    assert "not forwarded" in str(refused.value)
    done = oai.completions.create(model="up-d", prompt="hi there")
    assert done.choices[0].text == "upstream real got hi there"
    assert done.usage is not None and done.usage.completion_tokens == 4


def test_read_keys_may_embed_and_complete(
    client: httpx.Client, read_client: httpx.Client
) -> None:
    model = make_model(client, "rk-m")
    dep = client.post("/deployments", json={"model_id": model["id"], "name": "rk-d",
                                            "cluster_id": cluster_ids(client)["local-cpu"]})
    wait_status(client, f"/deployments/{dep.json()['id']}", {"active"})
    r = read_client.post("/embeddings", json={"model": "rk-d", "input": "x", "dimensions": 4})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"][0]["embedding"]) == 4
    again = read_client.post("/embeddings", json={"model": "rk-d", "input": "x", "dimensions": 4})
    assert again.json()["data"] == r.json()["data"]  # deterministic
    legacy = read_client.post("/completions", json={"model": "rk-d", "prompt": "p"})
    assert legacy.status_code == 200 and legacy.json()["choices"][0]["text"] == "Echo: p"
    denied = read_client.post("/models", json={"name": "no", "source": "cloud", "uri": "x"})
    assert denied.status_code == 403  # the read scope still cannot write


def test_embedding_requests_are_bounded(client: httpx.Client) -> None:
    model = make_model(client, "big-m")
    dep = client.post("/deployments", json={"model_id": model["id"], "name": "big-d",
                                            "cluster_id": cluster_ids(client)["local-cpu"]})
    wait_status(client, f"/deployments/{dep.json()['id']}", {"active"})
    many = client.post("/embeddings", json={"model": "big-d", "input": ["x"] * 2049})
    assert many.status_code == 422 and many.json()["error"]["param"] == "input"
    wide = client.post("/embeddings", json={"model": "big-d", "input": ["x"] * 300,
                                            "dimensions": 4096})
    assert wide.status_code == 422 and wide.json()["error"]["param"] == "dimensions"
    empty = client.post("/embeddings", json={"model": "big-d", "input": []})
    assert empty.status_code == 422
