"""Table tests of the pure reconcile decisions: no cluster, no gateway, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from budai_operator.models import (
    BudDeploymentSpec,
    BudExecutionSpec,
    BudModelSpec,
    BudPipelineSpec,
)
from budai_operator.reconcile import (
    Ctx,
    ErrorClass,
    Failure,
    Observation,
    backoff,
    classify,
    delete_execution_plan,
    reconcile_deployment,
    reconcile_execution,
    reconcile_model,
    reconcile_pipeline,
)
from budai_operator.reconcile import conditions as c
from budai_operator.reconcile.common import delete_plan, error_plan, initial_status
from budai_operator.reconcile.pipeline import find_cycle
from budai_operator.reconcile.polling import parse_duration, poll_interval

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
UID = "0b6f8d1c-1111-2222-3333-444455556666"


def ctx(
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
    now: datetime = NOW,
    kind: str = "BudModel",
) -> Ctx:
    return Ctx(
        kind=kind,
        name="llama",
        namespace="team-a",
        uid=UID,
        generation=generation,
        annotations=annotations or {},
        status=status or {},
        now=now,
    )


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = c.get(status.get("conditions"), type_)
    assert found is not None, f"no {type_} condition in {status.get('conditions')}"
    return dict(found)


MODEL_SPEC = BudModelSpec.model_validate(
    {"source": "hugging_face", "uri": "meta/llama", "metadata": {"team": "a"}}
)


def remote_model(**over: Any) -> dict[str, Any]:
    base = {
        "id": "model_1",
        "name": "team-a-llama",
        "source": "hugging_face",
        "uri": "meta/llama",
        "status": "available",
        "size_bytes": 1000,
        "progress_percent": None,
        "metadata": {"team": "a", "bud.studio/uid": UID, "gateway_added": 1},
        "updated_at": "2026-11-27T11:00:00Z",
    }
    base.update(over)
    return base


# --- conditions -------------------------------------------------------------------------------


def test_initial_status_is_ready_false_initializing() -> None:
    status = initial_status(ctx())
    assert status is not None
    ready = cond(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Initializing")
    assert initial_status(ctx(status=status)) is None


def test_last_transition_time_moves_only_on_status_change() -> None:
    first = c.merge([], [c.cond("Ready", False, "Creating", "a")], generation=1, now=NOW)
    later = NOW + timedelta(minutes=5)
    same = c.merge(first, [c.cond("Ready", False, "Downloading", "b")], generation=2, now=later)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["reason"] == "Downloading" and same[0]["observedGeneration"] == 2
    flipped = c.merge(same, [c.cond("Ready", True, "Available")], generation=2, now=later)
    assert flipped[0]["lastTransitionTime"] == c.rfc3339(later)


def test_idle_reconcile_leaves_status_identical() -> None:
    plan = reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="id"))
    again = reconcile_model(
        ctx(status=plan.status, annotations=plan.annotations),
        MODEL_SPEC,
        Observation(remote_model(), via="id"),
    )
    assert not again.actions and not again.events
    assert again.status["conditions"] == plan.status["conditions"]


# --- BudModel ---------------------------------------------------------------------------------


def test_model_create_is_idempotent_and_stamps_identity() -> None:
    plan = reconcile_model(ctx(), MODEL_SPEC, Observation())
    (action,) = plan.actions
    assert action.op == "create"
    assert action.body["name"] == "team-a-llama"
    assert action.body["metadata"]["bud.studio/uid"] == UID
    again = reconcile_model(ctx(), MODEL_SPEC, Observation())
    assert again.actions[0].idempotency_key == action.idempotency_key
    assert cond(plan.status, "Reconciling")["status"] == "True"


def test_model_created_records_id_in_status_and_annotation() -> None:
    plan = reconcile_model(
        ctx(),
        MODEL_SPEC,
        Observation(remote_model(status="downloading", progress_percent=42.0), via="action"),
    )
    assert plan.status["id"] == "model_1"
    assert plan.annotations == {"bud.studio/external-id": "model_1"}
    assert [e.reason for e in plan.events] == ["Created"]
    assert cond(plan.status, "ModelAvailable")["reason"] == "Downloading"
    assert "42%" in cond(plan.status, "Ready")["message"]
    assert plan.requeue_after is not None and plan.requeue_after < 15


def test_model_available_is_ready_and_polls_slowly() -> None:
    plan = reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="id"))
    assert cond(plan.status, "Ready")["status"] == "True"
    assert cond(plan.status, "Synced")["status"] == "True"
    assert cond(plan.status, "Stalled")["status"] == "False"
    assert plan.status["observedGeneration"] == 1
    assert plan.requeue_after is not None and plan.requeue_after > 200


def test_model_found_by_name_with_foreign_identity_stalls() -> None:
    foreign = remote_model(metadata={"bud.studio/uid": "someone-else"})
    plan = reconcile_model(ctx(), MODEL_SPEC, Observation(foreign, via="name"))
    assert cond(plan.status, "Stalled")["reason"] == "NameConflict"
    assert not plan.actions


def test_model_found_by_name_that_is_ours_is_adopted_without_create() -> None:
    plan = reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="name"))
    assert not plan.actions
    assert plan.annotations["bud.studio/external-id"] == "model_1"
    assert plan.events[0].reason == "Found"


def test_model_metadata_drift_is_put_back_keeping_gateway_keys() -> None:
    status = {"observedGeneration": 1, "id": "model_1"}
    drifted = remote_model(metadata={"team": "b", "bud.studio/uid": UID, "gateway_added": 1})
    plan = reconcile_model(ctx(status=status), MODEL_SPEC, Observation(drifted, via="id"))
    (action,) = plan.actions
    assert action.op == "update" and action.reason == "DriftCorrected"
    assert action.body["metadata"] == {"team": "a", "bud.studio/uid": UID, "gateway_added": 1}


def test_model_gone_is_recreated_but_adopted_one_stalls() -> None:
    status = {"id": "model_1", "observedGeneration": 1}
    plan = reconcile_model(ctx(status=status), MODEL_SPEC, Observation(gone=True))
    assert plan.actions[0].op == "create"
    assert plan.events[0].reason == "RemoteNotFound"
    adopted = MODEL_SPEC.model_copy(update={"external_id": "model_9"})
    plan = reconcile_model(ctx(), adopted, Observation(gone=True))
    assert not plan.actions
    assert cond(plan.status, "Stalled")["reason"] == "RemoteNotFound"


def test_model_error_state_stalls_with_gateway_message() -> None:
    plan = reconcile_model(
        ctx(), MODEL_SPEC, Observation(remote_model(status="error", error="no such path"), via="id")
    )
    assert cond(plan.status, "Stalled")["status"] == "True"
    assert "no such path" in cond(plan.status, "Ready")["message"]


def test_paused_annotation_stops_writes() -> None:
    plan = reconcile_model(
        ctx(annotations={"bud.studio/paused": "true"}), MODEL_SPEC, Observation()
    )
    assert not plan.actions
    synced = cond(plan.status, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "Paused")


def test_reconcile_requested_at_is_echoed() -> None:
    plan = reconcile_model(
        ctx(annotations={"bud.studio/reconcile-requested-at": "now-1"}),
        MODEL_SPEC,
        Observation(remote_model(), via="id"),
    )
    assert plan.status["lastHandledReconcileAt"] == "now-1"


# --- errors and polling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "code", "expected"),
    [
        (400, None, ErrorClass.INVALID),
        (422, None, ErrorClass.INVALID),
        (401, None, ErrorClass.UNAUTHORIZED),
        (403, None, ErrorClass.UNAUTHORIZED),
        (404, None, ErrorClass.NOT_FOUND),
        (409, "already_exists", ErrorClass.ALREADY_EXISTS),
        (409, "model_in_use", ErrorClass.CONFLICT),
        (429, None, ErrorClass.TRANSIENT),
        (500, None, ErrorClass.TRANSIENT),
        (503, None, ErrorClass.TRANSIENT),
        (0, None, ErrorClass.TRANSIENT),
    ],
)
def test_error_taxonomy(status_code: int, code: str | None, expected: ErrorClass) -> None:
    assert classify(Failure(status_code, "x", code=code)) is expected


def test_backoff_doubles_caps_and_honours_retry_after() -> None:
    assert [backoff(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(20) == 300.0
    assert backoff(0, retry_after=30) == 30
    assert 0.8 <= backoff(0, jitter=0.99) < 1.0


def test_invalid_stalls_without_retry_and_unauthorized_rechecks() -> None:
    plan = error_plan(ctx(), Failure(422, "bad uri", param="uri"), attempt=0, doing="create model")
    assert plan.requeue_after is None
    stalled = cond(plan.status, "Stalled")
    assert (
        stalled["reason"] == "InvalidSpec" and "create model failed: bad uri" in stalled["message"]
    )
    plan = error_plan(ctx(), Failure(401, "bad key"), attempt=0, doing="observe model")
    assert cond(plan.status, "Stalled")["reason"] == "Unauthorized"
    assert plan.requeue_after == 60.0  # a changed key file wakes them at once


def test_transient_error_backs_off_and_keeps_ready() -> None:
    ready = reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="id")).status
    plan = error_plan(
        ctx(status=ready), Failure(429, "slow down", retry_after=7), attempt=0, doing="observe"
    )
    assert plan.requeue_after == 7
    assert cond(plan.status, "Ready")["status"] == "True"
    assert cond(plan.status, "Synced")["reason"] == "RateLimited"
    assert plan.events and plan.events[0].type == "Warning"
    later = error_plan(ctx(status=plan.status), Failure(503, "down"), attempt=3, doing="observe")
    assert not later.events  # one Warning per failure streak, not per retry


@pytest.mark.parametrize(
    ("annotations", "in_flight", "low", "high"),
    [
        ({}, True, 9, 11),
        ({}, False, 270, 330),
        ({"bud.studio/poll-interval": "30s"}, False, 30, 30),
        ({"bud.studio/poll-interval": "2m"}, True, 120, 120),
        ({"bud.studio/poll-interval": "junk"}, True, 9, 11),
    ],
)
def test_poll_interval(
    annotations: dict[str, str], in_flight: bool, low: float, high: float
) -> None:
    for jitter in (0.0, 0.5, 0.99):
        value = poll_interval(annotations, in_flight=in_flight, jitter=jitter)
        assert low <= value <= high


def test_parse_duration() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45") == 45
    assert parse_duration("soon") is None


# --- deletion ---------------------------------------------------------------------------------


def test_delete_policies_and_delete_failed() -> None:
    orphan = delete_plan(
        ctx(),
        policy="Orphan",
        remote_id="m",
        observation=Observation(),
        attempt=0,
        last_failure=None,
        noun="model",
    )
    assert orphan.done and orphan.events[0].reason == "Orphaned"
    first = delete_plan(
        ctx(),
        policy="Delete",
        remote_id="m",
        observation=Observation(remote_model(), via="id"),
        attempt=0,
        last_failure=None,
        noun="model",
    )
    assert not first.done and first.actions[0].op == "delete"
    waiting = delete_plan(
        ctx(),
        policy="Delete",
        remote_id="m",
        observation=Observation(remote_model(status="deleting"), via="id"),
        attempt=0,
        last_failure=None,
        noun="model",
    )
    assert not waiting.actions and not waiting.done
    failing = delete_plan(
        ctx(),
        policy="Delete",
        remote_id="m",
        observation=Observation(remote_model(), via="id"),
        attempt=3,
        last_failure=Failure(409, "model in use", code="model_in_use"),
        noun="model",
    )
    failed = cond(failing.status, "DeleteFailed")
    assert failed["status"] == "True"
    assert "model in use" in failed["message"] and "Orphan" in failed["message"]
    gone = delete_plan(
        ctx(),
        policy="Delete",
        remote_id="m",
        observation=Observation(gone=True),
        attempt=1,
        last_failure=None,
        noun="model",
    )
    assert gone.done


# --- BudDeployment ----------------------------------------------------------------------------


def dep_spec(**over: Any) -> BudDeploymentSpec:
    data = {"modelRef": {"name": "llama"}, "clusterId": "cluster_1", "replicas": 2}
    data.update(over)
    return BudDeploymentSpec.model_validate(data)


def remote_dep(**over: Any) -> dict[str, Any]:
    base = {
        "id": "dep_1",
        "name": "team-a-llama",
        "model_id": "model_1",
        "cluster_id": "cluster_1",
        "status": "active",
        "replicas": 2,
        "ready_replicas": 2,
        "endpoint_url": "http://x",
        "auto_scaling": None,
        "resources": {"cpu": "2", "memory": "8Gi"},
        "metadata": {"bud.studio/uid": UID},
        "updated_at": "t1",
    }
    base.update(over)
    return base


HEALTHY = {"status": "healthy", "node_count": 3, "available_resources": {"cpu": "12"}}


def test_deployment_waits_for_model() -> None:
    plan = reconcile_deployment(
        ctx(), dep_spec(), Observation(), model_id=None, model_wait="BudModel llama is not ready"
    )
    assert not plan.actions
    assert cond(plan.status, "Ready")["reason"] == "WaitingForModel"


def test_deployment_create_body_is_snake_case() -> None:
    spec = dep_spec(resources={"cpu": 2, "memory": "8Gi"})
    plan = reconcile_deployment(ctx(), spec, Observation(), model_id="model_1")
    body = plan.actions[0].body
    assert body == {
        "name": "team-a-llama",
        "model_id": "model_1",
        "cluster_id": "cluster_1",
        "replicas": 2,
        "resources": {"cpu": "2", "memory": "8Gi"},
        "metadata": {"bud.studio/uid": UID},
    }


def test_deployment_ready_needs_active_replicas_and_healthy_cluster() -> None:
    spec = dep_spec(resources={"cpu": "2000m", "memory": "8Gi"})
    plan = reconcile_deployment(
        ctx(), spec, Observation(remote_dep(), via="id"), model_id="model_1", health=HEALTHY
    )
    assert not plan.actions  # 2000m == 2
    assert cond(plan.status, "Ready")["status"] == "True"
    assert cond(plan.status, "ClusterHealthy")["status"] == "True"
    assert plan.status["replicas"] == 2 and plan.status["cluster"]["health"] == "healthy"
    sick = {"status": "unhealthy", "node_count": 0}
    plan = reconcile_deployment(
        ctx(status=plan.status),
        spec,
        Observation(remote_dep(), via="id"),
        model_id="model_1",
        health=sick,
    )
    assert cond(plan.status, "Ready")["status"] == "False"
    assert cond(plan.status, "ClusterHealthy")["reason"] == "Unhealthy"


def test_deployment_replica_drift_is_corrected_with_event_reason() -> None:
    status = {"observedGeneration": 1, "id": "dep_1"}
    plan = reconcile_deployment(
        ctx(status=status),
        dep_spec(),
        Observation(remote_dep(replicas=5), via="id"),
        model_id="model_1",
    )
    (action,) = plan.actions
    assert action.body == {"replicas": 2} and action.reason == "DriftCorrected"
    scaled = reconcile_deployment(
        ctx(status=status, generation=2),
        dep_spec(replicas=4),
        Observation(remote_dep(), via="id"),
        model_id="model_1",
    )
    assert scaled.actions[0].body == {"replicas": 4} and scaled.actions[0].reason == "Updating"


def test_autoscaling_is_never_fought() -> None:
    spec = dep_spec(autoScaling={"enabled": True, "minReplicas": 1, "maxReplicas": 5})
    remote = remote_dep(
        replicas=4,
        ready_replicas=4,
        auto_scaling={"enabled": True, "min_replicas": 1, "max_replicas": 5},
    )
    plan = reconcile_deployment(
        ctx(status={"observedGeneration": 1}),
        spec,
        Observation(remote, via="id"),
        model_id="model_1",
        health=HEALTHY,
    )
    assert not plan.actions
    assert plan.status["desiredReplicas"] == 4
    assert cond(plan.status, "Ready")["status"] == "True"
    create = reconcile_deployment(ctx(), spec, Observation(), model_id="model_1")
    assert "replicas" not in create.actions[0].body


def test_deployment_stop_and_start() -> None:
    plan = reconcile_deployment(
        ctx(), dep_spec(stopped=True), Observation(remote_dep(), via="id"), model_id="model_1"
    )
    assert [a.op for a in plan.actions] == ["stop"]
    plan = reconcile_deployment(
        ctx(),
        dep_spec(),
        Observation(remote_dep(status="stopped", ready_replicas=0), via="id"),
        model_id="model_1",
    )
    assert [a.op for a in plan.actions] == ["start"]


def test_deployment_pending_shows_capacity_error() -> None:
    plan = reconcile_deployment(
        ctx(),
        dep_spec(),
        Observation(
            remote_dep(status="pending", ready_replicas=0, error="needs 4 GPUs, 0 free"), via="id"
        ),
        model_id="model_1",
    )
    assert "needs 4 GPUs" in cond(plan.status, "Ready")["message"]
    assert cond(plan.status, "Reconciling")["status"] == "True"


# --- BudPipeline ------------------------------------------------------------------------------


def pipe_spec(steps: list[dict[str, Any]], **over: Any) -> BudPipelineSpec:
    data: dict[str, Any] = {"definition": {"steps": steps}}
    data.update(over)
    return BudPipelineSpec.model_validate(data)


STEPS = [
    {"id": "fetch", "action": "http_request", "params": {"url": "http://x"}},
    {
        "id": "log",
        "action": "log",
        "params": {"message": "{{ steps.fetch.output }}"},
        "dependsOn": ["fetch"],
        "retry": {"maxAttempts": 3, "backoffMultiplier": 2},
    },
]


def test_pipeline_cycle_and_unknown_action_stall_naming_the_step() -> None:
    cyclic = pipe_spec(
        [
            {"id": "a", "action": "log", "dependsOn": ["c"]},
            {"id": "b", "action": "log", "dependsOn": ["a"]},
            {"id": "c", "action": "log", "dependsOn": ["b"]},
        ]
    )
    assert find_cycle(cyclic.definition.steps) == ["a", "c", "b", "a"]
    plan = reconcile_pipeline(ctx(), cyclic, Observation())
    stalled = cond(plan.status, "Stalled")
    assert stalled["status"] == "True" and "step a is in a dependency cycle" in stalled["message"]
    unknown = pipe_spec([{"id": "x", "action": "teleport"}])
    plan = reconcile_pipeline(ctx(), unknown, Observation(), known_actions={"log", "wait"})
    assert "step x uses unknown action 'teleport'" in cond(plan.status, "Stalled")["message"]
    assert not plan.actions


def test_pipeline_create_maps_steps_and_passes_params_through() -> None:
    plan = reconcile_pipeline(ctx(), pipe_spec(STEPS), Observation(), known_actions=None)
    steps = plan.actions[0].body["definition"]["steps"]
    assert steps[1] == {
        "id": "log",
        "action": "log",
        "params": {"message": "{{ steps.fetch.output }}"},
        "depends_on": ["fetch"],
        "retry": {"max_attempts": 3, "backoff_multiplier": 2.0},
    }


def test_pipeline_defaults_are_not_drift_but_changes_and_pause_are() -> None:
    spec = pipe_spec(STEPS)
    remote_steps = [
        {
            "id": "fetch",
            "action": "http_request",
            "params": {"url": "http://x"},
            "depends_on": [],
            "condition": None,
            "retry": None,
            "timeout_seconds": None,
        },
        {
            "id": "log",
            "action": "log",
            "params": {"message": "{{ steps.fetch.output }}"},
            "depends_on": ["fetch"],
            "retry": {"max_attempts": 3, "backoff_multiplier": 2, "initial_delay_seconds": 1},
        },
    ]
    remote = {
        "id": "pipe_1",
        "name": "team-a-llama",
        "status": "active",
        "definition": {"steps": remote_steps},
        "description": None,
        "metadata": {"bud.studio/uid": UID},
        "updated_at": "t",
    }
    plan = reconcile_pipeline(ctx(), spec, Observation(remote, via="id"))
    assert not plan.actions and cond(plan.status, "Ready")["status"] == "True"
    assert plan.status["stepCount"] == 2
    paused = {**remote, "status": "paused"}
    plan = reconcile_pipeline(
        ctx(status={"observedGeneration": 1}), spec, Observation(paused, via="id")
    )
    assert plan.actions[0].body == {"status": "active"}
    assert plan.actions[0].reason == "DriftCorrected"
    changed = {**remote, "definition": {"steps": remote_steps[:1]}}
    plan = reconcile_pipeline(ctx(), spec, Observation(changed, via="id"))
    assert "definition" in plan.actions[0].body


# --- BudExecution -----------------------------------------------------------------------------


def exec_spec(**over: Any) -> BudExecutionSpec:
    data: dict[str, Any] = {"pipelineRef": {"name": "p"}, "params": {"env": "prod"}}
    data.update(over)
    return BudExecutionSpec.model_validate(data)


def remote_exec(**over: Any) -> dict[str, Any]:
    base = {
        "id": "exec_1",
        "pipeline_id": "pipe_1",
        "status": "running",
        "started_at": "2026-11-27T11:59:00Z",
        "completed_at": None,
        "duration_seconds": None,
        "steps": {
            "fetch": {
                "id": "fetch",
                "action": "http_request",
                "status": "completed",
                "attempts": 1,
                "started_at": "2026-11-27T11:59:00Z",
            },
            "log": {
                "id": "log",
                "action": "log",
                "status": "running",
                "attempts": 1,
                "started_at": "2026-11-27T11:59:01Z",
            },
        },
        "outputs": {"fetch": {"status_code": 200}},
        "error": None,
    }
    base.update(over)
    return base


def test_execution_starts_once_with_stable_key() -> None:
    a = reconcile_execution(ctx(), exec_spec(), Observation(), pipeline_id="pipe_1")
    b = reconcile_execution(ctx(), exec_spec(), Observation(), pipeline_id="pipe_1")
    assert a.actions[0].op == "create" and a.actions[0].body == {
        "pipeline_id": "pipe_1",
        "params": {"env": "prod"},
        "metadata": {"bud.studio/uid": UID},
    }
    assert a.actions[0].idempotency_key == b.actions[0].idempotency_key


def test_execution_running_mirrors_steps_and_polls_fast() -> None:
    plan = reconcile_execution(
        ctx(), exec_spec(), Observation(remote_exec(), via="id"), pipeline_id="pipe_1"
    )
    assert [(s["id"], s["state"]) for s in plan.status["steps"]] == [
        ("fetch", "completed"),
        ("log", "running"),
    ]
    assert "running: log" in cond(plan.status, "Ready")["message"]
    assert plan.requeue_after is not None and plan.requeue_after <= 4


def test_execution_cancel_and_terminal_states() -> None:
    plan = reconcile_execution(
        ctx(), exec_spec(cancel=True), Observation(remote_exec(), via="id"), pipeline_id="pipe_1"
    )
    assert [a.op for a in plan.actions] == ["cancel"]
    done = remote_exec(
        status="completed", completed_at="2026-11-27T11:59:30Z", duration_seconds=30.0
    )
    plan = reconcile_execution(
        ctx(status={"state": "running"}),
        exec_spec(),
        Observation(done, via="id"),
        pipeline_id="pipe_1",
    )
    assert cond(plan.status, "ExecutionSucceeded")["status"] == "True"
    assert cond(plan.status, "Ready")["status"] == "True"
    assert plan.events[0].reason == "Completed" and plan.requeue_after is None
    failed = remote_exec(status="failed", error="step log failed: boom")
    plan = reconcile_execution(
        ctx(), exec_spec(), Observation(failed, via="id"), pipeline_id="pipe_1"
    )
    assert cond(plan.status, "Stalled")["status"] == "True"
    assert "step log failed" in cond(plan.status, "ExecutionSucceeded")["message"]


def test_execution_ttl() -> None:
    done = remote_exec(status="completed", completed_at="2026-11-27T11:59:30Z")
    spec = exec_spec(ttlSecondsAfterFinished=60)
    plan = reconcile_execution(ctx(), spec, Observation(done, via="id"), pipeline_id="pipe_1")
    assert not plan.actions and plan.requeue_after == pytest.approx(30)
    plan = reconcile_execution(
        ctx(now=NOW + timedelta(seconds=31)),
        spec,
        Observation(done, via="id"),
        pipeline_id="pipe_1",
    )
    assert [a.op for a in plan.actions] == ["delete_resource"]


def test_execution_outputs_are_capped() -> None:
    big = remote_exec(outputs={"fetch": "x" * 20000})
    plan = reconcile_execution(ctx(), exec_spec(), Observation(big, via="id"), pipeline_id="p")
    assert "outputs" not in plan.status and plan.status["outputsTruncated"] is True


def test_deleting_a_running_execution_cancels_it() -> None:
    status = {"id": "exec_1"}
    plan = delete_execution_plan(
        ctx(status=status), exec_spec(), Observation(remote_exec(), via="id")
    )
    assert [a.op for a in plan.actions] == ["cancel"]
    orphan = delete_execution_plan(
        ctx(status=status), exec_spec(deletionPolicy="Orphan"), Observation(remote_exec(), via="id")
    )
    assert not orphan.actions and orphan.done


def test_status_patch_is_a_minimal_merge_patch() -> None:
    from budai_operator.kubeapi import status_patch

    old = {"id": "m", "state": "downloading", "progressPercent": 40, "cluster": {"a": 1, "b": 2}}
    new = {"id": "m", "state": "available", "cluster": {"a": 1, "b": 3}, "sizeBytes": 5}
    assert status_patch(old, new) == {
        "state": "available",
        "progressPercent": None,
        "cluster": {"b": 3},
        "sizeBytes": 5,
    }
    assert status_patch(new, new) == {}
