"""What every resource shares: the client handle, parsers and the ``.with_response`` wrappers.

``.with_response.<method>(...)`` calls the ordinary method while collecting the metadata of the
requests it makes (through a context variable set by ``_base_client``), then returns
``Response[T]`` built from the last one. One implementation per method therefore serves both.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .._base_client import CAPTURE, CallInfo, parse_rate_limits
from ..types._base import BudObject, parse_object
from ..types._response import Response

if TYPE_CHECKING:
    from .._client import AsyncBudClient, BudClient

__all__ = [
    "AsyncAPIResource",
    "Headers",
    "SyncAPIResource",
    "parser",
    "to_async_response",
    "to_response",
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
