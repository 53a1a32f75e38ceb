"""Local checks of ``build()``: the action catalogue and the template grammar find what only
``--server`` used to (unknown action, misspelt param, broken condition, broken template), all at
once; and the SDK's copy of the catalogue is the gateway's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from budai.dsl import Pipeline, PipelineValidationError
from budai.dsl._check import catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_catalogue_copy_matches_the_gateway() -> None:
    sys.path.insert(0, str(ROOT / "hack"))
    try:
        import gen_action_catalogue
    finally:
        sys.path.pop(0)
    on_disk = (ROOT / "budai" / "dsl" / "catalogue.json").read_text(encoding="utf-8")
    assert on_disk == gen_action_catalogue.render(), (
        "budai/dsl/catalogue.json drifted: run .venv/bin/python hack/gen_action_catalogue.py"
    )
    assert {"log", "http_request", "chat_completion"} <= set(catalogue())


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
    assert "step 'b': unknown param 'mesage' for action 'log'" in text and "'message'?" in text
    assert any(p.startswith("step 'c': invalid condition") for p in problems)
    assert "step 'd': params.message: invalid template: unknown filter 'nosuchfilter'" in text
    assert "step 'e': action 'http_request' needs param 'url'" in text
    assert "step 'e': param 'method' must be one of" in text
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
