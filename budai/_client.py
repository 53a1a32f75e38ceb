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
from ._types import DEFAULT_OPTIONS, NotGiven, RequestOptions, to_httpx_timeout

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
    timeout: float | httpx.Timeout
    max_retries: int
    _http: httpx.Client | httpx.AsyncClient
    verify_ssl: bool
    proxy: str | None

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout,
        max_retries: int,
        verify_ssl: bool,
        proxy: str | None,
        default_headers: Mapping[str, str] | None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._api_key = base.resolve_api_key(api_key)
        self._base_url_is_default = not (base_url or os.environ.get(base.ENV_BASE_URL))
        self.base_url = base.resolve_base_url(base_url)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else float(timeout)
        self._httpx_timeout = to_httpx_timeout(timeout, base.CONNECT_TIMEOUT)
        self.max_retries = int(max_retries)
        self.verify_ssl = verify_ssl
        self.proxy = proxy
        self._default_headers = dict(default_headers or {})
        self._owns_http = True
        self._owns_pool_headers = False
        """Whether the httpx client already sends ``static_headers`` (only one the SDK made)."""

    def __repr__(self) -> str:
        # Never the API key: reprs end up in logs and tracebacks.
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, timeout={self.timeout!r}, "
            f"max_retries={self.max_retries})"
        )

    def __getstate__(self) -> Any:
        raise TypeError(f"{type(self).__name__} cannot be pickled; create one per process")

    def _copy_with(
        self,
        timeout: float | httpx.Timeout | None,
        max_retries: int | None,
        default_headers: Mapping[str, str] | None,
    ) -> Any:
        new = object.__new__(type(self))
        state = {k: v for k, v in self.__dict__.items() if k not in _RESOURCES}
        new.__dict__.update(state)
        new._owns_http = False  # the pool belongs to the original client
        if timeout is not None:
            new._httpx_timeout = to_httpx_timeout(timeout, base.CONNECT_TIMEOUT)
            new.timeout = timeout if isinstance(timeout, httpx.Timeout) else float(timeout)
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
        options: RequestOptions,
        idempotency_key: str | None,
        retry_count: int,
    ) -> httpx.Request:
        headers = base.build_headers(
            api_key=self._api_key,
            default_headers=self._default_headers,
            extra_headers=options.extra_headers,
            idempotency_key=idempotency_key,
            retry_count=retry_count,
            include_static=not self._owns_pool_headers,
        )
        if options.extra_query:
            query = {**(query or {}), **options.extra_query}
        if options.extra_body:
            if body is not None and not isinstance(body, Mapping):
                raise TypeError("extra_body needs a request with a JSON object body")
            body = {**(body or {}), **options.extra_body}
        timeout = self._httpx_timeout
        if not isinstance(options.timeout, NotGiven):
            timeout = to_httpx_timeout(options.timeout, base.CONNECT_TIMEOUT)
        return http.build_request(
            method,
            self.base_url + path,
            params=query or None,
            json=body,
            headers=headers,
            timeout=timeout,
        )

    def _check_open(self, method: str, path: str) -> None:
        if self._http.is_closed:
            raise exc.ClientClosedError(
                f"{method} {path}: this client was closed; create a new one "
                "(or use it inside `with BudClient(...) as client:`)"
            )

    def _url_hint(self) -> str:
        """Why a request may have gone to the wrong place, for error messages."""
        if self._base_url_is_default:
            return (
                f" (BUD_BASE_URL is not set, so the cloud default {self.base_url} was used; "
                f"set {base.ENV_BASE_URL} or pass base_url=... for a local gateway)"
            )
        return base.missing_v1_hint(self.base_url)

    def _connection_error(
        self, method: str, request: httpx.Request, retries: int, e: Exception
    ) -> exc.APIConnectionError:
        return exc.APIConnectionError(
            f"{method} {request.url} failed after {retries + 1} attempt(s): "
            f"{type(e).__name__}: {e}{self._url_hint()}"
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
        """Every answer at debug level, 4xx/5xx included (they are what one debugs)."""
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
        err = base.error_from_response(
            response.status_code,
            response.headers,
            response.content,
            reason=response.reason_phrase,
            api_key=self._api_key,
            now=time.time(),
        )
        if response.status_code == 404 and err.code in (None, "route_not_found"):
            hint = base.missing_v1_hint(self.base_url)
            if hint:
                err.message += hint
                err.args = (err.message,)
        return err

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
    def _parse(parse: Callable[[Any], T], response: httpx.Response) -> T:
        result = parse(_ClientConfig._json(response))
        base.attach_request_id(result, response.headers.get("x-request-id"))
        return result

    @staticmethod
    def _page_parts(
        data: Any, parse: Callable[[Any], T], request_id: str | None
    ) -> tuple[list[T], bool, str | None]:
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise exc.BudAPIError("the server sent a list response without a 'data' array")
        items = [parse(item) for item in data["data"]]
        for item in items:
            base.attach_request_id(item, request_id)
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
        timeout: float | httpx.Timeout = base.DEFAULT_TIMEOUT,
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
        timeout: float | httpx.Timeout | None = None,
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
        options: RequestOptions,
        idempotency_key: str | None,
        stream: bool,
    ) -> tuple[httpx.Response, int, float]:
        self._check_open(method, path)
        if idempotency_key is None and method in base.WRITE_METHODS:
            idempotency_key = (
                base.find_header(options.extra_headers, "idempotency-key")
                or base.new_idempotency_key()
            )
        started = time.monotonic()
        retries = 0
        while True:
            request = self._build(
                self._http, method, path, query, body, options, idempotency_key, retries
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TimeoutException as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise exc.TimeoutError(
                        f"{method} {request.url} timed out after {retries + 1} attempt(s)"
                    ) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            except httpx.TransportError as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise self._connection_error(method, request, retries, e) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            else:
                self._log_done(method, path, response, started)
                if response.is_success:
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
        options: RequestOptions = DEFAULT_OPTIONS,
        idempotency_key: str | None = None,
    ) -> T:
        response, retries, started = self._send(
            method,
            path,
            query=query,
            body=body,
            options=options,
            idempotency_key=idempotency_key,
            stream=False,
        )
        self._record(response, retries, started)
        return self._parse(parse, response)

    def _request_page(
        self,
        path: str,
        parse: Callable[[Any], T],
        query: Mapping[str, Any],
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> SyncPage[T]:
        from .types import SyncPage

        response, retries, started = self._send(
            "GET", path, query=query, body=None, options=options,
            idempotency_key=None, stream=False,
        )
        self._record(response, retries, started)
        request_id = response.headers.get("x-request-id")
        items, has_more, cursor = self._page_parts(self._json(response), parse, request_id)

        def fetch_next(after: str) -> SyncPage[T]:
            return self._request_page(path, parse, {**query, "after": after}, options)

        page = SyncPage(items, has_more, cursor, fetch_next)
        page._request_id = request_id
        return page

    def _request_stream(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        body: Any = None,
        options: RequestOptions = DEFAULT_OPTIONS,
        idempotency_key: str | None = None,
    ) -> Stream[T]:
        headers = {"Accept": "text/event-stream", **(options.extra_headers or {})}
        response, retries, started = self._send(
            method,
            path,
            query=None,
            body=body,
            options=RequestOptions(
                headers, options.extra_query, options.extra_body, options.timeout
            ),
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
        timeout: float | httpx.Timeout = base.DEFAULT_TIMEOUT,
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
        timeout: float | httpx.Timeout | None = None,
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
        options: RequestOptions,
        idempotency_key: str | None,
        stream: bool,
    ) -> tuple[httpx.Response, int, float]:
        self._check_open(method, path)
        if idempotency_key is None and method in base.WRITE_METHODS:
            idempotency_key = (
                base.find_header(options.extra_headers, "idempotency-key")
                or base.new_idempotency_key()
            )
        started = time.monotonic()
        retries = 0
        while True:
            request = self._build(
                self._http, method, path, query, body, options, idempotency_key, retries
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TimeoutException as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise exc.TimeoutError(
                        f"{method} {request.url} timed out after {retries + 1} attempt(s)"
                    ) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            except httpx.TransportError as e:
                decision = self._decide(method, None, retries, idempotency_key)
                if not decision.retry:
                    raise self._connection_error(method, request, retries, e) from e
                self._log_retry(method, path, type(e).__name__, decision, retries)
            else:
                self._log_done(method, path, response, started)
                if response.is_success:
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
        options: RequestOptions = DEFAULT_OPTIONS,
        idempotency_key: str | None = None,
    ) -> T:
        response, retries, started = await self._send(
            method,
            path,
            query=query,
            body=body,
            options=options,
            idempotency_key=idempotency_key,
            stream=False,
        )
        self._record(response, retries, started)
        return self._parse(parse, response)

    async def _request_page(
        self,
        path: str,
        parse: Callable[[Any], T],
        query: Mapping[str, Any],
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> AsyncPage[T]:
        from .types import AsyncPage

        response, retries, started = await self._send(
            "GET", path, query=query, body=None, options=options,
            idempotency_key=None, stream=False,
        )
        self._record(response, retries, started)
        request_id = response.headers.get("x-request-id")
        items, has_more, cursor = self._page_parts(self._json(response), parse, request_id)

        async def fetch_next(after: str) -> AsyncPage[T]:
            return await self._request_page(path, parse, {**query, "after": after}, options)

        page = AsyncPage(items, has_more, cursor, fetch_next)
        page._request_id = request_id
        return page

    def _paginator(
        self,
        path: str,
        parse: Callable[[Any], T],
        query: Mapping[str, Any],
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> AsyncPaginator[T]:
        from .types import AsyncPaginator

        return AsyncPaginator(lambda: self._request_page(path, parse, query, options))

    async def _request_stream(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        body: Any = None,
        options: RequestOptions = DEFAULT_OPTIONS,
        idempotency_key: str | None = None,
    ) -> AsyncStream[T]:
        headers = {"Accept": "text/event-stream", **(options.extra_headers or {})}
        response, retries, started = await self._send(
            method,
            path,
            query=None,
            body=body,
            options=RequestOptions(
                headers, options.extra_query, options.extra_body, options.timeout
            ),
            idempotency_key=idempotency_key,
            stream=True,
        )
        self._record(response, retries, started)
        return AsyncStream(response, parse)
