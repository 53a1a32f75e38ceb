"""``client.pipelines``: store, validate, update and delete pipeline definitions.

``definition`` may be a dict (``PipelineDefinition``) or any object with ``build()`` or
``to_definition()`` returning one, such as the ``budai.dsl`` builder; builders are compiled (and
so checked locally) before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from .._base_client import compact, path_segment
from ..types import AsyncPaginator, Pipeline, PipelineStatus, PipelineValidation, SyncPage
from ..types.pipeline import DefinitionSource
from ._base import (
    AsyncAPIResource,
    Headers,
    SyncAPIResource,
    parser,
    to_async_response,
    to_response,
)

__all__ = ["AsyncPipelines", "Pipelines", "definition_payload"]

_pipeline = parser(Pipeline)
_validation = parser(PipelineValidation)

Definition = DefinitionSource | Mapping[str, Any]
"""A ``PipelineDefinition`` dict, a builder (``build()``/``to_definition()``), or any mapping."""


def definition_payload(definition: Definition) -> dict[str, Any]:
    """The JSON body of a definition, whatever form it was given in."""
    value: Any = definition
    if not isinstance(value, Mapping):
        if callable(getattr(value, "build", None)):
            value = value.build()
        elif callable(getattr(value, "to_definition", None)):
            value = value.to_definition()
        else:
            raise TypeError(
                "definition must be a dict like {'steps': [...]} or an object with build() or "
                f"to_definition(), got {type(definition).__name__}"
            )
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a Pydantic model from a builder
        value = dump(mode="json", exclude_none=True)
    if not isinstance(value, Mapping):
        raise TypeError(f"the definition builder returned {type(value).__name__}, not a mapping")
    payload = dict(value)
    steps = payload.get("steps")
    if isinstance(steps, list | tuple):
        # `Step` allows None for optional keys (depends_on, condition, retry, ...): None means
        # "not set", so it is left out rather than sent as null.
        payload["steps"] = [
            {k: v for k, v in step.items() if v is not None} if isinstance(step, Mapping) else step
            for step in steps
        ]
    return payload


def _deleted(_: Any) -> None:
    return None


ActionList = list[dict[str, Any]]


def _actions(data: Any) -> ActionList:
    items = data.get("data", []) if isinstance(data, dict) else data
    return [dict(item) for item in (items or [])]


class Pipelines(SyncAPIResource):
    """Pipeline definitions."""

    @cached_property
    def with_response(self) -> PipelinesWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return PipelinesWithResponse(self)

    def create(
        self,
        *,
        name: str,
        definition: Definition,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Pipeline:
        """Store a pipeline (status ``active``). An invalid definition raises
        ``ValidationError`` naming the step; an existing name raises ``ConflictError``."""
        body = compact(
            {
                "name": name,
                "description": description,
                "definition": definition_payload(definition),
                "metadata": metadata,
            }
        )
        return self._client._request(
            "POST", "/pipelines", _pipeline, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def get(self, pipeline_id: str, *, extra_headers: Headers | None = None) -> Pipeline:
        """One pipeline by id."""
        return self._client._request(
            "GET", f"/pipelines/{path_segment(pipeline_id, 'pipeline_id')}", _pipeline,
            extra_headers=extra_headers,
        )

    def list(
        self,
        *,
        name: str | None = None,
        status: PipelineStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
    ) -> SyncPage[Pipeline]:
        """Pipelines matching the filters; iterating the page walks every following page."""
        query = compact({"name": name, "status": status, "limit": limit, "after": after})
        return self._client._request_page("/pipelines", _pipeline, query, extra_headers)

    def update(
        self,
        pipeline_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        definition: Definition | None = None,
        status: PipelineStatus | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Pipeline:
        """Change a pipeline (``None`` leaves a field unchanged); ``status="paused"`` stops new
        executions."""
        body = compact(
            {
                "name": name,
                "description": description,
                "definition": None if definition is None else definition_payload(definition),
                "status": status,
                "metadata": metadata,
            }
        )
        return self._client._request(
            "PATCH", f"/pipelines/{path_segment(pipeline_id, 'pipeline_id')}", _pipeline,
            body=body, idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def delete(
        self,
        pipeline_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> None:
        """Delete a pipeline."""
        self._client._request(
            "DELETE", f"/pipelines/{path_segment(pipeline_id, 'pipeline_id')}", _deleted,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def validate(
        self, definition: Definition, *, extra_headers: Headers | None = None
    ) -> PipelineValidation:
        """Check a definition on the server without storing it. Problems come back in
        ``result.errors`` (``param`` + ``message``); they are not raised."""
        return self._client._request(
            "POST", "/pipelines/validate", _validation,
            body={"definition": definition_payload(definition)}, extra_headers=extra_headers,
        )

    def actions(self, *, extra_headers: Headers | None = None) -> ActionList:
        """The action catalogue: each action with its parameters' JSON schema."""
        return self._client._request("GET", "/actions", _actions, extra_headers=extra_headers)


