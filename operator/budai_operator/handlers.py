"""Thin kopf adapters: every handler hands the object to `budai_operator.runtime.Runtime`.

Per kind: an event handler (records the latest body, wakes the object on relevant changes), a
daemon (the object's level-based reconcile loop) and a deletion handler (the finalizer
`bud.studio/finalizer`). `budai_operator.cli` imports this module to register them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import kopf

from .kubeapi import KubeApi
from .metrics import register_objects
from .models import GROUP, VERSION
from .reconcile.common import Event
from .reconcile.polling import FINALIZER
from .remote import Gateway
from .runtime import PLURALS, Runtime
from .settings import OperatorSettings

log = logging.getLogger(__name__)


def _post_event(body: Mapping[str, Any], event: Event) -> None:
    # kopf queues Events and posts them in the background, with its own retries.
    kopf.event(
        cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message[:1024]
    )


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime: Runtime = memo["runtime"]
    return runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf and build the shared runtime."""
    op: OperatorSettings = memo["settings"]
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="bud.studio")
    # kopf's diffbase is only for on.update/on.field diffs, which we do not use (the daemons are
    # level-based). Storing the spec there copies it into an annotation, and a spec above the
    # 256 KiB annotation limit would make every kopf patch fail (no status, no finalizer release).
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
    runtime = Runtime(op, Gateway(op), kube, _post_event)
    memo["runtime"] = runtime
    if not memo.get("objects_registered"):
        register_objects(runtime.object_counts)
        memo["objects_registered"] = True
    if op.peering:
        await kube.ensure_peering(op.peering, op.namespaces)
    runtime.start_background()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop background refreshes and close connection pools."""
    runtime = memo.get("runtime")
    if isinstance(runtime, Runtime):
        await runtime.stop_background()
        await runtime.gw.aclose()
        await runtime.kube.aclose()


@kopf.on.probe(id="gateway_seconds_since_success")
async def gateway_probe(memo: kopf.Memo, **_: Any) -> float | None:
    """Seconds since the gateway last answered (reported, never failing the probe)."""
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime) or not runtime.gw.last_success:
        return None
    return round(time.monotonic() - runtime.gw.last_success, 1)


def _register(kind: str) -> None:
    plural = PLURALS[kind]

    @kopf.on.event(GROUP, VERSION, plural, id=f"{kind}-event")
    async def on_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        # Async on purpose: kopf runs sync handlers in threads, and the registry and its
        # asyncio.Events belong to the event loop.
        runtime = memo.get("runtime")
        if isinstance(runtime, Runtime):
            runtime.observe_event(kind, event.get("type"), event.get("object") or {})

    @kopf.daemon(
        GROUP, VERSION, plural, id=f"{kind}-reconcile", backoff=5.0, cancellation_timeout=10.0
    )
    async def reconcile_loop(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await _runtime(memo).run_object(kind, body)

    @kopf.on.delete(GROUP, VERSION, plural, id=f"{kind}-finalize", retries=None)
    async def finalize(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        # Most remote deletions finish in seconds: wait here a little instead of logging a
        # "failed temporarily" per poll. kopf holds this object's events meanwhile, so the wait
        # stays short and a spec change (deletionPolicy: Orphan) is seen on the next attempt.
        deadline = time.monotonic() + 10.0
        while True:
            done, delay = await _runtime(memo).delete(kind, body)
            if done:
                return
            if time.monotonic() + delay > deadline:
                raise kopf.TemporaryError(f"waiting for the remote {kind} to go", delay=delay)
            await asyncio.sleep(delay)


for _kind in PLURALS:
    _register(_kind)
