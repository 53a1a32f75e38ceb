"""The reconcile loop around the pure decisions, as `budai_operator.handlers` calls it.

`Runtime` wires the parts, each in its own module: the object registry and its indexes
(`objects`), the work queue (`scheduler`), reconcile (`reconciler`) and deletion (`finalizer`),
the Kubernetes writes (`writes`), the background refreshes (`background`) and the connection
kinds (`connection_loop`). What differs between kinds comes from the kind registry
(`budai_operator.kinds`). It does not import kopf (Events go through a callback).

One `ObjectState` per custom resource holds the latest body seen on the watch and the failure
streak. A `Scheduler` (a work queue with a fixed pool of workers, not a task per object) runs each
object's reconcile again at the plan's requeue time, or at once when something relevant changes
(spec, steering annotations, a referenced resource, the remote object seen by a list refresh).
The finalizer `bud.studio/finalizer` is ours too: added before the first remote create, removed
when the remote side is dealt with.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

from .background import Background
from .connection_loop import ConnectionLoop
from .finalizer import Finalizer
from .kinds.base import KindRegistry
from .kinds.connection import Connections
from .kinds.registry import REGISTRY
from .kubeapi import KubeApi
from .metrics import RECONCILES
from .objects import Objects, ObjectState, slim
from .parts import Parts
from .reconcile.connection import ConnKey
from .reconcile.errors import backoff
from .reconciler import Reconciler
from .remote import GatewayLink
from .scheduler import Scheduler
from .settings import OperatorSettings
from .writes import PostEvent, Writes

log = logging.getLogger(__name__)


class Runtime:
    """Shared by every handler of one operator process."""

    def __init__(
        self,
        settings: OperatorSettings,
        gateway: GatewayLink | None,
        kube: KubeApi,
        post_event: PostEvent,
        kinds: KindRegistry = REGISTRY,
    ) -> None:
        self.settings = settings
        self.gw = gateway
        """The operator's own key (flags), the default while no ClusterBudConnection exists."""
        self.kube = kube
        self.kinds = kinds
        self.conns = Connections(settings, kube, gateway, settings.operator_namespace)
        self.post_event = post_event
        self.scheduler: Scheduler[str] = Scheduler(self._run, workers=settings.workers)
        self.tracked = Objects(kinds, self.scheduler.wake)
        self.writes = Writes(kube, kinds, self.tracked, post_event)
        parts = Parts(settings, kinds, kube, self.tracked, self.conns, self.scheduler, self.writes)
        self.reconciler = Reconciler(parts)
        self.finalizer = Finalizer(self.reconciler)
        self.background = Background(parts, gateway)
        self.connections = ConnectionLoop(parts, self.wake_unauthorized)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def objects(self) -> dict[str, ObjectState]:
        """Tracked objects by uid."""
        return self.tracked.by_uid

    # --- the watch ------------------------------------------------------------------------------

    def observe_event(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Record the latest body from the watch; wake the object (and what refers to it) when
        something that matters changed. Status-only changes (our own writes) wake nothing."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if not uid:
            return
        if event_type == "DELETED":
            self.tracked.forget(uid)
            self.scheduler.forget(uid)
            return
        st, old_status = self.tracked.record(kind, slim(body))
        if meta.get("generation") != st.handled_generation or st.steering != st.handled_steering:
            self.scheduler.wake(uid)
        if meta.get("deletionTimestamp"):
            self.scheduler.wake(uid)
        self.tracked.wake_dependents(st, old_status, st.status)

    def observe_connection(
        self, kind: str, event_type: str | None, body: Mapping[str, Any]
    ) -> None:
        """A connection kind's watch event."""
        self.connections.observe_connection(kind, event_type, body)

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A namespace's watch event (its labels select ClusterBudConnections)."""
        self.connections.observe_namespace(event_type, body)

    def find(self, kind: str, namespace: str, name: str) -> ObjectState | None:
        """A tracked resource by kind and name."""
        return self.tracked.find(kind, namespace, name)

    def object_counts(self) -> dict[tuple[str, str], int]:
        """Objects by (kind, Ready status), for the metrics endpoint."""
        return self.tracked.counts()

    def wake_unauthorized(self, conn: ConnKey | None = None) -> int:
        """Wake every resource Stalled with reason Unauthorized (the key changed), only those
        of connection `conn` when given."""
        return self.background.wake_unauthorized(conn)

    # --- leading and the loops ------------------------------------------------------------------

    def set_active(self, active: bool) -> None:
        """Follow the peering decision: another replica leads (False) or we do (True).

        Pausing forgets every object: while paused the watch is stopped, so what we hold goes
        stale (an object deleted meanwhile would otherwise be reconciled, and its remote side
        re-created, from its last body). Resuming re-lists, which brings every object back.
        """
        if active == self.scheduler.active:
            return
        log.info("%s reconciling", "resuming" if active else "pausing")
        self.scheduler.set_active(active)
        self.connections.active_since = time.monotonic()
        if not active:
            self.scheduler.clear()
            self.tracked.clear()

    def start_background(self) -> None:
        """The reconcile workers, list-based refresh per kind, cluster health and connections."""
        self.scheduler.start()
        self._tasks.extend(self.background.tasks())
        self._tasks.append(asyncio.create_task(self.connections.run(), name="connections"))

    async def stop_background(self) -> None:
        """Stop the workers (in-flight reconciles are cancelled) and the refresh loops."""
        await self.scheduler.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.kube.flush_events()

    # --- one turn of the work queue -------------------------------------------------------------

    async def _run(self, uid: str) -> float | None:
        """Reconcile or finalize one object; returns when to look again (None: on change only)."""
        st = self.tracked.get(uid)
        if st is None:
            return None  # deleted (or forgotten on a pause) since it was queued
        try:
            if (st.body.get("metadata") or {}).get("deletionTimestamp"):
                delay = await self.finalize(st)
            else:
                delay = await self.reconcile(st)
        except Exception:
            # A Kubernetes API hiccup or a bug: back off and retry; the worker carries on.
            log.exception("reconcile of %s %s/%s crashed", st.kind, st.namespace, st.name)
            RECONCILES.labels(st.kind, "crash").inc()
            st.crashes += 1
            return backoff(st.crashes - 1, None, random.random())
        st.crashes = 0
        return delay

    async def reconcile(self, st: ObjectState) -> float | None:
        """One reconcile of one object; returns when to look again (None: on change only)."""
        return await self.reconciler.reconcile(st)

    async def finalize(self, st: ObjectState) -> float | None:
        """The object is being deleted: deal with the remote side, then release the finalizer."""
        return await self.finalizer.finalize(st)


__all__ = ["ObjectState", "Runtime"]
