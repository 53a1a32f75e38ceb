"""Error taxonomy and capped backoff: what a gateway failure means for the resource.

The handlers turn SDK exceptions into a plain `Failure`, so this module needs neither the SDK's
exception classes nor a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
UNAUTHORIZED_RECHECK = 60.0
"""Re-check of an Unauthorized resource (a changed key file wakes them at once)."""
NOT_FOUND_RECHECK = 300.0
"""Re-check of a resource whose create names a remote object that does not exist."""


class ErrorClass(StrEnum):
    """How the operator reacts to a failure."""

    INVALID = "Invalid"
    """400/413/422: the spec is wrong (or too large); no retry until it changes."""
    UNAUTHORIZED = "Unauthorized"
    """401/403: a human must fix the key or its scope; re-checked every few minutes."""
    NOT_FOUND = "NotFound"
    """404: the remote object is gone."""
    ALREADY_EXISTS = "AlreadyExists"
    """409 already_exists: an object with this name exists."""
    CONFLICT = "Conflict"
    """Other 409s (model in use, pipeline paused): retried with backoff."""
    TRANSIENT = "Transient"
    """429, 5xx, timeouts, connection errors: retried with backoff."""


@dataclass(frozen=True)
class Failure:
    """A gateway failure, stripped down to what decisions need (never the API key)."""

    status_code: int
    message: str
    type: str = ""
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    request_id: str = ""

    def describe(self) -> str:
        """One line for a condition message or an Event."""
        parts = [self.message.strip() or self.type or "request failed"]
        details = []
        if self.status_code:
            details.append(f"HTTP {self.status_code}")
        if self.code:
            details.append(self.code)
        if self.param:
            details.append(f"param {self.param}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


def classify(failure: Failure) -> ErrorClass:
    """Map a failure to the reaction the design prescribes."""
    code = failure.status_code
    if code in (400, 413, 422):
        # 413 request_too_large: retrying the same body cannot help; a human must shrink it.
        return ErrorClass.INVALID
    if code in (401, 403):
        return ErrorClass.UNAUTHORIZED
    if code == 404:
        return ErrorClass.NOT_FOUND
    if code == 409:
        return (
            ErrorClass.ALREADY_EXISTS if failure.code == "already_exists" else ErrorClass.CONFLICT
        )
    return ErrorClass.TRANSIENT


def reason_for(failure: Failure) -> str:
    """Stable CamelCase condition/Event reason for a failure."""
    kind = classify(failure)
    if kind is ErrorClass.TRANSIENT:
        if failure.status_code == 429:
            return "RateLimited"
        if failure.status_code == 0:
            return "GatewayUnreachable"
        return "GatewayError"
    if kind is ErrorClass.INVALID:
        return "RequestTooLarge" if failure.status_code == 413 else "InvalidSpec"
    return kind.value


def backoff(attempt: int, retry_after: float | None = None, jitter: float = 0.0) -> float:
    """Delay before retry number `attempt` (0-based): 1 s doubling to 5 min, never below
    `Retry-After`. `jitter` in [0, 1) shaves up to 20 % off so a fleet does not retry in step."""
    base = min(BACKOFF_BASE * float(2 ** min(max(attempt, 0), 30)), BACKOFF_CAP)
    delay = base * (1.0 - 0.2 * min(max(jitter, 0.0), 1.0))
    if retry_after is not None and retry_after > delay:
        return min(retry_after, BACKOFF_CAP * 2)
    return delay
