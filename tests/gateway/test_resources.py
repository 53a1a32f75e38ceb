"""Models, clusters and deployments: lifecycles, capacity, chat completions."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import (
    assert_error,
    cluster_ids,
    make_active_deployment,
    make_model,
    wait_status,
)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server for url downloads (serves tmp_path)."""
    (tmp_path / "weights.bin").write_bytes(b"x" * 300_000)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_local_model_measures_path(gw: LocalGateway, client: httpx.Client) -> None:
    d = gw.models_dir / "local-model"
    d.mkdir(parents=True)
    (d / "a.bin").write_bytes(b"1" * 1000)
    (d / "b.json").write_bytes(b"2" * 24)
    m = make_model(client, "local-m", "local", str(d))
    assert m["status"] == "available" and m["size_bytes"] == 1024
    missing = make_model(client, "missing-m", "local", str(gw.models_dir / "nope"))
    assert missing["status"] == "error" and "not found" in missing["error"]


def test_url_model_downloads_for_real(client: httpx.Client, file_server: str) -> None:
    m = make_model(client, "dl", "url", file_server + "/weights.bin")
    assert m["status"] == "downloading"
    done = wait_status(client, f"/models/{m['id']}", {"available", "error"})
    assert done["status"] == "available", done
    assert done["size_bytes"] == 300_000 and done["progress_percent"] is None
    bad = make_model(client, "dl404", "url", file_server + "/nope.bin")
    failed = wait_status(client, f"/models/{bad['id']}", {"available", "error"})
    assert failed["status"] == "error" and "404" in failed["error"]


def test_hugging_face_simulated_download(client: httpx.Client) -> None:
    m = make_model(
        client,
        "hf",
        "hugging_face",
        "org/some-model-not-cached",
        metadata={"simulated_size_bytes": 50_000_000},
    )
    assert m["status"] == "downloading"
    assert m["metadata"]["simulated_download"] is True
    done = wait_status(client, f"/models/{m['id']}", {"available"})
    assert done["size_bytes"] == 50_000_000


def test_deployment_lifecycle(client: httpx.Client) -> None:
    model = make_model(client, "dm")
    cid = cluster_ids(client)["local-cpu"]
    r = client.post(
        "/deployments",
        json={"model_id": model["id"], "cluster_id": cid, "name": "web", "replicas": 2},
    )
    assert r.status_code == 201
    dep = r.json()
    assert dep["status"] == "pending" and dep["id"].startswith("dep_")
    seen = {dep["status"]}
    active = wait_status(client, f"/deployments/{dep['id']}", {"active"})
    assert active["ready_replicas"] == 2 and active["endpoint_url"]
    r = client.patch(f"/deployments/{dep['id']}", json={"replicas": 3})
    assert r.json()["status"] == "scaling"
    seen.add("scaling")
    active = wait_status(client, f"/deployments/{dep['id']}", {"active"})
    assert active["replicas"] == 3 and active["ready_replicas"] == 3
    assert client.post(f"/deployments/{dep['id']}/stop").json()["status"] == "stopped"
    assert client.post(f"/deployments/{dep['id']}/start").json()["status"] in (
        "pending",
        "deploying",
    )
    wait_status(client, f"/deployments/{dep['id']}", {"active"})
    assert_error(client.delete(f"/models/{model['id']}"), 409, "conflict_error", "model_in_use")
    assert client.delete(f"/deployments/{dep['id']}").status_code == 202

    def gone() -> bool:
        return client.get(f"/deployments/{dep['id']}").status_code == 404

    from tests.gateway.conftest import wait_for

    wait_for(gone)
    assert client.delete(f"/models/{model['id']}").status_code == 202
    assert seen == {"pending", "scaling"}


