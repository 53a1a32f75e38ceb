"""The connection kinds' side of the runtime: follow BudConnection / ClusterBudConnection and
namespace events, re-read each connection's Secret, check its key, write its status and hold
its finalizer while resources use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from budai.exceptions import BudAPIError

from .kubeapi import status_patch
from .objects import slim
from .parts import Part, Parts
from .reconcile import conditions as cnd
from .reconcile.connection import (
    ConnectionHealth,
    ConnKey,
    connection_status,
    describe,
    in_use,
    key_failed,
    key_works,
    no_key,
)
from .reconcile.polling import FINALIZER
from .remote import to_failure
from .writes import add_finalizer, drop_finalizer

log = logging.getLogger(__name__)


class ConnectionLoop(Part):
    """Connections: their events, their Secrets, their status."""

    CONNECTION_CHECK_INTERVAL = 300.0
    """The key check (one whoami) per connection when nothing changed: as rare as a stable poll
    (a changed Secret is checked at once, and resources report Unauthorized themselves)."""
    REGISTRY_SETTLE_SECONDS = 15.0
    """After becoming active, the watch needs a moment to list every object: until then a
    connection must not be released as unused."""
    SECRET_CHECK_INTERVAL = 3.0

    def __init__(self, parts: Parts, wake_unauthorized: Callable[[ConnKey], int]) -> None:
        super().__init__(parts)
        self._wake_unauthorized = wake_unauthorized
        self._wake = asyncio.Event()
        self.active_since = time.monotonic()

    def observe_connection(
        self, kind: str, event_type: str | None, body: Mapping[str, Any]
    ) -> None:
        """A BudConnection / ClusterBudConnection changed: resources may now resolve elsewhere
        (or at all), and its status wants a look."""
        self.conns.observe(kind, event_type, slim(body))
        self._wake_connection_users()
        self._wake.set()

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A namespace's labels decide which ClusterBudConnections it may use."""
        if self.conns.observe_namespace(event_type, body):
            namespace = str((body.get("metadata") or {}).get("name"))
            for st in self.objects:
                if st.namespace == namespace:
                    self.scheduler.wake(st.uid)

    def _wake_connection_users(self) -> None:
        # Connections change rarely; waking every object is cheaper than tracking who might
        # resolve differently (each reconcile re-resolves and mostly finds nothing to do).
        for st in self.objects:
            if st.condition(cnd.STALLED).get("status") == "True" or st.conn is None:
                self.scheduler.wake(st.uid)

    async def run(self) -> None:
        """Per connection: re-read its Secret every few seconds (a rotation heals its resources),
        check the key with one authenticated call (whoami) on change and every minute, write
        its status (Ready/Unauthorized, project, users) and hold it while resources use it."""
        checked: dict[ConnKey, float] = {}
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.SECRET_CHECK_INTERVAL)
            self._wake.clear()
            await self.conns.close_retired()
            if not self.scheduler.active:
                continue  # a standby: the leader looks after connections (and holds the registry)
            # Who uses what, resolved from each object's spec now (not from its last reconcile:
            # after a restart a connection must not look unused before its users reconciled).
            users: dict[ConnKey, list[str]] = {}
            for st in self.objects:
                ref = st.spec.get("connectionRef")
                key = self.conns.resolve(st.namespace, ref if isinstance(ref, dict) else None).key
                if key is not None:
                    users.setdefault(key, []).append(f"{st.kind}/{st.namespace}/{st.name}")
            for key in self.conns.connection_keys():
                try:
                    changed = await self.conns.refresh_key(key)
                    if changed:
                        self._wake_unauthorized(key)
                        for st in self.objects:
                            if st.conn == key:
                                self.scheduler.wake(st.uid)
                    due = time.monotonic() - checked.get(key, -math.inf)
                    await self._status(
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

    async def _health(self, key: ConnKey, old: Mapping[str, Any], check: bool) -> ConnectionHealth:
        """The connection's health: its Secret, then (when due) one whoami with its key."""
        gw = self.conns.gateway(key)
        problem = self.conns.problems.get(key)
        if problem or gw is None:
            return no_key(problem)
        if check:
            try:
                who = await gw.client.whoami()
            except BudAPIError as err:
                return key_failed(to_failure(err))
            return key_works(who)
        # Only the users changed since the last check: keep the conditions as they are.
        ready = cnd.get(old.get("conditions"), cnd.READY) or {}
        return ConnectionHealth(
            ready.get("status") == "True",
            str(ready.get("reason") or "Checking"),
            str(ready.get("message") or ""),
            old.get("project"),
            tuple(old.get("scopes") or ()),
        )

    async def _status(self, key: ConnKey, users: list[str], check: bool) -> None:
        body = self.conns.body(key)
        if body is None:
            return
        kind, namespace, name = key
        plural = self.kinds.plural(kind)
        meta = body.get("metadata") or {}
        old = dict(body.get("status") or {})
        deleting = bool(meta.get("deletionTimestamp"))
        if not deleting and FINALIZER not in (meta.get("finalizers") or []):
            updated = await self.kube.update_finalizers(plural, body, add_finalizer)
            if updated is not None:
                self.conns.observe(kind, "MODIFIED", updated)
                body = updated
        settled = time.monotonic() - self.active_since > self.REGISTRY_SETTLE_SECONDS
        if deleting and not users and settled and FINALIZER in (meta.get("finalizers") or []):
            await self.kube.update_finalizers(plural, body, drop_finalizer)
            return
        health = await self._health(key, old, check)
        if deleting and users:
            health = in_use(health, users)
        generation = int(meta.get("generation") or 1)
        status = connection_status(old, health, users, generation, datetime.now(UTC))
        patch = status_patch(old, status)
        if patch and await self.kube.patch_status(plural, namespace, name, patch):
            body = {**body, "status": status}
            self.conns.observe(kind, "MODIFIED", body)
