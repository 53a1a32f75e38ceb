"""Adding a kind is one module and one registry line: a kind the operator has never heard of,
defined entirely here (models, pure decision, adapter), is registered and reconciled by the
unchanged runtime against the real local gateway, then deleted with its resource; crdgen renders
its CRD, admission policy entry and chart RBAC from the same registry.

`BudCheckpoint` registers a frozen copy of some weights as a gateway model (source cloud)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, SecretStr

from budai import AsyncBudClient
from budai_gateway.testing import LocalGateway
from budai_operator import crdgen
from budai_operator.kinds.base import KindAdapter, Turn
from budai_operator.kinds.registry import REGISTRY
from budai_operator.models import CommonStatus, KindDef, ManagedSpec
from budai_operator.models._base import AGE_COLUMN, READY_COLUMN, CRDInfo
from budai_operator.reconcile import conditions as c
from budai_operator.reconcile.common import (
    Action,
    Ctx,
    Observation,
    Plan,
    base_status,
    create_key,
    default_remote_name,
    in_flight_plan,
    paused_plan,
    ready_plan,
)
from budai_operator.reconcile.model import IDENTITY_KEY
from budai_operator.reconcile.polling import FINALIZER
from budai_operator.remote import GatewayLink
from budai_operator.runtime import Runtime
from budai_operator.settings import OperatorSettings
from tests.operator.test_finalize import (
    RecordingKube,
    assert_released_and_deleted,
    finalize_until_done,
)

# --- the new kind's module: models, decision, adapter ---------------------------------------


class BudCheckpointSpec(ManagedSpec):
    """A checkpoint to register with the gateway."""

    uri: str = Field(min_length=1, max_length=2048)
    """Where the weights are."""


class BudCheckpointStatus(CommonStatus):
    """What the gateway says of the checkpoint."""

    state: str | None = None
    """The remote model's state."""


BUD_CHECKPOINT = KindDef(
    spec=BudCheckpointSpec,
    status=BudCheckpointStatus,
    crd=CRDInfo(
        kind="BudCheckpoint",
        plural="budcheckpoints",
        short_names=("bck",),
        description="A checkpoint registered with the Bud gateway.",
        printer_columns=(READY_COLUMN, AGE_COLUMN),
    ),
)


def reconcile_checkpoint(ctx: Ctx, spec: BudCheckpointSpec, obs: Observation) -> Plan:
    """Create the remote model once; Ready as soon as it exists."""
    if ctx.paused:
        return paused_plan(ctx, BudCheckpointStatus)
    status = base_status(ctx, BudCheckpointStatus)
    if obs.remote is None:
        name = default_remote_name(ctx, spec.name)
        body = {
            "name": name,
            "source": "cloud",
            "uri": spec.uri,
            "metadata": {IDENTITY_KEY: ctx.uid},
        }
        action = Action(
            "create", body=body, idempotency_key=create_key(ctx, body, obs), reason="Creating"
        )
        in_flight_plan(ctx, status, "Creating", f"creating checkpoint {name}")
        return Plan(status=status.to_wire(), actions=[action], requeue_after=2.0)
    status.updated(BudCheckpointStatus(id=str(obs.remote["id"]), state=obs.remote.get("status")))
    ready_plan(ctx, status, "Registered", "the checkpoint is registered")
    return Plan(status=status.to_wire(), requeue_after=ctx.poll(False))


class CheckpointKind(KindAdapter):
    definition = BUD_CHECKPOINT
    noun = "checkpoint"
    api = "models"

    async def decide(self, turn: Turn, spec: Any, obs: Observation) -> Plan:
        return reconcile_checkpoint(turn.ctx, spec, obs)


CHECKPOINT = CheckpointKind()

# --- the registry line ------------------------------------------------------------------------

KINDS = REGISTRY.with_kind(CHECKPOINT)

# ----------------------------------------------------------------------------------------------


def checkpoint_body(uid: str, name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bud.studio/v1alpha1",
        "kind": "BudCheckpoint",
        "metadata": {"uid": uid, "namespace": "team-a", "name": name, "generation": 1, **meta},
        "spec": {"uri": f"s3://checkpoints/{name}"},
    }


async def test_the_runtime_reconciles_and_deletes_a_kind_it_was_only_given(
    gateway: LocalGateway,
) -> None:
    settings = OperatorSettings(gateway_url=gateway.url, api_key=SecretStr(gateway.api_key))
    kube = RecordingKube()
    runtime = Runtime(settings, GatewayLink(settings), kube, lambda _b, _e: None, kinds=KINDS)  # type: ignore[arg-type]
    uid = str(uuid.uuid4())
    name = f"ck-{uid[:8]}"
    try:
        runtime.observe_event("BudCheckpoint", "ADDED", checkpoint_body(uid, name))
        st = runtime.objects[uid]
        assert runtime.scheduler.pending(uid)
        await runtime.reconcile(st)
        assert kube.finalizer_writes == [[FINALIZER]]
        status = st.body["status"]
        remote_id = status["id"]
        ready = c.get(status["conditions"], c.READY)
        assert ready is not None and ready["status"] == "True", status
        assert ready["reason"] == "Registered"
        BudCheckpointStatus.model_validate(status)
        async with AsyncBudClient(api_key=gateway.api_key, base_url=gateway.url) as bud:
            remote = await bud.models.get(remote_id)
            assert remote.name == f"team-a-{name}"
            assert (remote.metadata or {}).get(IDENTITY_KEY) == uid

        # A second reconcile finds it by id: nothing new is created.
        writes = len(kube.status_patches)
        await runtime.reconcile(st)
        assert st.body["status"]["id"] == remote_id
        assert len(kube.status_patches) - writes <= 1

        # Deleted with its resource (deletionPolicy defaults to Delete).
        deleting = checkpoint_body(
            uid, name, deletionTimestamp="2026-11-27T12:00:00Z", finalizers=[FINALIZER]
        )
        deleting["status"] = st.body["status"]
        runtime.observe_event("BudCheckpoint", "MODIFIED", deleting)
        await finalize_until_done(runtime, uid)
        await assert_released_and_deleted(gateway, kube, remote_id)
    finally:
        await runtime.gw.aclose()  # type: ignore[union-attr]


def test_crdgen_and_the_chart_follow_the_registry() -> None:
    crd = crdgen.all_crds(KINDS)["budcheckpoints.bud.studio.yaml"]
    assert crd["spec"]["names"]["kind"] == "BudCheckpoint"
    assert (
        "uri"
        in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "properties"
        ]
    )
    policy = crdgen.finalizer_policy(KINDS)[0]["spec"]["matchConstraints"]["resourceRules"][0]
    assert "budcheckpoints" in policy["resources"]
    rbac = crdgen.rbac_resources(KINDS)
    assert "budcheckpoints" in rbac["bud-operator.kindResources"]
    assert "budcheckpoints/status" in rbac["bud-operator.kindStatusResources"]
    assert "budcheckpoints" not in crdgen.rbac_resources()["bud-operator.kindResources"]
    assert KINDS.plural("BudCheckpoint") == "budcheckpoints"
