"""The pipeline contract: the rules every path applies to a pipeline definition.

The SDK's models, the DSL, the local gateway's validator and engine, and the operator's CRD
models and decisions all import these, so a step means the same thing however it is sent
(`kubectl apply`, the SDK, the DSL): one step-id pattern, one set of bounds, one set of retry
defaults and one cycle search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

STEP_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""A step id: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
STEP_ID: Final = re.compile(STEP_ID_PATTERN)

MAX_STEPS: Final = 500
"""Steps per pipeline the gateway accepts."""

MAX_ATTEMPTS: Final = 100
MAX_BACKOFF_MULTIPLIER: Final = 100.0
MAX_INITIAL_DELAY_SECONDS: Final = 3600.0
MAX_TIMEOUT_SECONDS: Final = 86_400.0

DEFAULT_MAX_ATTEMPTS: Final = 1
DEFAULT_BACKOFF_MULTIPLIER: Final = 2.0
"""A retry that names no multiplier doubles its delay each attempt, on every path."""
DEFAULT_INITIAL_DELAY_SECONDS: Final = 1.0


def retry_delay(attempt: int, initial_delay_seconds: float, backoff_multiplier: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based) before the next one."""
    return initial_delay_seconds * backoff_multiplier ** (attempt - 1)


def find_cycle(steps: Sequence[tuple[str, Sequence[str]]]) -> tuple[int, int, list[str]] | None:
    """The first dependency cycle among `(step id, depends_on)` pairs, or None.

    Returns ``(step position, depends_on position closing the cycle, path)``, the path starting
    and ending with the same id (``[a, b, a]``: a depends on b, b on a). Unknown and self
    dependencies are not cycles here: each is its own, clearer problem.
    """
    index = {sid: i for i, (sid, _) in enumerate(steps)}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(sid: str) -> tuple[int, int, list[str]] | None:
        state[sid] = 1
        stack.append(sid)
        for j, dep in enumerate(steps[index[sid]][1]):
            if dep not in index or dep == sid:
                continue
            if state.get(dep) == 1:
                return index[sid], j, [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[sid] = 2
        return None

    for sid, _ in steps:
        if sid not in state:
            found = visit(sid)
            if found:
                return found
    return None
