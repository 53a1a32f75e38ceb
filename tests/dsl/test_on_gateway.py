"""Pipelines built with the DSL run on the local gateway and do what the DSL promised:
templates render, conditions pick branches, retries retry, and the gateway agrees with the
DSL's checks."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from budai import AsyncBudClient, BudClient
from budai.dsl import Pipeline, Retry
from budai.exceptions import ValidationError
from budai.types import Execution, PipelineDefinition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pipelines"


@pytest.fixture(scope="module", autouse=True)
def clean_gateway(gateway: Any) -> None:
    """Start from the gateway's initial state, whatever earlier tests left behind."""
    gateway.reset()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def steps_of(execution: Execution) -> dict[str, dict[str, Any]]:
    """Each step's state as data. (The SDK types a step's output as a dict, but a transform
    outputs any JSON value, and the SDK then keeps the steps unvalidated, as plain dicts.)"""
    return {
        sid: step if isinstance(step, dict) else step.model_dump(mode="json")
        for sid, step in execution.steps.items()
    }


def run(client: BudClient, p: Pipeline, params: dict[str, Any] | None = None) -> Execution:
    created = client.pipelines.create(name=unique(p.name), definition=p)
    return client.executions.create(created.id, params or {}, wait=True, timeout=120)


def test_templates_render_params_and_upstream_outputs(client: BudClient) -> None:
    with Pipeline("templates") as p:
        base = p.transform("base", value={"n": p.param("n"), "who": p.param("who", "world")})
        double = p.transform("double", value=base.output["n"])  # one {{ }}: keeps the int
        text = p.transform("text", value=f"hello {base.output['who']}, n={double.output}")
        p.set_output("final", {"n": double.output, "text": text.output, "env": p.param("env")})
    execution = run(client, p, {"n": 21, "env": "test"})
    assert execution.status == "completed", execution.error
    assert execution.outputs["double"] == 21
    assert execution.outputs["text"] == "hello world, n=21"
    assert execution.outputs["final"] == {"n": 21, "text": "hello world, n=21", "env": "test"}
    # Implied edges made the order: every step saw its inputs.
    assert [s["depends_on"] for s in p.build()["steps"][1:]] == [
        ["base"],
        ["base", "double"],
        ["double", "text"],
    ]


