"""``client.deployments``: serve a model on a cluster, scale, stop, start and delete it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from .._base_client import compact, path_segment
from .._types import NOT_GIVEN, Body, NotGiven, Query, RequestOptions, Timeout
from ..types import AsyncPaginator, AutoScaling, Deployment, DeploymentStatus, Resources, SyncPage
from ._base import (
    AsyncAPIResource,
    Headers,
    SyncAPIResource,
    parser,
    to_async_response,
    to_async_streamed_response,
    to_response,
    to_streamed_response,
)
from ._waiters import DEFAULT_PENDING_TIMEOUT, Poller, deployment_done

__all__ = ["AsyncDeployments", "Deployments"]


async def _async_sleep(seconds: float) -> None:
    import asyncio  # lazily: the sync client shares this module

    await asyncio.sleep(seconds)


_deployment = parser(Deployment)


def _path(deployment_id: str, suffix: str = "") -> str:
    return f"/deployments/{path_segment(deployment_id, 'deployment_id')}{suffix}"


class AsyncDeployments(AsyncAPIResource):
    """Deployments of models on clusters."""

    @cached_property
    def with_response(self) -> AsyncDeploymentsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncDeploymentsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> AsyncDeploymentsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> AsyncDeploymentsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return AsyncDeploymentsWithStreamingResponse(self)

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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
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
            "POST",
            "/deployments",
            _deployment,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def get(
        self,
        deployment_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """One deployment by id."""
        return await self._client._request(
            "GET",
            _path(deployment_id),
            _deployment,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncPaginator[Deployment]:
        """Deployments matching the filters (``async for`` walks every page)."""
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
        return self._client._paginator(
            "/deployments",
            _deployment,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
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
            "PATCH",
            _path(deployment_id),
            _deployment,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def scale(
        self,
        deployment_id: str,
        replicas: int,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Set the desired replica count (the deployment passes through ``scaling``)."""
        return await self.update(
            deployment_id,
            replicas=replicas,
            idempotency_key=idempotency_key,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeout=timeout,
        )

    async def stop(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Stop serving (status ``stopped``); the deployment and its settings are kept."""
        return await self._client._request(
            "POST",
            _path(deployment_id, "/stop"),
            _deployment,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def start(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Start a stopped deployment again."""
        return await self._client._request(
            "POST",
            _path(deployment_id, "/start"),
            _deployment,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def delete(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Start tearing a deployment down; 404 once it is gone."""
        return await self._client._request(
            "DELETE",
            _path(deployment_id),
            _deployment,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def wait_until_active(
        self,
        deployment_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[Deployment], object] | None = None,
        poll_interval: float | None = None,
        pending_timeout: float = DEFAULT_PENDING_TIMEOUT,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Poll until the deployment is ``active`` with every replica ready, and return it.

        Args:
            timeout: deadline of the whole wait in seconds (default 600).
            on_update: called with every state fetched (a progress display).
            poll_interval: a fixed interval instead of 0.5 s growing to 5 s.
            pending_timeout: give up when it stays ``pending`` with a reason this long.

        Raises:
            budai.exceptions.WaitError: it ended ``failed`` or ``stopped``, or it stayed
                ``pending`` (the message has the gateway's reason, e.g. too little CPU).
            budai.exceptions.TimeoutError: the deadline passed; ``.obj`` is the last state.
        """
        poller = Poller(f"deployment {deployment_id}", timeout, poll_interval)
        options = RequestOptions(extra_headers, extra_query, None, request_timeout)
        while True:
            dep = await self._client._request(
                "GET", _path(deployment_id), _deployment, options=options
            )
            if on_update is not None:
                on_update(dep)
            if deployment_done(dep, poller, pending_timeout):
                return dep
            await _async_sleep(poller.next_sleep(dep))


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
        self.wait_until_active = to_async_response(d.wait_until_active)


class AsyncDeploymentsWithStreamingResponse:
    def __init__(self, d: AsyncDeployments) -> None:
        self.create = to_async_streamed_response(d.create)
        self.get = to_async_streamed_response(d.get)
        self.list = to_async_streamed_response(d.list)
        self.update = to_async_streamed_response(d.update)
        self.scale = to_async_streamed_response(d.scale)
        self.stop = to_async_streamed_response(d.stop)
        self.start = to_async_streamed_response(d.start)
        self.delete = to_async_streamed_response(d.delete)
        self.wait_until_active = to_async_streamed_response(d.wait_until_active)


# --- generated by hack/unasync.py from the async classes above; do not edit below ---


class Deployments(SyncAPIResource):
    """Deployments of models on clusters."""

    @cached_property
    def with_response(self) -> DeploymentsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return DeploymentsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> DeploymentsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> DeploymentsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return DeploymentsWithStreamingResponse(self)

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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
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
            "POST",
            "/deployments",
            _deployment,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def get(
        self,
        deployment_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """One deployment by id."""
        return self._client._request(
            "GET",
            _path(deployment_id),
            _deployment,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> SyncPage[Deployment]:
        """Deployments matching the filters (``for`` walks every page)."""
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
        return self._client._request_page(
            "/deployments",
            _deployment,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
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
            "PATCH",
            _path(deployment_id),
            _deployment,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def scale(
        self,
        deployment_id: str,
        replicas: int,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Set the desired replica count (the deployment passes through ``scaling``)."""
        return self.update(
            deployment_id,
            replicas=replicas,
            idempotency_key=idempotency_key,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeout=timeout,
        )

    def stop(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Stop serving (status ``stopped``); the deployment and its settings are kept."""
        return self._client._request(
            "POST",
            _path(deployment_id, "/stop"),
            _deployment,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def start(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Start a stopped deployment again."""
        return self._client._request(
            "POST",
            _path(deployment_id, "/start"),
            _deployment,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def delete(
        self,
        deployment_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Start tearing a deployment down; 404 once it is gone."""
        return self._client._request(
            "DELETE",
            _path(deployment_id),
            _deployment,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def wait_until_active(
        self,
        deployment_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[Deployment], object] | None = None,
        poll_interval: float | None = None,
        pending_timeout: float = DEFAULT_PENDING_TIMEOUT,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Deployment:
        """Poll until the deployment is ``active`` with every replica ready, and return it.

        Args:
            timeout: deadline of the whole wait in seconds (default 600).
            on_update: called with every state fetched (a progress display).
            poll_interval: a fixed interval instead of 0.5 s growing to 5 s.
            pending_timeout: give up when it stays ``pending`` with a reason this long.

        Raises:
            budai.exceptions.WaitError: it ended ``failed`` or ``stopped``, or it stayed
                ``pending`` (the message has the gateway's reason, e.g. too little CPU).
            budai.exceptions.TimeoutError: the deadline passed; ``.obj`` is the last state.
        """
        poller = Poller(f"deployment {deployment_id}", timeout, poll_interval)
        options = RequestOptions(extra_headers, extra_query, None, request_timeout)
        while True:
            dep = self._client._request("GET", _path(deployment_id), _deployment, options=options)
            if on_update is not None:
                on_update(dep)
            if deployment_done(dep, poller, pending_timeout):
                return dep
            time.sleep(poller.next_sleep(dep))


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
        self.wait_until_active = to_response(d.wait_until_active)


class DeploymentsWithStreamingResponse:
    def __init__(self, d: Deployments) -> None:
        self.create = to_streamed_response(d.create)
        self.get = to_streamed_response(d.get)
        self.list = to_streamed_response(d.list)
        self.update = to_streamed_response(d.update)
        self.scale = to_streamed_response(d.scale)
        self.stop = to_streamed_response(d.stop)
        self.start = to_streamed_response(d.start)
        self.delete = to_streamed_response(d.delete)
        self.wait_until_active = to_streamed_response(d.wait_until_active)
