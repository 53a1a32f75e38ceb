"""The few Kubernetes writes the operator makes itself: status and annotation patches (JSON
merge patches) and deleting a finished `BudExecution`. kopf does the watching."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .models import GROUP, VERSION

log = logging.getLogger(__name__)
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

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._objects = client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls) -> KubeApi:
        """In-cluster credentials when running in a pod, else `$KUBECONFIG`."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        return cls(client.ApiClient())

    async def patch_status(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> bool:
        """Merge-patch the status subresource; False when the object is gone."""
        try:
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

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._api.close()
