"""Thin kopf adapters: kopf watches, elects one active replica and serves the probes; everything
else is `budai_operator.runtime.Runtime`.

Per kind one event handler records the latest body and wakes the object's reconcile when
something relevant changed. Reconciles run on the runtime's own work queue (a fixed pool of
workers), not as kopf daemons: a daemon per object costs an asyncio task and about 100 KB, which
at thousands of objects was most of the operator's memory. For the same reason the finalizer
`bud.studio/finalizer` is managed by the runtime, not by kopf's deletion handlers.
`budai_operator.cli` imports this module to register the handlers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from . import leadership
from .kinds.registry import REGISTRY
from .kubeapi import KubeApi
from .metrics import register_objects
from .models import GROUP, VERSION
from .reconcile.common import Event
from .remote import GatewayLink
from .runtime import Runtime
from .settings import OperatorSettings

log = logging.getLogger(__name__)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf and build the shared runtime."""
    op: OperatorSettings = memo["settings"]
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="bud.studio")
    # kopf's diffbase is only for on.update/on.field diffs, which we do not use (reconciles are
    # level-based). Should kopf ever store it, the spec must not be copied into an annotation:
    # a spec above the 256 KiB annotation limit would make that patch fail.
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="bud.studio",
        key="last-handled-configuration",
        ignored_fields=["spec", "metadata.annotations"],
    )
    # Our Events carry stable reasons; kopf's own log lines become Events only for warnings.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    kube = await KubeApi.connect()

    def post_event(body: Mapping[str, Any], event: Event) -> None:
        kube.post_event(body, event.type, event.reason, event.message)

    # With --connections-only the operator has no key of its own: connections provide them.
    own = None if op.connections_only or not op.api_key.get_secret_value() else GatewayLink(op)
    runtime = Runtime(op, own, kube, post_event)
    memo["runtime"] = runtime
    if op.peering:
        # With peering kopf starts paused and says "Resuming" once no peer outranks it; a
        # standby that finds a leader at once stays paused without a word.
        runtime.set_active(False)
    leadership.follow(runtime.set_active)
    if not memo.get("objects_registered"):
        register_objects(runtime.object_counts)
        memo["objects_registered"] = True
    if op.peering:
        await kube.ensure_peering(op.peering, op.namespaces)
    if op.default_connection_secret:
        await kube.ensure_default_connection(
            op.gateway_url,
            op.default_connection_secret,
            op.default_connection_secret_key,
            json.loads(op.default_connection_selector),
        )
    runtime.start_background()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop background refreshes and close connection pools."""
    runtime = memo.get("runtime")
    if isinstance(runtime, Runtime):
        await runtime.stop_background()
        await runtime.conns.aclose()
        if runtime.gw is not None:
            await runtime.gw.aclose()
        await runtime.kube.aclose()


@kopf.on.probe(id="gateway_seconds_since_success")
async def gateway_probe(memo: kopf.Memo, **_: Any) -> float | None:
    """Seconds since the gateway last answered (reported, never failing the probe)."""
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        return None
    last = max((gw.last_success for gw in runtime.conns.gateways.values()), default=0.0)
    return round(time.monotonic() - last, 1) if last else None


def _register(kind: str) -> None:
    plural = REGISTRY.plural(kind)

    @kopf.on.event(GROUP, VERSION, plural, id=f"{kind}-event")
    async def on_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        # Async on purpose: kopf runs sync handlers in threads, and the registry and its
        # asyncio.Events belong to the event loop.
        runtime = memo.get("runtime")
        # Events kopf still delivers after deciding to pause would refill what the pause
        # dropped; the re-list on resuming brings every object back fresh.
        if isinstance(runtime, Runtime) and runtime.scheduler.active:
            runtime.observe_event(kind, event.get("type"), event.get("object") or {})


def _register_connection(kind: str) -> None:
    @kopf.on.event(GROUP, VERSION, REGISTRY.plural(kind), id=f"{kind}-event")
    async def on_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        runtime = memo.get("runtime")
        if isinstance(runtime, Runtime) and runtime.scheduler.active:
            runtime.observe_connection(kind, event.get("type"), event.get("object") or {})


@kopf.on.event("", "v1", "namespaces", id="namespace-labels")
async def on_namespace(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """Namespace labels decide which ClusterBudConnections a namespace may use."""
    runtime = memo.get("runtime")
    if isinstance(runtime, Runtime):
        runtime.observe_namespace(event.get("type"), event.get("object") or {})


for _adapter in REGISTRY:
    _register(_adapter.kind)
for _kind in REGISTRY.connections:
    _register_connection(_kind)
