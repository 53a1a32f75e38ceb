"""Idempotency keys, rate limits, fault injection and bad input."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import assert_error, cluster_ids, make_model


def test_idempotency_replays_without_second_object(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    body = {"name": "idem", "source": "cloud", "uri": "x"}
    r1 = client.post("/models", json=body, headers={"Idempotency-Key": key})
    r2 = client.post("/models", json=body, headers={"Idempotency-Key": key})
    assert r1.status_code == r2.status_code == 201
    assert r1.json() == r2.json()
    assert r2.headers.get("idempotent-replayed") == "true"
    assert len(client.get("/models").json()["data"]) == 1
    r3 = client.post("/models", json={**body, "uri": "y"}, headers={"Idempotency-Key": key})
    assert_error(r3, 409, "conflict_error", "idempotency_key_reused")
    # Key order does not make a retry "different".
    r4 = client.post(
        "/models",
        content=b'{"uri": "x", "source": "cloud", "name": "idem"}',
        headers={"Idempotency-Key": key, "content-type": "application/json"},
    )
    assert r4.status_code == 201 and r4.json()["id"] == r1.json()["id"]


def test_idempotency_keys_are_per_api_key(gw: LocalGateway, client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    r = client.post(
        "/models",
        json={"name": "k1", "source": "cloud", "uri": "x"},
        headers={"Idempotency-Key": key},
    )
    assert r.status_code == 201
    # Same key from the read key: not a replay of the admin's response.
    with gw.client(gw.read_key) as rc:
        r2 = rc.post(
            "/pipelines/validate",
            json={"definition": {"steps": []}},
            headers={"Idempotency-Key": key},
        )
    assert r2.status_code == 200 and r2.json()["valid"] is True


def test_idempotent_delete_replays(client: httpx.Client) -> None:
    m = make_model(client, "del-me")
    key = str(uuid.uuid4())
    r1 = client.delete(f"/models/{m['id']}", headers={"Idempotency-Key": key})
    time.sleep(0.2)
    r2 = client.delete(f"/models/{m['id']}", headers={"Idempotency-Key": key})
    assert r1.status_code == r2.status_code == 202 and r1.json() == r2.json()


def test_rate_limit(gw: LocalGateway, client: httpx.Client) -> None:
    gw.local("POST", "/rate_limit", {"capacity": 3, "refill_per_second": 0.5})
    statuses = []
    for _ in range(5):
        r = client.get("/models")
        statuses.append(r.status_code)
        assert r.headers["x-ratelimit-limit"] == "3"
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    err = assert_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
    assert err
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert int(r.headers["x-ratelimit-reset"]) >= int(time.time())
    gw.reset()
    assert client.get("/models").status_code == 200


def test_fault_status_with_retry_after_and_count(gw: LocalGateway, client: httpx.Client) -> None:
    gw.add_fault("/v1/models", "GET", status=503, retry_after=7, count=2)
    r = client.get("/models")
    assert_error(r, 503, "server_error", "injected_fault")
    assert r.headers["retry-after"] == "7" and "x-ratelimit-limit" in r.headers
    assert client.get("/models").status_code == 503
    assert client.get("/models").status_code == 200
    faults = gw.local("GET", "/faults")["data"]
    assert faults[0]["hits"] == 2 and faults[0]["remaining"] == 0


def test_fault_latency(gw: LocalGateway, client: httpx.Client) -> None:
    gw.add_fault("/v1/clusters*", latency=0.4, count=1)
    t0 = time.monotonic()
    assert client.get("/clusters").status_code == 200
    assert time.monotonic() - t0 >= 0.4


def test_fault_drop_is_a_transport_error(gw: LocalGateway, client: httpx.Client) -> None:
    gw.add_fault("/v1/models", "POST", drop=True, count=1)
    with pytest.raises(httpx.TransportError):
        client.post("/models", json={"name": "dropped", "source": "cloud", "uri": "x"})
    # The work was not done, and the server is fine.
    assert client.get("/models").json()["data"] == []


def test_fault_drop_after_work(gw: LocalGateway, client: httpx.Client) -> None:
    gw.add_fault("/v1/models", "POST", drop_after=True, count=1)
    key = str(uuid.uuid4())
    body = {"name": "sneaky", "source": "cloud", "uri": "x"}
    with pytest.raises(httpx.TransportError):
        client.post("/models", json=body, headers={"Idempotency-Key": key})
    models = client.get("/models").json()["data"]
    assert [m["name"] for m in models] == ["sneaky"]  # the work was done
    # A retry with the same key gets the first response, not a second object or a 409.
    r = client.post("/models", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201 and r.json()["id"] == models[0]["id"]
    # Without a key, a naive retry hits "already exists".
    gw.add_fault("/v1/models", "POST", drop_after=True, count=1)
    with pytest.raises(httpx.TransportError):
        client.post("/models", json={**body, "name": "naive"})
    assert_error(
        client.post("/models", json={**body, "name": "naive"}),
        409,
        "conflict_error",
        "already_exists",
    )


def test_fault_probability(gw: LocalGateway, client: httpx.Client) -> None:
    gw.add_fault("/v1/clusters", status=500, probability=0.5)
    codes = {client.get("/clusters").status_code for _ in range(40)}
    assert codes == {200, 500}
    gw.clear_faults()
    assert client.get("/clusters").status_code == 200


BAD_REQUESTS: list[tuple[str, str, Any, int, str | None]] = [
    ("POST", "/models", {"name": "x", "source": "ftp", "uri": "u"}, 422, "source"),
    ("POST", "/models", {"name": "x", "source": "cloud"}, 422, "uri"),
    ("POST", "/models", {"name": 5, "source": "cloud", "uri": "u"}, 422, "name"),
    ("POST", "/models", {"name": "x", "source": "cloud", "uri": "u", "extra": 1}, 422, "extra"),
    ("POST", "/models", [1, 2], 400, None),
    ("POST", "/models", "just a string", 400, None),
    ("POST", "/deployments", {"model_id": "m", "cluster_id": "c", "replicas": -1}, 422, "replicas"),
    (
        "POST",
        "/deployments",
        {"model_id": "m", "cluster_id": "c", "replicas": "many"},
        422,
        "replicas",
    ),
    (
        "POST",
        "/deployments",
        {
            "model_id": "m",
            "cluster_id": "c",
            "auto_scaling": {"min_replicas": 5, "max_replicas": 2},
        },
        422,
        "auto_scaling",
    ),
    (
        "POST",
        "/deployments",
        {"model_id": "m", "cluster_id": "c", "resources": {"cpu": "lots"}},
        422,
        "resources.cpu",
    ),
    ("POST", "/pipelines", {"name": "p", "definition": {"steps": "no"}}, 422, "definition.steps"),
    ("POST", "/pipelines", {"name": "p"}, 422, "definition"),
    ("POST", "/executions", {"pipeline_id": 1}, 422, "pipeline_id"),
    ("POST", "/executions", {"pipeline_id": "pipe_x", "params": []}, 422, "params"),
    (
        "POST",
        "/chat/completions",
        {"model": "x", "messages": [{"role": "wizard"}]},
        422,
        "messages[0].role",
    ),
    ("POST", "/chat/completions", {"model": "x", "messages": [{"role": "user"}], "n": 0}, 422, "n"),
    ("PATCH", "/pipelines/pipe_x", {"status": "deleted"}, 422, "status"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "param"), BAD_REQUESTS)
def test_bad_input_is_4xx_and_changes_nothing(
    client: httpx.Client, method: str, path: str, body: Any, status: int, param: str | None
) -> None:
    before = {k: client.get(f"/{k}").json()["data"] for k in ("models", "deployments", "pipelines")}
    r = client.request(method, path, json=body)
    err = assert_error(r, status, "validation_error" if status == 422 else "invalid_request_error")
    if param is not None:
        assert err["param"] == param, err
    after = {k: client.get(f"/{k}").json()["data"] for k in ("models", "deployments", "pipelines")}
    assert before == after


def test_malformed_json_and_huge_body(client: httpx.Client) -> None:
    r = client.post("/models", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_request_error", "invalid_json")
    r = client.post(
        "/models", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert_error(r, 413, "invalid_request_error", "request_too_large")
    assert client.get("/models").json()["data"] == []


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    cid = cluster_ids(client)["local-cpu"]
    r = client.post("/deployments", json={"model_id": "model_nope", "cluster_id": cid})
    assert_error(r, 404, "not_found_error", "model_not_found", "model_id")
    m = make_model(client, "real")
    r = client.post("/deployments", json={"model_id": m["id"], "cluster_id": "cluster_nope"})
    assert_error(r, 404, "not_found_error", "cluster_not_found", "cluster_id")
    assert_error(
        client.post("/executions", json={"pipeline_id": "pipe_nope"}),
        404,
        "not_found_error",
        "pipeline_not_found",
    )
    assert client.get("/deployments").json()["data"] == []


def test_hostile_bodies(client: httpx.Client) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = b'{"name":"x","source":"cloud","uri":"u","metadata":' + b'{"a":' * 5000 + b"1"
    nested += b"}" * 5001
    for body in (deep, nested, b"\xff\xfe", b"null", b"[]"):
        for extra in ({}, {"Idempotency-Key": str(uuid.uuid4())}):
            r = client.post(
                "/models", content=body, headers={"content-type": "application/json", **extra}
            )
            assert 400 <= r.status_code < 500, (body[:20], r.text)
            assert r.json()["error"]["code"] in ("invalid_json", "invalid_body"), r.text
    r = client.get("/models/" + "a" * 5000)
    assert_error(r, 404, "not_found_error")
    assert client.get("/models").json()["data"] == []


def test_concurrent_retries_with_one_key_make_one_object(gw: LocalGateway) -> None:
    import asyncio

    key = str(uuid.uuid4())
    body = {"name": "racy", "source": "cloud", "uri": "x"}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, headers=gw.headers) as ac:
            return await asyncio.gather(
                *(ac.post("/models", json=body, headers={"Idempotency-Key": key}) for _ in range(8))
            )

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    with gw.client() as c:
        assert len(c.get("/models").json()["data"]) == 1
