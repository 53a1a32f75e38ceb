"""One reconcile of one object: gather what the pure decision needs (through the object's kind
adapter), apply the plan's remote writes, write status, annotations and Events.

Kind-specific behaviour comes from `budai_operator.kinds`; this module names no kind.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from .kinds.base import KindAdapter, Turn
from .metrics import RECONCILE_SECONDS, RECONCILES
from .objects import ObjectState
from .parts import Part
from .reconcile import conditions as cnd
from .reconcile.common import (
    Action,
    Ctx,
    Event,
    Observation,
    Plan,
    default_remote_name,
    error_plan,
    initial_status,
    paused_plan,
    stalled_plan,
)
from .reconcile.connection import describe, keep_pinned
from .reconcile.errors import ErrorClass, Failure, classify
from .reconcile.model import IDENTITY_KEY
from .reconcile.ownership import id_source, judge
from .remote import ActionFailed, GatewayLink, Remote, call, to_dict

log = logging.getLogger(__name__)


class Reconciler(Part):
    """Reconciles objects of every registered kind."""

    INITIAL_STATUS_AFTER = 1.0

    def ctx(self, st: ObjectState) -> Ctx:
        meta = st.body.get("metadata") or {}
        return Ctx(
            kind=st.kind,
            name=st.name,
            namespace=st.namespace,
            uid=st.uid,
            generation=int(meta.get("generation") or 1),
            annotations=dict(meta.get("annotations") or {}),
            status=dict(st.status),
            now=datetime.now(UTC),
            jitter=random.random(),
            in_flight_interval=self.settings.in_flight_interval,
            stable_interval=self.settings.stable_interval,
            status_model=self.kinds[st.kind].definition.status,
        )

    def turn(self, st: ObjectState, ctx: Ctx) -> Turn:
        return Turn(st, ctx, self.objects, self.settings)

    async def gateway_for(self, st: ObjectState, spec: Any) -> tuple[GatewayLink | None, str]:
        """The gateway client of this resource's connection, or why there is none."""
        ref = getattr(spec, "connection_ref", None)
        wire = ref.to_wire() if ref is not None else None
        found = self.conns.resolve(st.namespace, wire)
        status = st.status
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

    async def reconcile(self, st: ObjectState) -> float | None:
        """One reconcile of one object; returns when to look again (None: on change only)."""
        started = time.monotonic()
        if not await self.writes.ensure_finalizer(st):
            return None
        adapter = self.kinds[st.kind]
        ctx = self.ctx(st)
        st.handled_generation = ctx.generation
        st.handled_steering = st.steering
        result = "success"
        gw: GatewayLink | None = None
        try:
            spec = adapter.spec_model.model_validate(st.spec)
        except ValidationError as err:
            plan = stalled_plan(ctx, "InvalidSpec", f"spec is invalid: {err}")
            result = "stalled"
        else:
            gw, problem = await self.gateway_for(st, spec)
        if gw is None and result != "stalled":
            plan = self._refused(ctx, ("NoConnection", problem))
            result = "stalled"
        elif gw is not None:
            st.gw = gw
            first = initial_status(ctx)
            task = asyncio.ensure_future(self._plan(adapter, st, ctx, spec))
            if first is not None:
                # Ready=False/Initializing must show from the first moment, but a reconcile that
                # finishes at once writes its own status: one write instead of two per new object.
                try:
                    done, _ = await asyncio.wait({task}, timeout=self.INITIAL_STATUS_AFTER)
                    if not done:
                        await self.writes.status(st, ctx, first)
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
            except ActionFailed as err:
                plan = self._failed(st, ctx, err.failure, err.doing, err.creating)
                result = "error"
        if gw is not None and st.conn is not None and plan.status.get("id"):
            # Pin the connection the remote object lives behind (see keep_pinned).
            plan.status["connection"] = describe(st.conn)
        await self.writes.plan(st, ctx, plan)
        RECONCILES.labels(st.kind, result).inc()
        RECONCILE_SECONDS.labels(st.kind).observe(time.monotonic() - started)
        return plan.requeue_after

    async def decide(self, st: ObjectState, ctx: Ctx, spec: Any, obs: Observation) -> Plan:
        """The kind's decision on what was observed."""
        return await self.kinds[st.kind].decide(self.turn(st, ctx), spec, obs)

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

    def _refused(self, ctx: Ctx, refused: tuple[str, str]) -> Plan:
        """Stalled on an object that is not ours; re-checked slowly (it may be released)."""
        reason, message = refused
        previous = cnd.get(ctx.status.get("conditions"), cnd.STALLED) or {}
        fresh = previous.get("status") != "True" or previous.get("reason") != reason
        plan = stalled_plan(ctx, reason, message, event=fresh)
        plan.requeue_after = ctx.poll(False)
        return plan

    async def _observe(
        self, adapter: KindAdapter, st: ObjectState, ctx: Ctx, spec: Any
    ) -> Observation:
        noun = adapter.noun
        known, source = id_source(getattr(spec, "external_id", None), ctx.status, ctx.annotations)
        if known and source:
            remote = await call(
                f"read {noun} {known}",
                adapter.cache(st.gw).observe(known, self.turn(st, ctx).max_age()),
            )
            if remote is None:
                st.remote_id = known
                return Observation(None, via="id", gone=True, gone_id=known)
            verdict = judge(
                ctx.uid, remote, source, noun, default_remote_name(ctx, getattr(spec, "name", None))
            )
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

    async def _check_reference(
        self, adapter: KindAdapter, st: ObjectState, ctx: Ctx, spec: Any, obs: Observation
    ) -> Observation:
        """A remote id the spec names directly (`spec.modelId`, `spec.pipelineId`) may name only
        objects not managed from another namespace: with a key shared by several namespaces, an
        id alone must not reach another team's model or pipeline (with a key per project the
        gateway already answers 404)."""
        ref = adapter.ref
        direct = adapter.direct_ref(spec, obs)
        if ref is None or direct is None:
            return obs
        target_kind = self.kinds[ref.kind]
        noun = target_kind.noun
        target = await call(
            f"read {noun} {direct}",
            target_kind.cache(st.gw).observe(direct, self.turn(st, ctx).max_age()),
        )
        if target is None:
            return obs  # the create answers 404 and the decision says so
        marker = (target.get("metadata") or {}).get(IDENTITY_KEY)
        owner = self.objects.get(str(marker)) if marker else None
        if marker and marker != ctx.uid and (owner is None or owner.namespace != st.namespace):
            return Observation(
                refused=(
                    "OwnedElsewhere",
                    f"spec.{ref.id_field} names a {noun} managed from another namespace; refer "
                    f"to a {noun} of this namespace",
                )
            )
        return obs

    async def _plan(self, adapter: KindAdapter, st: ObjectState, ctx: Ctx, spec: Any) -> Plan:
        if ctx.paused:
            return paused_plan(ctx)
        obs = await self._observe(adapter, st, ctx, spec)
        if obs.refused is None:
            obs = await self._check_reference(adapter, st, ctx, spec, obs)
        if obs.refused is not None:
            return self._refused(ctx, obs.refused)
        plan = await adapter.decide(self.turn(st, ctx), spec, obs)
        events: list[Event] = []
        annotations: dict[str, str] = {}
        for _ in range(3):
            events.extend(plan.events)
            annotations.update(plan.annotations)
            if not plan.actions:
                break
            after = await self._act(adapter, st, ctx, plan.actions)
            if after is None:
                break
            if after.refused is not None:
                plan = self._refused(ctx, after.refused)
                break
            plan = await adapter.decide(self.turn(st, ctx), spec, after)
        plan.events = events
        plan.annotations = annotations
        return plan

    async def _act(
        self, adapter: KindAdapter, st: ObjectState, ctx: Ctx, actions: list[Action]
    ) -> Observation | None:
        """Apply remote writes in order; the last returned object is the new observation."""
        result: Remote | None = None
        for action in actions:
            if action.message and action.op != "create":
                # Creates are announced once, by the Created/Started event of the next decision.
                self.writes.event(
                    st,
                    Event(
                        "Warning" if action.reason == "DriftCorrected" else "Normal",
                        action.reason or "Updating",
                        action.message,
                    ),
                )
            if action.op == "delete_resource":
                await self.writes.kube.delete(adapter.plural, st.namespace, st.name)
                return None
            try:
                result, replayed = await self._send(adapter, st, action)
            except ActionFailed as err:
                if err.failure.code == "already_exists" and action.op == "create":
                    # Someone (or our own lost response) holds the name: decide on what is there,
                    # and never repeat the holder's id (the error's param) in a message.
                    name = str(action.body.get("name"))
                    found = await call(
                        f"look up {adapter.noun}", st.gw.find_by_name(adapter.api, name)
                    )
                    if found:
                        verdict = judge(ctx.uid, found, "name", adapter.noun, name)
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
            cache = adapter.cache(st.gw)
            if replayed and action.op == "create":
                # The gateway answered from its idempotency record: the object may have been
                # deleted since. Confirm; if it is gone, the next create uses a fresh key.
                rid = str(result.get("id"))
                current = await call(f"read {adapter.noun} {rid}", cache.observe(rid, 0.0))
                if current is None:
                    return Observation(None, via="action", gone=True, gone_id=rid)
                result = current
            cache.put(result)
            st.remote_id = str(result.get("id"))
        return Observation(result, via="action") if result is not None else None

    async def _send(
        self, adapter: KindAdapter, st: ObjectState, action: Action
    ) -> tuple[Remote, bool]:
        """One remote write; returns the object and whether a create was answered from the
        gateway's idempotency record (a replay)."""
        doing, pending = adapter.send(st.gw.client, action)
        try:
            answer = await call(doing, pending)
        except ActionFailed as err:
            err.creating = action.op == "create"
            raise
        if action.op == "create":
            replayed = answer.headers.get("idempotent-replayed") == "true"
            return to_dict(answer.data), replayed
        return to_dict(answer), False
