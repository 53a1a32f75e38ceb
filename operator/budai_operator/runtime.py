"""The reconcile loop around the pure decisions: gather what the decision needs, apply the plan's
remote writes, write status, annotations and Events. Called by the thin kopf adapters in
`budai_operator.handlers`; it does not import kopf (Events go through a callback).

One `ObjectState` per custom resource holds the latest body seen on the watch and the failure
streak. A `Scheduler` (a work queue with a fixed pool of workers, not a task per object) runs each
object's reconcile again at the plan's requeue time, or at once when something relevant changes
(spec, steering annotations, a referenced resource, the remote object seen by a list refresh).
The finalizer `bud.studio/finalizer` is ours too: added before the first remote create, removed
when the remote side is dealt with.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from budai.exceptions import BudAPIError

from .connections import Connections
from .kubeapi import KubeApi, status_patch
from .metrics import RECONCILE_SECONDS, RECONCILES
from .models import (
    BudDeploymentSpec,
    BudExecutionSpec,
    BudModelSpec,
    BudPipelineSpec,
)
from .reconcile import conditions as cnd
from .reconcile.common import (
    Action,
    Ctx,
    Event,
    Observation,
    Plan,
    default_remote_name,
    delete_plan,
    error_plan,
    initial_status,
    paused_plan,
    stalled_plan,
)
from .reconcile.connection import (
    BUD_CONNECTION,
    CLUSTER_BUD_CONNECTION,
    ConnectionHealth,
    ConnKey,
    connection_status,
    describe,
    keep_pinned,
)
from .reconcile.deployment import reconcile_deployment
from .reconcile.errors import ErrorClass, Failure, backoff, classify
from .reconcile.execution import TERMINAL, delete_execution_plan, reconcile_execution
from .reconcile.model import IDENTITY_KEY, reconcile_model
from .reconcile.ownership import Source, id_source, judge, may_delete
from .reconcile.pipeline import reconcile_pipeline
from .reconcile.polling import (
    ANN_PAUSED,
    ANN_POLL_INTERVAL,
    ANN_RECONCILE_REQUESTED_AT,
    FINALIZER,
)
from .remote import Gateway, Remote, to_dict, to_failure
from .scheduler import Scheduler
from .settings import OperatorSettings

log = logging.getLogger(__name__)

PLURALS = {
    BUD_CONNECTION: "budconnections",
    CLUSTER_BUD_CONNECTION: "clusterbudconnections",
    "BudModel": "budmodels",
    "BudDeployment": "buddeployments",
    "BudPipeline": "budpipelines",
    "BudExecution": "budexecutions",
}
MANAGED_KINDS = ("BudModel", "BudDeployment", "BudPipeline", "BudExecution")
CONNECTION_KINDS = (BUD_CONNECTION, CLUSTER_BUD_CONNECTION)
SPECS: dict[str, type[BaseModel]] = {
    "BudModel": BudModelSpec,
    "BudDeployment": BudDeploymentSpec,
    "BudPipeline": BudPipelineSpec,
    "BudExecution": BudExecutionSpec,
}
NOUNS = {
    "BudModel": "model",
    "BudDeployment": "deployment",
    "BudPipeline": "pipeline",
    "BudExecution": "execution",
}
STEERING = (ANN_PAUSED, ANN_POLL_INTERVAL, ANN_RECONCILE_REQUESTED_AT)
# Kinds that wait on another resource, by the field naming it.
REFS = {"BudDeployment": ("BudModel", "modelRef"), "BudExecution": ("BudPipeline", "pipelineRef")}

PostEvent = Callable[[Mapping[str, Any], Event], None]


@dataclass
class ObjectState:
    """What the operator remembers about one custom resource between reconciles."""

    kind: str
    uid: str
    namespace: str
    name: str
    body: dict[str, Any]
    attempts: int = 0
    crashes: int = 0
    delete_attempts: int = 0
    delete_failure: Failure | None = None
    handled_generation: int | None = None
    handled_steering: tuple[str, ...] = ()
    remote_id: str | None = None
    ready: str = "Unknown"
    ref: tuple[str, str, str] | None = None
    """(kind, namespace, name) of the resource this one waits on, as indexed."""
    conn: ConnKey | None = None
    """The connection this resource resolved to at its last reconcile."""
    gw: Gateway = None  # type: ignore[assignment]
    """That connection's gateway client (set before any remote call)."""

    @property
    def steering(self) -> tuple[str, ...]:
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        return tuple(str(annotations.get(k, "")) for k in STEERING)


class _ActionFailed(Exception):
    def __init__(self, failure: Failure, doing: str, creating: bool = False) -> None:
        super().__init__(doing)
        self.failure = failure
        self.doing = doing
        self.creating = creating


