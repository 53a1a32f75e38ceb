"""Every status a decision can produce, checked against its kind's status model.

The decisions build status through the models in `budai_operator.models` (the same ones the CRDs
are generated from), so a hand-typed wrong key cannot reach the API server, which would prune it
without a word. The scenarios below walk every decision through every state it can produce; each
emitted status must validate against the model (unknown fields are forbidden) and come back
unchanged from it (so every key is the camelCase alias, not a Python name). The coverage tests
make the enumeration systematic: every field of every status model, every printer column and
every kstatus outcome must be produced by some scenario.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from budai_operator.kinds.base import Turn
from budai_operator.kinds.registry import REGISTRY
from budai_operator.models import BudDeploymentStatus, BudModelStatus
from budai_operator.models.pipeline import LastExecution
from budai_operator.reconcile import (
    Failure,
    Observation,
    Plan,
    delete_execution_plan,
    reconcile_deployment,
    reconcile_execution,
    reconcile_model,
    reconcile_pipeline,
)
from budai_operator.reconcile import conditions as c
from budai_operator.reconcile.common import (
    delete_plan,
    error_plan,
    initial_status,
    paused_plan,
    stalled_plan,
)
from budai_operator.reconcile.connection import ConnectionHealth, connection_status
from budai_operator.reconcile.polling import ANN_PAUSED, ANN_RECONCILE_REQUESTED_AT
from tests.gitops.lua_health import HEALTH_DIR
from tests.operator.test_readiness import (
    DEPLOYMENT_TABLE,
    EXEC_SPEC,
    MODEL_TABLE,
    PIPELINE_SPEC,
    _decision,
    remote_pipeline,
)
from tests.operator.test_reconcile import (
    HEALTHY,
    MODEL_SPEC,
    NOW,
    STEPS,
    UID,
    ctx,
    dep_spec,
    exec_spec,
    pipe_spec,
    remote_dep,
    remote_exec,
    remote_model,
)

MANAGED = tuple(a.kind for a in REGISTRY)
CONNECTIONS = tuple(REGISTRY.connections)
DEFINITIONS = REGISTRY.definitions()
STATUS_MODELS = {d.crd.kind: d.status for d in DEFINITIONS}
PAUSED = {ANN_PAUSED: "true"}
PINNED = "BudConnection/team-a/default"
REQUESTED = {ANN_RECONCILE_REQUESTED_AT: "2026-11-27T12:00:00Z"}
FAILURES = {
    "invalid": Failure(422, "bad field", param="uri"),
    "too-large": Failure(413, "request too large"),
    "unauthorized": Failure(401, "bad key"),
    "forbidden": Failure(403, "missing scope"),
    "not-found": Failure(404, "gone", code="not_found"),
    "already-exists": Failure(409, "taken", code="already_exists"),
    "conflict": Failure(409, "in use", code="model_in_use"),
    "rate-limited": Failure(429, "slow down", retry_after=7),
    "gateway-error": Failure(503, "down", request_id="req_1"),
    "unreachable": Failure(0, "connection refused"),
}


def validate(kind: str, status: dict[str, Any]) -> None:
    """`status` is exactly what the kind's status model emits: no unknown key (extra fields are
    forbidden at every level), no Python-name key and nothing the model would change."""
    typed = STATUS_MODELS[kind].model_validate(status)
    assert typed.to_wire() == status, "the status differs from its model's camelCase form"


# --- the scenarios --------------------------------------------------------------------------

Produce = Callable[[], dict[str, Any]]
SCENARIOS: dict[str, tuple[str, Produce]] = {}


def scenario(name: str, kind: str, produce: Callable[[], Plan | dict[str, Any] | None]) -> None:
    def status() -> dict[str, Any]:
        got = produce()
        assert got is not None, name
        return got.status if isinstance(got, Plan) else got

    assert name not in SCENARIOS, name
    SCENARIOS[name] = (kind, status)


def _ready(kind: str) -> dict[str, Any]:
    """A ready status of `kind`, as the previous status of the generic plans."""
    return SCENARIOS[f"{kind}/ready"][1]()


# BudModel
scenario("BudModel/new", "BudModel", lambda: reconcile_model(ctx(), MODEL_SPEC, Observation()))
for _name, _fields, *_ in MODEL_TABLE:
    scenario(
        f"BudModel/{_name}",
        "BudModel",
        lambda f=_fields: reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(**f), "id")),
    )
scenario(
    "BudModel/ready",
    "BudModel",
    lambda: reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="id")),
)
scenario(
    "BudModel/created",
    "BudModel",
    lambda: reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="action")),
)
scenario(
    "BudModel/found-by-name",
    "BudModel",
    lambda: reconcile_model(ctx(), MODEL_SPEC, Observation(remote_model(), via="name")),
)
scenario(
    "BudModel/name-conflict",
    "BudModel",
    lambda: reconcile_model(
        ctx(),
        MODEL_SPEC,
        Observation(remote_model(metadata={"bud.studio/uid": "someone-else"}), via="name"),
    ),
)
scenario(
    "BudModel/drift",
    "BudModel",
    lambda: reconcile_model(
        ctx(status=_ready("BudModel")),
        MODEL_SPEC,
        Observation(remote_model(metadata={"team": "b", "bud.studio/uid": UID}), via="id"),
    ),
)
scenario(
    "BudModel/gone-recreated",
    "BudModel",
    lambda: reconcile_model(
        ctx(status=_ready("BudModel")), MODEL_SPEC, Observation(gone=True, gone_id="model_1")
    ),
)
_ADOPTED_MODEL = MODEL_SPEC.model_copy(update={"external_id": "model_9"})
scenario(
    "BudModel/adopted-missing",
    "BudModel",
    lambda: reconcile_model(ctx(), _ADOPTED_MODEL, Observation()),
)
scenario(
    "BudModel/adopted-spec-mismatch",
    "BudModel",
    lambda: reconcile_model(
        ctx(), _ADOPTED_MODEL, Observation(remote_model(id="model_9", uri="other/x"), via="id")
    ),
)
scenario(
    "BudModel/reconcile-requested",
    "BudModel",
    lambda: reconcile_model(
        ctx(annotations=REQUESTED),
        MODEL_SPEC,
        Observation(remote_model(), via="id"),
    ),
)
scenario(
    "BudModel/paused",
    "BudModel",
    lambda: reconcile_model(
        ctx(status=_ready("BudModel"), annotations=PAUSED), MODEL_SPEC, Observation()
    ),
)

# BudDeployment
_DEP = "BudDeployment"


def _dep(
    remote: dict[str, Any] | None = None,
    *,
    spec: Any = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    via: Any = "id",
    **kwargs: Any,
) -> Plan:
    kwargs.setdefault("model_id", "model_1")
    return reconcile_deployment(
        ctx(kind=_DEP, status=status, annotations=annotations),
        spec or dep_spec(),
        Observation(remote, via=via) if remote is not None else Observation(),
        **kwargs,
    )


for _name, _fields, _health, _model, *_ in DEPLOYMENT_TABLE:
    scenario(
        f"BudDeployment/{_name}",
        _DEP,
        lambda f=_fields, h=_health, m=_model: _dep(
            remote_dep(**f), spec=dep_spec(replicas=remote_dep(**f)["replicas"]), health=h, model=m
        ),
    )
scenario("BudDeployment/ready", _DEP, lambda: _dep(remote_dep(), health=HEALTHY))
scenario(
    "BudDeployment/waiting-for-model",
    _DEP,
    lambda: _dep(model_id=None, model_wait="BudModel llama is not ready"),
)
scenario("BudDeployment/new", _DEP, lambda: _dep())
scenario(
    "BudDeployment/gone-recreated",
    _DEP,
    lambda: reconcile_deployment(
        ctx(kind=_DEP, status=_ready(_DEP)),
        dep_spec(),
        Observation(gone=True, gone_id="dep_1"),
        model_id="model_1",
    ),
)
scenario(
    "BudDeployment/cluster-not-found",
    _DEP,
    lambda: _dep(spec=dep_spec(clusterId=None, clusterName="nope"), cluster_id=None),
)
scenario(
    "BudDeployment/adopted-missing",
    _DEP,
    lambda: _dep(spec=dep_spec(externalId="dep_9")),
)
scenario(
    "BudDeployment/name-conflict",
    _DEP,
    lambda: _dep(remote_dep(model_id="model_other"), via="name"),
)
scenario("BudDeployment/spec-mismatch", _DEP, lambda: _dep(remote_dep(cluster_id="cluster_9")))
scenario(
    "BudDeployment/replica-drift",
    _DEP,
    lambda: _dep(remote_dep(replicas=5), status=_ready(_DEP), health=HEALTHY),
)
scenario(
    "BudDeployment/stopping",
    _DEP,
    lambda: _dep(remote_dep(), spec=dep_spec(stopped=True), health=HEALTHY),
)
scenario(
    "BudDeployment/stopped",
    _DEP,
    lambda: _dep(
        remote_dep(status="stopped", ready_replicas=0), spec=dep_spec(stopped=True), health=HEALTHY
    ),
)
scenario(
    "BudDeployment/starting",
    _DEP,
    lambda: _dep(remote_dep(status="stopped", ready_replicas=0), health=HEALTHY),
)
for _health_state in ("degraded", "unhealthy"):
    scenario(
        f"BudDeployment/health-{_health_state}",
        _DEP,
        lambda s=_health_state: _dep(remote_dep(), health={"status": s, "node_count": 0}),
    )
scenario(
    "BudDeployment/cluster-observed",
    _DEP,
    lambda: _dep(
        remote_dep(),
        cluster={"id": "cluster_1", "name": "gpu-a", "status": "active", "node_count": 3},
        health={
            "status": "healthy",
            "node_count": 3,
            "available_resources": {
                "cpu": 12,
                "memory_gb": 64.0,
                "gpu_count": 2,
                "gpu_types": ["A100"],
            },
        },
    ),
)
_AUTO_SPEC = dep_spec(
    autoScaling={"enabled": True, "minReplicas": 1, "maxReplicas": 9, "targetMemory": 70}
)
_AUTO = {
    "enabled": True,
    "min_replicas": 1,
    "max_replicas": 9,
    "target_cpu": 80,
    "target_memory": 70,
}
scenario(
    "BudDeployment/autoscaling-decisions",
    _DEP,
    lambda: _dep(
        remote_dep(
            auto_scaling=_AUTO,
            replicas=4,
            ready_replicas=4,
            scaling_decisions=[
                _decision(f"2026-11-27T11:0{i}:00Z", i + 1, i + 2) for i in range(3)
            ],
        ),
        spec=_AUTO_SPEC,
        health=HEALTHY,
    ),
)
scenario(
    "BudDeployment/autoscaling-switched-off",
    _DEP,
    lambda: _dep(remote_dep(auto_scaling=_AUTO), health=HEALTHY),
)
scenario(
    "BudDeployment/reconcile-requested",
    _DEP,
    lambda: _dep(remote_dep(), health=HEALTHY, annotations=REQUESTED),
)
scenario(
    "BudDeployment/paused",
    _DEP,
    lambda: _dep(status=_ready(_DEP), annotations=PAUSED),
)

# BudPipeline
_PIPE = "BudPipeline"
_LAST = {
    "id": "exec_9",
    "status": "completed",
    "started_at": "2026-11-27T11:59:00Z",
    "completed_at": "2026-11-27T11:59:30Z",
}


def _pipe(
    remote: dict[str, Any] | None = None,
    *,
    spec: Any = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    via: Any = "id",
    **kwargs: Any,
) -> Plan:
    return reconcile_pipeline(
        ctx(kind=_PIPE, status=status, annotations=annotations),
        spec or PIPELINE_SPEC,
        Observation(remote, via=via) if remote is not None else Observation(),
        **kwargs,
    )


scenario("BudPipeline/new", _PIPE, lambda: _pipe())
scenario("BudPipeline/ready", _PIPE, lambda: _pipe(remote_pipeline()))
scenario(
    "BudPipeline/paused-remotely",
    _PIPE,
    lambda: _pipe(remote_pipeline(status="paused"), spec=pipe_spec(STEPS[:1], paused=True)),
)
scenario(
    "BudPipeline/updating",
    _PIPE,
    lambda: _pipe(remote_pipeline(), spec=pipe_spec(STEPS), status=_ready(_PIPE)),
)
scenario(
    "BudPipeline/cycle",
    _PIPE,
    lambda: _pipe(
        spec=pipe_spec(
            [
                {"id": "a", "action": "log", "dependsOn": ["b"]},
                {"id": "b", "action": "log", "dependsOn": ["a"]},
            ]
        )
    ),
)
scenario(
    "BudPipeline/unknown-action",
    _PIPE,
    lambda: _pipe(remote_pipeline(), known_actions={"transform"}),
)
scenario(
    "BudPipeline/adopted-missing",
    _PIPE,
    lambda: _pipe(spec=pipe_spec(STEPS[:1], externalId="pipe_9")),
)
scenario(
    "BudPipeline/gone-recreated",
    _PIPE,
    lambda: reconcile_pipeline(
        ctx(kind=_PIPE, status=_ready(_PIPE)), PIPELINE_SPEC, Observation(gone=True, gone_id="p")
    ),
)
scenario(
    "BudPipeline/last-execution",
    _PIPE,
    lambda: _pipe(remote_pipeline(last_execution=_LAST), last_execution=_LAST),
)
scenario(
    "BudPipeline/last-execution-kept",
    _PIPE,
    lambda: _pipe(
        remote_pipeline(), status=SCENARIOS["BudPipeline/last-execution"][1](), last_execution=None
    ),
)
scenario(
    "BudPipeline/reconcile-requested",
    _PIPE,
    lambda: _pipe(remote_pipeline(), annotations=REQUESTED),
)
scenario(
    "BudPipeline/paused",
    _PIPE,
    lambda: _pipe(status=_ready(_PIPE), annotations=PAUSED),
)

# BudExecution
_EXEC = "BudExecution"


def _exec(
    remote: dict[str, Any] | None = None,
    *,
    spec: Any = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    now_after: float = 0,
    **kwargs: Any,
) -> Plan:
    kwargs.setdefault("pipeline_id", "pipe_1")
    return reconcile_execution(
        ctx(
            kind=_EXEC,
            status=status,
            annotations=annotations,
            now=NOW + timedelta(seconds=now_after),
        ),
        spec or exec_spec(),
        Observation(remote, via="id") if remote is not None else Observation(),
        **kwargs,
    )


_FAILED_STEP = {
    "fetch": {
        "id": "fetch",
        "action": "http_request",
        "status": "failed",
        "attempts": 3,
        "started_at": "2026-11-27T11:59:00Z",
        "completed_at": "2026-11-27T11:59:09Z",
        "duration_seconds": 9.0,
        "error": "HTTP 500",
    }
}
_DONE = {"completed_at": "2026-11-27T11:59:30Z", "duration_seconds": 30.0}
scenario("BudExecution/starting", _EXEC, lambda: _exec())
scenario(
    "BudExecution/waiting-for-pipeline",
    _EXEC,
    lambda: _exec(pipeline_id=None, pipeline_wait="BudPipeline p is not Ready yet"),
)
scenario(
    "BudExecution/pipeline-unauthorized",
    _EXEC,
    lambda: _exec(pipeline_id=None, pipeline_unauthorized="HTTP 401"),
)
scenario(
    "BudExecution/cancelled-before-start",
    _EXEC,
    lambda: _exec(spec=exec_spec(cancel=True)),
)
scenario(
    "BudExecution/missing",
    _EXEC,
    lambda: _exec(spec=exec_spec(externalId="exec_9")),
)
scenario(
    "BudExecution/started",
    _EXEC,
    lambda: reconcile_execution(
        ctx(kind=_EXEC), exec_spec(), Observation(remote_exec(), via="action"), pipeline_id="p"
    ),
)
scenario("BudExecution/running", _EXEC, lambda: _exec(remote_exec()))
scenario("BudExecution/pending", _EXEC, lambda: _exec(remote_exec(status="pending", steps={})))
scenario(
    "BudExecution/cancelling",
    _EXEC,
    lambda: _exec(remote_exec(), spec=exec_spec(cancel=True)),
)
scenario(
    "BudExecution/ready",
    _EXEC,
    lambda: _exec(remote_exec(status="completed", **_DONE), status={"state": "running"}),
)
scenario(
    "BudExecution/failed",
    _EXEC,
    lambda: _exec(
        remote_exec(status="failed", error="step fetch failed", steps=_FAILED_STEP, **_DONE)
    ),
)
scenario(
    "BudExecution/cancelled",
    _EXEC,
    lambda: _exec(remote_exec(status="cancelled", **_DONE)),
)
scenario(
    "BudExecution/ttl-expired",
    _EXEC,
    lambda: _exec(
        remote_exec(status="completed", **_DONE),
        spec=exec_spec(ttlSecondsAfterFinished=10),
        now_after=3600,
    ),
)
scenario(
    "BudExecution/outputs-truncated",
    _EXEC,
    lambda: _exec(remote_exec(outputs={"fetch": "x" * 20_000})),
)
scenario(
    "BudExecution/reconcile-requested",
    _EXEC,
    lambda: _exec(remote_exec(), annotations=REQUESTED),
)
scenario(
    "BudExecution/paused",
    _EXEC,
    lambda: _exec(status=_ready(_EXEC), annotations=PAUSED),
)
for _name, _remote, _spec in (
    ("running", remote_exec(), EXEC_SPEC),
    ("finished", remote_exec(status="completed"), EXEC_SPEC),
    ("orphaned", remote_exec(), exec_spec(deletionPolicy="Orphan")),
):
    scenario(
        f"BudExecution/deleting-{_name}",
        _EXEC,
        lambda r=_remote, s=_spec: delete_execution_plan(
            ctx(kind=_EXEC, status=_ready(_EXEC)), s, Observation(r, via="id")
        ),
    )

# The plans every managed kind shares, called as the runtime calls them: without the kind's model
# (they write only the common fields and carry the rest), yet what they emit must fit it.
for _kind in MANAGED:
    scenario(f"{_kind}/initial", _kind, lambda k=_kind: initial_status(ctx(kind=k)))
    scenario(
        f"{_kind}/pinned-connection-carried",
        _kind,
        lambda k=_kind: paused_plan(
            ctx(kind=k, status={**_ready(k), "connection": PINNED}, annotations=PAUSED)
        ),
    )
    scenario(
        f"{_kind}/invalid-spec",
        _kind,
        lambda k=_kind: stalled_plan(ctx(kind=k, status=_ready(k)), "InvalidSpec", "bad"),
    )
    for _fname, _failure in FAILURES.items():
        for _creating in (False, True):
            for _prev in ("new", "ready"):
                scenario(
                    f"{_kind}/error-{_fname}-{'create' if _creating else 'call'}-{_prev}",
                    _kind,
                    lambda k=_kind, f=_failure, cr=_creating, p=_prev: error_plan(
                        ctx(kind=k, status=_ready(k) if p == "ready" else None),
                        f,
                        attempt=0 if p == "new" else 3,
                        doing="do the thing",
                        creating=cr,
                    ),
                )
    for _dname, _kwargs in (
        ("orphan", {"policy": "Orphan", "remote_id": "x", "observation": Observation()}),
        ("never-created", {"policy": "Delete", "remote_id": None, "observation": Observation()}),
        (
            "deleting",
            {"policy": "Delete", "remote_id": "x", "observation": Observation({"id": "x"}, "id")},
        ),
        (
            "remote-deleting",
            {
                "policy": "Delete",
                "remote_id": "x",
                "observation": Observation({"id": "x", "status": "deleting"}, "id"),
            },
        ),
        ("deleted", {"policy": "Delete", "remote_id": "x", "observation": Observation(gone=True)}),
        (
            "delete-failing",
            {
                "policy": "Delete",
                "remote_id": "x",
                "observation": Observation({"id": "x"}, "id"),
                "attempt": 3,
                "last_failure": Failure(409, "in use", code="model_in_use"),
            },
        ),
        (
            "delete-retrying",
            {
                "policy": "Delete",
                "remote_id": "x",
                "observation": Observation({"id": "x"}, "id"),
                "attempt": 1,
                "last_failure": Failure(503, "down"),
            },
        ),
    ):
        scenario(
            f"{_kind}/delete-{_dname}",
            _kind,
            lambda k=_kind, kw=_kwargs: delete_plan(
                ctx(kind=k, status=_ready(k)),
                **{"attempt": 0, "last_failure": None, "noun": "thing", **kw},
            ),
        )

# BudConnection and ClusterBudConnection
_HEALTH = {
    "ready": ConnectionHealth(True, "Connected", "the key works", "team-a", ("read", "admin")),
    "unauthorized": ConnectionHealth(False, "Unauthorized", "HTTP 401"),
    "unreachable": ConnectionHealth(False, "Unreachable", "connection refused"),
    "in-use": ConnectionHealth(False, "InUse", "deletion waits: 2 resources use it"),
}
for _kind in CONNECTIONS:
    for _hname, _h in _HEALTH.items():
        scenario(
            f"{_kind}/{_hname}",
            _kind,
            lambda h=_h: connection_status({}, h, ["BudModel/a/m2", "BudModel/a/m1"], 3, NOW),
        )
        scenario(
            f"{_kind}/{_hname}-after-ready",
            _kind,
            lambda h=_h, k=_kind: connection_status(
                SCENARIOS[f"{k}/ready"][1](), h, [], 4, NOW + timedelta(minutes=1)
            ),
        )


# --- every emitted status fits its model ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_status_a_decision_writes_fits_its_model(name: str) -> None:
    kind, produce = SCENARIOS[name]
    status = produce()
    validate(kind, status)
    # Read back as the previous status of the next reconcile, nothing is lost or changed.
    assert STATUS_MODELS[kind].carried(status).to_wire() == status


def test_the_generic_plans_keep_each_kinds_own_fields() -> None:
    # The runtime calls them with ctx.kind only; the kind's model must carry what it owns.
    for kind, field in (
        ("BudModel", "sizeBytes"),
        ("BudDeployment", "cluster"),
        ("BudPipeline", "stepCount"),
        ("BudExecution", "steps"),
    ):
        before = _ready(kind)
        for scenario_name in (f"{kind}/invalid-spec", f"{kind}/error-gateway-error-call-ready"):
            after = SCENARIOS[scenario_name][1]()
            assert after[field] == before[field], (scenario_name, field)


# --- the enumeration is systematic -----------------------------------------------------------


def _model_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every alias path of a status model, nested models included (`cluster.health`)."""
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        yield path
        for nested in _nested_models(info.annotation):
            yield from _model_paths(nested, path + ".")


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _nested_models(arg)


