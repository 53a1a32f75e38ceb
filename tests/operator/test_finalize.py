"""The runtime's own finalizer against the real local gateway: added before the first create,
released only once the remote side is gone, and a model created but never recorded (the
operator stopped between the create and the status write) is still deleted with its resource.

The Kubernetes side is a recorder (no API server needed for these decisions); the e2e tests in
tests/operator/e2e run the same paths against a real one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from budai import AsyncBudClient
from budai.exceptions import NotFoundError
from budai_gateway.testing import LocalGateway
from budai_operator.reconcile.common import Event
from budai_operator.reconcile.polling import FINALIZER
from budai_operator.remote import GatewayLink
from budai_operator.runtime import Runtime
from budai_operator.settings import OperatorSettings


class RecordingKube:
    """Applies finalizer changes and status patches to one in-memory object."""

    def __init__(self) -> None:
        self.finalizer_writes: list[list[str]] = []
        self.status_patches: list[dict[str, Any]] = []

    async def update_finalizers(
        self, plural: str, body: Mapping[str, Any], change: Callable[[list[str]], list[str]]
    ) -> dict[str, Any]:
        meta = dict(body.get("metadata") or {})
        meta["finalizers"] = change(list(meta.get("finalizers") or []))
        self.finalizer_writes.append(meta["finalizers"])
        return {**body, "metadata": meta}

    async def patch_status(self, plural: str, ns: str, name: str, patch: Any) -> bool:
        self.status_patches.append(dict(patch))
        return True

    async def patch_annotations(self, *_: Any) -> bool:
        return True

    async def flush_events(self) -> None:
        return None


def model_body(uid: str, name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bud.studio/v1alpha1",
        "kind": "BudModel",
        "metadata": {"uid": uid, "namespace": "team-a", "name": name, "generation": 1, **meta},
        "spec": {"source": "cloud", "uri": f"s3://finalize/{name}", "deletionPolicy": "Delete"},
    }


def runtime_for(gateway: LocalGateway) -> tuple[Runtime, RecordingKube, list[Event]]:
    settings = OperatorSettings(gateway_url=gateway.url, api_key=SecretStr(gateway.api_key))
    kube = RecordingKube()
    events: list[Event] = []
    runtime = Runtime(settings, GatewayLink(settings), kube, lambda _b, e: events.append(e))  # type: ignore[arg-type]
    return runtime, kube, events


async def finalize_until_done(runtime: Runtime, uid: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        delay = await runtime.finalize(runtime.objects[uid])
        if delay is None:
            return
        assert time.monotonic() < deadline, "finalize never finished"
        await asyncio.sleep(min(delay, 0.2))


async def assert_released_and_deleted(
    gateway: LocalGateway, kube: RecordingKube, remote_id: str
) -> None:
    """The finalizer is gone and so is the remote model (or it is on its way)."""
    assert kube.finalizer_writes[-1] == []
    async with AsyncBudClient(api_key=gateway.api_key, base_url=gateway.url) as bud:
        try:
            gone = await bud.models.get(remote_id)
        except NotFoundError:
            gone = None
        assert gone is None or gone.status == "deleting"


async def test_finalizer_comes_before_the_create_and_goes_after_the_delete(
    gateway: LocalGateway,
) -> None:
    runtime, kube, events = runtime_for(gateway)
    uid = str(uuid.uuid4())
    name = f"fin-{uid[:8]}"
    try:
        runtime.observe_event("BudModel", "ADDED", model_body(uid, name))
        st = runtime.objects[uid]
        await runtime.reconcile(st)
        assert kube.finalizer_writes == [[FINALIZER]]
        remote_id = kube.status_patches[-1]["id"]
        assert any(e.reason == "Created" for e in events)

        # kubectl delete: the API server sets deletionTimestamp and keeps our finalizer.
        deleting = model_body(
            uid, name, deletionTimestamp="2026-11-27T12:00:00Z", finalizers=[FINALIZER]
        )
        deleting["status"] = {"id": remote_id}
        runtime.observe_event("BudModel", "MODIFIED", deleting)
        await finalize_until_done(runtime, uid)
        await assert_released_and_deleted(gateway, kube, remote_id)
    finally:
        await runtime.gw.aclose()


async def test_a_created_but_unrecorded_model_is_deleted_with_its_resource(
    gateway: LocalGateway,
) -> None:
    runtime, kube, _ = runtime_for(gateway)
    uid, other_uid = str(uuid.uuid4()), str(uuid.uuid4())
    name = f"lost-{uid[:8]}"
    async with AsyncBudClient(api_key=gateway.api_key, base_url=gateway.url) as bud:
        # What the operator created before it was killed: named and marked as this resource's,
        # but its id never reached status or the annotation.
        ours = await bud.models.create(
            name=f"team-a-{name}",
            source="cloud",
            uri=f"s3://finalize/{name}",
            metadata={"bud.studio/uid": uid},
        )
        theirs = await bud.models.create(
            name=f"team-a-{name}-x",
            source="cloud",
            uri=f"s3://finalize/{name}",
            metadata={"bud.studio/uid": other_uid},
        )
        try:
            for body in (
                model_body(
                    uid, name, deletionTimestamp="2026-11-27T12:00:00Z", finalizers=[FINALIZER]
                ),
                # Same name pattern, another resource's model: never touched.
                model_body(
                    other_uid,
                    f"{name}-y",
                    deletionTimestamp="2026-11-27T12:00:00Z",
                    finalizers=[FINALIZER],
                ),
            ):
                runtime.observe_event("BudModel", "MODIFIED", body)
            await finalize_until_done(runtime, uid)
            await finalize_until_done(runtime, other_uid)
            try:
                after = await bud.models.get(ours.id)
            except NotFoundError:
                after = None
            assert after is None or after.status == "deleting", "the unrecorded model leaked"
            assert (await bud.models.get(theirs.id)).status != "deleting"
            assert kube.finalizer_writes == [[], []]  # both resources released
        finally:
            await runtime.gw.aclose()
