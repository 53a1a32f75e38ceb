"""What every resource shares: the client handle, parsers and the ``.with_response`` wrappers.

``.with_response.<method>(...)`` calls the ordinary method while collecting the metadata of the
requests it makes (through a context variable set by ``_base_client``), then returns
``Response[T]`` built from the last one. One implementation per method therefore serves both.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .._base_client import CAPTURE, CallInfo, parse_rate_limits
from ..types._base import BudObject, parse_object
from ..types._response import Response

if TYPE_CHECKING:
    from .._client import AsyncBudClient, BudClient

__all__ = [
    "AsyncAPIResource",
    "AsyncResponseContextManager",
    "Headers",
    "ResponseContextManager",
    "SyncAPIResource",
    "parser",
    "to_async_response",
    "to_async_streamed_response",
    "to_response",
    "to_streamed_response",
]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BudObject)

Headers = Mapping[str, str]
"""Type of ``extra_headers``: sent with the request, after the client's default headers."""


class SyncAPIResource:
    _client: BudClient

    def __init__(self, client: BudClient) -> None:
        self._client = client


class AsyncAPIResource:
    _client: AsyncBudClient

    def __init__(self, client: AsyncBudClient) -> None:
        self._client = client


def parser(cls: type[M]) -> Callable[[Any], M]:
    """A function turning JSON data into ``cls``."""
    return functools.partial(parse_object, cls)


def _response(data: R, calls: list[CallInfo]) -> Response[R]:
    if not calls:  # nothing was sent (cannot happen for API methods, kept total anyway)
        return Response(data, {}, 0, "", None, None)
    last = calls[-1]
    limit, remaining, reset = parse_rate_limits(last.headers)
    return Response(
        data=data,
        headers=last.headers,
        status_code=last.status_code,
        request_id=last.request_id,
        rate_limit_remaining=remaining,
        rate_limit_reset=reset,
        rate_limit_limit=limit,
        retries_taken=sum(c.retries_taken for c in calls),
        elapsed=sum(c.elapsed for c in calls),
    )


def to_response(func: Callable[P, R]) -> Callable[P, Response[R]]:
    """Wrap a sync resource method so that it returns ``Response[R]``."""

    @functools.wraps(func)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response[R]:
        calls: list[CallInfo] = []
        token = CAPTURE.set(calls)
        try:
            data = func(*args, **kwargs)
        finally:
            CAPTURE.reset(token)
        return _response(data, calls)

    return wrapped


def to_async_response(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Response[R]]]:
    """Wrap an async resource method (or one returning an awaitable) to return ``Response[R]``."""

    @functools.wraps(func)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response[R]:
        calls: list[CallInfo] = []
        token = CAPTURE.set(calls)
        try:
            data = await func(*args, **kwargs)
        finally:
            CAPTURE.reset(token)
        return _response(data, calls)

    return wrapped


def _close(data: Any) -> None:
    close = getattr(data, "close", None)
    if callable(close):
        close()


class ResponseContextManager(Generic[R]):
    """What ``.with_streaming_response.<method>(...)`` returns: ``with ... as response:`` makes
    the call and yields ``Response[T]``; a streamed body is closed when the block ends."""

    def __init__(self, call: Callable[[], Response[R]]) -> None:
        self._call = call
        self._response: Response[R] | None = None

    def __enter__(self) -> Response[R]:
        self._response = self._call()
        return self._response

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            _close(self._response.data)


class AsyncResponseContextManager(Generic[R]):
    """The ``async with`` twin of ``ResponseContextManager``."""

    def __init__(self, call: Callable[[], Awaitable[Response[R]]]) -> None:
        self._call = call
        self._response: Response[R] | None = None

    async def __aenter__(self) -> Response[R]:
        self._response = await self._call()
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            data: Any = self._response.data
            aclose = getattr(data, "aclose", None) or getattr(data, "close", None)
            if callable(aclose):
                result = aclose()
                if hasattr(result, "__await__"):
                    await result


def to_streamed_response(func: Callable[P, R]) -> Callable[P, ResponseContextManager[R]]:
    """Wrap a sync resource method into one returning a ``ResponseContextManager``."""
    call = to_response(func)

    @functools.wraps(func)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseContextManager[R]:
        return ResponseContextManager(lambda: call(*args, **kwargs))

    return wrapped


def to_async_streamed_response(
    func: Callable[P, Awaitable[R]],
) -> Callable[P, AsyncResponseContextManager[R]]:
    """Wrap an async resource method into one returning an ``AsyncResponseContextManager``."""
    call = to_async_response(func)

    @functools.wraps(func)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> AsyncResponseContextManager[R]:
        return AsyncResponseContextManager(lambda: call(*args, **kwargs))

    return wrapped