def _emitted_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _emitted_paths(item, prefix)
    elif isinstance(value, dict) and prefix != "outputs.":
        for key, sub in value.items():
            yield prefix + key
            yield from _emitted_paths(sub, prefix + key + ".")


def _emitted(kind: str) -> set[str]:
    out: set[str] = set()
    for k, produce in SCENARIOS.values():
        if k == kind:
            out |= set(_emitted_paths(produce()))
    return out


# CommonStatus fields a connection's status has no use for: connections are no remote object.
NOT_WRITTEN = {
    kind: {"id", "connection", "lastSyncTime", "lastHandledReconcileAt"} for kind in CONNECTIONS
}


@pytest.mark.parametrize("kind", [*MANAGED, *CONNECTIONS])
def test_every_status_field_is_written_by_some_scenario(kind: str) -> None:
    fields = set(_model_paths(STATUS_MODELS[kind])) - NOT_WRITTEN.get(kind, set())
    assert fields - _emitted(kind) == set(), "status fields no scenario produces"


@pytest.mark.parametrize("kind_def", DEFINITIONS, ids=lambda k: k.crd.kind)
def test_every_printer_column_shows_a_field_the_decisions_write(kind_def: Any) -> None:
    # Last-Run (.status.lastExecution.state) is the one issue 12 found always empty.
    kind = kind_def.crd.kind
    fields, emitted = set(_model_paths(kind_def.status)), _emitted(kind)
    for column in kind_def.crd.printer_columns:
        if not column.json_path.startswith(".status."):
            continue
        path = re.sub(r"\[[^\]]*\]", "", column.json_path.removeprefix(".status."))
        assert path in fields, (column.name, path)
        assert path in emitted, (column.name, path)


