"""`BudDeployment`: waits on its BudModel (`modelRef` or `modelId`), follows its cluster's health,
and can be stopped and started."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..models import BUD_DEPLOYMENT, BudDeploymentSpec
from ..reconcile.common import Action, Observation, Plan
from ..reconcile.deployment import reconcile_deployment
from ..remote import call
from .base import KindAdapter, Ref, Turn
from .model import MODEL

if TYPE_CHECKING:
    from budai import AsyncBudClient

    from ..objects import ObjectState


class DeploymentKind(KindAdapter):
    definition = BUD_DEPLOYMENT
    noun = "deployment"
    api = "deployments"
    ref = Ref(MODEL.kind, "model_ref", "model_id")

    async def decide(self, turn: Turn, spec: BudDeploymentSpec, obs: Observation) -> Plan:
        model_id, wait = turn.resolve_ref(self.ref, spec)
        cluster_id = spec.cluster_id
        if cluster_id is None and spec.cluster_name:
            cluster_id = await call(
                f"look up cluster {spec.cluster_name}", turn.gw.cluster_id_for(spec.cluster_name)
            )
        cluster = health = None
        if cluster_id:
            cluster, health = await call(
                f"read cluster {cluster_id}",
                turn.gw.cluster(cluster_id, turn.settings.cluster_interval),
            )
        cached_model = MODEL.cache(turn.gw).entries.get(model_id) if model_id else None
        return reconcile_deployment(
            turn.ctx,
            spec,
            obs,
            model_id=model_id,
            model_wait=wait,
            cluster_id=cluster_id,
            cluster=cluster,
            health=health,
            model=cached_model.obj if cached_model else None,
        )

    def send(self, client: AsyncBudClient, action: Action) -> tuple[str, Awaitable[Any]]:
        if action.op in ("stop", "start"):
            target = action.target_id or ""
            verb = getattr(client.deployments, action.op)
            return f"{action.op} deployment {target}", verb(
                target, idempotency_key=action.idempotency_key
            )
        return super().send(client, action)

    def cluster_of(self, st: ObjectState) -> str | None:
        cluster_id = st.spec.get("clusterId") or (st.status.get("cluster") or {}).get("id")
        return str(cluster_id) if cluster_id else None


DEPLOYMENT = DeploymentKind()
