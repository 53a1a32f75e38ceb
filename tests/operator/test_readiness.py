"""Table tests: the Ready reason (and the gateway's words in its message) for every state the
gateway reports, on every kind, plus the reasons of failed gateway calls. Pure decisions only;
the same vocabulary is what ``budai ... --wait`` prints (``budai.readiness``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from budai.readiness import deployment_readiness, model_readiness
from budai_operator.models import BudExecutionSpec, BudPipelineSpec
from budai_operator.reconcile import (
    Failure,
    Observation,
    reconcile_deployment,
    reconcile_execution,
    reconcile_model,
    reconcile_pipeline,
)
from budai_operator.reconcile.common import error_plan
from tests.operator.test_reconcile import (
    HEALTHY,
    MODEL_SPEC,
    UID,
    cond,
    ctx,
    dep_spec,
    remote_dep,
    remote_model,
)

SHORT = "insufficient resources: cpu: requested 500, free 19"

# (gateway fields, health, model, Ready status, reason, words the message must hold)
DEPLOYMENT_TABLE: list[
    tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, str, str, list[str]]
] = [
    ("active", {}, HEALTHY, None, "True", "Active", ["serving with 2/2 replicas ready"]),
    (
        "active-partial",
        {"ready_replicas": 1, "error": "only 1 of 2 replicas fit on the cluster's ready nodes"},
        HEALTHY,
        None,
        "True",
        "Active",
        ["1/2 replicas ready", "only 1 of 2 replicas fit"],
    ),
    (
        "active-none-ready",
        {"ready_replicas": 0, "error": "only 0 of 2 replicas fit on the cluster's ready nodes"},
        HEALTHY,
        None,
        "False",
        "ReplicasNotReady",
        ["0/2 replicas ready", "only 0 of 2 replicas fit"],
    ),
    (
        "pending-capacity",
        {"status": "pending", "ready_replicas": 0, "error": SHORT},
        HEALTHY,
        None,
        "False",
        "InsufficientCapacity",
        ["cannot place 2 replicas", "cpu: requested 500, free 19"],
    ),
    (
        "scaling-capacity",
        {"status": "scaling", "replicas": 6, "error": SHORT},
        HEALTHY,
        None,
        "False",
        "InsufficientCapacity",
        ["cannot scale to 6 replicas", "cpu: requested 500, free 19"],
    ),
    (
        "pending-model-downloading",
        {"status": "pending", "ready_replicas": 0},
        HEALTHY,
        {
            "status": "downloading",
            "progress_percent": 42.0,
            "downloaded_bytes": 420,
            "size_bytes": 1000,
            "bytes_per_second": 100.0,
            "eta_seconds": 5.8,
        },
        "False",
        "WaitingForModel",
        ["model model_1 to download", "42% (420 B of 1.0 kB at 100 B/s, about 6s left)"],
    ),
    (
        "pending",
        {"status": "pending", "ready_replicas": 0},
        HEALTHY,
        None,
        "False",
        "Pending",
        ["waiting to be placed"],
    ),
    (
        "deploying",
        {"status": "deploying", "ready_replicas": 0},
        HEALTHY,
        None,
        "False",
        "Deploying",
        ["replicas are starting (0/2 replicas ready)"],
    ),
    (
        "scaling",
        {"status": "scaling", "replicas": 3},
        HEALTHY,
        None,
        "False",
        "Scaling",
        ["scaling to 3 replicas (2/3 replicas ready)"],
    ),
    (
        "cluster-unhealthy",
        {},
        {"status": "unhealthy", "node_count": 3, "ready_node_count": 0},
        None,
        "False",
        "ClusterUnhealthy",
        ["cluster cluster_1 is unhealthy", "0 ready nodes"],
    ),
    (
        "failed",
        {"status": "failed", "ready_replicas": 0, "error": "model failed: disk full"},
        HEALTHY,
        None,
        "False",
        "DeploymentFailed",
        ["the deployment failed: model failed: disk full"],
    ),
    (
        "unknown-state",
        {"status": "rebooting"},
        HEALTHY,
        None,
        "False",
        "Unknown",
        ["the deployment is rebooting"],
    ),
]


@pytest.mark.parametrize(
    ("fields", "health", "model", "ready", "reason", "words"),
    [row[1:] for row in DEPLOYMENT_TABLE],
    ids=[row[0] for row in DEPLOYMENT_TABLE],
)
def test_deployment_ready_reason_for_every_gateway_state(
    fields: dict[str, Any],
    health: dict[str, Any],
    model: dict[str, Any] | None,
    ready: str,
    reason: str,
    words: list[str],
) -> None:
    remote = remote_dep(**fields)
    plan = reconcile_deployment(
        ctx(kind="BudDeployment"),
        dep_spec(replicas=remote["replicas"]),  # the spec agrees: no update hides the reason
        Observation(remote, via="id"),
        model_id="model_1",
        health=health,
        model=model,
    )
    got = cond(plan.status, "Ready")
    assert (got["status"], got["reason"]) == (ready, reason), got
    for word in words:
        assert word in got["message"], (word, got["message"])
    # The CLI's --wait uses the same words.
    verdict = deployment_readiness(remote, health, model)
    assert (verdict.reason, verdict.ready) == (reason, ready == "True")
    stalled = cond(plan.status, "Stalled")["status"]
    assert stalled == ("True" if reason == "DeploymentFailed" else "False")


def test_stopped_deployment_says_so() -> None:
    plan = reconcile_deployment(
        ctx(kind="BudDeployment"),
        dep_spec(stopped=True),
        Observation(remote_dep(status="stopped", ready_replicas=0), via="id"),
        model_id="model_1",
        health=HEALTHY,
    )
    assert cond(plan.status, "Ready")["reason"] == "Stopped"


MODEL_TABLE: list[tuple[str, dict[str, Any], str, str, list[str]]] = [
    ("available", {}, "True", "Available", ["the model is available"]),
    (
        "downloading",
        {
            "status": "downloading",
            "progress_percent": 40.0,
            "downloaded_bytes": 4_000_000_000,
            "size_bytes": 10_000_000_000,
            "bytes_per_second": 50_000_000.0,
            "eta_seconds": 120.0,
        },
        "False",
        "Downloading",
        ["downloading 40% (4.0 GB of 10.0 GB at 50.0 MB/s, about 2m00s left)"],
    ),
    (
        "downloading-simulated",
        {
            "status": "downloading",
            "progress_percent": 1.0,
            "downloaded_bytes": 10,
            "size_bytes": 1000,
            "bytes_per_second": 10.0,
            "eta_seconds": 99.0,
            "metadata": {"team": "a", "bud.studio/uid": "x", "simulated_download": True},
        },
        "False",
        "Downloading",
        ["(simulated, "],
    ),
    (
        "error",
        {"status": "error", "error": "download failed: HTTP 404 from http://x/w.bin"},
        "False",
        "ModelError",
        ["the gateway reports the model failed: download failed: HTTP 404"],
    ),
    ("deleting", {"status": "deleting"}, "False", "RemoteDeleting", ["being deleted"]),
    ("unknown-state", {"status": "thawing"}, "False", "Unknown", ["state 'thawing'"]),
]


@pytest.mark.parametrize(
    ("fields", "ready", "reason", "words"),
    [row[1:] for row in MODEL_TABLE],
    ids=[row[0] for row in MODEL_TABLE],
)
def test_model_ready_reason_for_every_gateway_state(
    fields: dict[str, Any], ready: str, reason: str, words: list[str]
) -> None:
    remote = remote_model(**fields)
    plan = reconcile_model(ctx(), MODEL_SPEC, Observation(remote, via="id"))
    got = cond(plan.status, "Ready")
    assert (got["status"], got["reason"]) == (ready, reason), got
    for word in words:
        assert word in got["message"], (word, got["message"])
    assert model_readiness(remote).reason == reason


def test_model_status_carries_the_download_figures() -> None:
    remote = remote_model(**MODEL_TABLE[1][1])
    status = reconcile_model(ctx(), MODEL_SPEC, Observation(remote, via="id")).status
    assert {
        k: status.get(k)
        for k in ("downloadedBytes", "sizeBytes", "progressPercent", "bytesPerSecond", "etaSeconds")
    } == {
        "downloadedBytes": 4_000_000_000,
        "sizeBytes": 10_000_000_000,
        "progressPercent": 40.0,
        "bytesPerSecond": 50_000_000.0,
        "etaSeconds": 120.0,
    }
    done = reconcile_model(ctx(status=status), MODEL_SPEC, Observation(remote_model(), via="id"))
    assert "bytesPerSecond" not in done.status and "etaSeconds" not in done.status


PIPELINE_SPEC = BudPipelineSpec.model_validate(
    {"definition": {"steps": [{"id": "a", "action": "log"}]}}
)


def remote_pipeline(**over: Any) -> dict[str, Any]:
    base = {
        "id": "pipe_1",
        "name": "team-a-llama",
        "description": None,
        "definition": {"steps": [{"id": "a", "action": "log"}]},
        "status": "active",
        "metadata": {"bud.studio/uid": UID},
        "updated_at": "t",
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("state", "spec", "ready", "reason"),
    [
        ("active", {}, "True", "Active"),
        ("paused", {"paused": True}, "True", "Paused"),
    ],
)
def test_pipeline_ready_reason(state: str, spec: dict[str, Any], ready: str, reason: str) -> None:
    pspec = BudPipelineSpec.model_validate({**PIPELINE_SPEC.model_dump(by_alias=True), **spec})
    plan = reconcile_pipeline(
        ctx(kind="BudPipeline"), pspec, Observation(remote_pipeline(status=state), via="id")
    )
    got = cond(plan.status, "Ready")
    assert (got["status"], got["reason"]) == (ready, reason), got


def test_pipeline_status_mirrors_the_newest_execution() -> None:
    last = {"id": "exec_9", "status": "running", "started_at": "2026-11-27T11:59:00Z"}
    plan = reconcile_pipeline(
        ctx(kind="BudPipeline"),
        PIPELINE_SPEC,
        Observation(remote_pipeline(last_execution=last), via="id"),
        last_execution=last,
    )
    assert plan.status["lastExecution"] == {
        "id": "exec_9",
        "state": "running",
        "startedAt": "2026-11-27T11:59:00Z",
    }


EXEC_SPEC = BudExecutionSpec.model_validate({"pipelineId": "pipe_1"})


@pytest.mark.parametrize(
    ("state", "error", "ready", "reason"),
    [
        ("completed", None, "True", "Succeeded"),
        ("failed", "step a failed: HTTP 500", "False", "Failed"),
        ("cancelled", None, "False", "Cancelled"),
        ("running", None, "False", "Running"),
        ("pending", None, "False", "Pending"),
    ],
)
def test_execution_ready_reason(state: str, error: str | None, ready: str, reason: str) -> None:
    remote = {
        "id": "exec_1",
        "pipeline_id": "pipe_1",
        "status": state,
        "error": error,
        "steps": {},
        "outputs": {},
    }
    plan = reconcile_execution(
        ctx(kind="BudExecution"), EXEC_SPEC, Observation(remote, via="id"), pipeline_id="pipe_1"
    )
    got = cond(plan.status, "Ready")
    assert (got["status"], got["reason"]) == (ready, reason), got
    if error:
        assert error in got["message"]


@pytest.mark.parametrize(
    ("code", "reason", "stalled"),
    [
        (401, "Unauthorized", "True"),
        (403, "Unauthorized", "True"),
        (400, "InvalidSpec", "True"),
        (422, "InvalidSpec", "True"),
        (413, "RequestTooLarge", "True"),
        (429, "RateLimited", "False"),
        (503, "GatewayError", "False"),
        (0, "GatewayUnreachable", "False"),
    ],
)
def test_failed_calls_name_their_cause_on_every_kind(code: int, reason: str, stalled: str) -> None:
    for kind in ("BudModel", "BudDeployment", "BudPipeline", "BudExecution"):
        failure = Failure(code, "the gateway's own words", code="some_code")
        plan = error_plan(ctx(kind=kind), failure, attempt=0, doing="create thing")
        ready = cond(plan.status, "Ready")
        assert ready["reason"] == reason, (kind, ready)
        assert "create thing failed: the gateway's own words" in ready["message"]
        assert cond(plan.status, "Stalled")["status"] == stalled


def _decision(t: str, frm: int, to: int) -> dict[str, Any]:
    return {
        "time": t,
        "from_replicas": frm,
        "to_replicas": to,
        "metric": "requests_per_second",
        "observed": 9.0,
        "target": 2.5,
        "reason": f"scaled from {frm} to {to}: 9.00 req/s observed",
    }


def test_scaling_decisions_mirror_the_last_five_and_each_new_one_is_an_event() -> None:
    spec = dep_spec(autoScaling={"enabled": True, "minReplicas": 1, "maxReplicas": 9})
    auto = {"enabled": True, "min_replicas": 1, "max_replicas": 9, "target_cpu": 80}
    history = [_decision(f"2026-11-27T11:0{i}:00.000Z", i + 1, i + 2) for i in range(7)]
    remote = remote_dep(auto_scaling=auto, scaling_decisions=history[:6], replicas=7)
    first = reconcile_deployment(
        ctx(kind="BudDeployment"), spec, Observation(remote, via="id"), model_id="model_1"
    )
    kept = first.status["autoScaling"]["lastDecisions"]
    assert [d["toReplicas"] for d in kept] == [3, 4, 5, 6, 7]
    assert kept[-1] == {
        "time": "2026-11-27T11:05:00.000Z",
        "fromReplicas": 6,
        "toReplicas": 7,
        "metric": "requests_per_second",
        "observed": 9.0,
        "target": 2.5,
        "reason": "scaled from 6 to 7: 9.00 req/s observed",
    }
    assert [e.reason for e in first.events] == ["Scaled"] * 5
    # The next poll sees one more decision: exactly one new Event, with the autoscaler's words.
    remote = remote_dep(auto_scaling=auto, scaling_decisions=history, replicas=8)
    again = reconcile_deployment(
        ctx(kind="BudDeployment", status=first.status),
        spec,
        Observation(remote, via="id"),
        model_id="model_1",
    )
    scaled = [e for e in again.events if e.reason == "Scaled"]
    assert [(e.type, e.message) for e in scaled] == [
        ("Normal", "scaled from 7 to 8: 9.00 req/s observed")
    ]
    idle = reconcile_deployment(
        ctx(kind="BudDeployment", status=again.status),
        spec,
        Observation(remote, via="id"),
        model_id="model_1",
    )
    assert not [e for e in idle.events if e.reason == "Scaled"]


def test_every_ready_reason_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    documented = {
        word for row in rows for word in re.findall(r"`([A-Z][A-Za-z]+)`", row.split("|")[1])
    }
    produced = {row[5] for row in DEPLOYMENT_TABLE} | {row[3] for row in MODEL_TABLE}
    produced |= {"Succeeded", "Failed", "Cancelled", "Running", "Pending", "Stopped", "Active"}
    produced |= {"Paused", "Unauthorized", "InvalidSpec", "RequestTooLarge", "RateLimited"}
    produced |= {"GatewayError", "GatewayUnreachable", "WaitingForModel", "InsufficientCapacity"}
    produced.discard("Unknown")  # a gateway state this operator does not know yet
    assert produced <= documented, sorted(produced - documented)


def test_the_argo_fixture_for_missing_capacity_is_what_the_operator_writes() -> None:
    fixture = Path(__file__).resolve().parents[2] / (
        "gitops/argocd/health/bud.studio_BudDeployment/testdata/insufficient-capacity.yaml"
    )
    recorded = yaml.safe_load(fixture.read_text())
    remote = remote_dep(status="pending", replicas=1, ready_replicas=0, error=SHORT)
    plan = reconcile_deployment(
        ctx(kind="BudDeployment"),
        dep_spec(replicas=1),
        Observation(remote, via="id"),
        model_id="model_1",
        health=HEALTHY,
    )
    for type_ in ("Ready", "Reconciling"):
        got = cond(plan.status, type_)
        want = next(c for c in recorded["status"]["conditions"] if c["type"] == type_)
        assert (got["status"], got["reason"], got["message"]) == (
            want["status"],
            want["reason"],
            want["message"],
        )