def _kstatus(status: dict[str, Any]) -> str:
    conditions = status.get("conditions")
    if c.is_true(conditions, c.STALLED):
        return "Failed"
    if c.is_true(conditions, c.RECONCILING):
        return "InProgress"
    return "Current" if c.is_true(conditions, c.READY) else "NotReady"


@pytest.mark.parametrize("kind", MANAGED)
def test_every_kind_is_driven_through_every_outcome(kind: str) -> None:
    seen = {_kstatus(p()) for k, p in SCENARIOS.values() if k == kind}
    assert {"Current", "InProgress", "Failed"} <= seen
    reasons = {
        (cond["type"], cond["status"])
        for k, p in SCENARIOS.values()
        if k == kind
        for cond in p().get("conditions") or []
    }
    assert ("DeleteFailed", "True") in reasons and ("Synced", "False") in reasons


GITOPS_FIXTURES = sorted(HEALTH_DIR.glob("*/testdata/*.yaml"))


@pytest.mark.parametrize("path", GITOPS_FIXTURES, ids=lambda p: str(p.relative_to(HEALTH_DIR)))
def test_the_recorded_gitops_fixtures_are_statuses_the_operator_can_write(path: Path) -> None:
    # Argo CD's and kstatus' verdicts are asserted on these; they must be real status shapes.
    obj = yaml.safe_load(path.read_text())
    if "status" in obj:
        validate(obj["kind"], obj["status"])


