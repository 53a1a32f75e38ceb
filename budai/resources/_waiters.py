"""The decisions of the waiters, with no I/O: when an object is done, failed or stuck, and how
long to sleep before the next poll. The sync and async resources only fetch and sleep.

Polling starts at 0.5 s and grows by 1.5x up to 5 s (or stays at ``poll_interval``). The
deadline covers the whole wait; on expiry ``budai.exceptions.TimeoutError`` carries the last
state in ``.obj`` (and ``.execution`` for executions).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .. import exceptions as exc
from .._base_client import DEFAULT_WAIT_TIMEOUT, POLL_INITIAL_INTERVAL, next_poll_interval

__all__ = ["DEFAULT_PENDING_TIMEOUT", "Poller", "deployment_done", "model_done"]

DEFAULT_PENDING_TIMEOUT = 60.0
"""How long a deployment may stay ``pending`` with a reason (too little CPU, say) before
``wait_until_active`` gives up with that reason."""

OnUpdate = Callable[[Any], object]


class Poller:
    """The clock of one wait: deadline, interval, and how long the object has looked stuck."""

    def __init__(self, what: str, timeout: float | None, poll_interval: float | None) -> None:
        limit = DEFAULT_WAIT_TIMEOUT if timeout is None else timeout
        if limit < 0 or math.isnan(limit):
            raise ValueError("timeout must be >= 0 seconds")
        if poll_interval is not None and not poll_interval > 0:
            raise ValueError("poll_interval must be > 0 seconds")
        self.what = what
        self.limit = limit
        self.deadline = time.monotonic() + limit
        self.fixed = poll_interval
        self.interval = poll_interval or POLL_INITIAL_INTERVAL
        self.stuck_since: float | None = None

    def next_sleep(self, last: Any) -> float:
        """Seconds to sleep before the next poll; raises ``TimeoutError`` past the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            status = getattr(last, "status", "?")
            err = exc.TimeoutError(
                f"{self.what} was still {status} after {self.limit:g}s", param="timeout"
            )
            err.obj = last
            raise err
        sleep = min(self.interval, remaining)
        if self.fixed is None:
            self.interval = next_poll_interval(self.interval)
        return sleep

    def stuck_for(self, stuck: bool) -> float:
        """Seconds the object has been stuck (0 when it is not, or just became so)."""
        if not stuck:
            self.stuck_since = None
            return 0.0
        now = time.monotonic()
        if self.stuck_since is None:
            self.stuck_since = now
        return now - self.stuck_since


def _fail(what: str, obj: Any, how: str) -> exc.WaitError:
    reason = getattr(obj, "error", None) or "the gateway gave no reason"
    err = exc.WaitError(f"{what} {how}: {reason}", request_id=getattr(obj, "_request_id", "") or "")
    err.obj = obj
    return err


def model_done(model: Any, poller: Poller) -> bool:
    """``available`` is done; ``error`` or ``deleting`` raise ``WaitError``."""
    if model.status == "available":
        return True
    if model.status == "error":
        raise _fail(poller.what, model, "failed")
    if model.status == "deleting":
        raise _fail(poller.what, model, "is being deleted")
    return False


def deployment_done(dep: Any, poller: Poller, pending_timeout: float) -> bool:
    """``active`` with every replica ready is done; ``failed``/``stopped`` raise, and so does
    ``pending`` with a reason for longer than ``pending_timeout`` seconds."""
    if dep.status == "active" and (dep.ready_replicas or 0) >= dep.replicas:
        return True
    if dep.status == "failed":
        raise _fail(poller.what, dep, "failed")
    if dep.status == "stopped":
        raise _fail(poller.what, dep, "is stopped")
    stuck = dep.status == "pending" and bool(dep.error)
    if stuck and poller.stuck_for(True) >= pending_timeout:
        raise _fail(poller.what, dep, f"is stuck pending after {pending_timeout:g}s")
    if not stuck:
        poller.stuck_for(False)
    return False


def execution_done(execution: Any, poller: Poller, raise_on_failure: bool) -> bool:
    """A terminal status is done; with ``raise_on_failure``, ``failed``/``cancelled`` raise."""
    if not execution.is_terminal:
        return False
    if raise_on_failure and execution.status != "completed":
        raise _fail(poller.what, execution, execution.status)
    return True