def test_capacity_keeps_deployment_pending(client: httpx.Client) -> None:
    model = make_model(client, "big")
    cid = cluster_ids(client)["local-gpu"]
    r = client.post(
        "/deployments",
        json={
            "model_id": model["id"],
            "cluster_id": cid,
            "resources": {"gpu": 4, "gpu_type": "A100", "cpu": "4", "memory": "16Gi"},
            "replicas": 3,
        },
    )
    dep = r.json()

    def explained() -> dict[str, Any] | None:
        d: dict[str, Any] = client.get(f"/deployments/{dep['id']}").json()
        return d if d["error"] else None

    from tests.gateway.conftest import wait_for

    d = wait_for(explained)
    assert d["status"] == "pending" and "gpu" in d["error"]
    ok = client.post(
        "/deployments",
        json={
            "model_id": model["id"],
            "cluster_id": cid,
            "resources": {"gpu": 4, "gpu_type": "A100"},
            "replicas": 2,
        },
    ).json()
    wait_status(client, f"/deployments/{ok['id']}", {"active"})
    health = client.get(f"/clusters/{cid}/health").json()
    assert health["available_resources"]["gpu_count"] == 0
    assert health["status"] == "degraded"  # fully reserved
    assert client.get(f"/deployments/{dep['id']}").json()["status"] == "pending"


def test_node_loss_changes_health(gw: LocalGateway, client: httpx.Client) -> None:
    cid = cluster_ids(client)["local-cpu"]
    gw.local("POST", f"/clusters/{cid}", {"ready_nodes": 1})
    assert client.get(f"/clusters/{cid}/health").json()["status"] == "degraded"
    assert client.get(f"/clusters/{cid}").json()["status"] == "degraded"
    gw.local("POST", f"/clusters/{cid}", {"ready_nodes": 0})
    assert client.get(f"/clusters/{cid}/health").json()["status"] == "unhealthy"
    gw.local("POST", f"/clusters/{cid}", {"ready_nodes": 3})
    assert client.get(f"/clusters/{cid}/health").json()["status"] == "healthy"


def test_model_error_fails_deployment(client: httpx.Client, tmp_path: Path) -> None:
    bad = make_model(client, "bad-local", "local", str(tmp_path / "nothing"))
    cid = cluster_ids(client)["local-cpu"]
    dep = client.post("/deployments", json={"model_id": bad["id"], "cluster_id": cid}).json()
    failed = wait_status(client, f"/deployments/{dep['id']}", {"failed"})
    assert "model" in failed["error"]


def test_autoscaling_owns_replicas(client: httpx.Client) -> None:
    dep = make_active_deployment(
        client, "auto", auto_scaling={"enabled": True, "min_replicas": 1, "max_replicas": 3}
    )
    r = client.patch(f"/deployments/{dep['id']}", json={"replicas": 2})
    assert_error(r, 409, "conflict_error", "autoscaling_enabled")


def test_autoscaler_follows_request_rate(gw: LocalGateway, client: httpx.Client) -> None:
    dep = make_active_deployment(
        client,
        "busy",
        auto_scaling={"enabled": True, "min_replicas": 1, "max_replicas": 4, "target_cpu": 50},
    )
    assert dep["replicas"] == 1
    body = {"model": "busy", "messages": [{"role": "user", "content": "hi"}]}
    # speed 20: autoscale window 1.5 s, interval 0.5 s; 5 req/s/replica at 50 % -> 2.5/s per replica
    # in simulated seconds. Send a burst and watch the replicas grow.
    for _ in range(60):
        assert client.post("/chat/completions", json=body).status_code == 200
    rate = gw.local("GET", f"/deployments/{dep['id']}/rate")["requests_per_second"]
    assert rate > 0

    def scaled() -> bool:
        return bool(client.get(f"/deployments/{dep['id']}").json()["replicas"] > 1)

    from tests.gateway.conftest import wait_for

    wait_for(scaled, timeout=10)
    # With no traffic it comes back down to min_replicas.
    wait_for(lambda: client.get(f"/deployments/{dep['id']}").json()["replicas"] == 1, timeout=15)