def test_last_execution_is_wired_from_the_gateway_to_the_column() -> None:
    status = SCENARIOS["BudPipeline/last-execution"][1]()
    assert status["lastExecution"] == {
        "id": "exec_9",
        "state": "completed",
        "startedAt": "2026-11-27T11:59:00Z",
        "completedAt": "2026-11-27T11:59:30Z",
    }
    # The next poll without a newer execution keeps the one recorded.
    kept = SCENARIOS["BudPipeline/last-execution-kept"][1]()
    assert kept["lastExecution"] == status["lastExecution"]
    assert LastExecution.model_validate(status["lastExecution"]).state == "completed"


class _Gateway:
    async def known_actions(self) -> set[str]:
        return {"log"}


async def test_the_pipeline_adapter_passes_the_gateways_last_execution_on() -> None:
    # The runtime's side of the wire: the remote pipeline's `last_execution` reaches the status.
    turn = Turn(
        cast(Any, SimpleNamespace(gw=_Gateway())), ctx(kind=_PIPE), cast(Any, None), cast(Any, None)
    )
    remote = remote_pipeline(last_execution=_LAST)
    plan = await REGISTRY[_PIPE].decide(turn, PIPELINE_SPEC, Observation(remote, via="id"))
    validate(_PIPE, plan.status)
    assert plan.status["lastExecution"]["state"] == "completed"


