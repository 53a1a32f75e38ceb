"""``Response[T]``: what ``.with_response`` methods return (the parsed data plus HTTP metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Response"]

T = TypeVar("T")


@dataclass
class Response(Generic[T]):
    """A parsed result together with the HTTP response it came from.

    ``headers`` has lower-case names. ``rate_limit_*`` come from ``X-RateLimit-*`` headers
    (``None`` when absent). For calls that make several requests (``executions.create(...,
    wait=True)``, iterating a page), the metadata is that of the last request made.
    """

    data: T
    headers: dict[str, str]
    status_code: int
    request_id: str
    rate_limit_remaining: int | None
    rate_limit_reset: int | None
    rate_limit_limit: int | None = None
    retries_taken: int = 0
    elapsed: float = field(default=0.0)
    """Seconds from the first attempt to the final response headers."""

    def parse(self) -> T:
        """The parsed data (openai-python's ``with_raw_response`` spelling of ``.data``)."""
        return self.data
