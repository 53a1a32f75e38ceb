"""``client.models``: register, list, inspect, rename and delete models."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from .._base_client import compact, path_segment
from .._types import NOT_GIVEN, Body, NotGiven, Query, RequestOptions, Timeout
from ..types import AsyncPaginator, Model, ModelSource, ModelStatus, SyncPage
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
from ._waiters import Poller, model_done

__all__ = ["AsyncModels", "Models"]


async def _async_sleep(seconds: float) -> None:
    import asyncio  # lazily: the sync client shares this module

    await asyncio.sleep(seconds)


_model = parser(Model)


class AsyncModels(AsyncAPIResource):
    """Models registered with the platform."""

    @cached_property
    def with_response(self) -> AsyncModelsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncModelsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> AsyncModelsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> AsyncModelsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return AsyncModelsWithStreamingResponse(self)

    async def create(
        self,
        *,
        name: str,
        source: ModelSource,
        uri: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Register a model; it starts ``downloading`` and becomes ``available``."""
        body = compact({"name": name, "source": source, "uri": uri, "metadata": metadata})
        return await self._client._request(
            "POST",
            "/models",
            _model,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def get(
        self,
        model_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """One model by id."""
        return await self._client._request(
            "GET",
            f"/models/{path_segment(model_id, 'model_id')}",
            _model,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def list(
        self,
        *,
        name: str | None = None,
        status: ModelStatus | None = None,
        source: ModelSource | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncPaginator[Model]:
        """Models matching the filters (``async for`` walks every page)."""
        query = compact(
            {"name": name, "status": status, "source": source, "limit": limit, "after": after}
        )
        return self._client._paginator(
            "/models",
            _model,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def update(
        self,
        model_id: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Rename a model or replace its metadata (``None`` leaves a field unchanged)."""
        return await self._client._request(
            "PATCH",
            f"/models/{path_segment(model_id, 'model_id')}",
            _model,
            body=compact({"name": name, "metadata": metadata}),
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def delete(
        self,
        model_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Start deleting a model: returns it with status ``deleting``; 404 once it is gone."""
        return await self._client._request(
            "DELETE",
            f"/models/{path_segment(model_id, 'model_id')}",
            _model,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def wait_until_available(
        self,
        model_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[Model], object] | None = None,
        poll_interval: float | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Poll until the model is ``available`` (downloaded), and return it.

        Args:
            timeout: deadline of the whole wait in seconds (default 600).
            on_update: called with every state fetched (``progress_percent`` for a bar).
            poll_interval: a fixed interval instead of 0.5 s growing to 5 s.

        Raises:
            budai.exceptions.WaitError: the model ended in ``error`` (the message has the
                gateway's reason) or is being deleted.
            budai.exceptions.TimeoutError: the deadline passed; ``.obj`` is the last state.
        """
        poller = Poller(f"model {model_id}", timeout, poll_interval)
        options = RequestOptions(extra_headers, extra_query, None, request_timeout)
        path = f"/models/{path_segment(model_id, 'model_id')}"
        while True:
            model = await self._client._request("GET", path, _model, options=options)
            if on_update is not None:
                on_update(model)
            if model_done(model, poller):
                return model
            await _async_sleep(poller.next_sleep(model))


class AsyncModelsWithResponse:
    def __init__(self, models: AsyncModels) -> None:
        self.create = to_async_response(models.create)
        self.get = to_async_response(models.get)
        self.list = to_async_response(models.list)
        self.update = to_async_response(models.update)
        self.delete = to_async_response(models.delete)
        self.wait_until_available = to_async_response(models.wait_until_available)


class AsyncModelsWithStreamingResponse:
    def __init__(self, models: AsyncModels) -> None:
        self.create = to_async_streamed_response(models.create)
        self.get = to_async_streamed_response(models.get)
        self.list = to_async_streamed_response(models.list)
        self.update = to_async_streamed_response(models.update)
        self.delete = to_async_streamed_response(models.delete)
        self.wait_until_available = to_async_streamed_response(models.wait_until_available)


# --- generated by hack/unasync.py from the async classes above; do not edit below ---


class Models(SyncAPIResource):
    """Models registered with the platform."""

    @cached_property
    def with_response(self) -> ModelsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return ModelsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> ModelsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> ModelsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return ModelsWithStreamingResponse(self)

    def create(
        self,
        *,
        name: str,
        source: ModelSource,
        uri: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Register a model; it starts ``downloading`` and becomes ``available``."""
        body = compact({"name": name, "source": source, "uri": uri, "metadata": metadata})
        return self._client._request(
            "POST",
            "/models",
            _model,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def get(
        self,
        model_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """One model by id."""
        return self._client._request(
            "GET",
            f"/models/{path_segment(model_id, 'model_id')}",
            _model,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def list(
        self,
        *,
        name: str | None = None,
        status: ModelStatus | None = None,
        source: ModelSource | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> SyncPage[Model]:
        """Models matching the filters (``for`` walks every page)."""
        query = compact(
            {"name": name, "status": status, "source": source, "limit": limit, "after": after}
        )
        return self._client._request_page(
            "/models",
            _model,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def update(
        self,
        model_id: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Rename a model or replace its metadata (``None`` leaves a field unchanged)."""
        return self._client._request(
            "PATCH",
            f"/models/{path_segment(model_id, 'model_id')}",
            _model,
            body=compact({"name": name, "metadata": metadata}),
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def delete(
        self,
        model_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Start deleting a model: returns it with status ``deleting``; 404 once it is gone."""
        return self._client._request(
            "DELETE",
            f"/models/{path_segment(model_id, 'model_id')}",
            _model,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def wait_until_available(
        self,
        model_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[Model], object] | None = None,
        poll_interval: float | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Model:
        """Poll until the model is ``available`` (downloaded), and return it.

        Args:
            timeout: deadline of the whole wait in seconds (default 600).
            on_update: called with every state fetched (``progress_percent`` for a bar).
            poll_interval: a fixed interval instead of 0.5 s growing to 5 s.

        Raises:
            budai.exceptions.WaitError: the model ended in ``error`` (the message has the
                gateway's reason) or is being deleted.
            budai.exceptions.TimeoutError: the deadline passed; ``.obj`` is the last state.
        """
        poller = Poller(f"model {model_id}", timeout, poll_interval)
        options = RequestOptions(extra_headers, extra_query, None, request_timeout)
        path = f"/models/{path_segment(model_id, 'model_id')}"
        while True:
            model = self._client._request("GET", path, _model, options=options)
            if on_update is not None:
                on_update(model)
            if model_done(model, poller):
                return model
            time.sleep(poller.next_sleep(model))


class ModelsWithResponse:
    def __init__(self, models: Models) -> None:
        self.create = to_response(models.create)
        self.get = to_response(models.get)
        self.list = to_response(models.list)
        self.update = to_response(models.update)
        self.delete = to_response(models.delete)
        self.wait_until_available = to_response(models.wait_until_available)


class ModelsWithStreamingResponse:
    def __init__(self, models: Models) -> None:
        self.create = to_streamed_response(models.create)
        self.get = to_streamed_response(models.get)
        self.list = to_streamed_response(models.list)
        self.update = to_streamed_response(models.update)
        self.delete = to_streamed_response(models.delete)
        self.wait_until_available = to_streamed_response(models.wait_until_available)