# --- a wrong key fails -----------------------------------------------------------------------

BAD_KEYS = [
    ("BudModel/downloading", (), "sizeBytez"),
    ("BudModel/ready", ("conditions", 0), "lastTransitionTim"),
    ("BudDeployment/cluster-observed", ("cluster",), "nodeCnt"),
    ("BudDeployment/cluster-observed", ("cluster", "availableResources"), "memoryGB"),
    ("BudDeployment/autoscaling-decisions", ("autoScaling",), "targetCpu"),
    ("BudDeployment/autoscaling-decisions", ("autoScaling", "lastDecisions", 0), "from"),
    ("BudPipeline/last-execution", ("lastExecution",), "status"),
    ("BudPipeline/ready", (), "lastExecutions"),
    ("BudExecution/running", ("steps", 1), "startedat"),
    ("BudExecution/running", (), "outputTruncated"),
    ("BudConnection/ready", (), "usedby"),
]


@pytest.mark.parametrize(("name", "where", "key"), BAD_KEYS)
def test_a_hand_typed_wrong_key_fails_validation(
    name: str, where: tuple[str | int, ...], key: str
) -> None:
    kind, produce = SCENARIOS[name]
    status = produce()
    validate(kind, status)
    target: Any = status
    for step in where:
        target = target[step]
    target[key] = 1
    with pytest.raises(ValidationError, match=key):
        validate(kind, status)


