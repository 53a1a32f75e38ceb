"""`BudPipeline`: one remote pipeline per resource, checked against the gateway's action
catalogue; mirrors its last execution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models import BUD_PIPELINE
from ..reconcile.common import Observation, Plan
from ..reconcile.pipeline import reconcile_pipeline
from .base import KindAdapter, Turn


class PipelineKind(KindAdapter):
    definition = BUD_PIPELINE
    noun = "pipeline"
    api = "pipelines"

    async def decide(self, turn: Turn, spec: Any, obs: Observation) -> Plan:
        actions = await turn.gw.known_actions()
        last = (obs.remote or {}).get("last_execution")
        return reconcile_pipeline(
            turn.ctx,
            spec,
            obs,
            known_actions=actions,
            last_execution=last if isinstance(last, Mapping) else None,
        )


PIPELINE = PipelineKind()
