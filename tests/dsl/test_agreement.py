"""The DSL's checks agree with the gateway's: for random definitions, good and broken (duplicate
ids, unknown or self dependencies, cycles, conditions on steps that are not upstream, retry
bounds), ``Pipeline.from_definition(d).problems()`` is empty exactly when the gateway's own
validator finds nothing; and every valid definition survives the round trip unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from budai.dsl import Pipeline, Retry
from budai_gateway.dag import validate_definition
from budai_gateway.schemas import Definition
from budai_operator.models import BudPipelineSpec
from budai_operator.reconcile.pipeline import definition_body

IDS = ["a", "b", "c", "d", "e-1", "Bad"]


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=6))
    steps: list[dict[str, Any]] = []
    for sid in ids:
        step: dict[str, Any] = {"id": sid, "action": "log", "params": {"message": sid}}
        deps = draw(st.lists(st.sampled_from([*IDS, "ghost"]), max_size=3, unique=True))
        if deps:
            step["depends_on"] = sorted(deps)
        if draw(st.booleans()):
            target = draw(st.sampled_from([*IDS, "ghost"]))
            step["condition"] = f'steps["{target}"].status == "completed"'
        if draw(st.booleans()):
            step["retry"] = {
                "max_attempts": draw(st.integers(0, 101)),
                "backoff_multiplier": draw(st.sampled_from([0.5, 1, 2.0, 100, 101])),
            }
        steps.append(step)
    return {"steps": steps}


@settings(max_examples=400, deadline=None)
@given(definitions())
def test_dsl_and_gateway_agree_on_validity(definition: dict[str, Any]) -> None:
    dsl_problems = Pipeline.from_definition(definition).problems()
    _, gateway_problems = validate_definition(definition)
    assert (not dsl_problems) == (not gateway_problems), (dsl_problems, gateway_problems)
    if not dsl_problems:
        assert Pipeline.from_definition(definition).build() == definition



# A retry as a user writes it on each path, from bare to fully spelled out.
RETRIES: list[dict[str, Any]] = [
    {"max_attempts": 3},
    {"max_attempts": 2, "backoff_multiplier": 1.5},
    {"max_attempts": 4, "initial_delay_seconds": 0.25},
    {"max_attempts": 5, "backoff_multiplier": 1, "initial_delay_seconds": 3600},
]
CAMEL = {
    "max_attempts": "maxAttempts",
    "backoff_multiplier": "backoffMultiplier",
    "initial_delay_seconds": "initialDelaySeconds",
}


def _effective(definition: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """What the gateway's engine will run: each step's retry with its defaults filled in."""
    parsed = Definition.model_validate(definition)
    return [
        (s.id, s.retry.model_dump() if s.retry else None, s.timeout_seconds)
        for s in parsed.steps
    ]


def _step(**fields: Any) -> dict[str, Any]:
    return {"id": "s", "action": "log", "params": {"message": "m"}, **fields}


def test_a_step_means_the_same_on_every_path() -> None:
    """kubectl (the operator's CRD model and its request body), the SDK's raw definition and the
    DSL all end as the same retry and timeout in the gateway's engine."""
    for retry in RETRIES:
        via_sdk = _effective({"steps": [_step(retry=retry, timeout_seconds=30)]})
        crd_retry = {CAMEL[k]: v for k, v in retry.items()}
        crd = BudPipelineSpec.model_validate(
            {"definition": {"steps": [_step(retry=crd_retry, timeoutSeconds=30)]}}
        )
        with Pipeline("p") as p:
            p.log("s", message="m", retry=Retry(**retry), timeout=30)
        assert _effective(definition_body(crd)) == via_sdk, retry
        assert _effective(p.build()) == via_sdk, retry
    # A bare retry doubles its delay on every path (through kubectl it once meant 1.0).
    bare = _effective({"steps": [_step(retry={"max_attempts": 3})]})
    assert bare[0][1] == {
        "max_attempts": 3,
        "backoff_multiplier": 2.0,
        "initial_delay_seconds": 1.0,
    }