def test_chat_completion_builtin(client: httpx.Client) -> None:
    make_active_deployment(client, "chatty")
    body = {"model": "chatty", "messages": [{"role": "user", "content": "Hello, world"}]}
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["object"] == "chat.completion"
    assert c["choices"][0]["message"]["content"] == "Echo: Hello, world"
    assert c["usage"]["completion_tokens"] == 5  # Echo : Hello , world
    assert c["usage"]["total_tokens"] == c["usage"]["prompt_tokens"] + 5
    r = client.post("/chat/completions", json={**body, "max_tokens": 2})
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["choices"][0]["message"]["content"] == "Echo:"
    # The model's name works too.
    assert (
        client.post("/chat/completions", json={**body, "model": "chatty-model"}).status_code == 200
    )


def test_chat_streaming(client: httpx.Client) -> None:
    make_active_deployment(client, "streamy")
    body = {
        "model": "streamy",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "a b c"}],
    }
    with client.stream("POST", "/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"]
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch["choices"])
    assert text == "Echo: a b c"
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_chat_errors(client: httpx.Client) -> None:
    body = {"model": "ghost", "messages": [{"role": "user", "content": "x"}]}
    assert_error(
        client.post("/chat/completions", json=body), 404, "not_found_error", "model_not_found"
    )
    dep = make_active_deployment(client, "sleepy")
    client.post(f"/deployments/{dep['id']}/stop")
    body["model"] = "sleepy"
    assert_error(client.post("/chat/completions", json=body), 409, "conflict_error")
    assert_error(
        client.post("/chat/completions", json={"model": "x", "messages": []}),
        422,
        "validation_error",
        param="messages",
    )


