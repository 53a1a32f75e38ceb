"""Pipeline engine faults, checked against the contract's execution semantics
(api-contract.md, "Execution semantics"): a step that times out, a step that keeps failing past
its retries, and cancellation in the middle of a fan-out. Real gateway at speed 1 (``wait`` and
retry delays are real seconds), driven through the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from budai import BudClient
from budai.exceptions import ConflictError
from budai_gateway.testing import LocalGateway

from .conftest import GATEWAY_CONFIG, LEDGER

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bud() -> Iterator[BudClient]:
    with LocalGateway(speed=1, config=GATEWAY_CONFIG) as gw:
        LEDGER.secrets.update({gw.api_key, gw.read_key})
        with BudClient(api_key=gw.api_key, base_url=gw.url) as client:
            yield client
        LEDGER.add("gateway log (engine)", gw.logs())


def run(bud: BudClient, name: str, steps: list[dict[str, Any]], **kw: Any) -> Any:
    pipeline = bud.pipelines.create(
        name=f"{name}-{time.monotonic_ns()}", definition={"steps": steps}
    )
    return bud.executions.create(pipeline.id, params=kw or None)


def secs(a: str | datetime | None, b: str | datetime | None) -> float:
    def ts(v: str | datetime | None) -> float:
        assert v is not None
        return (v if isinstance(v, datetime) else datetime.fromisoformat(v)).timestamp()

    return ts(b) - ts(a)


def describe(x: Any) -> str:
    return f"{x.status} error={x.error!r} steps=" + ", ".join(
        f"{s.id}:{s.status}/{s.attempts}/{s.error!r}" for s in x.steps.values()
    )


def test_step_timeout_fails_the_execution_and_skips_what_depends_on_it(bud: BudClient) -> None:
    x = run(
        bud,
        "timeout",
        [
            {"id": "slow", "action": "wait", "params": {"seconds": 20}, "timeout_seconds": 1},
            {"id": "after", "action": "log", "depends_on": ["slow"], "params": {"message": "no"}},
            {"id": "side", "action": "set_output", "params": {"outputs": {"v": 7}}},
        ],
    )
    x = bud.executions.wait(x.id, timeout=30)
    steps = x.steps
    assert x.status == "failed", describe(x)
    assert "slow" in (x.error or "") and "timed out after 1s" in (x.error or ""), describe(x)
    slow = steps["slow"]
    assert slow.status == "failed" and slow.attempts == 1, describe(x)
    assert slow.error == "timed out after 1s", describe(x)
    assert 0.9 <= (slow.duration_seconds or 0) < 5, f"slow ran {slow.duration_seconds}s"
    assert steps["after"].status == "skipped" and steps["after"].started_at is None, describe(x)
    assert steps["side"].status == "completed" and steps["side"].output == {"v": 7}, describe(x)
    # `outputs` maps each *completed* step to its output: nothing for failed or skipped steps.
    assert x.outputs == {"side": {"v": 7}}, x.outputs
    assert (x.duration_seconds or 99) < 10, f"the execution waited for the slow step: {describe(x)}"


def test_step_failing_past_its_retries(bud: BudClient) -> None:
    x = run(
        bud,
        "retries",
        [
            {
                "id": "flaky",
                "action": "fail",
                "params": {"message": "boom {{ params.n }}"},
                "retry": {"max_attempts": 3, "backoff_multiplier": 2, "initial_delay_seconds": 0.3},
            },
            # Already running when flaky fails for good: it finishes (running steps finish).
            {"id": "sibling", "action": "wait", "params": {"seconds": 2}},
            # Ready only after sibling completes, i.e. after the failure: never starts.
            {"id": "never", "action": "log", "depends_on": ["sibling"], "params": {"message": "x"}},
            {"id": "child", "action": "log", "depends_on": ["flaky"], "params": {"message": "x"}},
        ],
        n=42,
    )
    x = bud.executions.wait(x.id, timeout=30)
    steps = x.steps
    assert x.status == "failed", describe(x)
    flaky = steps["flaky"]
    assert flaky.status == "failed" and flaky.attempts == 3, describe(x)
    assert "boom 42" in (flaky.error or ""), describe(x)
    # Delays 0.3 * 2 ** (attempt - 1): 0.3 s then 0.6 s between the three attempts.
    assert 0.85 <= (flaky.duration_seconds or 0) < 4, f"flaky took {flaky.duration_seconds}s"
    assert "flaky" in (x.error or "") and "boom 42" in (x.error or ""), describe(x)
    assert steps["sibling"].status == "completed", describe(x)
    assert steps["never"].status == "skipped" and steps["never"].started_at is None, describe(x)
    assert steps["child"].status == "skipped", describe(x)
    assert set(x.outputs) == {"sibling"}, x.outputs


def test_cancel_in_the_middle_of_a_fan_out(bud: BudClient) -> None:
    fan = [f"f{i}" for i in range(6)]
    x = run(
        bud,
        "fanout",
        [
            {"id": "root", "action": "set_output", "params": {"outputs": {"ok": True}}},
            *[
                {"id": f, "action": "wait", "depends_on": ["root"], "params": {"seconds": 30}}
                for f in fan
            ],
            {"id": "join", "action": "log", "depends_on": fan, "params": {"message": "all"}},
        ],
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        cur = bud.executions.get(x.id)
        if all(cur.steps[f].status == "running" for f in fan):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"fan-out never ran in parallel: {describe(cur)}")
    t0 = time.monotonic()
    bud.executions.cancel(x.id)
    x = bud.executions.wait(x.id, timeout=20)
    took = time.monotonic() - t0
    steps = x.steps
    assert x.status == "cancelled", describe(x)
    assert took < 10, f"cancel took {took:.1f}s to stop the running steps"
    assert x.completed_at is not None and (x.duration_seconds or 99) < 20, describe(x)
    assert steps["root"].status == "completed", describe(x)
    # The interrupted branches stop: none left running or pending, none completed.
    interrupted = {f: steps[f].status for f in fan}
    assert all(s in ("failed", "skipped") for s in interrupted.values()), interrupted
    assert all(steps[f].completed_at is not None for f in fan), describe(x)
    assert steps["join"].status == "skipped" and steps["join"].started_at is None, describe(x)
    assert x.outputs == {"root": {"ok": True}}, x.outputs
    # A finished execution refuses a second cancel with a typed 409 and stays cancelled.
    with pytest.raises(ConflictError) as err:
        bud.executions.cancel(x.id)
    assert err.value.code == "execution_finished", err.value
    assert bud.executions.get(x.id).status == "cancelled"
