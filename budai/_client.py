"""``BudClient`` and ``AsyncBudClient``: configuration plus the send loops.

Every decision (headers, what to retry and how long to wait, which exception a response maps to)
is a pure function in ``_base_client``; this module only performs the I/O, once with
``httpx.Client`` and ``time.sleep``, once with ``httpx.AsyncClient`` and ``asyncio.sleep``.
Resources are created on first access, and their modules imported then, which keeps
``import budai`` light.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _base_client as base
from . import exceptions as exc
from ._streaming import AsyncStream, Stream

if TYPE_CHECKING:
    from typing import Self

    from .resources.chat import AsyncChat, Chat
    from .resources.clusters import AsyncClusters, Clusters
    from .resources.deployments import AsyncDeployments, Deployments
    from .resources.executions import AsyncExecutions, Executions
    from .resources.models import AsyncModels, Models
    from .resources.pipelines import AsyncPipelines, Pipelines
    from .types import AsyncPage, AsyncPaginator, SyncPage

__all__ = ["AsyncBudClient", "BudClient"]

T = TypeVar("T")
log = logging.getLogger("budai")


def _configure_logging() -> None:
    """``BUD_LOG=debug|info`` prints the SDK's log (requests, retries) to stderr; headers and
    bodies are never logged, so neither is the API key."""
    level = os.environ.get("BUD_LOG", "").upper()
    if level in ("DEBUG", "INFO") and not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(level)


_configure_logging()

# Indirections so tests can observe retry delays without waiting for them.
_sleep = time.sleep


async def _async_sleep(seconds: float) -> None:
    import asyncio  # here, not at the top: sync-only users never pay for importing asyncio

    await asyncio.sleep(seconds)


_RESOURCES = ("chat", "models", "deployments", "clusters", "pipelines", "executions")
_DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


class _ClientConfig:
    """Configuration shared by both clients; no I/O."""

    base_url: str
    timeout: float
    max_retries: int
    verify_ssl: bool
    proxy: str | None

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        verify_ssl: bool,
        proxy: str | None,
        default_headers: Mapping[str, str] | None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        self._api_key = base.resolve_api_key(api_key)
        self.base_url = base.resolve_base_url(base_url)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.verify_ssl = verify_ssl
        self.proxy = proxy
        self._default_headers = dict(default_headers or {})
        self._httpx_timeout = httpx.Timeout(
            self.timeout, connect=min(base.CONNECT_TIMEOUT, self.timeout)
        )
        self._owns_http = True
        self._owns_pool_headers = False
        """Whether the httpx client already sends ``static_headers`` (only one the SDK made)."""

    def __repr__(self) -> str:
        # Never the API key: reprs end up in logs and tracebacks.
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, timeout={self.timeout:g}, "
            f"max_retries={self.max_retries})"
        )

    def __getstate__(self) -> Any:
        raise TypeError(f"{type(self).__name__} cannot be pickled; create one per process")

    def _copy_with(
        self,
        timeout: float | None,
        max_retries: int | None,
        default_headers: Mapping[str, str] | None,
    ) -> Any:
        new = object.__new__(type(self))
        state = {k: v for k, v in self.__dict__.items() if k not in _RESOURCES}
        new.__dict__.update(state)
        new._owns_http = False  # the pool belongs to the original client
        if timeout is not None:
            if timeout <= 0:
                raise ValueError("timeout must be > 0 seconds")
            new.timeout = float(timeout)
            new._httpx_timeout = httpx.Timeout(
                new.timeout, connect=min(base.CONNECT_TIMEOUT, new.timeout)
            )
        if max_retries is not None:
            if max_retries < 0:
                raise ValueError("max_retries must be >= 0")
            new.max_retries = int(max_retries)
        if default_headers is not None:
            new._default_headers = {**self._default_headers, **default_headers}
        return new

    def _build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        extra_headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        retry_count: int,
    ) -> httpx.Request:
        headers = base.build_headers(
            api_key=self._api_key,
            default_headers=self._default_headers,
            extra_headers=extra_headers,
            idempotency_key=idempotency_key,
            retry_count=retry_count,
            include_static=not self._owns_pool_headers,
        )
        return http.build_request(
            method,
            self.base_url + path,
            params=query or None,
            json=body,
            headers=headers,
            timeout=self._httpx_timeout,
        )

    def _decide(
        self,
        method: str,
        response: httpx.Response | None,
        retries: int,
        idempotency_key: str | None,
    ) -> base.RetryDecision:
        return base.decide_retry(
            method=method,
            status=None if response is None else response.status_code,
            headers=None if response is None else response.headers,
            retries_taken=retries,
            max_retries=self.max_retries,
            idempotency_key=idempotency_key,
            now=time.time(),
        )

    def _log_retry(
        self, method: str, path: str, what: str, decision: base.RetryDecision, retries: int
    ) -> None:
        log.info(
            "budai: %s %s: %s; retry %d of %d in %.2fs (%s)",
            method,
            path,
            what,
            retries + 1,
            self.max_retries,
            decision.delay,
            decision.reason,
        )

    @staticmethod
    def _log_done(method: str, path: str, response: httpx.Response, started: float) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "budai: %s %s -> %d in %.1f ms (%s)",
                method,
                path,
                response.status_code,
                (time.monotonic() - started) * 1000,
                response.headers.get("x-request-id", "-"),
            )

    def _status_error(self, response: httpx.Response) -> exc.BudAPIError:
        return base.error_from_response(
            response.status_code,
            response.headers,
            response.content,
            reason=response.reason_phrase,
            api_key=self._api_key,
            now=time.time(),
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as e:
            raise exc.BudAPIError(
                f"the server sent a {response.status_code} with a body that is not JSON",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id", ""),
            ) from e

    @staticmethod
    def _record(response: httpx.Response, retries: int, started: float) -> None:
        if base.CAPTURE.get() is not None:
            base.record_call(
                base.CallInfo(
                    headers=dict(response.headers),
                    status_code=response.status_code,
                    request_id=response.headers.get("x-request-id", ""),
                    retries_taken=retries,
                    elapsed=time.monotonic() - started,
                )
            )

    @staticmethod
    def _page_parts(data: Any, parse: Callable[[Any], T]) -> tuple[list[T], bool, str | None]:
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise exc.BudAPIError("the server sent a list response without a 'data' array")
        items = [parse(item) for item in data["data"]]
        cursor = data.get("next_cursor")
        return items, bool(data.get("has_more")), cursor if isinstance(cursor, str) else None


class BudClient(_ClientConfig):
    """The synchronous client. Safe to share between threads; use one per process.

    Args:
        api_key: the API key; falls back to ``BUD_API_KEY``. Never shown in reprs or logs.
        base_url: falls back to ``BUD_BASE_URL``, then ``https://gateway.bud.studio/v1``.
        timeout: seconds per attempt (connecting is limited to 5 s); also a stream's idle timeout.
        max_retries: retries after the first attempt; ``0`` disables retrying.
        verify_ssl: verify TLS certificates.
        proxy: a proxy URL for every request (``HTTP(S)_PROXY`` apply otherwise).
        http_client: an ``httpx.Client`` to use instead of creating one (not closed by us).
        default_headers: headers sent on every request.
    """

    _http: httpx.Client

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = base.DEFAULT_TIMEOUT,
        max_retries: int = base.DEFAULT_MAX_RETRIES,
        verify_ssl: bool = True,
        proxy: str | None = None,
        *,
        http_client: httpx.Client | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_key, base_url, timeout, max_retries, verify_ssl, proxy, default_headers
        )
        if http_client is not None:
            self._http = http_client
            self._owns_http = False
        else:
            self._http = httpx.Client(
                headers=base.static_headers(self._api_key),
                timeout=self._httpx_timeout,
                verify=verify_ssl,
                proxy=proxy,
                limits=_DEFAULT_LIMITS,
            )
            self._owns_pool_headers = True

    # --- resources ---

    @cached_property
    def chat(self) -> Chat:
        from .resources.chat import Chat

        return Chat(self)

    @cached_property
    def models(self) -> Models:
        from .resources.models import Models

        return Models(self)

    @cached_property
    def deployments(self) -> Deployments:
        from .resources.deployments import Deployments

        return Deployments(self)

    @cached_property
    def clusters(self) -> Clusters:
        from .resources.clusters import Clusters

        return Clusters(self)

    @cached_property
    def pipelines(self) -> Pipelines:
        from .resources.pipelines import Pipelines

        return Pipelines(self)

    @cached_property
    def executions(self) -> Executions:
        from .resources.executions import Executions

        return Executions(self)

    # --- lifecycle ---

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A copy with other settings that shares this client's connection pool."""
        new: Self = self._copy_with(timeout, max_retries, default_headers)
        return new

    def health(self) -> dict[str, Any]:
        """``GET /health`` of the gateway (``{"status": "ok", "version": ...}``)."""
        result: dict[str, Any] = self._request("GET", "/health", lambda d: dict(d or {}))
        return result

    def whoami(self) -> dict[str, Any]:
        """``GET /whoami``: the project and scopes of this client's key (never the key)."""
        result: dict[str, Any] = self._request("GET", "/whoami", lambda d: dict(d or {}))
        return result

    def close(self) -> None:
        """Close the connection pool (a ``with_options`` copy leaves it to the original)."""
        if self._owns_http:
            self._http.close()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the send loop ---

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None,
        body: Any,
        extra_headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        stream: bool,
    ) -> tuple[httpx.Response, int, float]:
        if idempotency_key is None and method in base.WRITE_METHODS:
            idempotency_key = (
                base.find_header(extra_headers, "idempotency-key") or base.new_idempotency_key()
            )
        started = time.monotonic()
        retries = 0
        while True:
            request = self._build(
                self._http, method, path, query, body, extra_headers, idempotency_key, retries
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TimeoutException as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise exc.TimeoutError(
                        f"{method} {path} timed out after {retries + 1} attempt(s)"
                    ) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            except httpx.TransportError as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise exc.APIConnectionError(
                        f"{method} {path} failed after {retries + 1} attempt(s): "
                        f"{type(e).__name__}: {e}"
                    ) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            else:
                if response.is_success:
                    self._log_done(method, path, response, started)
                    return response, retries, started
                decision = self._decide(method, response, retries, idempotency_key)
                try:
                    response.read()
                finally:
                    response.close()
                if not decision.retry:
                    raise self._status_error(response)
                self._log_retry(method, path, f"HTTP {response.status_code}", decision, retries)
            _sleep(decision.delay)
            retries += 1

    def _request(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        extra_headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        response, retries, started = self._send(
            method,
            path,
            query=query,
            body=body,
            extra_headers=extra_headers,
            idempotency_key=idempotency_key,
            stream=False,
        )
        self._record(response, retries, started)
        return parse(self._json(response))

    def _request_page(
        self,
        path: str,
        parse: Callable[[Any], T],
        query: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None,
    ) -> SyncPage[T]:
        from .types import SyncPage

        data = self._request("GET", path, lambda d: d, query=query, extra_headers=extra_headers)
        items, has_more, cursor = self._page_parts(data, parse)

        def fetch_next(after: str) -> SyncPage[T]:
            return self._request_page(path, parse, {**query, "after": after}, extra_headers)

        return SyncPage(items, has_more, cursor, fetch_next)

    def _request_stream(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        body: Any = None,
        extra_headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Stream[T]:
        headers = {"Accept": "text/event-stream", **(extra_headers or {})}
        response, retries, started = self._send(
            method,
            path,
            query=None,
            body=body,
            extra_headers=headers,
            idempotency_key=idempotency_key,
            stream=True,
        )
        self._record(response, retries, started)
        return Stream(response, parse)


class AsyncBudClient(_ClientConfig):
    """The asynchronous client; the same arguments as ``BudClient``. Safe to share between tasks
    of one event loop; use ``async with`` (or ``await client.close()``) to close it."""

    _http: httpx.AsyncClient

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = base.DEFAULT_TIMEOUT,
        max_retries: int = base.DEFAULT_MAX_RETRIES,
        verify_ssl: bool = True,
        proxy: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_key, base_url, timeout, max_retries, verify_ssl, proxy, default_headers
        )
        if http_client is not None:
            self._http = http_client
            self._owns_http = False
        else:
            self._http = httpx.AsyncClient(
                headers=base.static_headers(self._api_key),
                timeout=self._httpx_timeout,
                verify=verify_ssl,
                proxy=proxy,
                limits=_DEFAULT_LIMITS,
            )
            self._owns_pool_headers = True

    @cached_property
    def chat(self) -> AsyncChat:
        from .resources.chat import AsyncChat

        return AsyncChat(self)

    @cached_property
    def models(self) -> AsyncModels:
        from .resources.models import AsyncModels

        return AsyncModels(self)

    @cached_property
    def deployments(self) -> AsyncDeployments:
        from .resources.deployments import AsyncDeployments

        return AsyncDeployments(self)

    @cached_property
    def clusters(self) -> AsyncClusters:
        from .resources.clusters import AsyncClusters

        return AsyncClusters(self)

    @cached_property
    def pipelines(self) -> AsyncPipelines:
        from .resources.pipelines import AsyncPipelines

        return AsyncPipelines(self)

    @cached_property
    def executions(self) -> AsyncExecutions:
        from .resources.executions import AsyncExecutions

        return AsyncExecutions(self)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A copy with other settings that shares this client's connection pool."""
        new: Self = self._copy_with(timeout, max_retries, default_headers)
        return new

    async def health(self) -> dict[str, Any]:
        """``GET /health`` of the gateway (``{"status": "ok", "version": ...}``)."""
        result: dict[str, Any] = await self._request("GET", "/health", lambda d: dict(d or {}))
        return result

    async def whoami(self) -> dict[str, Any]:
        """``GET /whoami``: the project and scopes of this client's key (never the key)."""
        result: dict[str, Any] = await self._request("GET", "/whoami", lambda d: dict(d or {}))
        return result

    async def close(self) -> None:
        """Close the connection pool (a ``with_options`` copy leaves it to the original)."""
        if self._owns_http:
            await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None,
        body: Any,
        extra_headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        stream: bool,
    ) -> tuple[httpx.Response, int, float]:
        if idempotency_key is None and method in base.WRITE_METHODS:
            idempotency_key = (
                base.find_header(extra_headers, "idempotency-key") or base.new_idempotency_key()
            )
        started = time.monotonic()
        retries = 0
        while True:
            request = self._build(
                self._http, method, path, query, body, extra_headers, idempotency_key, retries
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TimeoutException as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise exc.TimeoutError(
                        f"{method} {path} timed out after {retries + 1} attempt(s)"
                    ) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            except httpx.TransportError as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise exc.APIConnectionError(
                        f"{method} {path} failed after {retries + 1} attempt(s): "
                        f"{type(e).__name__}: {e}"
                    ) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            else:
                if response.is_success:
                    self._log_done(method, path, response, started)
                    return response, retries, started
                decision = self._decide(method, response, retries, idempotency_key)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                if not decision.retry:
                    raise self._status_error(response)
                self._log_retry(method, path, f"HTTP {response.status_code}", decision, retries)
            await _async_sleep(decision.delay)
            retries += 1

    async def _request(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        extra_headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        response, retries, started = await self._send(
            method,
            path,
            query=query,
            body=body,
            extra_headers=extra_headers,
            idempotency_key=idempotency_key,
            stream=False,
        )
        self._record(response, retries, started)
        return parse(self._json(response))

    async def _request_page(
        self,
        path: str,
        parse: Callable[[Any], T],
        query: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None,
    ) -> AsyncPage[T]:
        from .types import AsyncPage

        data = await self._request(
            "GET", path, lambda d: d, query=query, extra_headers=extra_headers
        )
        items, has_more, cursor = self._page_parts(data, parse)

        async def fetch_next(after: str) -> AsyncPage[T]:
            return await self._request_page(path, parse, {**query, "after": after}, extra_headers)

        return AsyncPage(items, has_more, cursor, fetch_next)

    def _paginator(
        self,
        path: str,
        parse: Callable[[Any], T],
        query: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None,
    ) -> AsyncPaginator[T]:
        from .types import AsyncPaginator

        return AsyncPaginator(lambda: self._request_page(path, parse, query, extra_headers))

    async def _request_stream(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        body: Any = None,
        extra_headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncStream[T]:
        headers = {"Accept": "text/event-stream", **(extra_headers or {})}
        response, retries, started = await self._send(
            method,
            path,
            query=None,
            body=body,
            extra_headers=headers,
            idempotency_key=idempotency_key,
            stream=True,
        )
        self._record(response, retries, started)
        return AsyncStream(response, parse)
