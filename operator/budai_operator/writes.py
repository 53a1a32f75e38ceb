"""The runtime's Kubernetes writes on managed objects: status, annotations, Events and the
finalizer `bud.studio/finalizer`. Events go through a callback (this module does not import
kopf)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .kinds.base import KindRegistry
from .kubeapi import KubeApi, status_patch
from .objects import Objects, ObjectState, ready_of, slim
from .reconcile.common import Ctx, Event, Plan
from .reconcile.polling import FINALIZER

PostEvent = Callable[[Mapping[str, Any], Event], None]


def holds_finalizer(body: Mapping[str, Any]) -> bool:
    return FINALIZER in ((body.get("metadata") or {}).get("finalizers") or [])


def add_finalizer(have: list[str]) -> list[str]:
    return have if FINALIZER in have else [*have, FINALIZER]


def drop_finalizer(have: list[str]) -> list[str]:
    return [f for f in have if f != FINALIZER]


class Writes:
    """Status, annotation, Event and finalizer writes of managed objects."""

    def __init__(
        self, kube: KubeApi, kinds: KindRegistry, objects: Objects, post_event: PostEvent
    ) -> None:
        self.kube = kube
        self.kinds = kinds
        self.objects = objects
        self.post_event = post_event

    def event(self, st: ObjectState, event: Event) -> None:
        self.post_event(st.body, event)

    async def status(self, st: ObjectState, ctx: Ctx, status: dict[str, Any]) -> None:
        """Write `status` as a minimal merge patch against what `ctx` saw."""
        patch = status_patch(ctx.status, status)
        plural = self.kinds.plural(st.kind)
        if patch and await self.kube.patch_status(plural, st.namespace, st.name, patch):
            # Keep the local copy current so the next reconcile does not wait for the watch.
            old = st.status
            st.body["status"] = status
            st.ready = ready_of(status)
            # The watch event of this write then finds nothing changed, so wake dependents here
            # (an execution waiting on its pipeline's id or Ready).
            self.objects.wake_dependents(st, old, status)

    async def plan(self, st: ObjectState, ctx: Ctx, plan: Plan) -> None:
        """A reconcile's status, annotations and Events."""
        writes: list[Awaitable[object]] = [self.status(st, ctx, plan.status)]
        if plan.annotations:
            writes.append(
                self.kube.patch_annotations(
                    self.kinds.plural(st.kind), st.namespace, st.name, plan.annotations
                )
            )
        # Both land in the same reconcile; they touch different parts of the object.
        await asyncio.gather(*writes)
        for event in plan.events:
            self.event(st, event)

    async def ensure_finalizer(self, st: ObjectState) -> bool:
        """Add our finalizer (before any remote create); False when the object is gone."""
        if holds_finalizer(st.body):
            return True
        updated = await self.kube.update_finalizers(
            self.kinds.plural(st.kind), st.body, add_finalizer
        )
        if updated is None:
            return False
        # The patch answer is newer than anything the watch has shown us.
        st.body = slim(updated)
        return True

    async def release_finalizer(self, st: ObjectState) -> None:
        await self.kube.update_finalizers(self.kinds.plural(st.kind), st.body, drop_finalizer)
