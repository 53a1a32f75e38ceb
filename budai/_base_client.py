"""Every decision the clients make, with no I/O: configuration, request building, the retry
policy, error mapping and header parsing.

``_client.py`` (the send loops) and the resources call these pure functions, so the sync and
async clients cannot drift apart, and each rule can be tested without a network.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from . import exceptions as exc
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "CallInfo",
    "RetryDecision",
    "backoff_delay",
    "build_headers",
    "decide_retry",
    "error_from_response",
    "error_from_stream_event",
    "next_poll_interval",
    "parse_rate_limits",
    "parse_retry_after",
]

DEFAULT_BASE_URL: Final = "https://gateway.bud.studio/v1"
DEFAULT_TIMEOUT: Final = 30.0
CONNECT_TIMEOUT: Final = 5.0
DEFAULT_MAX_RETRIES: Final = 3
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 60.0
"""Longest ``Retry-After`` the SDK waits for; a longer one is raised to the caller instead."""

RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
WRITE_METHODS: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})

POLL_INITIAL_INTERVAL: Final = 0.5
POLL_MAX_INTERVAL: Final = 5.0
POLL_GROWTH: Final = 1.5
DEFAULT_WAIT_TIMEOUT: Final = 600.0
"""Deadline of ``executions.wait`` when none is given; pass ``math.inf`` to wait forever."""

ENV_API_KEY: Final = "BUD_API_KEY"
ENV_BASE_URL: Final = "BUD_BASE_URL"


# --- configuration ---------------------------------------------------------------------------


def resolve_api_key(api_key: str | None) -> str:
    """The explicit key, else ``BUD_API_KEY``; a missing key fails now, not at the first call."""
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if not key:
        raise exc.AuthenticationError(
            f"No API key: pass BudClient(api_key=...) or set the {ENV_API_KEY} environment variable"
        )
    return key


def resolve_base_url(base_url: str | None) -> str:
    """The explicit URL, else ``BUD_BASE_URL``, else the public gateway; no trailing slash."""
    url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


_USER_AGENT: Final = f"budai/{__version__} python/{platform.python_version()}"


def user_agent() -> str:
    return _USER_AGENT


# --- request building ------------------------------------------------------------------------


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


_PLAIN_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.~-]+\Z")


def path_segment(value: str, what: str = "id") -> str:
    """Quote one path segment; an empty (or dot) id would silently address another path."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if _PLAIN_SEGMENT.match(value):  # ids are almost always plain: skip quote() on the hot path
        return value
    return quote(value, safe="")


_RESERVED_HEADERS: Final = frozenset({"authorization", "idempotency-key", "x-bud-retry-count"})


def static_headers(api_key: str) -> dict[str, str]:
    """Headers identical on every request of a client (set once on a pool the SDK owns)."""
    return {
        "Accept": "application/json",
        "User-Agent": _USER_AGENT,
        "Authorization": f"Bearer {api_key}",
    }


def find_header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive lookup in caller-supplied headers."""
    if headers:
        for key, value in headers.items():
            if key.lower() == name:
                return value
    return None


def build_headers(
    *,
    api_key: str,
    default_headers: Mapping[str, str] | None,
    extra_headers: Mapping[str, str] | None,
    idempotency_key: str | None,
    retry_count: int,
    include_static: bool = True,
) -> dict[str, str]:
    """Headers of one attempt. Caller headers (default, then extra) may replace ``Accept`` or
    ``User-Agent`` but never authentication, the idempotency key or the retry count.
    ``include_static=False`` leaves out what the SDK's own pool already sends."""
    headers = static_headers(api_key) if include_static else {}
    if default_headers or extra_headers:
        lowered = {k.lower(): k for k in headers}
        for source in (default_headers, extra_headers):
            for key, value in (source or {}).items():
                low = key.lower()
                if low in _RESERVED_HEADERS:
                    continue
                headers.pop(lowered.get(low, key), None)
                lowered[low] = key
                headers[key] = value
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    headers["X-Bud-Retry-Count"] = str(retry_count)
    return headers


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values: an argument left at ``None`` is not sent at all."""
    return {k: v for k, v in values.items() if v is not None}


# --- the retry policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryDecision:
    """Whether to try again, and after how many seconds."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


