"""Local checks of ``build()``: the action catalogue and the template grammar find what only
``--server`` used to (unknown action, misspelt param, broken condition, broken template), all at
once; and the SDK's copy of the catalogue is the gateway's."""

from __future__ import annotations

from typing import Any

import pytest

from budai.dsl import Pipeline, PipelineValidationError
from budai.pipeline_actions import catalogue


def test_the_gateway_serves_the_catalogue_the_dsl_checks(gateway: object) -> None:
    """One table (``budai.pipeline_actions``): what ``GET /actions`` serves is what ``build()``
    checks against."""
    import httpx

    gw: Any = gateway
    served = httpx.get(f"{gw.url}/actions", headers={"Authorization": f"Bearer {gw.api_key}"})
    assert served.json()["data"] == catalogue()
    assert {"log", "http_request", "chat_completion"} <= {a["name"] for a in catalogue()}


def broken() -> Pipeline:
    return Pipeline.from_definition(
        {"steps": [
            {"id": "a", "action": "teleport"},
            {"id": "b", "action": "log", "params": {"mesage": "hi"}},
            {"id": "c", "action": "log", "depends_on": ["b"], "condition": "steps.b.outputs ==="},
            {"id": "d", "action": "log", "depends_on": ["b"],
             "params": {"message": "{{ steps.b.outputs.message | nosuchfilter }}"}},
            {"id": "e", "action": "http_request", "params": {"method": "FETCH"}},
            {"id": "f", "action": "log", "params": {"message": "{{ unclosed"}},
        ]},
        name="broken",
    )


def test_build_lists_every_catalogue_and_grammar_problem() -> None:
    with pytest.raises(PipelineValidationError) as info:
        broken().build()
    problems = info.value.problems
    text = str(info.value)
    assert "step 'a': unknown action 'teleport'" in text
    assert "step 'b': action 'log' has no parameter 'mesage'" in text and "'message'?" in text
    assert any(p.startswith("step 'c': invalid condition") for p in problems)
    assert "step 'd': params.message: invalid template: unknown filter 'nosuchfilter'" in text
    assert "step 'e': action 'http_request' requires parameter 'url'" in text
    assert "step 'e': invalid value for 'method' of action 'http_request': must be one of" in text
    assert any(p.startswith("step 'f': params.message: invalid template") for p in problems)
    assert len(problems) == 7, problems  # every one listed, none summarised
    assert broken().problems() == problems


def test_valid_pipelines_and_templates_still_build() -> None:
    p = Pipeline.from_definition(
        {"steps": [
            {"id": "a", "action": "http_request", "params": {"url": "http://x", "method": "GET"}},
            {"id": "b", "action": "log", "depends_on": ["a"],
             "condition": "steps.a.outputs.status_code == 200",
             "params": {"message": "{{ steps.a.outputs.body | length }} {{ params.who }}"}},
            {"id": "c", "action": "wait", "params": {"seconds": "{{ params.n }}"}},
        ]},
        name="fine",
    )
    assert len(p.build()["steps"]) == 3