class Runtime:
    """Shared by every handler of one operator process."""

    INITIAL_STATUS_AFTER = 1.0
    KEY_CHECK_INTERVAL = 2.0
    PAGE_SPACING = 10.0

    def __init__(
        self,
        settings: OperatorSettings,
        gateway: Gateway | None,
        kube: KubeApi,
        post_event: PostEvent,
    ) -> None:
        self.settings = settings
        self.gw = gateway
        """The operator's own key (flags), the default while no ClusterBudConnection exists."""
        self.kube = kube
        self.conns = Connections(
            settings,
            kube,
            gateway,
            settings.operator_namespace,
        )
        self._conn_wake = asyncio.Event()
        self._active_since = time.monotonic()
        self.post_event = post_event
        self.objects: dict[str, ObjectState] = {}
        self._by_name: dict[tuple[str, str, str], str] = {}
        # (kind, namespace, name) -> uids of the resources referring to it: a status change of
        # one model wakes its deployments without a scan of every object.
        self._dependents: dict[tuple[str, str, str], set[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.scheduler: Scheduler[str] = Scheduler(self._run, workers=settings.workers)

    # --- registry -----------------------------------------------------------------------------

    def observe_event(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Record the latest body from the watch; wake the object (and what refers to it) when
        something that matters changed. Status-only changes (our own writes) wake nothing."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if not uid:
            return
        if event_type == "DELETED":
            gone = self.objects.pop(uid, None)
            self.scheduler.forget(uid)
            if gone is not None:
                self._by_name.pop((gone.kind, gone.namespace, gone.name), None)
                self._index_ref(gone, None)
            return
        body = _slim(body)
        st = self.objects.get(uid)
        if st is None:
            st = ObjectState(kind, uid, str(meta.get("namespace")), str(meta.get("name")), body)
            self.objects[uid] = st
            self._by_name[(kind, st.namespace, st.name)] = uid
        old_status = (st.body.get("status") or {}) if st.body else {}
        st.body = body
        if kind in REFS:
            target, field = REFS[kind]
            ref_name = ((body.get("spec") or {}).get(field) or {}).get("name")
            self._index_ref(st, (target, st.namespace, str(ref_name)) if ref_name else None)
        status = body.get("status") or {}
        st.ready = _ready_of(status)
        if meta.get("generation") != st.handled_generation or st.steering != st.handled_steering:
            self.scheduler.wake(uid)
        if meta.get("deletionTimestamp"):
            self.scheduler.wake(uid)
        self._wake_dependents(st, old_status, status)

    def _index_ref(self, st: ObjectState, ref: tuple[str, str, str] | None) -> None:
        if ref == st.ref:
            return
        if st.ref is not None:
            uids = self._dependents.get(st.ref)
            if uids is not None:
                uids.discard(st.uid)
                if not uids:
                    del self._dependents[st.ref]
        if ref is not None:
            self._dependents.setdefault(ref, set()).add(st.uid)
        st.ref = ref

    def _wake_dependents(
        self, st: ObjectState, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        """A new remote id or Ready of `st` wakes the resources referring to it (the index holds
        only models and pipelines, the kinds others wait on)."""
        if old.get("id") == new.get("id") and _ready_of(old) == _ready_of(new):
            return
        for uid in self._dependents.get((st.kind, st.namespace, st.name), ()):
            self.scheduler.wake(uid)

    def find(self, kind: str, namespace: str, name: str) -> ObjectState | None:
        """A tracked resource by kind and name."""
        uid = self._by_name.get((kind, namespace, name))
        return self.objects.get(uid) if uid else None

    def object_counts(self) -> dict[tuple[str, str], int]:
        """Objects by (kind, Ready status), for the metrics endpoint."""
        return dict(Counter((st.kind, st.ready) for st in self.objects.values()))

    # --- background refresh -------------------------------------------------------------------

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
        self._active_since = time.monotonic()
        if not active:
            self.scheduler.clear()
            self.objects.clear()
            self._by_name.clear()
            self._dependents.clear()

    def start_background(self) -> None:
        """The reconcile workers, list-based refresh per kind and cluster health refresh."""
        self.scheduler.start()
        for kind in ("BudModel", "BudDeployment", "BudPipeline"):
            self._tasks.append(
                asyncio.create_task(self._refresh_loop(kind), name=f"refresh {kind}")
            )
        self._tasks.append(asyncio.create_task(self._cluster_loop(), name="cluster health"))
        self._tasks.append(asyncio.create_task(self._trim_loop(), name="memory trim"))
        if self.settings.api_key_file and self.gw is not None:
            self._tasks.append(asyncio.create_task(self._key_loop(), name="API key file"))
        self._tasks.append(asyncio.create_task(self._connection_loop(), name="connections"))

    async def _key_loop(self) -> None:
        # A fixed Secret must heal Unauthorized resources within one poll, without a restart.
        while True:
            await asyncio.sleep(self.KEY_CHECK_INTERVAL)
            try:
                changed = self.gw.reload_key() if self.gw is not None else False
            except Exception:
                log.exception("re-reading the API key file failed")
                continue
            if changed:
                self.wake_unauthorized()

    def wake_unauthorized(self, conn: ConnKey | None = None) -> int:
        """Wake every resource Stalled with reason Unauthorized (the key changed), only those
        of connection `conn` when given."""
        woken = 0
        for st in self.objects.values():
            if conn is not None and st.conn != conn:
                continue
            conditions = (st.body.get("status") or {}).get("conditions")
            stalled = cnd.get(conditions, cnd.STALLED) or {}
            if stalled.get("status") == "True" and stalled.get("reason") == "Unauthorized":
                self.scheduler.wake(st.uid)
                woken += 1
        return woken

    async def _trim_loop(self) -> None:
        # Bursts (thousands of objects applied at once) leave freed memory in the C allocator;
        # glibc keeps it unless asked, so RSS would stay at the peak forever.
        trim = _malloc_trim()
        if trim is None:
            return
        while True:
            await asyncio.sleep(30)
            trim(0)

    async def stop_background(self) -> None:
        """Stop the workers (in-flight reconciles are cancelled) and the refresh loops."""
        await self.scheduler.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.kube.flush_events()

    async def _refresh_loop(self, kind: str) -> None:
        # One list per kind per connection (each connection is its own project and bucket).
        while True:
            gateways = list(self.conns.gateways.values())
            pages = sum(max(1, -(-gw.cache_for(kind).last_list_size // gw.PAGE)) for gw in gateways)
            # At most one page every PAGE_SPACING seconds over all connections: idle traffic
            # stays flat (about 0.1 request/s per kind) however many objects and connections.
            interval = max(self.settings.refresh_interval, self.PAGE_SPACING * max(1, pages))
            await asyncio.sleep(interval * (0.9 + 0.2 * random.random()))
            for gw in gateways:
                managed = {
                    st.remote_id: st
                    for st in self.objects.values()
                    if st.kind == kind and st.remote_id and st.gw is gw
                }
                if not managed:
                    continue
                try:
                    changed = await gw.cache_for(kind).refresh()
                except BudAPIError as err:
                    log.warning("list refresh of %s via %s failed: %s", kind, gw.label, err)
                    continue
                except Exception:
                    log.exception("list refresh of %s via %s failed", kind, gw.label)
                    continue
                for remote_id in changed:
                    st = managed.get(remote_id)
                    if st is not None:
                        self.scheduler.wake(st.uid)

    async def _cluster_loop(self) -> None:
        last: dict[tuple[str, str], str] = {}
        while True:
            await asyncio.sleep(self.settings.cluster_interval * (0.9 + 0.2 * random.random()))
            in_use: dict[tuple[str, str], tuple[Gateway, list[ObjectState]]] = {}
            for st in self.objects.values():
                if st.kind == "BudDeployment" and st.gw is not None:
                    cluster_id = (st.body.get("spec") or {}).get("clusterId") or (
                        (st.body.get("status") or {}).get("cluster") or {}
                    ).get("id")
                    if cluster_id:
                        slot = in_use.setdefault((st.gw.label, str(cluster_id)), (st.gw, []))
                        slot[1].append(st)
            for (label, cluster_id), (gw, deps) in in_use.items():
                try:
                    cluster, health = await gw.cluster(cluster_id, 0)
                except BudAPIError as err:
                    log.warning("cluster %s health refresh failed: %s", cluster_id, err)
                    continue
                mark = f"{(health or {}).get('status')}/{(cluster or {}).get('status')}"
                mark += f"/{(health or {}).get('node_count')}"
                if last.get((label, cluster_id)) not in (None, mark):
                    for st in deps:
                        self.scheduler.wake(st.uid)
                last[(label, cluster_id)] = mark

    # --- connections ----------------------------------------------------------------------------

    CONNECTION_CHECK_INTERVAL = 300.0
    """The key check (one whoami) per connection when nothing changed: as rare as a stable poll
    (a changed Secret is checked at once, and resources report Unauthorized themselves)."""
    REGISTRY_SETTLE_SECONDS = 15.0
    """After becoming active, the watch needs a moment to list every object: until then a
    connection must not be released as unused."""
    SECRET_CHECK_INTERVAL = 3.0

    def observe_connection(
        self, kind: str, event_type: str | None, body: Mapping[str, Any]
    ) -> None:
        """A BudConnection / ClusterBudConnection changed: resources may now resolve elsewhere
        (or at all), and its status wants a look."""
        self.conns.observe(kind, event_type, _slim(body))
        self._wake_connection_users()
        self._conn_wake.set()

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A namespace's labels decide which ClusterBudConnections it may use."""
        if self.conns.observe_namespace(event_type, body):
            namespace = str((body.get("metadata") or {}).get("name"))
            for st in self.objects.values():
                if st.namespace == namespace:
                    self.scheduler.wake(st.uid)

    def _wake_connection_users(self) -> None:
        # Connections change rarely; waking every object is cheaper than tracking who might
        # resolve differently (each reconcile re-resolves and mostly finds nothing to do).
        for st in self.objects.values():
            stalled = cnd.get((st.body.get("status") or {}).get("conditions"), cnd.STALLED) or {}
            if stalled.get("status") == "True" or st.conn is None:
                self.scheduler.wake(st.uid)

    async def _gateway_for(self, st: ObjectState, spec: Any) -> tuple[Gateway | None, str]:
        """The gateway client of this resource's connection, or why there is none."""
        ref = getattr(spec, "connection_ref", None)
        wire = ref.to_wire() if ref is not None else None
        found = self.conns.resolve(st.namespace, wire)
        status = st.body.get("status") or {}
        pinned = status.get("connection")
        found = keep_pinned(
            pinned if isinstance(pinned, str) else None,
            bool(status.get("id")),
            found,
            self.conns.allowed(st.namespace),
        )
        if found.key is None:
            st.conn = None
            return None, found.message
        st.conn = found.key
        gw = self.conns.gateway(found.key)
        if gw is None:
            await self.conns.refresh_key(found.key)
            gw = self.conns.gateway(found.key)
        if gw is None:
            problem = self.conns.problems.get(found.key, "its API key has not been read yet")
            return None, f"connection {describe(found.key)} is not usable: {problem}"
        return gw, ""

    async def _connection_loop(self) -> None:
        """Per connection: re-read its Secret every few seconds (a rotation heals its resources),
        check the key with one authenticated call (whoami) on change and every minute, write
        its status (Ready/Unauthorized, project, users) and hold it while resources use it."""
        checked: dict[ConnKey, float] = {}
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._conn_wake.wait(), self.SECRET_CHECK_INTERVAL)
            self._conn_wake.clear()
            await self.conns.close_retired()
            if not self.scheduler.active:
                continue  # a standby: the leader looks after connections (and holds the registry)
            # Who uses what, resolved from each object's spec now (not from its last reconcile:
            # after a restart a connection must not look unused before its users reconciled).
            users: dict[ConnKey, list[str]] = {}
            for st in self.objects.values():
                ref = (st.body.get("spec") or {}).get("connectionRef")
                key = self.conns.resolve(st.namespace, ref if isinstance(ref, dict) else None).key
                if key is not None:
                    users.setdefault(key, []).append(f"{st.kind}/{st.namespace}/{st.name}")
            for key in self.conns.connection_keys():
                try:
                    changed = await self.conns.refresh_key(key)
                    if changed:
                        self.wake_unauthorized(key)
                        for st in self.objects.values():
                            if st.conn == key:
                                self.scheduler.wake(st.uid)
                    due = time.monotonic() - checked.get(key, -math.inf)
                    await self._connection_status(
                        key,
                        users.get(key, []),
                        check=changed or due > self.CONNECTION_CHECK_INTERVAL,
                    )
                    if changed or due > self.CONNECTION_CHECK_INTERVAL:
                        checked[key] = time.monotonic()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("checking connection %s failed", describe(key))

    async def _connection_status(self, key: ConnKey, users: list[str], check: bool) -> None:
        body = self.conns.body(key)
        if body is None:
            return
        kind, namespace, name = key
        plural = PLURALS[kind]
        meta = body.get("metadata") or {}
        old = dict(body.get("status") or {})
        deleting = bool(meta.get("deletionTimestamp"))
        if not deleting and FINALIZER not in (meta.get("finalizers") or []):
            updated = await self.kube.update_finalizers(plural, body, _add_finalizer)
            if updated is not None:
                self.conns.observe(kind, "MODIFIED", updated)
                body = updated
        settled = time.monotonic() - self._active_since > self.REGISTRY_SETTLE_SECONDS
        if deleting and not users and settled and FINALIZER in (meta.get("finalizers") or []):
            await self.kube.update_finalizers(plural, body, _drop_finalizer)
            return
        health: ConnectionHealth | None = None
        gw = self.conns.gateway(key)
        problem = self.conns.problems.get(key)
        if problem or gw is None:
            health = ConnectionHealth(False, "SecretNotFound", problem or "API key not read yet")
        elif check:
            try:
                who = await gw.client.whoami()
            except BudAPIError as err:
                failure = to_failure(err)
                reason = "Unauthorized" if err.status_code in (401, 403) else "Unreachable"
                health = ConnectionHealth(False, reason, f"whoami failed: {failure.describe()}")
            else:
                health = ConnectionHealth(
                    True,
                    "Connected",
                    "the API key works",
                    str(who.get("project") or ""),
                    tuple(str(x) for x in who.get("scopes") or ()),
                )
        if health is None:
            # Only the users changed since the last check: keep the conditions as they are.
            ready = cnd.get(old.get("conditions"), cnd.READY) or {}
            health = ConnectionHealth(
                ready.get("status") == "True",
                str(ready.get("reason") or "Checking"),
                str(ready.get("message") or ""),
                old.get("project"),
                tuple(old.get("scopes") or ()),
            )
        if deleting and users:
            health = ConnectionHealth(
                False,
                "InUse",
                f"deletion waits: {len(users)} resources use this connection (status.usedBy)",
                health.project,
                health.scopes,
            )
        generation = int(meta.get("generation") or 1)
        status = connection_status(old, health, users, generation, datetime.now(UTC))
        patch = status_patch(old, status)
        if patch and await self.kube.patch_status(plural, namespace, name, patch):
            body = {**body, "status": status}
            self.conns.observe(kind, "MODIFIED", body)

    # --- one turn of the work queue ---------------------------------------------------------------

    async def _run(self, uid: str) -> float | None:
        """Reconcile or finalize one object; returns when to look again (None: on change only)."""
        st = self.objects.get(uid)
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

    async def _ensure_finalizer(self, st: ObjectState) -> bool:
        """Add our finalizer (before any remote create); False when the object is gone."""
        if _holds_finalizer(st.body):
            return True
        updated = await self.kube.update_finalizers(PLURALS[st.kind], st.body, _add_finalizer)
        if updated is None:
            return False
        # The patch answer is newer than anything the watch has shown us.
        st.body = _slim(updated)
        return True

    def _ctx(self, st: ObjectState) -> Ctx:
        meta = st.body.get("metadata") or {}
        return Ctx(
            kind=st.kind,
            name=st.name,
            namespace=st.namespace,
            uid=st.uid,
            generation=int(meta.get("generation") or 1),
            annotations=dict(meta.get("annotations") or {}),
            status=dict(st.body.get("status") or {}),
            now=datetime.now(UTC),
            jitter=random.random(),
            in_flight_interval=self.settings.in_flight_interval,
            stable_interval=self.settings.stable_interval,
        )

    async def reconcile(self, st: ObjectState) -> float | None:
        """One reconcile of one object; returns when to look again (None: on change only)."""
        started = time.monotonic()
        if not await self._ensure_finalizer(st):
            return None
        ctx = self._ctx(st)
        st.handled_generation = ctx.generation
        st.handled_steering = st.steering
        result = "success"
        gw: Gateway | None = None
        try:
            spec = SPECS[st.kind].model_validate(st.body.get("spec") or {})
        except ValidationError as err:
            plan = stalled_plan(ctx, "InvalidSpec", f"spec is invalid: {err}")
            result = "stalled"
        else:
            gw, problem = await self._gateway_for(st, spec)
        if gw is None and result != "stalled":
            plan = self._refused(ctx, ("NoConnection", problem))
            result = "stalled"
        elif gw is not None:
            st.gw = gw
            first = initial_status(ctx)
            task = asyncio.ensure_future(self._plan(st, ctx, spec))
            if first is not None:
                # Ready=False/Initializing must show from the first moment, but a reconcile that
                # finishes at once writes its own status: one write instead of two per new object.
                try:
                    done, _ = await asyncio.wait({task}, timeout=self.INITIAL_STATUS_AFTER)
                    if not done:
                        await self._write_status(st, ctx, first)
                        ctx = replace(ctx, status=first)
                except BaseException:
                    task.cancel()  # the worker is being stopped: do not leave the work running
                    raise
            try:
                plan = await task
                st.attempts = 0
                if cnd.is_true(plan.status.get("conditions"), cnd.STALLED):
                    result = "stalled"
                elif ctx.paused:
                    result = "paused"
            except _ActionFailed as err:
                plan = self._failed(st, ctx, err.failure, err.doing, err.creating)
                result = "error"
        if gw is not None and st.conn is not None and plan.status.get("id"):
            # Pin the connection the remote object lives behind (see keep_pinned).
            plan.status["connection"] = describe(st.conn)
        await self._apply_writes(st, ctx, plan)
        RECONCILES.labels(st.kind, result).inc()
        RECONCILE_SECONDS.labels(st.kind).observe(time.monotonic() - started)
        return plan.requeue_after

    def _failed(
        self, st: ObjectState, ctx: Ctx, failure: Failure, doing: str, creating: bool = False
    ) -> Plan:
        plan = error_plan(ctx, failure, attempt=st.attempts, doing=doing, creating=creating)
        stalled = cnd.is_true(plan.status.get("conditions"), cnd.STALLED)
        if not stalled and classify(failure) not in (ErrorClass.INVALID, ErrorClass.UNAUTHORIZED):
            st.attempts += 1  # a backoff streak; stalled resources wait for a human instead
        log.warning(
            "%s %s/%s: %s failed: %s",
            st.kind,
            st.namespace,
            st.name,
            doing,
            failure.describe(),
        )
        return plan

    async def _call(self, doing: str, coro: Any) -> Any:
        try:
            return await coro
        except BudAPIError as err:
            raise _ActionFailed(to_failure(err), doing) from None

    def _max_age(self, ctx: Ctx) -> float:
        """How stale a cached remote object may be for this reconcile."""
        requested = ctx.annotations.get(ANN_RECONCILE_REQUESTED_AT)
        if ctx.spec_changed or (
            requested and requested != ctx.status.get("lastHandledReconcileAt")
        ):
            return 0.0
        if cnd.is_true(ctx.status.get("conditions"), cnd.RECONCILING):
            return self.settings.in_flight_interval / 2
        return self.settings.refresh_interval * 2

    async def _observe(self, st: ObjectState, ctx: Ctx, spec: Any) -> Observation:
        kind = st.kind
        noun = NOUNS[kind]
        known, source = id_source(getattr(spec, "external_id", None), ctx.status, ctx.annotations)
        if known and source:
            remote = await self._call(
                f"read {noun} {known}", st.gw.cache_for(kind).observe(known, self._max_age(ctx))
            )
            if remote is None:
                st.remote_id = known
                return Observation(None, via="id", gone=True, gone_id=known)
            verdict = judge(ctx.uid, remote, source, noun, self._remote_name(ctx, spec))
            if verdict.ignore:
                # The annotation names an object that is not ours: not an adoption path.
                return Observation()
            if not verdict.manage:
                return Observation(refused=(verdict.reason, verdict.message))
            st.remote_id = known
            return Observation(remote, via="id")
        # Nothing known yet: the decision creates. Names are unique on the gateway (a create of a
        # taken name answers 409 already_exists), so no lookup is needed first: `_act` looks the
        # name up on that answer and the decision adopts the object only if it is this
        # resource's. A lookup before every create would cost a call per object and still race.
        return Observation()

    async def _decide(self, st: ObjectState, ctx: Ctx, spec: Any, obs: Observation) -> Plan:
        kind = st.kind
        if kind == "BudModel":
            return reconcile_model(ctx, cast(BudModelSpec, spec), obs)
        if kind == "BudDeployment":
            dspec = cast(BudDeploymentSpec, spec)
            model_id, wait = self._resolve_ref(
                st, "BudModel", dspec.model_ref.name if dspec.model_ref else None, dspec.model_id
            )
            cluster_id = dspec.cluster_id
            if cluster_id is None and dspec.cluster_name:
                cluster_id = await self._call(
                    f"look up cluster {dspec.cluster_name}",
                    st.gw.cluster_id_for(dspec.cluster_name),
                )
            cluster = health = None
            if cluster_id:
                cluster, health = await self._call(
                    f"read cluster {cluster_id}",
                    st.gw.cluster(cluster_id, self.settings.cluster_interval),
                )
            cached_model = st.gw.models.entries.get(model_id) if model_id else None
            return reconcile_deployment(
                ctx,
                dspec,
                obs,
                model_id=model_id,
                model_wait=wait,
                cluster_id=cluster_id,
                cluster=cluster,
                health=health,
                model=cached_model.obj if cached_model else None,
            )
        if kind == "BudPipeline":
            actions = await st.gw.known_actions()
            last = (obs.remote or {}).get("last_execution")
            return reconcile_pipeline(
                ctx,
                cast(BudPipelineSpec, spec),
                obs,
                known_actions=actions,
                last_execution=last if isinstance(last, Mapping) else None,
            )
        espec = cast(BudExecutionSpec, spec)
        pipeline_id, wait = self._resolve_ref(
            st,
            "BudPipeline",
            espec.pipeline_ref.name if espec.pipeline_ref else None,
            espec.pipeline_id,
        )
        unauthorized = None
        if pipeline_id is None and espec.pipeline_ref is not None:
            target = self.find("BudPipeline", st.namespace, espec.pipeline_ref.name)
            target_status = (target.body.get("status") or {}) if target else {}
            stalled = cnd.get(target_status.get("conditions"), cnd.STALLED) or {}
            if stalled.get("status") == "True" and stalled.get("reason") == "Unauthorized":
                unauthorized = str(stalled.get("message") or "")
        return reconcile_execution(
            ctx,
            espec,
            obs,
            pipeline_id=pipeline_id,
            pipeline_wait=wait,
            pipeline_unauthorized=unauthorized,
        )

    def _resolve_ref(
        self, st: ObjectState, kind: str, ref: str | None, direct: str | None
    ) -> tuple[str | None, str | None]:
        if direct:
            return direct, None
        if ref is None:
            return None, "no reference set"
        target = self.find(kind, st.namespace, ref)
        if target is None:
            return None, f"{kind} {ref} not found in namespace {st.namespace}"
        target_status = target.body.get("status") or {}
        remote_id = target_status.get("id")
        if not remote_id:
            return None, f"{kind} {ref} has no remote id yet"
        if kind == "BudPipeline" and target.ready != "True":
            return None, f"{kind} {ref} is not Ready yet"
        return str(remote_id), None

    async def _plan(self, st: ObjectState, ctx: Ctx, spec: Any) -> Plan:
        if ctx.paused:
            return paused_plan(ctx)
        obs = await self._observe(st, ctx, spec)
        if obs.refused is None:
            obs = await self._check_reference(st, ctx, spec, obs)
        if obs.refused is not None:
            return self._refused(ctx, obs.refused)
        plan = await self._decide(st, ctx, spec, obs)
        events: list[Event] = []
        annotations: dict[str, str] = {}
        for _ in range(3):
            events.extend(plan.events)
            annotations.update(plan.annotations)
            if not plan.actions:
                break
            after = await self._act(st, ctx, spec, plan.actions)
            if after is None:
                break
            if after.refused is not None:
                plan = self._refused(ctx, after.refused)
                break
            plan = await self._decide(st, ctx, spec, after)
        plan.events = events
        plan.annotations = annotations
        return plan

    async def _act(
        self, st: ObjectState, ctx: Ctx, spec: Any, actions: list[Action]
    ) -> Observation | None:
        """Apply remote writes in order; the last returned object is the new observation."""
        result: Remote | None = None
        for action in actions:
            if action.message and action.op != "create":
                # Creates are announced once, by the Created/Started event of the next decision.
                self.post_event(
                    st.body,
                    Event(
                        "Warning" if action.reason == "DriftCorrected" else "Normal",
                        action.reason or "Updating",
                        action.message,
                    ),
                )
            if action.op == "delete_resource":
                await self.kube.delete(PLURALS[st.kind], st.namespace, st.name)
                return None
            try:
                result, replayed = await self._send(st, action)
            except _ActionFailed as err:
                if err.failure.code == "already_exists" and action.op == "create":
                    # Someone (or our own lost response) holds the name: decide on what is there,
                    # and never repeat the holder's id (the error's param) in a message.
                    name = str(action.body.get("name"))
                    found = await self._call(
                        f"look up {NOUNS[st.kind]}", st.gw.find_by_name(st.kind, name)
                    )
                    if found:
                        verdict = judge(ctx.uid, found, "name", NOUNS[st.kind], name)
                        if not verdict.manage:
                            return Observation(refused=(verdict.reason, verdict.message))
                        return Observation(found, via="name")
                    err.failure = replace(err.failure, param=None)
                if err.failure.code == "idempotency_key_reused" and action.op == "create":
                    # The gateway remembers this key for an object that is gone: a fresh key
                    # (derived from this one) creates it again.
                    return Observation(
                        None, via="action", gone=True, gone_id=action.idempotency_key
                    )
                raise
            if replayed and action.op == "create":
                # The gateway answered from its idempotency record: the object may have been
                # deleted since. Confirm; if it is gone, the next create uses a fresh key.
                rid = str(result.get("id"))
                current = await self._call(
                    f"read {NOUNS[st.kind]} {rid}", st.gw.cache_for(st.kind).observe(rid, 0.0)
                )
                if current is None:
                    return Observation(None, via="action", gone=True, gone_id=rid)
                result = current
            st.gw.cache_for(st.kind).put(result)
            st.remote_id = str(result.get("id"))
        return Observation(result, via="action") if result is not None else None

    def _remote_name(self, ctx: Ctx, spec: Any) -> str:
        return default_remote_name(ctx, getattr(spec, "name", None))

    def _refused(self, ctx: Ctx, refused: tuple[str, str]) -> Plan:
        """Stalled on an object that is not ours; re-checked slowly (it may be released)."""
        reason, message = refused
        previous = cnd.get(ctx.status.get("conditions"), cnd.STALLED) or {}
        fresh = previous.get("status") != "True" or previous.get("reason") != reason
        plan = stalled_plan(ctx, reason, message, event=fresh)
        plan.requeue_after = ctx.poll(False)
        return plan

    async def _check_reference(
        self, st: ObjectState, ctx: Ctx, spec: Any, obs: Observation
    ) -> Observation:
        """`spec.modelId` / `spec.pipelineId` may name only objects not managed from another
        namespace: with a key shared by several namespaces, an id alone must not reach another
        team's model or pipeline (with a key per project the gateway already answers 404)."""
        ref_kind, direct = None, None
        if isinstance(spec, BudDeploymentSpec) and spec.model_id:
            ref_kind, direct = "BudModel", spec.model_id
        elif isinstance(spec, BudExecutionSpec) and spec.pipeline_id and obs.remote is None:
            ref_kind, direct = "BudPipeline", spec.pipeline_id
        if ref_kind is None or direct is None:
            return obs
        noun = NOUNS[ref_kind]
        target = await self._call(
            f"read {noun} {direct}", st.gw.cache_for(ref_kind).observe(direct, self._max_age(ctx))
        )
        if target is None:
            return obs  # the create answers 404 and the decision says so
        marker = (target.get("metadata") or {}).get(IDENTITY_KEY)
        owner = self.objects.get(str(marker)) if marker else None
        if marker and marker != ctx.uid and (owner is None or owner.namespace != st.namespace):
            field = "modelId" if ref_kind == "BudModel" else "pipelineId"
            return Observation(
                refused=(
                    "OwnedElsewhere",
                    f"spec.{field} names a {noun} managed from another namespace; refer to a "
                    f"{noun} of this namespace",
                )
            )
        return obs

    async def _send(self, st: ObjectState, action: Action) -> tuple[Remote, bool]:
        """One remote write; returns the object and whether a create was answered from the
        gateway's idempotency record (a replay)."""
        c = st.gw.client
        key = action.idempotency_key
        body: dict[str, Any] = dict(action.body)
        target = action.target_id or ""
        noun = NOUNS[st.kind]
        doing = f"{action.op} {noun}" + (f" {target}" if target else "")
        call: Any
        if st.kind == "BudModel":
            if action.op == "create":
                call = c.models.with_response.create(idempotency_key=key, **body)
            else:
                call = c.models.update(target, idempotency_key=key, **body)
        elif st.kind == "BudDeployment":
            if action.op == "create":
                call = c.deployments.with_response.create(idempotency_key=key, **body)
            elif action.op == "stop":
                call = c.deployments.stop(target, idempotency_key=key)
            elif action.op == "start":
                call = c.deployments.start(target, idempotency_key=key)
            else:
                call = c.deployments.update(target, idempotency_key=key, **body)
        elif st.kind == "BudPipeline":
            if action.op == "create":
                call = c.pipelines.with_response.create(idempotency_key=key, **body)
            else:
                call = c.pipelines.update(target, idempotency_key=key, **body)
        elif action.op == "create":
            doing = f"create execution of pipeline {body['pipeline_id']}"
            call = c.executions.with_response.create(
                body["pipeline_id"],
                body.get("params") or {},
                metadata=body.get("metadata"),
                idempotency_key=key,
            )
        else:
            call = c.executions.cancel(target, idempotency_key=key)
        try:
            answer = await self._call(doing, call)
        except _ActionFailed as err:
            err.creating = action.op == "create"
            raise
        if action.op == "create":
            replayed = answer.headers.get("idempotent-replayed") == "true"
            return to_dict(answer.data), replayed
        return to_dict(answer), False

    # --- deletion -------------------------------------------------------------------------------

    async def finalize(self, st: ObjectState) -> float | None:
        """The object is being deleted: deal with the remote side, then release the finalizer.
        Returns when to try again (None: done, or not ours to hold)."""
        if not _holds_finalizer(st.body):
            return None
        done, delay = await self.delete(st)
        if not done:
            return delay
        await self.kube.update_finalizers(PLURALS[st.kind], st.body, _drop_finalizer)
        return None

    async def delete(self, st: ObjectState) -> tuple[bool, float]:
        """One attempt at deleting (or orphaning) the remote side; returns (done, retry delay)."""
        kind = st.kind
        ctx = self._ctx(st)
        try:
            spec: Any = SPECS[kind].model_validate(st.body.get("spec") or {})
        except ValidationError:
            return True, 0.0  # nothing was ever created from an invalid spec
        remote_id, source = id_source(
            getattr(spec, "external_id", None), ctx.status, ctx.annotations
        )
        gw, problem = await self._gateway_for(st, spec)
        if gw is None:
            # Without a connection nothing remote can be reached: let go rather than wedge the
            # namespace's deletion, and say so.
            self.post_event(
                st.body,
                Event("Warning", "NoConnection", f"deleted nothing remote: {problem}"),
            )
            return True, 0.0
        st.gw = gw
        cache = gw.cache_for(kind)
        try:
            if remote_id is None and kind == "BudModel" and spec.deletion_policy.value == "Delete":
                remote_id = await self._created_but_unrecorded(st, ctx, spec)
                source = "status" if remote_id else None
            obs = Observation()
            if remote_id:
                remote = await self._call(
                    f"read {NOUNS[kind]} {remote_id}", cache.observe(remote_id, 0.0)
                )
                obs = Observation(remote, via="id", gone=remote is None)
                if remote is not None and not may_delete(ctx.uid, remote, source):
                    return self._release_foreign(st, source)
            if kind == "BudExecution":
                plan = delete_execution_plan(ctx, spec, obs)
            else:
                plan = delete_plan(
                    ctx,
                    policy=str(spec.deletion_policy.value),
                    remote_id=remote_id,
                    observation=obs,
                    attempt=st.delete_attempts,
                    last_failure=st.delete_failure,
                    noun=NOUNS[kind],
                )
            for action in plan.actions:
                await self._send_delete(st, action)
        except _ActionFailed as err:
            st.delete_attempts += 1
            st.delete_failure = err.failure
            log.warning(
                "%s %s/%s: %s failed: %s",
                kind,
                st.namespace,
                st.name,
                err.doing,
                err.failure.describe(),
            )
            plan = delete_plan(
                ctx,
                policy=str(spec.deletion_policy.value),
                remote_id=remote_id,
                observation=Observation(gone=False),
                attempt=st.delete_attempts,
                last_failure=err.failure,
                noun=NOUNS[kind],
            )
            plan.actions = []
        for event in plan.events:
            self.post_event(st.body, event)
        if plan.done:
            if remote_id:
                cache.forget(remote_id)
            return True, 0.0
        patch = status_patch(ctx.status, plan.status)
        if patch:
            await self.kube.patch_status(PLURALS[kind], st.namespace, st.name, patch)
        return False, plan.requeue_after or 2.0

    def _release_foreign(self, st: ObjectState, source: Source | None) -> tuple[bool, float]:
        """Deleting a resource whose remote object is not its own (an adoption that never
        succeeded, a foreign annotation): release the finalizer, delete nothing remote."""
        why = (
            "the adoption never succeeded"
            if source == "externalId"
            else "it is not managed by this resource"
        )
        self.post_event(
            st.body,
            Event("Normal", "Orphaned", f"deleted nothing remote: {why}"),
        )
        return True, 0.0

    async def _created_but_unrecorded(
        self, st: ObjectState, ctx: Ctx, spec: BudModelSpec
    ) -> str | None:
        """A model this resource created whose id never reached status or the annotation (the
        operator stopped between the create and those writes): found by name and claimed only
        if it carries this resource's UID, so deleting the resource does not leak it."""
        name = default_remote_name(ctx, spec.name)
        found = await self._call(f"look up model {name}", st.gw.find_by_name("BudModel", name))
        if found and (found.get("metadata") or {}).get(IDENTITY_KEY) == ctx.uid:
            return str(found.get("id"))
        return None

    async def _send_delete(self, st: ObjectState, action: Action) -> None:
        c = st.gw.client
        target = action.target_id or ""
        doing = f"{action.op} {NOUNS[st.kind]} {target}"
        call: Any
        if action.op == "cancel":
            call = c.executions.cancel(target, idempotency_key=action.idempotency_key)
        elif st.kind == "BudModel":
            call = c.models.delete(target, idempotency_key=action.idempotency_key)
        elif st.kind == "BudDeployment":
            call = c.deployments.delete(target, idempotency_key=action.idempotency_key)
        else:
            call = c.pipelines.delete(target, idempotency_key=action.idempotency_key)
        try:
            result = await self._call(doing, call)
        except _ActionFailed as err:
            if err.failure.status_code == 404:
                return
            raise
        if result is not None and not isinstance(result, bool):
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                st.gw.cache_for(st.kind).put(to_dict(result))

    # --- writes ---------------------------------------------------------------------------------

    async def _write_status(self, st: ObjectState, ctx: Ctx, status: dict[str, Any]) -> None:
        patch = status_patch(ctx.status, status)
        if patch and await self.kube.patch_status(PLURALS[st.kind], st.namespace, st.name, patch):
            # Keep the local copy current so the next reconcile does not wait for the watch.
            old = st.body.get("status") or {}
            st.body["status"] = status
            st.ready = _ready_of(status)
            # The watch event of this write then finds nothing changed, so wake dependents here
            # (an execution waiting on its pipeline's id or Ready).
            self._wake_dependents(st, old, status)

    async def _apply_writes(self, st: ObjectState, ctx: Ctx, plan: Plan) -> None:
        writes: list[Awaitable[object]] = [self._write_status(st, ctx, plan.status)]
        if plan.annotations:
            writes.append(
                self.kube.patch_annotations(
                    PLURALS[st.kind], st.namespace, st.name, plan.annotations
                )
            )
        # Both land in the same reconcile; they touch different parts of the object.
        await asyncio.gather(*writes)
        for event in plan.events:
            self.post_event(st.body, event)


def _holds_finalizer(body: Mapping[str, Any]) -> bool:
    return FINALIZER in ((body.get("metadata") or {}).get("finalizers") or [])


def _add_finalizer(have: list[str]) -> list[str]:
    return have if FINALIZER in have else [*have, FINALIZER]


def _drop_finalizer(have: list[str]) -> list[str]:
    return [f for f in have if f != FINALIZER]


def _slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without `managedFields`: nothing here reads them, and they are often the
    largest part of an object (kept for thousands of objects, they would dominate memory)."""
    out = dict(body)
    meta = out.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return fn


def _ready_of(status: Mapping[str, Any]) -> str:
    return str((cnd.get(status.get("conditions"), cnd.READY) or {}).get("status", "Unknown"))


__all__ = ["CONNECTION_KINDS", "MANAGED_KINDS", "PLURALS", "TERMINAL", "ObjectState", "Runtime"]
