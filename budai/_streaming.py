"""Server-sent events: ``Stream`` / ``AsyncStream`` of typed chunks for
``chat.completions.create(stream=True)``.

The gateway sends ``data: {json}`` events and ends with ``data: [DONE]``; an error after the
stream started arrives as ``data: {"error": {...}}`` and is raised as the mapped exception. The
HTTP response is always closed (returning the connection to the pool), whether the stream is read
to the end, abandoned inside a ``with`` block, or fails. The idle timeout of a stream is the
client's read timeout: no bytes for that long raises ``budai.exceptions.TimeoutError``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from . import exceptions as exc
from ._base_client import error_from_stream_event

__all__ = ["AsyncStream", "SSEDecoder", "Stream"]

T = TypeVar("T")

_DONE = "[DONE]"


class SSEDecoder:
    """Incremental decoder of event-stream lines into the ``data`` of each event."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Feed one line (without its newline); returns an event's data when one completes."""
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data = []
            return data
        if line.startswith(":"):
            return None  # comment / keep-alive
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        return None

    def flush(self) -> str | None:
        """An event left unterminated at the end of the stream."""
        return self.feed("")

    def iter_events(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            data = self.feed(line)
            if data is not None:
                yield data
        data = self.flush()
        if data is not None:
            yield data


def _decode(data: str, parse: Callable[[Any], T], request_id: str) -> T:
    try:
        payload = json.loads(data)
    except ValueError as e:
        raise exc.APIConnectionError(f"malformed stream event: {data[:200]!r}") from e
    if isinstance(payload, dict) and "error" in payload and "choices" not in payload:
        raise error_from_stream_event(payload, request_id)
    return parse(payload)


class Stream(Generic[T]):
    """An iterator of typed chunks; use it in a ``with`` block to close early."""

    response: httpx.Response

    def __init__(self, response: httpx.Response, parse: Callable[[Any], T]) -> None:
        self.response = response
        self._parse = parse
        self._iterator = self._iter()

    @property
    def request_id(self) -> str:
        return str(self.response.headers.get("x-request-id", ""))

    def _iter(self) -> Iterator[T]:
        request_id = self.request_id
        try:
            for data in SSEDecoder().iter_events(self.response.iter_lines()):
                if data.strip() == _DONE:
                    return
                yield _decode(data, self._parse, request_id)
        except httpx.TimeoutException as e:
            raise exc.TimeoutError("the stream was idle for longer than the read timeout") from e
        except httpx.TransportError as e:
            raise exc.APIConnectionError(f"the stream broke: {type(e).__name__}") from e
        finally:
            self.response.close()

    def __iter__(self) -> Iterator[T]:
        return self._iterator

    def __next__(self) -> T:
        return next(self._iterator)

    def close(self) -> None:
        """Stop reading and return the connection to the pool."""
        self.response.close()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStream(Generic[T]):
    """An async iterator of typed chunks; use it in an ``async with`` block to close early."""

    response: httpx.Response

    def __init__(self, response: httpx.Response, parse: Callable[[Any], T]) -> None:
        self.response = response
        self._parse = parse
        self._iterator = self._iter()

    @property
    def request_id(self) -> str:
        return str(self.response.headers.get("x-request-id", ""))

    async def _iter(self) -> AsyncIterator[T]:
        request_id = self.request_id
        decoder = SSEDecoder()
        try:
            async for line in self.response.aiter_lines():
                data = decoder.feed(line)
                if data is None:
                    continue
                if data.strip() == _DONE:
                    return
                yield _decode(data, self._parse, request_id)
            data = decoder.flush()
            if data is not None and data.strip() != _DONE:
                yield _decode(data, self._parse, request_id)
        except httpx.TimeoutException as e:
            raise exc.TimeoutError("the stream was idle for longer than the read timeout") from e
        except httpx.TransportError as e:
            raise exc.APIConnectionError(f"the stream broke: {type(e).__name__}") from e
        finally:
            await self.response.aclose()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterator

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def close(self) -> None:
        """Stop reading and return the connection to the pool."""
        await self.response.aclose()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