def test_conditions_choose_branches(client: BudClient) -> None:
    with Pipeline("branches") as p:
        check = p.transform("check", value=p.param("score"))
        score = check.output
        high = p.set_output("high", {"branch": "high"})
        low = p.set_output("low", {"branch": "low"})
        mid = p.set_output("mid", {"branch": "mid"})
        high.when(score >= 80)
        low.when(~(score >= 50) | (p.param("force_low", False) == True))  # noqa: E712
        mid.when((score >= 50) & (score < 80))
        raw = p.log("raw", message="raw condition", condition="params.score is even")
        check >> [high, low, mid, raw]
        after = p.set_output("after", {"high_status": high.status, "low_status": low.status})
        [high, low, mid] >> after
    execution = run(client, p, {"score": 65})
    assert execution.status == "completed", execution.error
    statuses = {sid: step["status"] for sid, step in steps_of(execution).items()}
    assert statuses == {
        "check": "completed", "high": "skipped", "low": "skipped", "mid": "completed",
        "raw": "skipped", "after": "completed",
    }  # fmt: skip
    assert execution.outputs["after"] == {"high_status": "skipped", "low_status": "skipped"}

    again = client.executions.create(
        execution.pipeline_id, {"score": 90, "force_low": True}, wait=True, timeout=120
    )
    statuses = {sid: step["status"] for sid, step in steps_of(again).items()}
    assert (statuses["high"], statuses["low"], statuses["mid"], statuses["raw"]) == (
        "completed", "completed", "skipped", "completed",
    )  # fmt: skip


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that answers 500 twice, then 200 with JSON; it records each hit."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            status = 500 if len(hits) <= 2 else 200
            body = json.dumps({"attempt": len(hits)}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ping", hits
    finally:
        server.shutdown()
        server.server_close()


def test_retries_follow_the_dsl(client: BudClient, flaky_server: tuple[str, list[str]]) -> None:
    url, hits = flaky_server
    with Pipeline("retries", retry=Retry(max_attempts=1)) as p:
        fetch = p.http_request(
            "fetch", url=url,
            retry=Retry(max_attempts=3, backoff_multiplier=1, initial_delay_seconds=0.05),
        )  # fmt: skip
        p.transform("seen", value=fetch.output["body"]["attempt"])
    execution = run(client, p)
    assert execution.status == "completed", execution.error
    assert len(hits) == 3
    fetched = steps_of(execution)["fetch"]
    assert (fetched["status"], fetched["attempts"]) == ("completed", 3)
    assert execution.outputs["seen"] == 3

    # The pipeline-wide default applies to a step without its own retry; a step that fails for
    # good fails the execution, and the error names it.
    with Pipeline("retries-fail", retry=Retry(max_attempts=2, initial_delay_seconds=0.05)) as q:
        q.fail("boom", message="always")
    failed = run(client, q)
    boom = steps_of(failed)["boom"]
    assert (boom["status"], boom["attempts"]) == ("failed", 2)
    assert failed.status == "failed"
    assert failed.error is not None and "boom" in failed.error


def test_gateway_agrees_with_the_dsl(client: BudClient) -> None:
    with Pipeline("agree", retry=Retry(2, initial_delay_seconds=0.1)) as p:
        a = p.http_request("a", url="http://127.0.0.1:9/", expected_status=[200, 404])
        b = p.transform("b-hyphen", value=a.output["body"])
        ok = (a.output["status_code"] == 200) & (b.status == "completed")
        p.log("c", message=f"{b.output}", condition=ok)
    definition = p.build()
    assert client.pipelines.validate(definition).valid
    created = client.pipelines.create(name=unique("agree"), description="d", definition=p)
    # The stored definition round-trips through the builder unchanged.
    assert Pipeline.from_definition(created.definition).build() == created.definition
    # The gateway spells out empty optional fields (`depends_on: []`); otherwise it is ours.
    stored = [
        {k: v for k, v in s.items() if v not in (None, [])} for s in created.definition["steps"]
    ]
    assert stored == definition["steps"]

    # What the DSL refuses, the gateway refuses too (the DSL just says it all at once).
    raw: PipelineDefinition = {
        "steps": [
            {"id": "x", "action": "log", "params": {"message": "x"}, "depends_on": ["y"]},
            {"id": "y", "action": "log", "params": {"message": "y"}, "depends_on": ["x"]},
        ]
    }
    assert Pipeline.from_definition(raw).problems() == ["cycle: x >> y >> x"]
    assert not client.pipelines.validate(raw).valid
    with pytest.raises(ValidationError):
        client.pipelines.create(name=unique("bad"), definition=raw)


def test_example_deploy_pipeline_runs_end_to_end(client: BudClient) -> None:
    import runpy

    namespace = runpy.run_path(str(EXAMPLES / "deploy_model.py"))
    p: Pipeline = namespace["pipeline"]
    cluster = next(c for c in client.clusters.list() if c.status == "active")
    name = unique("demo")
    execution = run(client, p, {"model": name, "cluster_id": cluster.id, "replicas": 2})
    assert execution.status == "completed", (execution.error, execution.steps)
    summary = execution.outputs["summary"]
    deployment = client.deployments.get(summary["deployment_id"])
    assert deployment.replicas == 2 and deployment.status == "active"
    assert deployment.model_id == summary["model_id"]
    assert summary["answer"]
    assert steps_of(execution)["cluster-unhealthy"]["status"] == "skipped"


async def test_async_client_accepts_the_builder(gateway: Any) -> None:
    with Pipeline("async-builder") as p:
        double = p.transform("double", value=p.param("x"))
        p.set_output("out", {"x": double.output})
    async with AsyncBudClient(api_key=gateway.api_key, base_url=gateway.url) as client:
        created = await client.pipelines.create(name=unique(p.name), definition=p)
        assert created.definition["steps"][1]["depends_on"] == ["double"]
        execution = await client.executions.create(created.id, {"x": 4}, wait=True, timeout=60)
    assert execution.status == "completed", execution.error
    assert execution.outputs["out"] == {"x": 4}
