"""budai: the typed Python SDK of the Bud AI platform.

    from budai import BudClient
    client = BudClient(api_key="...")          # or BUD_API_KEY / BUD_BASE_URL
    reply = client.chat.completions.create(model="llama-3.2-1b",
                                           messages=[{"role": "user", "content": "Hi"}])

The clients are imported on first use (``budai.BudClient``), so ``import budai`` stays cheap for
tools that only need the exceptions or the types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import exceptions
from ._version import __version__
from .exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BudAPIError,
    BudPermissionError,
    BudTimeoutError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)

if TYPE_CHECKING:
    from ._client import AsyncBudClient, BudClient
    from ._streaming import AsyncStream, Stream

__all__ = [
    "APIConnectionError",
    "AsyncBudClient",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BudAPIError",
    "BudClient",
    "BudPermissionError",
    "BudTimeoutError",
    "ConflictError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "Stream",
    "ValidationError",
    "__version__",
    "exceptions",
]


def __getattr__(name: str) -> Any:
    # PEP 562 lazy attributes: httpx is imported only when a client is first needed.
    if name in ("BudClient", "AsyncBudClient"):
        from . import _client

        return getattr(_client, name)
    if name in ("Stream", "AsyncStream"):
        from . import _streaming

        return getattr(_streaming, name)
    raise AttributeError(f"module 'budai' has no attribute {name!r}")
