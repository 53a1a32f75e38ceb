"""``client.models``: register, list, inspect, rename and delete models."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from .._base_client import compact, path_segment
from ..types import AsyncPaginator, Model, ModelSource, ModelStatus, SyncPage
from ._base import (
    AsyncAPIResource,
    Headers,
    SyncAPIResource,
    parser,
    to_async_response,
    to_response,
)

__all__ = ["AsyncModels", "Models"]

_model = parser(Model)


class Models(SyncAPIResource):
    """Models registered with the platform."""

    @cached_property
    def with_response(self) -> ModelsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return ModelsWithResponse(self)

    def create(
        self,
        *,
        name: str,
        source: ModelSource,
        uri: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Model:
        """Register a model; it starts ``downloading`` and becomes ``available``."""
        body = compact({"name": name, "source": source, "uri": uri, "metadata": metadata})
        return self._client._request(
            "POST", "/models", _model, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def get(self, model_id: str, *, extra_headers: Headers | None = None) -> Model:
        """One model by id."""
        return self._client._request(
            "GET", f"/models/{path_segment(model_id, 'model_id')}", _model,
            extra_headers=extra_headers,
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
    ) -> SyncPage[Model]:
        """Models matching the filters; iterating the page walks every following page."""
        query = compact(
            {"name": name, "status": status, "source": source, "limit": limit, "after": after}
        )
        return self._client._request_page("/models", _model, query, extra_headers)

    def update(
        self,
        model_id: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Model:
        """Rename a model or replace its metadata (``None`` leaves a field unchanged)."""
        return self._client._request(
            "PATCH", f"/models/{path_segment(model_id, 'model_id')}", _model,
            body=compact({"name": name, "metadata": metadata}),
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def delete(
        self,
        model_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Model:
        """Start deleting a model: returns it with status ``deleting``; 404 once it is gone."""
        return self._client._request(
            "DELETE", f"/models/{path_segment(model_id, 'model_id')}", _model,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )


class AsyncModels(AsyncAPIResource):
    """Models registered with the platform."""

    @cached_property
    def with_response(self) -> AsyncModelsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncModelsWithResponse(self)

    async def create(
        self,
        *,
        name: str,
        source: ModelSource,
        uri: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Model:
        """Register a model; it starts ``downloading`` and becomes ``available``."""
        body = compact({"name": name, "source": source, "uri": uri, "metadata": metadata})
        return await self._client._request(
            "POST", "/models", _model, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def get(self, model_id: str, *, extra_headers: Headers | None = None) -> Model:
        """One model by id."""
        return await self._client._request(
            "GET", f"/models/{path_segment(model_id, 'model_id')}", _model,
            extra_headers=extra_headers,
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
    ) -> AsyncPaginator[Model]:
        """Models matching the filters: ``async for`` walks every page; ``await`` gives the
        first."""
        query = compact(
            {"name": name, "status": status, "source": source, "limit": limit, "after": after}
        )
        return self._client._paginator("/models", _model, query, extra_headers)

    async def update(
        self,
        model_id: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Model:
        """Rename a model or replace its metadata (``None`` leaves a field unchanged)."""
        return await self._client._request(
            "PATCH", f"/models/{path_segment(model_id, 'model_id')}", _model,
            body=compact({"name": name, "metadata": metadata}),
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def delete(
        self,
        model_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Model:
        """Start deleting a model: returns it with status ``deleting``; 404 once it is gone."""
        return await self._client._request(
            "DELETE", f"/models/{path_segment(model_id, 'model_id')}", _model,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )


class ModelsWithResponse:
    def __init__(self, models: Models) -> None:
        self.create = to_response(models.create)
        self.get = to_response(models.get)
        self.list = to_response(models.list)
        self.update = to_response(models.update)
        self.delete = to_response(models.delete)


class AsyncModelsWithResponse:
    def __init__(self, models: AsyncModels) -> None:
        self.create = to_async_response(models.create)
        self.get = to_async_response(models.get)
        self.list = to_async_response(models.list)
        self.update = to_async_response(models.update)
        self.delete = to_async_response(models.delete)

