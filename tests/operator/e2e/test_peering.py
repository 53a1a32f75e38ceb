"""One active instance among replicas: a second operator with a higher peering priority takes
over, the first stops reconciling (nothing at all while it is paused) and resumes when the
leader leaves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    OperatorProcess,
    condition,
    get_obj,
    reconciles,
    start_operator,
    stop_operator,
    wait_for,
)
from .test_operator_e2e import model_yaml

pytestmark = [pytest.mark.kube, pytest.mark.timeout(240)]


def _state(op: OperatorProcess) -> str:
    """The runtime's last word on leading: "pausing" or "resuming" (it starts paused)."""
    words = [
        word
        for line in op.logs().splitlines()
        for word in ("pausing", "resuming")
        if f"{word} reconciling" in line
    ]
    return words[-1] if words else ""


def _steady(op: OperatorProcess) -> tuple[float] | None:
    """The reconcile counter once it stayed put for 2 s (None while it still moves)."""
    before = reconciles(op)
    time.sleep(2)
    after = reconciles(op)
    return (after,) if after == before else None


def _ready(kube: Any, name: str, ns: str) -> bool:
    return condition(get_obj(kube, "budmodel", name, ns), "Ready").get("status") == "True"


def test_only_the_leader_reconciles(
    kube: Any, gateway: Any, operator: OperatorProcess, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    leader = start_operator(kube, gateway, tmp_path / "leader", "--priority", "50")
    try:
        wait_for(
            "the leader to lead and the first operator to pause",
            lambda: _state(leader) == "resuming" and _state(operator) == "pausing",
        )
        # Reconciles already running when the pause came finish on their own: count from
        # when the follower's counter has stopped moving.
        (follower_before,) = wait_for(
            "the follower's in-flight reconciles to end", lambda: _steady(operator)
        )
        kube.apply(model_yaml("led-by-leader"), namespace=ns)
        wait_for("the leader to make the model Ready", lambda: _ready(kube, "led-by-leader", ns))
        assert reconciles(leader, "BudModel") >= 1
        time.sleep(3)  # the follower's timers and list refreshes would fire in this window
        assert reconciles(operator) == follower_before, "a paused replica reconciled"
    finally:
        stop_operator(leader)
    wait_for(
        "the first operator to resume once the leader left",
        lambda: _state(operator) == "resuming",
    )
    resumed_at = reconciles(operator, "BudModel")
    kube.apply(model_yaml("after-leader"), namespace=ns)
    wait_for("the first operator to reconcile again", lambda: _ready(kube, "after-leader", ns))
    assert reconciles(operator, "BudModel") > resumed_at
