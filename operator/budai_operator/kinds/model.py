"""`BudModel`: one remote model per resource; a model created but never recorded is found by name
on deletion so that it does not leak."""

from __future__ import annotations

from typing import Any

from ..models import BUD_MODEL, BudModelSpec
from ..reconcile.common import Observation, Plan, default_remote_name
from ..reconcile.model import IDENTITY_KEY, reconcile_model
from ..remote import call
from .base import KindAdapter, Turn


class ModelKind(KindAdapter):
    definition = BUD_MODEL
    noun = "model"
    api = "models"

    async def decide(self, turn: Turn, spec: Any, obs: Observation) -> Plan:
        return reconcile_model(turn.ctx, spec, obs)

    async def unrecorded_id(self, turn: Turn, spec: BudModelSpec) -> str | None:
        """A model this resource created whose id never reached status or the annotation (the
        operator stopped between the create and those writes): found by name and claimed only
        if it carries this resource's UID, so deleting the resource does not leak it."""
        if spec.deletion_policy.value != "Delete":
            return None
        name = default_remote_name(turn.ctx, spec.name)
        found = await call(f"look up model {name}", turn.gw.find_by_name(self.api, name))
        if found and (found.get("metadata") or {}).get(IDENTITY_KEY) == turn.ctx.uid:
            return str(found.get("id"))
        return None


MODEL = ModelKind()
