"""Deleting a managed object: deal with its remote side (delete, cancel or orphan, as its kind and
deletionPolicy say), then release the finalizer `bud.studio/finalizer`."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from pydantic import ValidationError

from .kinds.base import Deletion, KindAdapter
from .kubeapi import status_patch
from .objects import ObjectState
from .reconcile.common import Action, Ctx, Event, Observation, Plan
from .reconcile.ownership import Source, id_source, may_delete
from .reconciler import Reconciler
from .remote import ActionFailed, call, to_dict
from .writes import holds_finalizer

log = logging.getLogger(__name__)


class Finalizer:
    """The deletion side of the reconciler."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.kinds = reconciler.kinds
        self.writes = reconciler.writes

    async def finalize(self, st: ObjectState) -> float | None:
        """The object is being deleted: deal with the remote side, then release the finalizer.
        Returns when to try again (None: done, or not ours to hold)."""
        if not holds_finalizer(st.body):
            return None
        done, delay = await self.delete(st)
        if not done:
            return delay
        await self.writes.release_finalizer(st)
        return None

    async def delete(self, st: ObjectState) -> tuple[bool, float]:
        """One attempt at deleting (or orphaning) the remote side; returns (done, retry delay)."""
        adapter = self.kinds[st.kind]
        ctx = self.reconciler.ctx(st)
        try:
            spec: Any = adapter.spec_model.model_validate(st.spec)
        except ValidationError:
            return True, 0.0  # nothing was ever created from an invalid spec
        remote_id, source = id_source(
            getattr(spec, "external_id", None), ctx.status, ctx.annotations
        )
        gw, problem = await self.reconciler.gateway_for(st, spec)
        if gw is None:
            # Without a connection nothing remote can be reached: let go rather than wedge the
            # namespace's deletion, and say so.
            self.writes.event(
                st, Event("Warning", "NoConnection", f"deleted nothing remote: {problem}")
            )
            return True, 0.0
        st.gw = gw
        cache = adapter.cache(gw)
        try:
            if remote_id is None:
                remote_id = await adapter.unrecorded_id(self.reconciler.turn(st, ctx), spec)
                source = "status" if remote_id else None
            obs = Observation()
            if remote_id:
                remote = await call(
                    f"read {adapter.noun} {remote_id}", cache.observe(remote_id, 0.0)
                )
                obs = Observation(remote, via="id", gone=remote is None)
                if remote is not None and not may_delete(ctx.uid, remote, source):
                    return self._release_foreign(st, source)
            deletion = Deletion(remote_id, st.delete_attempts, st.delete_failure)
            plan = adapter.delete_plan(ctx, spec, obs, deletion)
            for action in plan.actions:
                await self._send_delete(adapter, st, action)
        except ActionFailed as err:
            plan = self._failed(adapter, st, ctx, spec, remote_id, err)
        for event in plan.events:
            self.writes.event(st, event)
        if plan.done:
            if remote_id:
                cache.forget(remote_id)
            return True, 0.0
        patch = status_patch(ctx.status, plan.status)
        if patch:
            await self.writes.kube.patch_status(adapter.plural, st.namespace, st.name, patch)
        return False, plan.requeue_after or 2.0

    def _failed(
        self,
        adapter: KindAdapter,
        st: ObjectState,
        ctx: Ctx,
        spec: Any,
        remote_id: str | None,
        err: ActionFailed,
    ) -> Plan:
        st.delete_attempts += 1
        st.delete_failure = err.failure
        log.warning(
            "%s %s/%s: %s failed: %s",
            st.kind,
            st.namespace,
            st.name,
            err.doing,
            err.failure.describe(),
        )
        # The shared deletion plan for every kind: it says what failed and when to retry.
        deletion = Deletion(remote_id, st.delete_attempts, err.failure)
        plan = deletion.plan(ctx, spec, Observation(gone=False), adapter.noun)
        plan.actions = []
        return plan

    def _release_foreign(self, st: ObjectState, source: Source | None) -> tuple[bool, float]:
        """Deleting a resource whose remote object is not its own (an adoption that never
        succeeded, a foreign annotation): release the finalizer, delete nothing remote."""
        why = (
            "the adoption never succeeded"
            if source == "externalId"
            else "it is not managed by this resource"
        )
        self.writes.event(st, Event("Normal", "Orphaned", f"deleted nothing remote: {why}"))
        return True, 0.0

    async def _send_delete(self, adapter: KindAdapter, st: ObjectState, action: Action) -> None:
        doing, pending = adapter.send_delete(st.gw.client, action)
        try:
            result = await call(doing, pending)
        except ActionFailed as err:
            if err.failure.status_code == 404:
                return
            raise
        if result is not None and not isinstance(result, bool):
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                adapter.cache(st.gw).put(to_dict(result))