@pytest.fixture
def upstream() -> Iterator[str]:
    """A tiny OpenAI-compatible server of our own (a real uvicorn process in a thread)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def completions(request: Request) -> Response:
        body = await request.json()
        text = f"upstream saw {body['model']}"
        if body.get("stream"):

            async def gen() -> Any:
                for word in text.split(" "):
                    chunk = {
                        "id": "up",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
                        ],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(gen(), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "up",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
            }
        )

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])

    from budai_gateway.testing import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        import time

        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    t.join(5)


def test_chat_forwards_to_upstream(upstream: str) -> None:
    # Upstreams are entries of the gateway's config; the model names one.
    config = {"upstreams": [{"name": "up", "url": upstream, "allow_loopback": True}]}
    with LocalGateway(speed=20, config=config) as gw, gw.client() as client:
        _chat_forwards(client)


def _chat_forwards(client: httpx.Client) -> None:
    model = make_model(client, "fwd", metadata={"upstream": "up", "upstream_model": "tiny"})
    cid = cluster_ids(client)["local-cpu"]
    dep = client.post(
        "/deployments", json={"model_id": model["id"], "cluster_id": cid, "name": "fwd-dep"}
    ).json()
    wait_status(client, f"/deployments/{dep['id']}", {"active"})
    body = {"model": "fwd-dep", "messages": [{"role": "user", "content": "x"}]}
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "upstream saw tiny"
    with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as s:
        lines = [ln for ln in s.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    text = "".join(json.loads(ln[6:])["choices"][0]["delta"]["content"] for ln in lines[:-1])
    assert text.strip() == "upstream saw tiny"


def test_node_loss_reduces_ready_replicas(gw: LocalGateway, client: httpx.Client) -> None:
    dep = make_active_deployment(
        client, "wide", replicas=3, resources={"cpu": "6", "memory": "8Gi"}
    )  # one replica per 8-core node
    cid = dep["cluster_id"]
    gw.local("POST", f"/clusters/{cid}", {"ready_nodes": 1})
    d = client.get(f"/deployments/{dep['id']}").json()
    assert d["ready_replicas"] == 1 and "1 of 3" in d["error"]
    gw.local("POST", f"/clusters/{cid}", {"ready_nodes": 3})
    d = client.get(f"/deployments/{dep['id']}").json()
    assert d["ready_replicas"] == 3 and d["error"] is None


def test_out_of_band_deployment_change(gw: LocalGateway, client: httpx.Client) -> None:
    dep = make_active_deployment(client, "drifty")
    gw.local(
        "POST",
        f"/deployments/{dep['id']}",
        {"replicas": 5, "status": "failed", "error": "node exploded"},
    )
    d = client.get(f"/deployments/{dep['id']}").json()
    assert (d["replicas"], d["status"], d["error"]) == (5, "failed", "node exploded")


def test_chat_tools_and_json_mode(client: httpx.Client) -> None:
    make_active_deployment(client, "tooly")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    msgs = [{"role": "user", "content": "get_weather for Paris"}]
    r = client.post("/chat/completions", json={"model": "tooly", "messages": msgs, "tools": tools})
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"input": "get_weather for Paris"}
    follow = [
        *msgs,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    r = client.post(
        "/chat/completions", json={"model": "tooly", "messages": follow, "tools": tools}
    )
    assert r.json()["choices"][0]["message"]["content"] == "Echo: sunny"
    r = client.post(
        "/chat/completions",
        json={"model": "tooly", "messages": msgs, "response_format": {"type": "json_object"}},
    )
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {
        "echo": "get_weather for Paris"
    }


def test_openai_client_is_compatible(gw: LocalGateway, client: httpx.Client) -> None:
    import openai

    make_active_deployment(client, "oai")
    oai = openai.OpenAI(base_url=gw.url, api_key=gw.api_key, max_retries=0)
    msgs: Any = [{"role": "user", "content": "compat"}]
    out = oai.chat.completions.create(model="oai", messages=msgs)
    assert out.choices[0].message.content == "Echo: compat"
    assert out.usage is not None and out.usage.completion_tokens == 3
    parts = [
        ch.choices[0].delta.content or ""
        for ch in oai.chat.completions.create(model="oai", messages=msgs, stream=True)
        if ch.choices
    ]
    assert "".join(parts) == "Echo: compat"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="ghost", messages=msgs)


def test_hugging_face_model_from_local_cache(tmp_path: Path) -> None:
    snap = tmp_path / "hub" / "models--acme--tiny-llm" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_bytes(b"{}" * 50)
    (snap / "model.safetensors").write_bytes(b"\0" * 900)
    with (
        LocalGateway(speed=20, env={"HF_HUB_CACHE": str(tmp_path / "hub")}) as gw,
        gw.client() as c,
    ):
        m = make_model(c, "tiny", "hugging_face", "acme/tiny-llm")
        assert m["status"] == "available" and m["size_bytes"] == 1000
        assert m["metadata"]["resolved_from"] == "local_cache"
        assert "simulated_download" not in m["metadata"]


def test_deployment_waits_for_its_model(client: httpx.Client) -> None:
    m = make_model(
        client,
        "slow-hf",
        "hugging_face",
        "org/uncached-model",
        metadata={"simulated_size_bytes": 8_000_000_000},  # 2 s at speed 20
    )
    cid = cluster_ids(client)["local-cpu"]
    dep = client.post("/deployments", json={"model_id": m["id"], "cluster_id": cid}).json()
    import time

    time.sleep(0.1)
    d = client.get(f"/deployments/{dep['id']}").json()
    assert d["status"] == "pending" and d["error"] is None
    assert client.get(f"/models/{m['id']}").json()["status"] == "downloading"
    wait_status(client, f"/deployments/{dep['id']}", {"active"}, timeout=20)
    assert client.get(f"/models/{m['id']}").json()["status"] == "available"


def test_chat_upstream_down_is_502() -> None:
    from budai_gateway.testing import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    config = {"upstreams": [{"name": "dead", "url": dead, "allow_loopback": True}]}
    with LocalGateway(speed=20, config=config) as gw, gw.client() as client:
        _chat_upstream_down(client)


def _chat_upstream_down(client: httpx.Client) -> None:
    model = make_model(client, "dead", metadata={"upstream": "dead"})
    cid = cluster_ids(client)["local-cpu"]
    dep = client.post(
        "/deployments", json={"model_id": model["id"], "cluster_id": cid, "name": "dead-dep"}
    ).json()
    wait_status(client, f"/deployments/{dep['id']}", {"active"})
    body = {"model": "dead-dep", "messages": [{"role": "user", "content": "x"}]}
    assert_error(
        client.post("/chat/completions", json=body), 502, "server_error", "upstream_unreachable"
    )
    r = client.post("/chat/completions", json={**body, "stream": True})
    assert_error(r, 502, "server_error", "upstream_unreachable")