def backoff_delay(retries_taken: int, rand: float | None = None) -> float:
    """``min(0.5 * 2**n, 8)`` seconds, shortened by up to 25 % of jitter (never lengthened)."""
    base = min(INITIAL_RETRY_DELAY * 2.0**retries_taken, MAX_RETRY_DELAY)
    u = random.random() if rand is None else rand
    return base * (1.0 - 0.25 * u)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``Retry-After`` as seconds or
    as an HTTP date. ``None`` when absent or unparseable (NaN, infinite or negative)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        import email.utils  # rare path: only for HTTP-date values

        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = max(when.timestamp() - now, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def decide_retry(
    *,
    method: str,
    status: int | None,
    headers: Mapping[str, str] | None,
    retries_taken: int,
    max_retries: int,
    idempotency_key: str | None,
    now: float,
    rand: float | None = None,
) -> RetryDecision:
    """The retry policy. ``status is None`` means no response (connection error or timeout).

    Retried: no response, 408, 429, 500, 502, 503, 504; never other statuses. Writes
    (POST/PATCH/PUT/DELETE) only when they carry an ``Idempotency-Key``, which the SDK always
    sends. A ``Retry-After`` up to 60 s replaces the backoff; a longer one is not waited for.
    """
    if retries_taken >= max_retries:
        return RetryDecision(False, reason="out of retries")
    if method.upper() in WRITE_METHODS and not idempotency_key:
        return RetryDecision(False, reason="write without an idempotency key")
    if status is not None and status not in RETRYABLE_STATUSES:
        return RetryDecision(False, reason=f"status {status} is not retryable")
    if status is not None and headers is not None:
        wait = parse_retry_after(headers, now)
        if wait is not None:
            if wait > MAX_RETRY_AFTER:
                too_long = f"Retry-After {wait:g}s exceeds {MAX_RETRY_AFTER:g}s"
                return RetryDecision(False, reason=too_long)
            return RetryDecision(True, wait, reason="Retry-After")
    return RetryDecision(True, backoff_delay(retries_taken, rand), reason="backoff")


def next_poll_interval(current: float) -> float:
    """The polling interval of ``executions.wait``: 0.5 s growing by 1.5x up to 5 s."""
    return min(current * POLL_GROWTH, POLL_MAX_INTERVAL)


# --- responses -------------------------------------------------------------------------------


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw))
    except ValueError:
        return None


def parse_rate_limits(headers: Mapping[str, str]) -> tuple[int | None, int | None, int | None]:
    """``(limit, remaining, reset)`` from the ``X-RateLimit-*`` headers."""
    return (
        _int_header(headers, "x-ratelimit-limit"),
        _int_header(headers, "x-ratelimit-remaining"),
        _int_header(headers, "x-ratelimit-reset"),
    )


@dataclass(frozen=True)
class CallInfo:
    """HTTP metadata of a finished request, for ``Response[T]``."""

    headers: dict[str, str]
    status_code: int
    request_id: str
    retries_taken: int
    elapsed: float


CAPTURE: ContextVar[list[CallInfo] | None] = ContextVar("budai_capture", default=None)
"""Set by ``.with_response`` wrappers: each finished request of the call appends its metadata."""


def attach_request_id(result: Any, request_id: str | None) -> None:
    """Set ``_request_id`` on a returned object (as openai-python does), if it has the slot."""
    if request_id and hasattr(result, "_request_id"):
        result._request_id = request_id


def missing_v1_hint(base_url: str) -> str:
    """A hint for a base URL without the API's ``/v1`` prefix (``""`` when it has one)."""
    from urllib.parse import urlsplit

    path = urlsplit(base_url).path.rstrip("/")
    if path.endswith("/v1") or "/v1/" in path:
        return ""
    return f" (the base URL {base_url} has no /v1; did you mean {base_url}/v1?)"


def record_call(info: CallInfo) -> None:
    sink = CAPTURE.get()
    if sink is not None:
        sink.append(info)


_STATUS_CLASSES: Final[dict[int, type[exc.BudAPIError]]] = {
    400: exc.BadRequestError,
    401: exc.AuthenticationError,
    403: exc.PermissionError,
    404: exc.NotFoundError,
    408: exc.TimeoutError,
    409: exc.ConflictError,
    422: exc.ValidationError,
    429: exc.RateLimitError,
}

