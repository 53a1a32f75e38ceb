"""Following kopf's leadership decision (peering): the one module coupled to kopf's internals.

kopf has no public API that says whether this replica leads. Its peering engine flips a private
toggle and announces each decision on one logger ("Pausing operations in favour of ...",
"Pausing all operators, including self ...", "Resuming operations after the pause ...").
`follow` turns those records into `on_change(active)` calls. The coupling is held here and
nowhere else; a real two-replica run (tests/operator/e2e/test_peering.py) checks it, and
pyproject pins kopf to the minor version that run passed on, so a kopf upgrade that changes the
words fails that test instead of a production rollout. `handlers.py` wires it at startup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

PEERING_LOGGER = "kopf._core.engines.peering"
"""The logger kopf's peering engine announces its decisions on."""

PAUSING = "Pausing"
RESUMING = "Resuming"


def decision(message: str) -> bool | None:
    """What one peering log message means: False (pause), True (resume) or None (neither)."""
    if message.startswith(PAUSING):
        return False
    if message.startswith(RESUMING):
        return True
    return None


class _Follower(logging.Filter):
    """A logging filter that reports decisions and lets every record through."""

    def __init__(self, on_change: Callable[[bool], None]) -> None:
        super().__init__()
        self.on_change = on_change

    def filter(self, record: logging.LogRecord) -> bool:
        active = decision(str(record.msg))
        if active is not None:
            self.on_change(active)
        return True


def follow(on_change: Callable[[bool], None]) -> None:
    """Call `on_change(active)` whenever kopf pauses or resumes this replica.

    Replaces an earlier follower (kopf may restart the operator in one process, e.g. in tests).
    """
    logger = logging.getLogger(PEERING_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, _Follower)]:
        logger.removeFilter(old)
    logger.addFilter(_Follower(on_change))
    # kopf logs the decisions at INFO: keep them even when the operator logs only warnings.
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
