"""The contract's general rules: health, auth and scopes, headers, error shape, lists."""

from __future__ import annotations

import httpx

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import assert_error, make_model


def test_health_needs_no_key(gw: LocalGateway) -> None:
    r = httpx.get(gw.url + "/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["version"]
    assert r.headers["x-request-id"].startswith("req_")


def test_openapi_needs_no_key(gw: LocalGateway) -> None:
    r = httpx.get(gw.root_url + "/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in (
        "/v1/models",
        "/v1/deployments/{deployment_id}",
        "/v1/pipelines/validate",
        "/v1/executions/{execution_id}/cancel",
        "/v1/chat/completions",
    ):
        assert p in paths


def test_missing_and_unknown_key_are_401(gw: LocalGateway) -> None:
    r = httpx.get(gw.url + "/models")
    assert_error(r, 401, "authentication_error", "missing_api_key")
    r = httpx.get(gw.url + "/models", headers={"Authorization": "Bearer nope"})
    assert_error(r, 401, "authentication_error", "invalid_api_key")
    assert "x-ratelimit-limit" in r.headers


def test_read_key_reads_but_cannot_write(gw: LocalGateway, read_client: httpx.Client) -> None:
    assert read_client.get("/models").status_code == 200
    r = read_client.post("/models", json={"name": "x", "source": "cloud", "uri": "u"})
    assert_error(r, 403, "permission_error", "insufficient_scope")
    r = httpx.post(
        gw.root_url + "/_local/reset", headers={"Authorization": f"Bearer {gw.read_key}"}
    )
    assert_error(r, 403, "permission_error")
    assert read_client.get("/models").json()["data"] == []


def test_headers_on_success_and_error(client: httpx.Client) -> None:
    for r in (client.get("/models"), client.get("/models/model_nope")):
        assert r.headers["x-request-id"].startswith("req_")
        assert int(r.headers["x-ratelimit-limit"]) > 0
        assert int(r.headers["x-ratelimit-remaining"]) >= 0
        assert int(r.headers["x-ratelimit-reset"]) > 1_700_000_000
    r = client.get("/models", headers={"X-Request-ID": "my-trace-1"})
    assert r.headers["x-request-id"] == "my-trace-1"


def test_not_found_shape(client: httpx.Client) -> None:
    assert_error(
        client.get("/models/model_nope"), 404, "not_found_error", "model_not_found", "model_id"
    )
    assert_error(client.get("/nothing-here"), 404, "not_found_error", "route_not_found")
    assert_error(client.put("/models"), 405, "invalid_request_error")


def test_model_crud_and_conflict(client: httpx.Client) -> None:
    m = make_model(client, "llama", metadata={"team": "a"})
    assert m["id"].startswith("model_")
    assert m["status"] == "available" and m["object"] == "model"
    assert m["created_at"].endswith("Z")
    r = client.post("/models", json={"name": "llama", "source": "cloud", "uri": "x"})
    assert_error(r, 409, "conflict_error", "already_exists", "name")
    assert r.headers["location"] == f"/v1/models/{m['id']}"
    r = client.patch(f"/models/{m['id']}", json={"metadata": {"owner": "b"}})
    assert r.status_code == 200
    assert r.json()["metadata"] == {"team": "a", "owner": "b"}
    r = client.delete(f"/models/{m['id']}")
    assert r.status_code == 202 and r.json()["status"] == "deleting"


def test_pagination_walks_everything(client: httpx.Client) -> None:
    ids = [make_model(client, f"p{i}")["id"] for i in range(7)]
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 3} | ({"after": after} if after else {})
        page = client.get("/models", params=params).json()
        assert page["object"] == "list"
        seen += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        after = page["next_cursor"]
    assert seen == ids


def test_list_rules(client: httpx.Client) -> None:
    make_model(client, "f1")
    assert_error(
        client.get("/models", params={"colour": "red"}),
        400,
        "invalid_request_error",
        "unknown_filter",
        "colour",
    )
    assert_error(
        client.get("/models", params={"limit": 0}), 400, "invalid_request_error", param="limit"
    )
    assert_error(client.get("/models", params={"limit": 101}), 400, "invalid_request_error")
    assert_error(
        client.get("/models", params={"after": "model_x"}),
        400,
        "invalid_request_error",
        "invalid_cursor",
        "after",
    )
    assert_error(client.get("/models", params={"status": "weird"}), 400, "invalid_request_error")
    assert [m["name"] for m in client.get("/models", params={"name": "f1"}).json()["data"]] == [
        "f1"
    ]
    assert client.get("/models", params={"source": "url"}).json()["data"] == []


def test_clusters_seeded(client: httpx.Client) -> None:
    clusters = client.get("/clusters").json()["data"]
    assert {c["name"] for c in clusters} == {"local-cpu", "local-gpu"}
    gpu = next(c for c in clusters if c["name"] == "local-gpu")
    assert gpu["id"].startswith("cluster_") and gpu["status"] == "active"
    h = client.get(f"/clusters/{gpu['id']}/health").json()
    assert h["status"] == "healthy"
    assert h["available_resources"]["gpu_count"] == 8
    assert h["available_resources"]["gpu_types"] == ["A100"]
    assert client.get("/clusters", params={"provider": "aws"}).json()["data"][0]["id"] == gpu["id"]
