"""The DSL's checks agree with the gateway's: for random definitions, good and broken (duplicate
ids, unknown or self dependencies, cycles, conditions on steps that are not upstream, retry
bounds), ``Pipeline.from_definition(d).problems()`` is empty exactly when the gateway's own
validator finds nothing; and every valid definition survives the round trip unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from budai.dsl import Pipeline
from budai_gateway.dag import validate_definition

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
