"""``client.chat.completions``: OpenAI-compatible chat completions, plain or streamed.

``create(..., stream=True)`` returns a ``Stream[ChatCompletionChunk]`` (``AsyncStream`` on the
async client); overloads make the declared return type follow ``stream``. Streams are retried
only until the response headers arrive; after that an error ends the stream with an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Literal, overload

from .._base_client import compact
from .._streaming import AsyncStream, Stream
from .._types import NOT_GIVEN, NotGiven, Query, RequestOptions, Timeout
from ..types import ChatCompletion, ChatCompletionChunk
from ..types.chat import ChatCompletionMessageParam
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

__all__ = ["AsyncChat", "AsyncCompletions", "Chat", "Completions"]

_completion = parser(ChatCompletion)
_chunk = parser(ChatCompletionChunk)

MessageParam = ChatCompletionMessageParam | Mapping[str, Any]


def _body(
    model: str,
    messages: Iterable[MessageParam],
    stream: bool,
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    body.update(compact(params))
    if stream:
        body["stream"] = True
    if extra_body:
        body.update(extra_body)
    return body


class AsyncCompletions(AsyncAPIResource):
    """Chat completions."""

    @cached_property
    def with_response(self) -> AsyncCompletionsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncCompletionsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> AsyncCompletionsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> AsyncCompletionsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return AsyncCompletionsWithStreamingResponse(self)

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: Literal[False] = False,
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: Literal[True],
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncStream[ChatCompletionChunk]: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool,
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]: ...

    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool = False,
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        """Create a chat completion with the model or deployment named ``model``.

        ``messages`` are ``{"role": ..., "content": ...}`` dicts; ``extra_body`` adds fields the
        SDK does not know. With ``stream=True`` returns an async iterator of chunks.
        """
        params = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "n": n,
            "stop": stop,
            "stream_options": stream_options,
            "seed": seed,
            "tools": None if tools is None else [dict(t) for t in tools],
            "tool_choice": tool_choice,
            "response_format": response_format,
            "user": user,
        }
        body = _body(model, messages, stream, params, extra_body)
        if stream:
            return await self._client._request_stream(
                "POST",
                "/chat/completions",
                _chunk,
                body=body,
                idempotency_key=idempotency_key,
                options=RequestOptions(extra_headers, extra_query, None, timeout),
            )
        return await self._client._request(
            "POST",
            "/chat/completions",
            _completion,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, None, timeout),
        )


class AsyncCompletionsWithResponse:
    """``Response[T]`` twins of ``AsyncCompletions``; the return type follows ``stream``."""

    def __init__(self, completions: AsyncCompletions) -> None:
        self.create = to_async_response(completions.create)


class AsyncChat(AsyncAPIResource):
    """``client.chat``: holds ``completions``."""

    @cached_property
    def completions(self) -> AsyncCompletions:
        return AsyncCompletions(self._client)


class AsyncCompletionsWithStreamingResponse:
    def __init__(self, completions: AsyncCompletions) -> None:
        self.create = to_async_streamed_response(completions.create)


# --- generated by hack/unasync.py from the async classes above; do not edit below ---


class Completions(SyncAPIResource):
    """Chat completions."""

    @cached_property
    def with_response(self) -> CompletionsWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return CompletionsWithResponse(self)

    @cached_property
    def with_raw_response(self) -> CompletionsWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> CompletionsWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return CompletionsWithStreamingResponse(self)

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: Literal[False] = False,
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: Literal[True],
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Stream[ChatCompletionChunk]: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool,
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ChatCompletion | Stream[ChatCompletionChunk]: ...

    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageParam],
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool = False,
        stream_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ChatCompletion | Stream[ChatCompletionChunk]:
        """Create a chat completion with the model or deployment named ``model``.

        ``messages`` are ``{"role": ..., "content": ...}`` dicts; ``extra_body`` adds fields the
        SDK does not know. With ``stream=True`` returns an iterator of chunks.
        """
        params = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "n": n,
            "stop": stop,
            "stream_options": stream_options,
            "seed": seed,
            "tools": None if tools is None else [dict(t) for t in tools],
            "tool_choice": tool_choice,
            "response_format": response_format,
            "user": user,
        }
        body = _body(model, messages, stream, params, extra_body)
        if stream:
            return self._client._request_stream(
                "POST",
                "/chat/completions",
                _chunk,
                body=body,
                idempotency_key=idempotency_key,
                options=RequestOptions(extra_headers, extra_query, None, timeout),
            )
        return self._client._request(
            "POST",
            "/chat/completions",
            _completion,
            body=body,
            idempotency_key=idempotency_key,
            options=RequestOptions(extra_headers, extra_query, None, timeout),
        )


class CompletionsWithResponse:
    """``Response[T]`` twins of ``Completions``; the return type follows ``stream``."""

    def __init__(self, completions: Completions) -> None:
        self.create = to_response(completions.create)


class Chat(SyncAPIResource):
    """``client.chat``: holds ``completions``."""

    @cached_property
    def completions(self) -> Completions:
        return Completions(self._client)


class CompletionsWithStreamingResponse:
    def __init__(self, completions: Completions) -> None:
        self.create = to_streamed_response(completions.create)
