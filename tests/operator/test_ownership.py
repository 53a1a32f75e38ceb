"""Table tests of the pure ownership decisions: whose marker a remote object carries, what each
way of reaching it allows, what deletion may touch, and that messages leak nothing foreign."""

from __future__ import annotations

from typing import Any

import pytest

from budai_operator.models import BudDeploymentSpec, BudModelSpec, BudPipelineSpec
from budai_operator.reconcile import Observation, reconcile_model, reconcile_pipeline
from budai_operator.reconcile.deployment import reconcile_deployment
from budai_operator.reconcile.ownership import (
    MARKER,
    Claim,
    claim_of,
    id_source,
    judge,
    may_delete,
)
from tests.operator.test_reconcile import UID, cond, ctx, remote_dep, remote_model

FOREIGN_UID = "ffffffff-9999-8888-7777-666655554444"
FOREIGN = {
    "id": "model_victim",
    "name": "tenant-a-secret-name",
    "source": "url",
    "uri": "https://tenant-a.example/weights",
    "metadata": {MARKER: FOREIGN_UID, "team": "a"},
}
UNMARKED = {**FOREIGN, "metadata": {"team": "a"}}
OURS = {**FOREIGN, "metadata": {MARKER: UID}}


def leaks(text: str) -> list[str]:
    """The foreign object's identifying parts that appear in `text`."""
    return [
        v for v in (FOREIGN_UID, "model_victim", "tenant-a-secret-name", "tenant-a.example")
        if v in text
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("remote", "claim"),
    [(OURS, Claim.OURS), (UNMARKED, Claim.UNMARKED), (FOREIGN, Claim.ELSEWHERE)],
)
def test_claim_reads_the_marker(remote: dict[str, Any], claim: Claim) -> None:
    assert claim_of(UID, remote) is claim


def test_id_source_prefers_external_id_then_status_then_annotation() -> None:
    ann = {"bud.studio/external-id": "a"}
    assert id_source("x", {"id": "s"}, ann) == ("x", "externalId")
    assert id_source(None, {"id": "s"}, ann) == ("s", "status")
    assert id_source(None, {}, ann) == ("a", "annotation")
    assert id_source(None, {}, {}) == (None, None)


@pytest.mark.parametrize(
    ("remote", "source", "manage", "mark", "ignore", "reason"),
    [
        (OURS, "externalId", True, False, False, ""),
        (UNMARKED, "externalId", True, True, False, ""),
        (FOREIGN, "externalId", False, False, False, "OwnedElsewhere"),
        (OURS, "status", True, False, False, ""),
        (UNMARKED, "status", True, True, False, ""),
        (FOREIGN, "status", False, False, False, "OwnedElsewhere"),
        (OURS, "annotation", True, False, False, ""),
        (UNMARKED, "annotation", False, False, True, ""),
        (FOREIGN, "annotation", False, False, True, ""),
        (OURS, "name", True, False, False, ""),
        (UNMARKED, "name", False, False, False, "NameConflict"),
        (FOREIGN, "name", False, False, False, "NameConflict"),
    ],
)
def test_judge(
    remote: dict[str, Any],
    source: Any,
    manage: bool,
    mark: bool,
    ignore: bool,
    reason: str,
) -> None:
    v = judge(UID, remote, source, "model", "team-b-llama")
    assert (v.manage, v.mark, v.ignore, v.reason) == (manage, mark, ignore, reason)
    assert leaks(v.message) == []


@pytest.mark.parametrize(
    ("remote", "source", "allowed"),
    [
        (OURS, "externalId", True),
        (OURS, "annotation", True),
        (OURS, "status", True),
        (UNMARKED, "status", True),  # created by this resource before markers existed
        (UNMARKED, "externalId", False),  # an adoption that never succeeded
        (UNMARKED, "annotation", False),
        (FOREIGN, "externalId", False),
        (FOREIGN, "status", False),
        (FOREIGN, "annotation", False),
        (None, "status", False),
        (OURS, None, False),
    ],
)
def test_may_delete(remote: dict[str, Any] | None, source: Any, allowed: bool) -> None:
    assert may_delete(UID, remote, source) is allowed


def test_model_name_clash_with_a_foreign_model_stalls_without_naming_it() -> None:
    spec = BudModelSpec.model_validate({"source": "url", "uri": "https://b.example/w"})
    plan = reconcile_model(ctx(), spec, Observation(FOREIGN, via="name"))
    stalled = cond(plan.status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "NameConflict"
    assert not plan.actions
    text = str(plan.status) + " ".join(e.message for e in plan.events)
    assert leaks(text) == []


def test_adopting_an_unmarked_model_marks_it() -> None:
    spec = BudModelSpec.model_validate(
        {"source": "hugging_face", "uri": "meta/llama", "externalId": "model_1"}
    )
    plan = reconcile_model(ctx(), spec, Observation(remote_model(metadata={}), via="id"))
    assert plan.actions and plan.actions[0].op == "update"
    assert plan.actions[0].body["metadata"][MARKER] == UID


def test_adopting_an_unmarked_deployment_and_pipeline_marks_them() -> None:
    dspec = BudDeploymentSpec.model_validate(
        {"modelId": "model_1", "clusterId": "cluster_1", "replicas": 2, "externalId": "dep_1"}
    )
    plan = reconcile_deployment(
        ctx(kind="BudDeployment"),
        dspec,
        Observation(remote_dep(metadata={}), via="id"),
        model_id="model_1",
    )
    assert any(a.body.get("metadata") == {MARKER: UID} for a in plan.actions), plan.actions
    pspec = BudPipelineSpec.model_validate(
        {"externalId": "pipe_1", "definition": {"steps": [{"id": "a", "action": "log"}]}}
    )
    remote = {
        "id": "pipe_1",
        "name": "x",
        "status": "active",
        "description": None,
        "definition": {"steps": [{"id": "a", "action": "log", "params": {}, "depends_on": []}]},
        "metadata": {},
    }
    plan = reconcile_pipeline(ctx(kind="BudPipeline"), pspec, Observation(remote, via="id"))
    assert any(a.body.get("metadata") == {MARKER: UID} for a in plan.actions), plan.actions


def test_a_create_after_the_object_is_gone_uses_a_fresh_key() -> None:
    spec = BudModelSpec.model_validate({"source": "hugging_face", "uri": "meta/llama"})
    first = reconcile_model(ctx(), spec, Observation())
    again = reconcile_model(ctx(), spec, Observation())
    gone = reconcile_model(
        ctx(status={"id": "model_1"}), spec, Observation(gone=True, gone_id="model_1")
    )
    assert first.actions[0].idempotency_key == again.actions[0].idempotency_key
    assert gone.actions[0].op == "create"
    assert gone.actions[0].idempotency_key != first.actions[0].idempotency_key
    assert cond(gone.status, "Ready")["status"] == "False"
