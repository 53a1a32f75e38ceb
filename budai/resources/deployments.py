"""``client.deployments``: serve a model on a cluster, scale, stop, start and delete it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from .._base_client import compact, path_segment
from ..types import AsyncPaginator, AutoScaling, Deployment, DeploymentStatus, Resources, SyncPage
from ._base import (
    AsyncAPIResource,
    Headers,
    SyncAPIResource,
    parser,
    to_async_response,
    to_response,
)

__all__ = ["AsyncDeployments", "Deployments"]

_deployment = parser(Deployment)


def _path(deployment_id: str, suffix: str = "") -> str:
    return f"/deployments/{path_segment(deployment_id, 'deployment_id')}{suffix}"


class Deployments(SyncAPIResource):
    """Deployments of models on clusters."""

    @cached_property
    def with_response(self) -> DeploymentsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return DeploymentsWithResponse(self)

    def create(
        self,
        *,
        model_id: str,
        cluster_id: str,
        name: str | None = None,
        replicas: int | None = None,
        auto_scaling: AutoScaling | None = None,
        resources: Resources | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Deploy a model; the deployment starts ``pending`` (1 replica unless told otherwise)."""
        body = compact(
            {
                "model_id": model_id,
                "cluster_id": cluster_id,
                "name": name,
                "replicas": replicas,
                "auto_scaling": auto_scaling,
                "resources": resources,
                "metadata": metadata,
            }
        )
        return self._client._request(
            "POST", "/deployments", _deployment, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def get(self, deployment_id: str, *, extra_headers: Headers | None = None) -> Deployment:
        """One deployment by id."""
        return self._client._request(
            "GET", _path(deployment_id), _deployment, extra_headers=extra_headers
        )

    def list(
        self,
        *,
        name: str | None = None,
        model_id: str | None = None,
        cluster_id: str | None = None,
        status: DeploymentStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
    ) -> SyncPage[Deployment]:
        """Deployments matching the filters; iterating the page walks every following page."""
        query = compact(
            {
                "name": name,
                "model_id": model_id,
                "cluster_id": cluster_id,
                "status": status,
                "limit": limit,
                "after": after,
            }
        )
        return self._client._request_page("/deployments", _deployment, query, extra_headers)

    def update(
        self,
        deployment_id: str,
        *,
        replicas: int | None = None,
        auto_scaling: AutoScaling | None = None,
        resources: Resources | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Change replicas, autoscaling or resources (``None`` leaves a field unchanged).
        Setting ``replicas`` while autoscaling is enabled raises ``ConflictError``."""
        body = compact(
            {
                "replicas": replicas,
                "auto_scaling": auto_scaling,
                "resources": resources,
                "metadata": metadata,
            }
        )
        return self._client._request(
            "PATCH", _path(deployment_id), _deployment, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def scale(
        self,
        deployment_id: str,
        replicas: int,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Set the desired replica count (the deployment passes through ``scaling``)."""
        return self.update(
            deployment_id, replicas=replicas,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def stop(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Stop serving (status ``stopped``); the deployment and its settings are kept."""
        return self._client._request(
            "POST", _path(deployment_id, "/stop"), _deployment,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def start(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Start a stopped deployment again."""
        return self._client._request(
            "POST", _path(deployment_id, "/start"), _deployment,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def delete(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Start tearing a deployment down; 404 once it is gone."""
        return self._client._request(
            "DELETE", _path(deployment_id), _deployment,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )


class AsyncDeployments(AsyncAPIResource):
    """Deployments of models on clusters."""

    @cached_property
    def with_response(self) -> AsyncDeploymentsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncDeploymentsWithResponse(self)

    async def create(
        self,
        *,
        model_id: str,
        cluster_id: str,
        name: str | None = None,
        replicas: int | None = None,
        auto_scaling: AutoScaling | None = None,
        resources: Resources | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Deploy a model; the deployment starts ``pending`` (1 replica unless told otherwise)."""
        body = compact(
            {
                "model_id": model_id,
                "cluster_id": cluster_id,
                "name": name,
                "replicas": replicas,
                "auto_scaling": auto_scaling,
                "resources": resources,
                "metadata": metadata,
            }
        )
        return await self._client._request(
            "POST", "/deployments", _deployment, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def get(self, deployment_id: str, *, extra_headers: Headers | None = None) -> Deployment:
        """One deployment by id."""
        return await self._client._request(
            "GET", _path(deployment_id), _deployment, extra_headers=extra_headers
        )

    def list(
        self,
        *,
        name: str | None = None,
        model_id: str | None = None,
        cluster_id: str | None = None,
        status: DeploymentStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
    ) -> AsyncPaginator[Deployment]:
        """Deployments matching the filters: ``async for`` walks every page; ``await`` gives the
        first."""
        query = compact(
            {
                "name": name,
                "model_id": model_id,
                "cluster_id": cluster_id,
                "status": status,
                "limit": limit,
                "after": after,
            }
        )
        return self._client._paginator("/deployments", _deployment, query, extra_headers)

    async def update(
        self,
        deployment_id: str,
        *,
        replicas: int | None = None,
        auto_scaling: AutoScaling | None = None,
        resources: Resources | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Change replicas, autoscaling or resources (``None`` leaves a field unchanged).
        Setting ``replicas`` while autoscaling is enabled raises ``ConflictError``."""
        body = compact(
            {
                "replicas": replicas,
                "auto_scaling": auto_scaling,
                "resources": resources,
                "metadata": metadata,
            }
        )
        return await self._client._request(
            "PATCH", _path(deployment_id), _deployment, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def scale(
        self,
        deployment_id: str,
        replicas: int,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Set the desired replica count (the deployment passes through ``scaling``)."""
        return await self.update(
            deployment_id, replicas=replicas,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def stop(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Stop serving (status ``stopped``); the deployment and its settings are kept."""
        return await self._client._request(
            "POST", _path(deployment_id, "/stop"), _deployment,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def start(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Start a stopped deployment again."""
        return await self._client._request(
            "POST", _path(deployment_id, "/start"), _deployment,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def delete(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Deployment:
        """Start tearing a deployment down; 404 once it is gone."""
        return await self._client._request(
            "DELETE", _path(deployment_id), _deployment,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )


class DeploymentsWithResponse:
    def __init__(self, d: Deployments) -> None:
        self.create = to_response(d.create)
        self.get = to_response(d.get)
        self.list = to_response(d.list)
        self.update = to_response(d.update)
        self.scale = to_response(d.scale)
        self.stop = to_response(d.stop)
        self.start = to_response(d.start)
        self.delete = to_response(d.delete)


class AsyncDeploymentsWithResponse:
    def __init__(self, d: AsyncDeployments) -> None:
        self.create = to_async_response(d.create)
        self.get = to_async_response(d.get)
        self.list = to_async_response(d.list)
        self.update = to_async_response(d.update)
        self.scale = to_async_response(d.scale)
        self.stop = to_async_response(d.stop)
        self.start = to_async_response(d.start)
        self.delete = to_async_response(d.delete)
