"""``client.executions``: run pipelines, follow them to the end, cancel them.

``wait`` polls ``GET /executions/{id}`` every 0.5 s, growing by 1.5x up to 5 s, until the
execution is ``completed``, ``failed`` or ``cancelled``. A failed execution is *returned* (check
``execution.status`` / ``execution.error``): it is a result of the pipeline, not an API error.
Only the deadline raises (``budai.exceptions.TimeoutError`` with the last state in
``.execution``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from .. import exceptions as exc
from .._base_client import (
    DEFAULT_WAIT_TIMEOUT,
    POLL_INITIAL_INTERVAL,
    compact,
    next_poll_interval,
    path_segment,
)
from ..types import AsyncPaginator, Execution, ExecutionStatus, SyncPage
from ._base import (
    AsyncAPIResource,
    Headers,
    SyncAPIResource,
    parser,
    to_async_response,
    to_response,
)

__all__ = ["AsyncExecutions", "Executions"]

_execution = parser(Execution)

OnUpdate = Callable[[Execution], object]
"""Called with every state ``wait`` fetches (for progress displays)."""


def _deadline(timeout: float | None) -> float:
    limit = DEFAULT_WAIT_TIMEOUT if timeout is None else timeout
    if limit < 0 or math.isnan(limit):
        raise ValueError("timeout must be >= 0 seconds")
    return time.monotonic() + limit


def _timeout_error(execution: Execution, timeout: float | None) -> exc.TimeoutError:
    limit = DEFAULT_WAIT_TIMEOUT if timeout is None else timeout
    err = exc.TimeoutError(
        f"execution {execution.id} was still {execution.status} after {limit:g}s",
        param="timeout",
    )
    err.execution = execution
    return err


async def _async_sleep(seconds: float) -> None:
    import asyncio  # lazily: the sync client shares this module

    await asyncio.sleep(seconds)


class Executions(SyncAPIResource):
    """Pipeline executions."""

    @cached_property
    def with_response(self) -> ExecutionsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return ExecutionsWithResponse(self)

    def create(
        self,
        pipeline_id: str,
        params: Mapping[str, Any] | None = None,
        wait: bool = False,
        timeout: float | None = None,
        *,
        on_update: OnUpdate | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Execution:
        """Start a pipeline. With ``wait=True``, return once the execution has finished (see
        ``wait``; ``timeout`` is its deadline, default 600 s)."""
        execution = self._client._request(
            "POST", "/executions", _execution,
            body=compact({"pipeline_id": pipeline_id, "params": params, "metadata": metadata}),
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )
        if not wait or execution.is_terminal:
            return execution
        return self.wait(
            execution.id, timeout=timeout, on_update=on_update, extra_headers=extra_headers
        )

    def get(self, execution_id: str, *, extra_headers: Headers | None = None) -> Execution:
        """One execution by id, with the state of each step."""
        return self._client._request(
            "GET", f"/executions/{path_segment(execution_id, 'execution_id')}", _execution,
            extra_headers=extra_headers,
        )

    def list(
        self,
        *,
        pipeline_id: str | None = None,
        status: ExecutionStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
    ) -> SyncPage[Execution]:
        """Executions matching the filters; iterating the page walks every following page."""
        query = compact(
            {"pipeline_id": pipeline_id, "status": status, "limit": limit, "after": after}
        )
        return self._client._request_page("/executions", _execution, query, extra_headers)

    def cancel(
        self,
        execution_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Execution:
        """Ask an execution to stop; it becomes ``cancelled`` once running steps stop."""
        return self._client._request(
            "POST", f"/executions/{path_segment(execution_id, 'execution_id')}/cancel",
            _execution, idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        extra_headers: Headers | None = None,
    ) -> Execution:
        """Poll until the execution finishes and return it (also when it failed).

        Args:
            timeout: deadline in seconds (default 600; ``math.inf`` waits forever).
            on_update: called with every state fetched.

        Raises:
            budai.exceptions.TimeoutError: the deadline passed; ``.execution`` is the last state.
        """
        deadline = _deadline(timeout)
        interval = POLL_INITIAL_INTERVAL
        while True:
            execution = self.get(execution_id, extra_headers=extra_headers)
            if on_update is not None:
                on_update(execution)
            if execution.is_terminal:
                return execution
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout_error(execution, timeout)
            time.sleep(min(interval, remaining))
            interval = next_poll_interval(interval)


class AsyncExecutions(AsyncAPIResource):
    """Pipeline executions."""

    @cached_property
    def with_response(self) -> AsyncExecutionsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncExecutionsWithResponse(self)

    async def create(
        self,
        pipeline_id: str,
        params: Mapping[str, Any] | None = None,
        wait: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 - the deadline of wait, not of a request
        *,
        on_update: OnUpdate | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Execution:
        """Start a pipeline. With ``wait=True``, return once the execution has finished (see
        ``wait``; ``timeout`` is its deadline, default 600 s)."""
        execution = await self._client._request(
            "POST", "/executions", _execution,
            body=compact({"pipeline_id": pipeline_id, "params": params, "metadata": metadata}),
            idempotency_key=idempotency_key, extra_headers=extra_headers,
        )
        if not wait or execution.is_terminal:
            return execution
        return await self.wait(
            execution.id, timeout=timeout, on_update=on_update, extra_headers=extra_headers
        )

    async def get(self, execution_id: str, *, extra_headers: Headers | None = None) -> Execution:
        """One execution by id, with the state of each step."""
        return await self._client._request(
            "GET", f"/executions/{path_segment(execution_id, 'execution_id')}", _execution,
            extra_headers=extra_headers,
        )

    def list(
        self,
        *,
        pipeline_id: str | None = None,
        status: ExecutionStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
    ) -> AsyncPaginator[Execution]:
        """Executions matching the filters: ``async for`` walks every page; ``await`` gives the
        first."""
        query = compact(
            {"pipeline_id": pipeline_id, "status": status, "limit": limit, "after": after}
        )
        return self._client._paginator("/executions", _execution, query, extra_headers)

    async def cancel(
        self,
        execution_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
    ) -> Execution:
        """Ask an execution to stop; it becomes ``cancelled`` once running steps stop."""
        return await self._client._request(
            "POST", f"/executions/{path_segment(execution_id, 'execution_id')}/cancel",
            _execution, idempotency_key=idempotency_key, extra_headers=extra_headers,
        )

    async def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a polling deadline, as in the sync twin
        on_update: OnUpdate | None = None,
        extra_headers: Headers | None = None,
    ) -> Execution:
        """Poll until the execution finishes and return it (also when it failed).

        Args:
            timeout: deadline in seconds (default 600; ``math.inf`` waits forever).
            on_update: called with every state fetched.

        Raises:
            budai.exceptions.TimeoutError: the deadline passed; ``.execution`` is the last state.
        """
        deadline = _deadline(timeout)
        interval = POLL_INITIAL_INTERVAL
        while True:
            execution = await self.get(execution_id, extra_headers=extra_headers)
            if on_update is not None:
                on_update(execution)
            if execution.is_terminal:
                return execution
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout_error(execution, timeout)
            await _async_sleep(min(interval, remaining))
            interval = next_poll_interval(interval)


class ExecutionsWithResponse:
    def __init__(self, e: Executions) -> None:
        self.create = to_response(e.create)
        self.get = to_response(e.get)
        self.list = to_response(e.list)
        self.cancel = to_response(e.cancel)
        self.wait = to_response(e.wait)


class AsyncExecutionsWithResponse:
    def __init__(self, e: AsyncExecutions) -> None:
        self.create = to_async_response(e.create)
        self.get = to_async_response(e.get)
        self.list = to_async_response(e.list)
        self.cancel = to_async_response(e.cancel)
        self.wait = to_async_response(e.wait)
