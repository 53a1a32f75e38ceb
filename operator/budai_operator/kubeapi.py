"""The Kubernetes calls the operator makes itself: status, annotation and finalizer patches (JSON
merge patches), Events, and deleting a finished `BudExecution`. kopf does the watching."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .models import CLUSTER_BUD_CONNECTION, GROUP, VERSION

log = logging.getLogger(__name__)
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
MERGE_PATCH = "application/merge-patch+json"
# Custom resources take no strategic merge patch, which the client would pick for a dict body.
_AS_MERGE: dict[str, Any] = {"_content_type": MERGE_PATCH}


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `old` into `new` (removed keys become null; lists replace)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = status_patch(before, value)
            if inner:
                patch[key] = inner
        elif before != value:
            patch[key] = value
    return patch


class KubeApi:
    """A kubernetes_asyncio client for the custom resources of `bud.studio`."""

    EVENT_COMPONENT = "bud-operator"

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._objects = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._events: asyncio.Queue[dict[str, Any]] | None = None
        self._poster: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls) -> KubeApi:
        """In-cluster credentials when running in a pod, else `$KUBECONFIG`."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        api = client.ApiClient()
        if not any(os.environ.get(v) for v in PROXY_VARIABLES):
            # The client's aiohttp session trusts the environment: every request then looks up
            # proxies and ~/.netrc in a worker thread, a fifth of the operator's CPU under load.
            # Nothing there applies without a proxy variable (kubeconfig carries its own proxy).
            session = api.rest_client.pool_manager
            if hasattr(session, "_trust_env"):
                session._trust_env = False
        return cls(api)

    async def patch_status(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> bool:
        """Merge-patch the status subresource; False when the object is gone. An empty
        `namespace` means a cluster-scoped object (a ClusterBudConnection)."""
        try:
            if not namespace:
                await self._objects.patch_cluster_custom_object_status(
                    GROUP, VERSION, plural, name, {"status": dict(patch)}, **_AS_MERGE
                )
                return True
            await self._objects.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": dict(patch)},
                **_AS_MERGE,
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    async def patch_annotations(
        self, plural: str, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> bool:
        """Merge-patch annotations; False when the object is gone."""
        try:
            await self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"metadata": {"annotations": dict(annotations)}},
                **_AS_MERGE,
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as the API server has it now; None when it is gone."""
        try:
            obj: dict[str, Any] = (
                await self._objects.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name
                )
                if namespace
                else await self._objects.get_cluster_custom_object(GROUP, VERSION, plural, name)
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj

    async def update_finalizers(
        self,
        plural: str,
        body: Mapping[str, Any],
        change: Callable[[list[str]], list[str]],
    ) -> dict[str, Any] | None:
        """Apply `change` to the object's finalizers; the new object, or None when it is gone.

        The list is written whole with the object's resourceVersion as a precondition, so a
        finalizer another controller adds meanwhile is never lost: on a conflict the object is
        read again and the change re-applied.
        """
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name"))
        current: Mapping[str, Any] | None = body
        for _ in range(5):
            if current is None:
                return None
            cmeta = current.get("metadata") or {}
            before = list(cmeta.get("finalizers") or [])
            wanted = change(before)
            if wanted == before:
                return dict(current)
            patch: dict[str, Any] = {"finalizers": wanted}
            if cmeta.get("resourceVersion"):
                patch["resourceVersion"] = cmeta["resourceVersion"]
            try:
                obj: dict[str, Any] = (
                    await self._objects.patch_namespaced_custom_object(
                        GROUP, VERSION, namespace, plural, name, {"metadata": patch}, **_AS_MERGE
                    )
                    if namespace
                    else await self._objects.patch_cluster_custom_object(
                        GROUP, VERSION, plural, name, {"metadata": patch}, **_AS_MERGE
                    )
                )
            except ApiException as err:
                if err.status == 404:
                    return None
                if err.status != 409:
                    raise
                current = await self.get(plural, namespace, name)
                continue
            return obj
        raise RuntimeError(f"finalizers of {plural}/{namespace}/{name} kept changing under us")

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None when the Secret or the key is missing. Needs only
        `get` on that Secret (no list or watch). The value is never logged."""
        import base64

        try:
            secret: Any = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as err:
            if err.status in (403, 404):
                return None
            raise
        raw = (secret.data or {}).get(key)
        if raw is None:
            return None
        return base64.b64decode(raw).decode("utf-8").strip() or None

    # --- Events --------------------------------------------------------------------------------

    def post_event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Queue a core/v1 Event about `body`; a background task posts it (never blocking a
        reconcile, and a failed post is logged, not raised)."""
        meta = body.get("metadata") or {}
        if not meta.get("uid"):
            return
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event = {
            # Events about cluster-scoped objects live in "default", as kubectl looks there.
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace") or "default",
            },
            "involvedObject": {
                "apiVersion": body.get("apiVersion") or f"{GROUP}/{VERSION}",
                "kind": body.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.EVENT_COMPONENT},
            "reportingComponent": self.EVENT_COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        if self._events is None:
            self._events = asyncio.Queue()
            self._poster = asyncio.create_task(self._post_events(self._events), name="events")
        self._events.put_nowait(event)

    async def _post_events(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            event = await queue.get()
            namespace = event["metadata"]["namespace"]
            status = 0
            try:
                # Raw response: nothing reads the created Event back, and turning it into the
                # client's model classes was most of the cost of posting one.
                resp: Any = await self._core.create_namespaced_event(
                    namespace, cast(Any, event), _preload_content=False
                )
                status = resp.status
                # 403 also comes from a namespace being deleted ("... because it is being
                # terminated"): like 404, nobody will read that Event.
                going = status == 404 or (
                    status == 403 and "being terminated" in await resp.text()
                )
                resp.release()
            except Exception:
                log.exception("cannot post Event %s", event["reason"])
            else:
                if status >= 300 and not going:
                    log.warning(
                        "cannot post Event %s for %s/%s (HTTP %s)",
                        event["reason"],
                        namespace,
                        event["involvedObject"]["name"],
                        status,
                    )
            finally:
                queue.task_done()

    async def flush_events(self, wait: float = 5.0) -> None:
        """Wait (at most `wait` seconds) for queued Events to be posted, before shutting down."""
        if self._events is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._events.join()

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        """Delete a custom resource (the finalizer still runs)."""
        try:
            await self._objects.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as err:
            if err.status != 404:
                raise

    async def ensure_peering(self, name: str, namespaces: tuple[str, ...]) -> None:
        """Create the kopf peering object replicas coordinate through (no-op when it exists).

        Without it kopf's keep-alives land nowhere and two replicas would both be active.
        """
        body: dict[str, Any] = {"apiVersion": "kopf.dev/v1", "metadata": {"name": name}}
        try:
            if namespaces:
                for ns in namespaces:
                    if any(ch in ns for ch in "*?!,"):
                        continue  # a glob: the chart creates these objects instead
                    await self._objects.create_namespaced_custom_object(
                        "kopf.dev", "v1", ns, "kopfpeerings", {**body, "kind": "KopfPeering"}
                    )
            else:
                await self._objects.create_cluster_custom_object(
                    "kopf.dev", "v1", "clusterkopfpeerings", {**body, "kind": "ClusterKopfPeering"}
                )
        except ApiException as err:
            if err.status == 409:
                return
            log.warning("cannot create the kopf peering object %s (HTTP %s)", name, err.status)

    async def ensure_default_connection(
        self, url: str, secret: str, key: str, selector: Mapping[str, Any]
    ) -> None:
        """Keep the ClusterBudConnection `default` the operator was configured with (the chart's
        `gateway.url` and key Secret). One created by someone else is left alone."""
        spec = {
            "url": url,
            "secretRef": {"name": secret, "key": key},
            "namespaceSelector": dict(selector),
        }
        labels = {"app.kubernetes.io/managed-by": "bud-operator"}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": CLUSTER_BUD_CONNECTION.crd.kind,
            "metadata": {"name": "default", "labels": labels},
            "spec": spec,
        }
        try:
            await self._objects.create_cluster_custom_object(
                GROUP, VERSION, CLUSTER_BUD_CONNECTION.crd.plural, body
            )
            return
        except ApiException as err:
            if err.status != 409:
                log.warning("cannot create ClusterBudConnection default (HTTP %s)", err.status)
                return
        current = await self.get(CLUSTER_BUD_CONNECTION.crd.plural, "", "default") or {}
        mine = ((current.get("metadata") or {}).get("labels") or {}).get(
            "app.kubernetes.io/managed-by"
        ) == "bud-operator"
        if mine and current.get("spec") != spec:
            await self._objects.patch_cluster_custom_object(
                GROUP,
                VERSION,
                CLUSTER_BUD_CONNECTION.crd.plural,
                "default",
                {"spec": spec},
                **_AS_MERGE,
            )

    async def aclose(self) -> None:
        """Stop posting Events and close the connection pool."""
        if self._poster is not None:
            self._poster.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poster
            self._poster = None
        await self._api.close()
