"""Table tests for the decisions changed after the fault-injection tests (tests/faults/): 413 is a
spec problem, a create naming a missing remote object stalls, an execution behind an
Unauthorized pipeline says Unauthorized, and a changed API key file takes effect at once."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr

from budai.exceptions import BudAPIError
from budai_operator.cli import build_parser, settings_from
from budai_operator.models import BudExecutionSpec
from budai_operator.reconcile import (
    Ctx,
    ErrorClass,
    Failure,
    Observation,
    classify,
    reconcile_execution,
)
from budai_operator.reconcile import conditions as c
from budai_operator.reconcile.common import error_plan
from budai_operator.reconcile.errors import (
    BACKOFF_CAP,
    NOT_FOUND_RECHECK,
    UNAUTHORIZED_RECHECK,
    reason_for,
)
from budai_operator.remote import GatewayLink
from budai_operator.runtime import Runtime
from budai_operator.settings import OperatorSettings

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
UID = "0b6f8d1c-1111-2222-3333-444455556666"
KEY = "bud_test_key_0123456789"
NEW_KEY = "bud_fixed_key_9876543210"


def ctx(status: dict[str, Any] | None = None, kind: str = "BudExecution") -> Ctx:
    return Ctx(
        kind=kind,
        name="run",
        namespace="team-a",
        uid=UID,
        generation=1,
        annotations={},
        status=status or {},
        now=NOW,
    )


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = c.get(status.get("conditions"), type_)
    assert found is not None, f"no {type_} condition in {status.get('conditions')}"
    return dict(found)


# --- 413 is the spec's fault -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "code", "expected", "reason"),
    [
        (413, "request_too_large", ErrorClass.INVALID, "RequestTooLarge"),
        (400, None, ErrorClass.INVALID, "InvalidSpec"),
        (422, None, ErrorClass.INVALID, "InvalidSpec"),
        (401, None, ErrorClass.UNAUTHORIZED, "Unauthorized"),
        (404, None, ErrorClass.NOT_FOUND, "NotFound"),
        (429, None, ErrorClass.TRANSIENT, "RateLimited"),
        (502, None, ErrorClass.TRANSIENT, "GatewayError"),
    ],
)
def test_taxonomy_after_fixes(
    status_code: int, code: str | None, expected: ErrorClass, reason: str
) -> None:
    failure = Failure(status_code, "x", code=code)
    assert classify(failure) is expected
    assert reason_for(failure) == reason


def test_request_too_large_stalls_without_retry() -> None:
    failure = Failure(413, "request body exceeds 1048576 bytes", code="request_too_large")
    plan = error_plan(ctx(kind="BudModel"), failure, attempt=0, doing="create model")
    stalled = cond(plan.status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RequestTooLarge"
    assert "HTTP 413" in stalled["message"] and "request_too_large" in stalled["message"]
    assert plan.requeue_after is None
    assert cond(plan.status, "Synced")["status"] == "False"


# --- 404 on a create: a referenced remote object does not exist --------------------------------


@pytest.mark.parametrize(
    ("creating", "stalled", "reason"),
    [
        (True, True, "RemoteNotFound"),
        (False, False, "NotFound"),  # a read or an update: the next observe sees it gone
    ],
)
def test_not_found_on_create_stalls(creating: bool, stalled: bool, reason: str) -> None:
    failure = Failure(404, "pipeline pipe_nope not found", code="not_found")
    plan = error_plan(
        ctx(),
        failure,
        attempt=0,
        doing="create execution of pipeline pipe_nope",
        creating=creating,
    )
    got = cond(plan.status, "Stalled")
    assert (got["status"] == "True") is stalled
    assert got["reason"] == reason
    if stalled:
        assert "pipe_nope" in got["message"]
        assert plan.requeue_after == NOT_FOUND_RECHECK
        assert [e.reason for e in plan.events] == ["RemoteNotFound"]
    else:
        assert plan.requeue_after is not None and plan.requeue_after <= BACKOFF_CAP


def test_unauthorized_is_rechecked_within_a_minute() -> None:
    plan = error_plan(ctx(kind="BudModel"), Failure(401, "bad key"), attempt=0, doing="x")
    assert cond(plan.status, "Stalled")["reason"] == "Unauthorized"
    assert "API key" in cond(plan.status, "Stalled")["message"]
    assert plan.requeue_after == UNAUTHORIZED_RECHECK <= 60


# --- an execution behind an Unauthorized pipeline --------------------------------------------


def exec_spec(**over: Any) -> BudExecutionSpec:
    data: dict[str, Any] = {"pipelineRef": {"name": "p"}, "params": {"env": "prod"}}
    data.update(over)
    return BudExecutionSpec.model_validate(data)


PIPE_MSG = "look up pipeline p failed: bad key (HTTP 401); check the operator's API key and scope"


@pytest.mark.parametrize(
    ("pipeline_id", "unauthorized", "ready_reason", "stalled"),
    [
        (None, PIPE_MSG, "Unauthorized", True),
        (None, None, "WaitingForPipeline", False),
        ("pipe_1", PIPE_MSG, "Starting", False),  # resolved: nothing to wait for
    ],
)
def test_execution_behind_unauthorized_pipeline(
    pipeline_id: str | None, unauthorized: str | None, ready_reason: str, stalled: bool
) -> None:
    plan = reconcile_execution(
        ctx(),
        exec_spec(),
        Observation(),
        pipeline_id=pipeline_id,
        pipeline_wait=None if pipeline_id else "BudPipeline p is not Ready yet",
        pipeline_unauthorized=unauthorized,
    )
    assert cond(plan.status, "Ready")["reason"] == ready_reason
    assert (cond(plan.status, "Stalled")["status"] == "True") is stalled
    if stalled:
        assert cond(plan.status, "Stalled")["reason"] == "Unauthorized"
        assert "API key" in cond(plan.status, "Stalled")["message"]
        assert cond(plan.status, "Synced")["status"] == "False"
        assert plan.requeue_after == UNAUTHORIZED_RECHECK and not plan.actions
        assert [e.reason for e in plan.events] == ["Unauthorized"]
        # Already Stalled/Unauthorized: the re-check does not post the Event again.
        again = reconcile_execution(
            ctx(status=plan.status),
            exec_spec(),
            Observation(),
            pipeline_id=None,
            pipeline_unauthorized=unauthorized,
        )
        assert again.events == [] and cond(again.status, "Stalled")["reason"] == "Unauthorized"


# --- the API key file is re-read ---------------------------------------------------------------


def settings(key_file: Path | None) -> OperatorSettings:
    return OperatorSettings(
        gateway_url="http://127.0.0.1:9/v1",
        api_key=SecretStr(KEY),
        api_key_file=str(key_file) if key_file else None,
    )


def test_cli_remembers_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    args: argparse.Namespace = build_parser().parse_args(["run", "--api-key-file", str(key_file)])
    got = settings_from(args)
    assert got.api_key_file == str(key_file)
    assert got.api_key.get_secret_value() == KEY
    assert KEY not in repr(got)


async def test_gateway_reloads_a_changed_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY, encoding="utf-8")
    gw = GatewayLink(settings(key_file))
    try:
        first = gw.client
        assert gw.reload_key() is False and gw.client is first  # unchanged
        # The way kubelet updates a mounted Secret: the file is replaced.
        tmp = key_file.with_suffix(".new")
        tmp.write_text(NEW_KEY + "\n", encoding="utf-8")
        tmp.replace(key_file)
        assert gw.reload_key() is True and gw.client is not first
        assert gw.reload_key() is False  # only once per change
        for text in (repr(gw.client), repr(gw.settings), repr(vars(gw).get("_key"))):
            assert NEW_KEY not in text and KEY not in text
        # An empty or missing file keeps the current key.
        key_file.write_text("", encoding="utf-8")
        current = gw.client
        assert gw.reload_key() is False and gw.client is current
        key_file.unlink()
        assert gw.reload_key() is False and gw.client is current
    finally:
        await gw.aclose()


async def test_fixed_key_file_heals_the_caches(gateway: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("bud_wrong_000000000000", encoding="utf-8")
    gw = GatewayLink(
        OperatorSettings(
            gateway_url=gateway.url,
            api_key=SecretStr("bud_wrong_000000000000"),
            api_key_file=str(key_file),
        )
    )
    try:
        with pytest.raises(BudAPIError) as err:
            await gw.cache("models").observe("model_missing", max_age=0)
        assert err.value.status_code == 401
        key_file.write_text(gateway.api_key, encoding="utf-8")
        assert gw.reload_key() is True
        # The caches call through the current client: the same cache now reads with the new key.
        assert await gw.cache("models").observe("model_missing", max_age=0) is None
    finally:
        await gw.aclose()


async def test_gateway_without_key_file_never_reloads() -> None:
    gw = GatewayLink(settings(None))
    try:
        assert gw.reload_key() is False
    finally:
        await gw.aclose()


def body(kind: str, name: str, uid: str, stalled_reason: str | None) -> dict[str, Any]:
    conditions = []
    if stalled_reason:
        conditions.append({"type": "Stalled", "status": "True", "reason": stalled_reason})
    return {
        "metadata": {"uid": uid, "namespace": "team-a", "name": name, "generation": 1},
        "spec": {},
        "status": {"conditions": conditions},
    }


async def test_a_new_key_wakes_only_unauthorized_resources() -> None:
    gw = GatewayLink(settings(None))
    try:
        runtime = Runtime(gw.settings, gw, cast(Any, None), lambda _b, _e: None)
        table = [
            ("BudModel", "m1", "u1", "Unauthorized", True),
            ("BudPipeline", "p1", "u2", "InvalidSpec", False),
            ("BudDeployment", "d1", "u3", None, False),
            ("BudExecution", "e1", "u4", "Unauthorized", True),
        ]
        for kind, name, uid, reason, _ in table:
            runtime.observe_event(kind, "ADDED", body(kind, name, uid, reason))
        for st in runtime.objects.values():
            st.handled_generation = 1
            runtime.scheduler.forget(st.uid)
        assert runtime.wake_unauthorized() == 2
        for _, _, uid, _, woken in table:
            assert runtime.scheduler.pending(uid) is woken
    finally:
        await gw.aclose()


async def test_execution_ref_to_unauthorized_pipeline_is_unauthorized() -> None:
    gw = GatewayLink(settings(None))
    try:
        runtime = Runtime(gw.settings, gw, cast(Any, None), lambda _b, _e: None)
        pipe = body("BudPipeline", "p", "u-pipe", "Unauthorized")
        pipe["status"]["conditions"][0]["message"] = PIPE_MSG
        runtime.observe_event("BudPipeline", "ADDED", pipe)
        run = body("BudExecution", "run", "u-run", None)
        run["spec"] = {"pipelineRef": {"name": "p"}}
        runtime.observe_event("BudExecution", "ADDED", run)
        st = runtime.objects["u-run"]
        plan = await runtime.reconciler.decide(
            st, runtime.reconciler.ctx(st), exec_spec(), Observation()
        )
        stalled = cond(plan.status, "Stalled")
        assert stalled["status"] == "True" and stalled["reason"] == "Unauthorized"
        assert "API key" in stalled["message"]
    finally:
        await gw.aclose()


class _Kube:
    async def patch_status(self, *_: Any) -> bool:
        return True


async def test_our_own_pipeline_status_write_wakes_its_executions() -> None:
    # The watch event of our own write finds the local copy already current, so the write
    # itself must wake the executions waiting on the pipeline (else they sleep a full re-check).
    gw = GatewayLink(settings(None))
    try:
        runtime = Runtime(gw.settings, gw, cast(Any, _Kube()), lambda _b, _e: None)
        runtime.observe_event("BudPipeline", "ADDED", body("BudPipeline", "p", "u-pipe", None))
        run = body("BudExecution", "run", "u-run", "Unauthorized")
        run["spec"] = {"pipelineRef": {"name": "p"}}
        runtime.observe_event("BudExecution", "ADDED", run)
        pipe, st = runtime.objects["u-pipe"], runtime.objects["u-run"]
        st.handled_generation = 1
        runtime.scheduler.forget(st.uid)
        ready = {"id": "pipe_1", "conditions": [{"type": "Ready", "status": "True"}]}
        await runtime.writes.status(pipe, runtime.reconciler.ctx(pipe), ready)
        assert runtime.scheduler.pending(st.uid)
        runtime.scheduler.forget(st.uid)
        await runtime.writes.status(
            pipe, runtime.reconciler.ctx(pipe), {**ready, "lastSyncTime": "x"}
        )
        assert not runtime.scheduler.pending(st.uid)  # nothing the execution waits on changed
    finally:
        await gw.aclose()


def test_cli_all_namespaces_and_help(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`-A/--all-namespaces` as kopf and kubectl spell it; every flag says what it does."""
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY, encoding="utf-8")
    monkeypatch.setenv("BUD_NAMESPACES", "team-a,team-b")
    parser = build_parser()
    scoped = settings_from(parser.parse_args(["run", "--api-key-file", str(key_file)]))
    assert scoped.namespaces == ("team-a", "team-b")
    for flag in ("-A", "--all-namespaces"):
        every = settings_from(parser.parse_args(["run", flag, "--api-key-file", str(key_file)]))
        assert every.namespaces == ()
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "-A", "-n", "x"])  # one or the other
    run = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "run"
    ]
    undocumented = [a.dest for a in run._actions if a.dest != "help" and not a.help]
    assert not undocumented, undocumented