class AsyncPipelines(AsyncAPIResource):
    """Pipeline definitions."""

    @cached_property
    def with_response(self) -> AsyncPipelinesWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncPipelinesWithResponse(self)

    async def create(
        self,
        *,
        name: str,
        definition: Definition,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Pipeline:
        """Store a pipeline (status ``active``). An invalid definition raises
        ``ValidationError`` naming the step; an existing name raises ``ConflictError``."""
        body = compact(
            {
                "name": name,
                "description": description,
                "definition": definition_payload(definition),
                "metadata": metadata,
            }
        )
        return await self._client._request(
            "POST", "/pipelines", _pipeline, body=body,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def get(self, pipeline_id: str, *, extra_headers: Headers | None = None) -> Pipeline:
        """One pipeline by id."""
        return await self._client._request(
            "GET", f"/pipelines/{path_segment(pipeline_id, 'pipeline_id')}", _pipeline,
            extra_headers=extra_headers,
        )

    def list(
        self,
        *,
        name: str | None = None,
        status: PipelineStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
    ) -> AsyncPaginator[Pipeline]:
        """Pipelines matching the filters: ``async for`` walks every page; ``await`` gives the
        first."""
        query = compact({"name": name, "status": status, "limit": limit, "after": after})
        return self._client._paginator("/pipelines", _pipeline, query, extra_headers)

    async def update(
        self,
        pipeline_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        definition: Definition | None = None,
        status: PipelineStatus | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Pipeline:
        """Change a pipeline (``None`` leaves a field unchanged); ``status="paused"`` stops new
        executions."""
        body = compact(
            {
                "name": name,
                "description": description,
                "definition": None if definition is None else definition_payload(definition),
                "status": status,
                "metadata": metadata,
            }
        )
        return await self._client._request(
            "PATCH", f"/pipelines/{path_segment(pipeline_id, 'pipeline_id')}", _pipeline,
            body=body, idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def delete(
        self,
        pipeline_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> None:
        """Delete a pipeline."""
        await self._client._request(
            "DELETE", f"/pipelines/{path_segment(pipeline_id, 'pipeline_id')}", _deleted,
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def validate(
        self, definition: Definition, *, extra_headers: Headers | None = None
    ) -> PipelineValidation:
        """Check a definition on the server without storing it. Problems come back in
        ``result.errors`` (``param`` + ``message``); they are not raised."""
        return await self._client._request(
            "POST", "/pipelines/validate", _validation,
            body={"definition": definition_payload(definition)}, extra_headers=extra_headers,
        )

    async def actions(self, *, extra_headers: Headers | None = None) -> ActionList:
        """The action catalogue: each action with its parameters' JSON schema."""
        return await self._client._request("GET", "/actions", _actions, extra_headers=extra_headers)


class PipelinesWithResponse:
    def __init__(self, p: Pipelines) -> None:
        self.create = to_response(p.create)
        self.get = to_response(p.get)
        self.list = to_response(p.list)
        self.update = to_response(p.update)
        self.delete = to_response(p.delete)
        self.validate = to_response(p.validate)
        self.actions = to_response(p.actions)


class AsyncPipelinesWithResponse:
    def __init__(self, p: AsyncPipelines) -> None:
        self.create = to_async_response(p.create)
        self.get = to_async_response(p.get)
        self.list = to_async_response(p.list)
        self.update = to_async_response(p.update)
        self.delete = to_async_response(p.delete)
        self.validate = to_async_response(p.validate)
        self.actions = to_async_response(p.actions)
