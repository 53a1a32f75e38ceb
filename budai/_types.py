"""Request options shared by every resource method (the openai-python conventions).

Every method takes ``extra_headers``, ``extra_query``, ``extra_body`` and a per-call ``timeout``
(seconds, an ``httpx.Timeout``, or ``None`` for no timeout); left out, ``timeout`` is the
client's. ``NOT_GIVEN`` tells "left out" apart from ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx

__all__ = ["NOT_GIVEN", "Body", "Headers", "NotGiven", "Query", "RequestOptions", "Timeout"]


class NotGiven:
    """The type of ``NOT_GIVEN``: an argument that was not passed (``None`` means something)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()

Headers = Mapping[str, str]
"""``extra_headers``: sent with the request, after the client's default headers."""
Query = Mapping[str, Any]
"""``extra_query``: added to the query string (it wins over the method's own parameters)."""
Body = Mapping[str, Any]
"""``extra_body``: merged into the JSON body (it wins over the method's own fields)."""
Timeout = float | httpx.Timeout | None
"""A per-call timeout: seconds per attempt, an ``httpx.Timeout``, or ``None`` for none."""


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What a caller may add to one request."""

    extra_headers: Headers | None = None
    extra_query: Query | None = None
    extra_body: Body | None = None
    timeout: Timeout | NotGiven = NOT_GIVEN


DEFAULT_OPTIONS: Final = RequestOptions()


def to_httpx_timeout(value: Timeout, connect: float) -> httpx.Timeout:
    """A per-call timeout as httpx wants it (a number also caps connecting at ``connect``)."""
    if isinstance(value, httpx.Timeout):
        return value
    if value is None:
        return httpx.Timeout(None)
    if value <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {value!r}")
    return httpx.Timeout(float(value), connect=min(connect, float(value)))
