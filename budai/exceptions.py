"""Exceptions raised by the SDK.

Every exception derives from ``BudAPIError`` and carries ``status_code, message, type,
request_id, param`` (plus ``code`` and the parsed ``body``). Errors that happen before any
response arrives have ``status_code == 0``: ``APIConnectionError`` (connection refused or reset,
TLS failure) and ``TimeoutError`` (the request or an ``executions.wait`` deadline expired).

``PermissionError`` and ``TimeoutError`` keep the reference page's names and also subclass the
builtins of the same name, so ``except TimeoutError`` catches them either way; the aliases
``BudPermissionError`` and ``BudTimeoutError`` avoid shadowing the builtins in user code.

This module imports nothing heavy: the CLI and the operator import it on their fast paths.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "BudAPIError",
    "BudPermissionError",
    "BudTimeoutError",
    "ClientClosedError",
    "ConflictError",
    "NotFoundError",
    "PermissionError",
    "RateLimitError",
    "ServerError",
    "TimeoutError",
    "ValidationError",
    "WaitError",
]


class BudAPIError(Exception):
    """Base class of every SDK error."""

    status_code: int
    message: str
    type: str
    request_id: str
    param: str | None
    code: str | None
    body: Any

    default_type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 0,
        type: str | None = None,
        request_id: str = "",
        param: str | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.type = type or self.default_type
        self.request_id = request_id
        self.param = param
        self.code = code
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status_code:
            details.append(f"status {self.status_code}")
        if self.code:
            details.append(f"code {self.code}")
        if self.param:
            details.append(f"param {self.param}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, type={self.type!r}, "
            f"code={self.code!r}, message={self.message!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes survive pickling (multiprocessing, task queues).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[BudAPIError], message: str, state: dict[str, Any]) -> BudAPIError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class APIConnectionError(BudAPIError):
    """The request did not get a response: connection refused or reset, DNS or TLS failure."""

    default_type = "connection_error"


class TimeoutError(BudAPIError, builtins.TimeoutError):
    """A request timed out (after retries), a 408 came back, or a wait deadline passed.

    ``execution`` (and ``obj``) hold the last state seen when ``executions.wait`` gave up.
    """

    default_type = "timeout_error"
    execution: Any = None
    obj: Any = None
    """The last state a waiter saw before its deadline."""


class BadRequestError(BudAPIError):
    """400: the request is malformed (unknown filter, bad JSON, bad parameter)."""

    default_type = "invalid_request_error"


class AuthenticationError(BudAPIError):
    """401: the API key is missing or unknown."""

    default_type = "authentication_error"


class PermissionError(BudAPIError, builtins.PermissionError):
    """403: the API key lacks the scope for this call."""

    default_type = "permission_error"


class NotFoundError(BudAPIError):
    """404: no such object (or route)."""

    default_type = "not_found_error"


class ConflictError(BudAPIError):
    """409: the call conflicts with the current state; ``code`` says how (``already_exists``,
    ``model_in_use``, ``idempotency_key_reused``, ...) and ``param`` names the field at fault.
    For ``already_exists``, ``existing_id`` is the id of the object that holds the name."""

    default_type = "conflict_error"
    existing_id: str | None = None


class ValidationError(BudAPIError):
    """422: the body is well-formed but invalid; ``param`` names the field."""

    default_type = "validation_error"


class RateLimitError(BudAPIError):
    """429: too many requests; ``retry_after`` is the number of seconds to wait."""

    default_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    retry_after: int


class ClientClosedError(BudAPIError):
    """A call on a client after ``close()`` (or after its ``with`` block ended)."""

    default_type = "client_closed"


class WaitError(BudAPIError):
    """A waiter (``models.wait_until_available``, ``deployments.wait_until_active``,
    ``executions.wait(..., raise_on_failure=True)``) saw the object end in ``error``/``failed``
    or stay ``pending`` for a reason the gateway gave; the message carries that reason and
    ``obj`` the last state."""

    default_type = "wait_error"
    obj: Any = None


class ServerError(BudAPIError):
    """5xx: the gateway (or something in front of it) failed."""

    default_type = "server_error"


BudPermissionError = PermissionError
BudTimeoutError = TimeoutError
