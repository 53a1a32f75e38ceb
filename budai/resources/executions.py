"""``client.executions``: run pipelines, follow them to the end, cancel them.

``wait`` polls ``GET /executions/{id}`` every 0.5 s, growing by 1.5x up to 5 s, until the
execution is ``completed``, ``failed`` or ``cancelled``. A failed execution is *returned* (check
``execution.status`` / ``execution.error``): it is a result of the pipeline, not an API error.
Only the deadline raises (``budai.exceptions.TimeoutError`` with the last state in
``.execution``), unless ``raise_on_failure=True`` asks for ``WaitError`` on a failed run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from .. import exceptions as exc
from .._base_client import compact, path_segment
from .._types import NOT_GIVEN, Body, NotGiven, Query, RequestOptions, Timeout
from ..types import AsyncPaginator, Execution, ExecutionStatus, SyncPage
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
from ._waiters import Poller, execution_done

__all__ = ["AsyncExecutions", "Executions"]

_execution = parser(Execution)

OnUpdate = Callable[[Execution], object]
"""Called with every state ``wait`` fetches (for progress displays)."""


def _path(execution_id: str, suffix: str = "") -> str:
    return f"/executions/{path_segment(execution_id, 'execution_id')}{suffix}"


async def _async_sleep(seconds: float) -> None:
    import asyncio  # lazily: the sync client shares this module

    await asyncio.sleep(seconds)


class AsyncExecutions(AsyncAPIResource):
    """Pipeline executions."""

    @cached_property
    def with_response(self) -> AsyncExecutionsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncExecutionsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> AsyncExecutionsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> AsyncExecutionsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return AsyncExecutionsWithStreamingResponse(self)

    async def create(
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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """Start a pipeline. With ``wait=True``, return once the execution has finished (see
        ``wait``; ``timeout`` is its deadline, default 600 s)."""
        execution = await self._client._request(
            "POST",
            "/executions",
            _execution,
            body=compact({"pipeline_id": pipeline_id, "params": params, "metadata": metadata}),
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, request_timeout),
        )
        if not wait or execution.is_terminal:
            return execution
        return await self.wait(
            execution.id,
            timeout=timeout,
            on_update=on_update,
            extra_headers=extra_headers,
            extra_query=extra_query,
            request_timeout=request_timeout,
        )

    async def get(
        self,
        execution_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """One execution by id, with the state of each step."""
        return await self._client._request(
            "GET",
            f"/executions/{path_segment(execution_id, 'execution_id')}",
            _execution,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def list(
        self,
        *,
        pipeline_id: str | None = None,
        status: ExecutionStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncPaginator[Execution]:
        """Executions matching the filters (``async for`` walks every page)."""
        query = compact(
            {"pipeline_id": pipeline_id, "status": status, "limit": limit, "after": after}
        )
        return self._client._paginator(
            "/executions",
            _execution,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def cancel(
        self,
        execution_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """Ask an execution to stop; it becomes ``cancelled`` once running steps stop."""
        return await self._client._request(
            "POST",
            f"/executions/{path_segment(execution_id, 'execution_id')}/cancel",
            _execution,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        poll_interval: float | None = None,
        raise_on_failure: bool = False,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """Poll until the execution finishes and return it (also when it failed, unless
        ``raise_on_failure``).

        Args:
            timeout: deadline in seconds of the whole wait (default 600; ``math.inf`` waits
                forever).
            on_update: called with every state fetched (a progress display).
            poll_interval: a fixed interval instead of 0.5 s growing to 5 s.
            raise_on_failure: raise ``WaitError`` (with the gateway's reason) when the
                execution ends ``failed`` or ``cancelled``.
            request_timeout: the timeout of each poll request.

        Raises:
            budai.exceptions.TimeoutError: the deadline passed; ``.execution`` is the last state.
            budai.exceptions.WaitError: with ``raise_on_failure``, the execution did not complete.
        """
        poller = Poller(f"execution {execution_id}", timeout, poll_interval)
        options = RequestOptions(extra_headers, extra_query, None, request_timeout)
        while True:
            execution = await self._client._request(
                "GET", _path(execution_id), _execution, options=options
            )
            if on_update is not None:
                on_update(execution)
            if execution_done(execution, poller, raise_on_failure):
                return execution
            try:
                delay = poller.next_sleep(execution)
            except exc.TimeoutError as err:
                err.execution = execution
                raise
            await _async_sleep(delay)


class AsyncExecutionsWithResponse:
    def __init__(self, e: AsyncExecutions) -> None:
        self.create = to_async_response(e.create)
        self.get = to_async_response(e.get)
        self.list = to_async_response(e.list)
        self.cancel = to_async_response(e.cancel)
        self.wait = to_async_response(e.wait)


class AsyncExecutionsWithStreamingResponse:
    def __init__(self, e: AsyncExecutions) -> None:
        self.create = to_async_streamed_response(e.create)
        self.get = to_async_streamed_response(e.get)
        self.list = to_async_streamed_response(e.list)
        self.cancel = to_async_streamed_response(e.cancel)
        self.wait = to_async_streamed_response(e.wait)


# --- generated by hack/unasync.py from the async classes above; do not edit below ---


class Executions(SyncAPIResource):
    """Pipeline executions."""

    @cached_property
    def with_response(self) -> ExecutionsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return ExecutionsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> ExecutionsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> ExecutionsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return ExecutionsWithStreamingResponse(self)

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
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """Start a pipeline. With ``wait=True``, return once the execution has finished (see
        ``wait``; ``timeout`` is its deadline, default 600 s)."""
        execution = self._client._request(
            "POST",
            "/executions",
            _execution,
            body=compact({"pipeline_id": pipeline_id, "params": params, "metadata": metadata}),
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, request_timeout),
        )
        if not wait or execution.is_terminal:
            return execution
        return self.wait(
            execution.id,
            timeout=timeout,
            on_update=on_update,
            extra_headers=extra_headers,
            extra_query=extra_query,
            request_timeout=request_timeout,
        )

    def get(
        self,
        execution_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """One execution by id, with the state of each step."""
        return self._client._request(
            "GET",
            f"/executions/{path_segment(execution_id, 'execution_id')}",
            _execution,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def list(
        self,
        *,
        pipeline_id: str | None = None,
        status: ExecutionStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> SyncPage[Execution]:
        """Executions matching the filters (``for`` walks every page)."""
        query = compact(
            {"pipeline_id": pipeline_id, "status": status, "limit": limit, "after": after}
        )
        return self._client._request_page(
            "/executions",
            _execution,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def cancel(
        self,
        execution_id: str,
        *,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """Ask an execution to stop; it becomes ``cancelled`` once running steps stop."""
        return self._client._request(
            "POST",
            f"/executions/{path_segment(execution_id, 'execution_id')}/cancel",
            _execution,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        poll_interval: float | None = None,
        raise_on_failure: bool = False,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        request_timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Execution:
        """Poll until the execution finishes and return it (also when it failed, unless
        ``raise_on_failure``).

        Args:
            timeout: deadline in seconds of the whole wait (default 600; ``math.inf`` waits
                forever).
            on_update: called with every state fetched (a progress display).
            poll_interval: a fixed interval instead of 0.5 s growing to 5 s.
            raise_on_failure: raise ``WaitError`` (with the gateway's reason) when the
                execution ends ``failed`` or ``cancelled``.
            request_timeout: the timeout of each poll request.

        Raises:
            budai.exceptions.TimeoutError: the deadline passed; ``.execution`` is the last state.
            budai.exceptions.WaitError: with ``raise_on_failure``, the execution did not complete.
        """
        poller = Poller(f"execution {execution_id}", timeout, poll_interval)
        options = RequestOptions(extra_headers, extra_query, None, request_timeout)
        while True:
            execution = self._client._request(
                "GET", _path(execution_id), _execution, options=options
            )
            if on_update is not None:
                on_update(execution)
            if execution_done(execution, poller, raise_on_failure):
                return execution
            try:
                delay = poller.next_sleep(execution)
            except exc.TimeoutError as err:
                err.execution = execution
                raise
            time.sleep(delay)


class ExecutionsWithResponse:
    def __init__(self, e: Executions) -> None:
        self.create = to_response(e.create)
        self.get = to_response(e.get)
        self.list = to_response(e.list)
        self.cancel = to_response(e.cancel)
        self.wait = to_response(e.wait)


class ExecutionsWithStreamingResponse:
    def __init__(self, e: Executions) -> None:
        self.create = to_streamed_response(e.create)
        self.get = to_streamed_response(e.get)
        self.list = to_streamed_response(e.list)
        self.cancel = to_streamed_response(e.cancel)
        self.wait = to_streamed_response(e.wait)
