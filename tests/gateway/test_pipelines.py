"""Pipelines: validation (422 naming the field) and the execution engine's semantics."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import assert_error, wait_status


def create_pipeline(
    c: httpx.Client, steps: list[dict[str, Any]], name: str = "p"
) -> dict[str, Any]:
    r = c.post("/pipelines", json={"name": name, "definition": {"steps": steps}})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def run(
    c: httpx.Client,
    steps: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    timeout: float = 20,
) -> dict[str, Any]:
    pipe = create_pipeline(c, steps, name=f"p-{time.monotonic_ns()}")
    r = c.post("/executions", json={"pipeline_id": pipe["id"], "params": params or {}})
    assert r.status_code == 201, r.text
    assert r.json()["status"] in ("pending", "running")
    return wait_status(
        c, f"/executions/{r.json()['id']}", {"completed", "failed", "cancelled"}, timeout
    )


BAD_DEFINITIONS = [
    ([{"id": "a", "action": "log"}, {"id": "a", "action": "log"}], "definition.steps[1].id"),
    ([{"id": "a", "action": "nope"}], "definition.steps[0].action"),
    ([{"id": "a", "action": "log", "depends_on": ["zz"]}], "definition.steps[0].depends_on[0]"),
    ([{"id": "a", "action": "log", "depends_on": ["a"]}], "definition.steps[0].depends_on[0]"),
    (
        [
            {"id": "a", "action": "log", "depends_on": ["b"]},
            {"id": "b", "action": "log", "depends_on": ["a"]},
        ],
        "definition.steps[1].depends_on[0]",
    ),
    ([{"id": "a", "action": "log", "condition": "params.x =="}], "definition.steps[0].condition"),
    (
        [{"id": "a", "action": "log", "params": {"message": "{{ ''.__class__ }}"}}],
        "definition.steps[0].params.message",
    ),
    (
        [{"id": "a", "action": "log", "condition": "''.__class__.__mro__"}],
        "definition.steps[0].condition",
    ),
    (
        [{"id": "a", "action": "log"}, {"id": "b", "action": "log", "condition": "steps.a.status"}],
        "definition.steps[1].condition",
    ),
    ([{"id": "Bad Id", "action": "log"}], "definition.steps[0].id"),
    (
        [{"id": "a", "action": "log", "retry": {"max_attempts": 0}}],
        "definition.steps[0].retry.max_attempts",
    ),
    (
        [
            {"id": "a", "action": "log"},
            {"id": "b", "action": "log"},
            {"id": "c", "action": "log", "depends_on": ["a", 7]},
        ],
        "definition.steps[2].depends_on[1]",
    ),
    ([{"id": "a", "action": "wait", "params": {}}], "definition.steps[0].params.seconds"),
    ([{"id": "a", "action": "log", "unknown": 1}], "definition.steps[0].unknown"),
]


@pytest.mark.parametrize(("steps", "param"), BAD_DEFINITIONS)
def test_invalid_definitions_are_422_naming_the_field(
    client: httpx.Client, steps: list[dict[str, Any]], param: str
) -> None:
    r = client.post("/pipelines", json={"name": "bad", "definition": {"steps": steps}})
    assert_error(r, 422, "validation_error", param=param)
    v = client.post("/pipelines/validate", json={"definition": {"steps": steps}}).json()
    assert v["valid"] is False
    assert param in [e["param"] for e in v["errors"]]
    assert client.get("/pipelines").json()["data"] == []


def test_too_many_steps(client: httpx.Client) -> None:
    steps = [{"id": f"s{i}", "action": "log"} for i in range(501)]
    r = client.post("/pipelines", json={"name": "big", "definition": {"steps": steps}})
    assert_error(r, 422, "validation_error", param="definition.steps")


def test_validate_ok_and_actions(client: httpx.Client) -> None:
    v = client.post(
        "/pipelines/validate",
        json={
            "definition": {
                "steps": [
                    {"id": "a", "action": "log", "params": {"message": "hi {{ params.who }}"}}
                ]
            }
        },
    )
    assert v.json() == {"valid": True, "errors": []}
    names = {a["name"] for a in client.get("/actions").json()["data"]}
    assert {
        "log",
        "transform",
        "set_output",
        "fail",
        "wait",
        "http_request",
        "model_add",
        "model_delete",
        "deployment_create",
        "deployment_scale",
        "deployment_delete",
        "cluster_health",
        "chat_completion",
    } <= names


def test_templates_conditions_and_outputs(client: httpx.Client) -> None:
    ex = run(
        client,
        [
            {"id": "a", "action": "set_output", "params": {"outputs": {"n": "{{ params.n * 2 }}"}}},
            {
                "id": "b",
                "action": "transform",
                "depends_on": ["a"],
                "params": {"value": "n={{ steps.a.output.n }} env={{ params.env }}"},
            },
            {
                "id": "c",
                "action": "log",
                "depends_on": ["a"],
                "condition": "steps.a.output.n > 100",
            },
            {"id": "d", "action": "log", "depends_on": ["c"], "params": {"message": "after skip"}},
        ],
        {"n": 21, "env": "prod"},
    )
    assert ex["status"] == "completed", ex
    assert ex["outputs"]["a"] == {"n": 42}
    assert ex["outputs"]["b"] == "n=42 env=prod"
    assert ex["steps"]["c"]["status"] == "skipped"
    assert ex["steps"]["d"]["status"] == "completed"
    assert "c" not in ex["outputs"]
    assert ex["duration_seconds"] >= 0 and ex["completed_at"].endswith("Z")


def test_independent_steps_run_concurrently(client: httpx.Client) -> None:
    steps = [{"id": f"w{i}", "action": "wait", "params": {"seconds": 0.5}} for i in range(5)]
    ex = run(client, steps)
    assert ex["status"] == "completed"
    assert ex["duration_seconds"] < 1.5, ex["duration_seconds"]


def test_fail_fast(client: httpx.Client) -> None:
    ex = run(
        client,
        [
            {"id": "slow", "action": "wait", "params": {"seconds": 0.5}},
            {"id": "boom", "action": "fail", "params": {"message": "kaput"}},
            {"id": "after", "action": "log", "depends_on": ["boom"]},
            {"id": "after_slow", "action": "log", "depends_on": ["slow"]},
        ],
    )
    assert ex["status"] == "failed"
    assert "boom" in ex["error"] and "kaput" in ex["error"]
    assert ex["steps"]["slow"]["status"] == "completed"  # running steps finish
    assert ex["steps"]["after"]["status"] == "skipped"
    assert ex["steps"]["after_slow"]["status"] == "skipped"


def test_retries_with_backoff(client: httpx.Client) -> None:
    ex = run(
        client,
        [
            {
                "id": "f",
                "action": "fail",
                "retry": {"max_attempts": 3, "backoff_multiplier": 2, "initial_delay_seconds": 0.2},
            }
        ],
    )
    step = ex["steps"]["f"]
    assert step["status"] == "failed" and step["attempts"] == 3
    # delays 0.2 + 0.4
    assert step["duration_seconds"] >= 0.6


def test_step_timeout(client: httpx.Client) -> None:
    ex = run(
        client, [{"id": "w", "action": "wait", "params": {"seconds": 5}, "timeout_seconds": 0.3}]
    )
    assert ex["status"] == "failed"
    assert "timed out" in ex["steps"]["w"]["error"]


def test_cancel(client: httpx.Client) -> None:
    pipe = create_pipeline(
        client,
        [
            {"id": "w", "action": "wait", "params": {"seconds": 30}},
            {"id": "n", "action": "log", "depends_on": ["w"]},
        ],
    )
    ex = client.post("/executions", json={"pipeline_id": pipe["id"]}).json()
    wait_status(client, f"/executions/{ex['id']}", {"running"})
    t0 = time.monotonic()
    r = client.post(f"/executions/{ex['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert time.monotonic() - t0 < 5
    assert r.json()["steps"]["n"]["status"] == "skipped"
    again = client.post(f"/executions/{ex['id']}/cancel")
    assert_error(again, 409, "conflict_error")


def test_paused_pipeline_cannot_run(client: httpx.Client) -> None:
    pipe = create_pipeline(client, [{"id": "a", "action": "log"}])
    assert client.patch(f"/pipelines/{pipe['id']}", json={"status": "paused"}).status_code == 200
    r = client.post("/executions", json={"pipeline_id": pipe["id"]})
    assert_error(r, 409, "conflict_error", "pipeline_not_active")


def test_http_request_really_requests(client: httpx.Client, gw: Any) -> None:
    ex = run(
        client,
        [
            {"id": "get", "action": "http_request", "params": {"url": gw.url + "/health"}},
            {
                "id": "check",
                "action": "log",
                "depends_on": ["get"],
                "condition": "steps.get.output.status_code == 200"
                " and steps.get.output.body.status == 'ok'",
            },
            {
                "id": "bad",
                "action": "http_request",
                "depends_on": ["check"],
                "params": {"url": gw.url + "/models", "expected_status": 401},
            },
        ],
    )
    assert ex["status"] == "completed", ex
    assert ex["steps"]["check"]["status"] == "completed"
    assert ex["outputs"]["bad"]["status_code"] == 401


def test_strict_undefined_fails_the_step(client: httpx.Client) -> None:
    ex = run(
        client, [{"id": "a", "action": "transform", "params": {"value": "{{ params.missing }}"}}]
    )
    assert ex["status"] == "failed"
    assert "missing" in ex["steps"]["a"]["error"]


def test_platform_actions_change_the_served_state(client: httpx.Client) -> None:
    clusters = {x["name"]: x["id"] for x in client.get("/clusters").json()["data"]}
    ex = run(
        client,
        [
            {
                "id": "add",
                "action": "model_add",
                "params": {"name": "{{ params.model }}", "source": "cloud", "uri": "gpt-x"},
            },
            {
                "id": "health",
                "action": "cluster_health",
                "params": {"cluster_id": "{{ params.cluster }}"},
            },
            {
                "id": "deploy",
                "action": "deployment_create",
                "depends_on": ["add", "health"],
                "condition": "steps.health.output.healthy",
                "params": {
                    "model_id": "{{ steps.add.output.id }}",
                    "cluster_id": "{{ params.cluster }}",
                    "name": "from-pipeline",
                },
            },
            {
                "id": "ask",
                "action": "chat_completion",
                "depends_on": ["deploy"],
                "params": {"model": "{{ steps.deploy.output.name }}", "prompt": "ping"},
            },
            {
                "id": "scale",
                "action": "deployment_scale",
                "depends_on": ["ask"],
                "params": {"deployment_id": "{{ steps.deploy.output.id }}", "replicas": 2},
            },
        ],
        {"model": "pipe-model", "cluster": clusters["local-cpu"]},
        timeout=30,
    )
    assert ex["status"] == "completed", ex
    assert ex["outputs"]["ask"]["content"] == "Echo: ping"
    dep = client.get(f"/deployments/{ex['outputs']['deploy']['id']}").json()
    assert dep["status"] == "active" and dep["replicas"] == 2 and dep["name"] == "from-pipeline"
    model_id = ex["outputs"]["add"]["id"]
    assert client.get(f"/models/{model_id}").json()["name"] == "pipe-model"

    teardown = run(
        client,
        [
            {
                "id": "undeploy",
                "action": "deployment_delete",
                "params": {"deployment_id": dep["id"]},
            },
            {
                "id": "unmodel",
                "action": "model_delete",
                "depends_on": ["undeploy"],
                "params": {"model_id": model_id},
            },
        ],
        timeout=30,
    )
    assert teardown["status"] == "completed", teardown
    assert client.get(f"/deployments/{dep['id']}").status_code == 404
    assert client.get(f"/models/{model_id}").status_code == 404


def test_action_errors_fail_the_step(client: httpx.Client) -> None:
    ex = run(
        client, [{"id": "del", "action": "model_delete", "params": {"model_id": "model_nope"}}]
    )
    assert ex["status"] == "failed"
    assert "model_not_found" in ex["steps"]["del"]["error"]


def test_execution_lists_filter_and_page(client: httpx.Client) -> None:
    pipe = create_pipeline(client, [{"id": "a", "action": "log"}], name="lister")
    ids = [
        client.post("/executions", json={"pipeline_id": pipe["id"]}).json()["id"] for _ in range(3)
    ]
    for i in ids:
        wait_status(client, f"/executions/{i}", {"completed"})
    # Executions list newest first (issue 16): the last run is what one looks for.
    newest = ids[::-1]
    page = client.get("/executions", params={"pipeline_id": pipe["id"], "limit": 2}).json()
    assert [e["id"] for e in page["data"]] == newest[:2] and page["has_more"]
    rest = client.get(
        "/executions", params={"pipeline_id": pipe["id"], "after": page["next_cursor"]}
    ).json()
    assert [e["id"] for e in rest["data"]] == newest[2:]
    assert client.get("/executions", params={"status": "failed"}).json()["data"] == []


def test_null_optional_step_keys_mean_absent(client: httpx.Client) -> None:
    """The SDK's `Step` TypedDict types depends_on, condition and retry as Optional: a client
    that sends them as null must get the same pipeline as one that leaves them out."""
    steps = [
        {"id": "a", "action": "log", "params": {"message": "hi"}, "depends_on": None},
        {"id": "b", "action": "log", "depends_on": ["a"], "condition": None, "retry": None},
    ]
    done = run(client, steps)
    assert done["status"] == "completed", done
    assert [done["steps"][s]["status"] for s in ("a", "b")] == ["completed", "completed"]
    bad = client.post(
        "/pipelines", json={"name": "nulls", "definition": {"steps": [{"id": "a", "action": None}]}}
    )
    assert_error(bad, 422, "validation_error", param="definition.steps[0].action")