_TYPE_CLASSES: Final[dict[str, type[exc.BudAPIError]]] = {
    "invalid_request_error": exc.BadRequestError,
    "authentication_error": exc.AuthenticationError,
    "permission_error": exc.PermissionError,
    "not_found_error": exc.NotFoundError,
    "conflict_error": exc.ConflictError,
    "validation_error": exc.ValidationError,
    "rate_limit_error": exc.RateLimitError,
    "server_error": exc.ServerError,
    "timeout_error": exc.TimeoutError,
}


def status_error_class(status: int) -> type[exc.BudAPIError]:
    if status >= 500:
        return exc.ServerError
    return _STATUS_CLASSES.get(status, exc.BudAPIError)


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _text_snippet(content: bytes, limit: int = 200) -> str:
    """A short readable excerpt of a non-JSON body (a proxy's HTML page, say)."""
    text = content.decode("utf-8", errors="replace")
    if "<" in text and ">" in text:
        text = _TAG.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    reason: str = "",
    api_key: str | None = None,
    now: float = 0.0,
) -> exc.BudAPIError:
    """Map a non-2xx response to its exception. Bodies that are not the contract's
    ``{"error": {...}}`` (HTML, plain text, FastAPI's ``{"detail": ...}``, empty) still give the
    class for the status and a readable message. ``api_key`` is scrubbed from the message."""
    body: Any = None
    message = ""
    err_type: str | None = None
    code: str | None = None
    param: str | None = None
    request_id = headers.get("x-request-id") or ""
    if api_key:
        # Scrub before parsing: a proxy that echoes the request puts the key anywhere in the
        # body, and callers log ``err.body`` as readily as ``err.message``.
        content = content.replace(api_key.encode(), b"***")
    if content:
        try:
            body = json.loads(content)
        except ValueError:
            body = content.decode("utf-8", errors="replace")
            message = _text_snippet(content)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or "")
            err_type = err.get("type") if isinstance(err.get("type"), str) else None
            code = err.get("code") if isinstance(err.get("code"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
            request_id = request_id or str(err.get("request_id") or "")
        elif isinstance(err, str):
            message = err
        elif "detail" in body:
            detail = body["detail"]
            message = detail if isinstance(detail, str) else json.dumps(detail)[:500]
        elif "message" in body:
            message = str(body["message"])
    phrase = f"HTTP {status}{' ' + reason if reason else ''}"
    message = f"{phrase}: {message}" if message and not err_type else (message or phrase)
    cls = status_error_class(status)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "type": err_type,
        "request_id": request_id,
        "param": param,
        "code": code,
        "body": body,
    }
    if cls is exc.RateLimitError:
        return exc.RateLimitError(message, retry_after=_retry_after_seconds(headers, now), **kwargs)
    err = cls(message, **kwargs)
    if isinstance(err, exc.ConflictError):
        # The gateway points at the object holding a taken name with `Location: .../<id>`.
        location = headers.get("location")
        if location:
            err.existing_id = location.rstrip("/").rsplit("/", 1)[-1]
    return err


def _retry_after_seconds(headers: Mapping[str, str], now: float) -> int:
    """Whole seconds to wait after a 429: ``Retry-After``, else until ``X-RateLimit-Reset``,
    else 0 (the server gave no hint)."""
    wait = parse_retry_after(headers, now)
    if wait is not None:
        return math.ceil(wait)
    reset = _int_header(headers, "x-ratelimit-reset")
    if reset is not None and now:
        return max(math.ceil(reset - now), 0)
    return 0


def error_from_stream_event(payload: Mapping[str, Any], request_id: str) -> exc.BudAPIError:
    """An ``data: {"error": {...}}`` event sent after a stream started."""
    err = payload.get("error")
    if not isinstance(err, dict):
        err = {"message": str(err)}
    err_type = err.get("type") if isinstance(err.get("type"), str) else None
    cls = _TYPE_CLASSES.get(err_type or "", exc.ServerError)
    return cls(
        str(err.get("message") or "the stream failed"),
        status_code=0,
        type=err_type,
        request_id=str(err.get("request_id") or request_id),
        param=err.get("param") if isinstance(err.get("param"), str) else None,
        code=err.get("code") if isinstance(err.get("code"), str) else None,
        body=dict(payload),
    )
