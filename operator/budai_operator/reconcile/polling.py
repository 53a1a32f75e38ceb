"""Adaptive poll intervals and the annotations that steer reconciles."""

from __future__ import annotations

import re
from collections.abc import Mapping

ANN_EXTERNAL_ID = "bud.studio/external-id"
ANN_RECONCILE_REQUESTED_AT = "bud.studio/reconcile-requested-at"
ANN_PAUSED = "bud.studio/paused"
ANN_POLL_INTERVAL = "bud.studio/poll-interval"
FINALIZER = "bud.studio/finalizer"

IN_FLIGHT_INTERVAL = 10.0
STABLE_INTERVAL = 300.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86400.0

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str) -> float | None:
    """Parse `90`, `90s`, `5m`, `1h30m` into seconds; None when it does not parse."""
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def is_paused(annotations: Mapping[str, str]) -> bool:
    """`bud.studio/paused: "true"` stops remote writes."""
    return annotations.get(ANN_PAUSED, "").strip().lower() == "true"


def poll_interval(
    annotations: Mapping[str, str],
    *,
    in_flight: bool,
    jitter: float = 0.0,
    in_flight_interval: float = IN_FLIGHT_INTERVAL,
    stable_interval: float = STABLE_INTERVAL,
) -> float:
    """Seconds until the next poll: fast while work is in flight, slow when stable, with up to
    +/-10 % jitter; `bud.studio/poll-interval` overrides both (and is not jittered)."""
    override = annotations.get(ANN_POLL_INTERVAL)
    if override:
        parsed = parse_duration(override)
        if parsed is not None:
            return min(max(parsed, MIN_INTERVAL), MAX_INTERVAL)
    base = in_flight_interval if in_flight else stable_interval
    return base * (0.9 + 0.2 * min(max(jitter, 0.0), 1.0))
