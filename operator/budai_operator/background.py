"""The runtime's background refreshes: one list per listed kind per connection, cluster health
for the objects that follow a cluster, the operator's own API key file, and memory trimming.
Each wakes only the objects whose remote side changed."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import random
from collections.abc import Callable

from budai.exceptions import BudAPIError

from .kinds.base import KindAdapter
from .objects import ObjectState
from .parts import Part, Parts
from .reconcile.connection import ConnKey
from .remote import GatewayLink

log = logging.getLogger(__name__)


class Background(Part):
    """The refresh loops; `tasks()` starts them."""

    KEY_CHECK_INTERVAL = 2.0
    PAGE_SPACING = 10.0

    def __init__(self, parts: Parts, own: GatewayLink | None) -> None:
        super().__init__(parts)
        self.own = own

    def tasks(self) -> list[asyncio.Task[None]]:
        """Start every loop."""
        tasks = [
            asyncio.create_task(self._refresh_loop(adapter), name=f"refresh {adapter.kind}")
            for adapter in self.kinds
            if adapter.listed
        ]
        tasks.append(asyncio.create_task(self._cluster_loop(), name="cluster health"))
        tasks.append(asyncio.create_task(self._trim_loop(), name="memory trim"))
        if self.settings.api_key_file and self.own is not None:
            tasks.append(asyncio.create_task(self._key_loop(), name="API key file"))
        return tasks

    async def _key_loop(self) -> None:
        # A fixed Secret must heal Unauthorized resources within one poll, without a restart.
        while True:
            await asyncio.sleep(self.KEY_CHECK_INTERVAL)
            try:
                changed = self.own.reload_key() if self.own is not None else False
            except Exception:
                log.exception("re-reading the API key file failed")
                continue
            if changed:
                self.wake_unauthorized()

    def wake_unauthorized(self, conn: ConnKey | None = None) -> int:
        """Wake every resource Stalled with reason Unauthorized (the key changed), only those
        of connection `conn` when given."""
        woken = 0
        for st in self.objects:
            if conn is not None and st.conn != conn:
                continue
            if st.stalled_on("Unauthorized"):
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

    async def _refresh_loop(self, adapter: KindAdapter) -> None:
        # One list per kind per connection (each connection is its own project and bucket).
        kind = adapter.kind
        while True:
            gateways = list(self.conns.gateways.values())
            pages = sum(max(1, -(-adapter.cache(gw).last_list_size // gw.PAGE)) for gw in gateways)
            # At most one page every PAGE_SPACING seconds over all connections: idle traffic
            # stays flat (about 0.1 request/s per kind) however many objects and connections.
            interval = max(self.settings.refresh_interval, self.PAGE_SPACING * max(1, pages))
            await asyncio.sleep(interval * (0.9 + 0.2 * random.random()))
            for gw in gateways:
                managed = {
                    st.remote_id: st
                    for st in self.objects
                    if st.kind == kind and st.remote_id and st.gw is gw
                }
                if not managed:
                    continue
                try:
                    changed = await adapter.cache(gw).refresh()
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
            in_use: dict[tuple[str, str], tuple[GatewayLink, list[ObjectState]]] = {}
            for st in self.objects:
                if st.gw is None:
                    continue
                cluster_id = self.kinds[st.kind].cluster_of(st)
                if cluster_id:
                    slot = in_use.setdefault((st.gw.label, cluster_id), (st.gw, []))
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


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return fn