def test_a_python_name_instead_of_the_alias_fails() -> None:
    status = SCENARIOS["BudModel/downloading"][1]()
    status["size_bytes"] = status.pop("sizeBytes")
    BudModelStatus.model_validate(status)  # the model takes it by name (populate_by_name) ...
    with pytest.raises(AssertionError, match="camelCase"):
        validate("BudModel", status)  # ... but it is not the wire form the API server keeps


def test_a_wrong_field_name_fails_where_the_status_is_built() -> None:
    with pytest.raises(ValidationError, match="size_bytez"):
        BudModelStatus(size_bytez=1)  # type: ignore[call-arg]
    status = BudDeploymentStatus()
    with pytest.raises(ValidationError):
        status.desired_replica = 2  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        status.replicas = -1  # bounds are checked on assignment too


def test_an_unfit_previous_status_is_cleared_not_fatal() -> None:
    # What the next write cannot carry (a field an older operator wrote, a broken condition) is
    # dropped from the previous status; everything else is kept.
    ready = _ready("BudModel")
    broken = {
        **ready,
        "legacyField": 1,
        "progressPercent": 400,
        "conditions": [*ready["conditions"], {"type": "Odd", "status": "True"}],
    }
    carried = BudModelStatus.carried(broken).to_wire()
    assert "legacyField" not in carried and "progressPercent" not in carried
    assert carried["conditions"] == ready["conditions"]
    assert carried["sizeBytes"] == ready["sizeBytes"]
    plan = reconcile_model(ctx(status=broken), MODEL_SPEC, Observation(remote_model(), via="id"))
    validate("BudModel", plan.status)
