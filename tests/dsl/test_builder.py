"""The DSL compiles to the wire definition: templates, edges, conditions, retries, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from budai.dsl import Pipeline, PipelineValidationError, Raw, Retry


def steps_by_id(p: Pipeline) -> dict[str, Any]:
    return {s["id"]: s for s in p.build()["steps"]}


def test_step_and_params_compile_to_the_wire_shape() -> None:
    with Pipeline("hello", description="says hello") as p:
        p.step("greet", "log", message="hi", level="info")
    assert p.build() == {
        "steps": [{"id": "greet", "action": "log", "params": {"message": "hi", "level": "info"}}]
    }
    assert p.to_definition() == p.build()
    assert p.description == "says hello"


def test_rshift_edges_in_every_shape() -> None:
    with Pipeline("edges") as p:
        a = p.log("a", message="a")
        b = p.log("b", message="b")
        c = p.log("c", message="c")
        d = p.log("d", message="d")
        e = p.log("e", message="e")
        result = a >> [b, c]
        assert result == [b, c]
        assert ([b, c] >> d) is d
        assert (d >> e) is e
        e << a  # already implied; edges are deduplicated and sorted
        e << [c, b]
    deps = {sid: s.get("depends_on") for sid, s in steps_by_id(p).items()}
    assert deps == {"a": None, "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["a", "b", "c", "d"]}


def test_output_reference_renders_a_template_and_adds_the_dependency() -> None:
    with Pipeline("refs") as p:
        fetch = p.http_request("fetch", url="http://example.invalid/")
        body = p.transform("body", value=fetch.output["body"])
        p.log("nested", message=f"first item {fetch.output['json']['items'][0]}")
        weird = p.set_output("weird", {"v": fetch.output["content-type"], "l": [body.output]})
    steps = steps_by_id(p)
    assert steps["body"]["params"] == {"value": "{{ steps.fetch.output.body }}"}
    assert steps["body"]["depends_on"] == ["fetch"]
    # An f-string loses the object, but the template still names the step: the edge is found.
    assert steps["nested"]["params"]["message"] == (
        'first item {{ steps.fetch.output.json["items"][0] }}'
    )
    assert steps["nested"]["depends_on"] == ["fetch"]
    assert steps["weird"]["params"]["outputs"] == {
        "v": '{{ steps.fetch.output["content-type"] }}',
        "l": ["{{ steps.body.output }}"],
    }
    assert steps["weird"]["depends_on"] == ["body", "fetch"]
    assert weird.depends_on == []  # only explicit edges live on the step


def test_hyphenated_step_ids_render_with_subscripts() -> None:
    with Pipeline("hyphens") as p:
        first = p.transform("first-step", value=1)
        second = p.transform("second", value=first.output["x"])
        second.when(first.status == "completed")
    steps = steps_by_id(p)
    assert steps["second"]["params"]["value"] == '{{ steps["first-step"].output.x }}'
    assert steps["second"]["condition"] == 'steps["first-step"].status == "completed"'


def test_reference_already_upstream_adds_no_direct_edge() -> None:
    with Pipeline("chain") as p:
        a = p.transform("a", value=1)
        b = p.transform("b", value=2)
        c = p.transform("c", value=a.output)
        a >> b >> c
    assert steps_by_id(p)["c"]["depends_on"] == ["b"]


def test_param_reference_and_default() -> None:
    with Pipeline("params") as p:
        p.log("l", message=p.param("msg"), level=p.param("level", "info"))
        p.wait("w", seconds=p.param("cfg")["delays"][0])
    assert steps_by_id(p)["l"]["params"] == {
        "message": "{{ params.msg }}",
        "level": '{{ params.level | default("info") }}',
    }
    assert steps_by_id(p)["w"]["params"] == {"seconds": "{{ params.cfg.delays[0] }}"}
    assert bool(Pipeline("empty")) and len(p) == 2


def test_condition_expressions_render_to_jinja() -> None:
    with Pipeline("conds") as p:
        a = p.http_request("a", url="http://x.invalid/")
        b = p.log("b", message="b", depends_on=a)
        code = a.output["status_code"]
        env = p.param("env")
        b.when(((code >= 200) & (code < 300)) | ~(env != "prod") & code.is_in([418, 451]))
        # Reflected comparisons too: Python calls code.__eq__(200).
        reflected = (code == None) | (200 == code)  # noqa: E711, SIM300
        c = p.log("c", message="c", depends_on=[a], condition=reflected)
        d = p.log("d", message="d", depends_on="a", condition="steps.a.output.ok and true")
        e = p.log("e", message="e", depends_on=a, condition=Raw("params.x > 1") & (env == 'it"s'))
    steps = steps_by_id(p)
    assert steps["b"]["condition"] == (
        "((steps.a.output.status_code >= 200) and (steps.a.output.status_code < 300)) or "
        '((not (params.env != "prod")) and (steps.a.output.status_code in [418, 451]))'
    )
    assert steps["c"]["condition"] == (
        "(steps.a.output.status_code == none) or (steps.a.output.status_code == 200)"
    )
    assert steps["d"]["condition"] == "steps.a.output.ok and true"
    assert steps["e"]["condition"] == '(params.x > 1) and (params.env == "it\\"s")'
    assert c.condition is not None and d.condition is not None and e.condition is not None


def test_expressions_refuse_python_truthiness() -> None:
    p = Pipeline("truth")
    a = p.transform("a", value=1)
    with pytest.raises(TypeError, match=r"&, \| and ~"):
        bool(a.output["x"] == 1)
    with pytest.raises(TypeError):
        _ = (a.output["x"] == 1) and (a.output["y"] == 2)


def test_retry_per_step_and_pipeline_default() -> None:
    with Pipeline("retries", retry=Retry(max_attempts=2)) as p:
        p.log("default", message="x")
        p.log("own", message="y", retry=Retry(5, backoff_multiplier=1.5, initial_delay_seconds=0.1))
        p.log("chained", message="z").with_retry(Retry(1, backoff_multiplier=None)).with_timeout(3)
    steps = steps_by_id(p)
    assert steps["default"]["retry"] == {"max_attempts": 2, "backoff_multiplier": 2.0}
    assert steps["own"]["retry"] == {
        "max_attempts": 5,
        "backoff_multiplier": 1.5,
        "initial_delay_seconds": 0.1,
    }
    assert steps["chained"]["retry"] == {"max_attempts": 1}
    assert steps["chained"]["timeout_seconds"] == 3


def test_build_reports_every_problem_at_once() -> None:
    with Pipeline("broken", retry=Retry(max_attempts=0)) as p:
        a = p.log("a", message="a")
        p.log("a", message="again")
        b = p.log("b", message="b")
        c = p.log("c", message="c")
        d = p.log("d", message="d", depends_on=["ghost"])
        b >> c >> b  # a cycle
        e = p.log("e", message="e", condition=d.output["x"] == 1)  # d is not upstream of e
        p.log("f", message="f", retry=Retry(2, backoff_multiplier=0.5, initial_delay_seconds=-1))
        p.log("Bad Id", message="x")
        p.log("g", message="g", condition="steps.nope.output.x == 1")
        p.transform("h", value=p["h"].output if False else "{{ steps.h.output }}")
        p.log("i", message="i").after("i")
        p.log("j", message="j", timeout=0)
        del a, e
    with pytest.raises(PipelineValidationError) as info:
        p.build()
    problems = info.value.problems
    expected = [
        "duplicate step id 'a' (2 steps use it)",
        "step 'd' depends on unknown step 'ghost'",
        "cycle: b >> c >> b",
        "step 'e': condition references step 'd', which is not upstream (add the edge d >> e)",
        "step 'f': retry.backoff_multiplier must be a number from 1 to 100 (got 0.5)",
        "step 'f': retry.initial_delay_seconds must be a number from 0 to 3600 (got -1)",
        "default retry.max_attempts must be an integer from 1 to 100 (got 0)",
        "step 'g': condition references unknown step 'nope'",
        "step 'h': params reference the step's own output",
        "step 'i' depends on itself",
        "step 'j': timeout_seconds must be > 0 and at most 86400 (got 0)",
    ]
    for line in expected:
        assert line in problems, (line, problems)
    assert any(pr.startswith("step 'Bad Id': id must match") for pr in problems)
    assert len(problems) == len(expected) + 1
    # One error, one line per problem.
    message = str(info.value)
    assert message.startswith("pipeline 'broken' has 12 problems:")
    assert all(f"  - {line}" in message for line in expected)


def test_cycle_paths_are_reported_per_cycle() -> None:
    p = Pipeline("cycles")
    for sid in "abcxy":
        p.log(sid, message=sid)
    p["a"] >> p["b"] >> p["c"] >> p["a"]
    p["x"] >> p["y"] >> p["x"]
    assert [pr for pr in p.problems() if pr.startswith("cycle")] == [
        "cycle: a >> b >> c >> a",
        "cycle: x >> y >> x",
    ]


def test_implied_edges_can_close_a_cycle() -> None:
    p = Pipeline("implied")
    a = p.transform("a", value=1)
    b = p.transform("b", value=a.output)
    a.after(b)
    assert "cycle: a >> b >> a" in p.problems()


def test_steps_of_another_pipeline_are_refused() -> None:
    one = Pipeline("one")
    two = Pipeline("two")
    x = one.transform("x", value=1)
    y = two.transform("y", value=2)
    with pytest.raises(ValueError, match="belongs to pipeline 'one'"):
        x >> y
    with pytest.raises(TypeError, match="got str"):
        x >> "y"  # type: ignore[operator]
    with pytest.raises(TypeError, match="expected a step"):
        [x, "y"] >> x  # type: ignore[operator]
    two.transform("z", value=x.output)
    assert "step 'z': params reference step 'x' of another pipeline ('one')" in two.problems()


def test_output_is_deterministic_and_json_serialisable() -> None:
    def make(order: list[str]) -> str:
        p = Pipeline("det")
        steps = {sid: p.log(sid, message=sid) for sid in ["root", "m1", "m2", "m3"]}
        for sid in order:
            steps["root"] >> steps[sid]
            steps[sid] >> p.log(f"after-{sid}", message="x")
        p.log("join", message="j").after(*(steps[s] for s in order))
        return json.dumps(p.build(), sort_keys=False)

    first = make(["m1", "m2", "m3"])
    assert '"depends_on": ["m1", "m2", "m3"]' in first
    assert first == make(["m1", "m2", "m3"])
    assert json.loads(first)["steps"][-1]["depends_on"] == ["m1", "m2", "m3"]
    assert json.loads(make(["m3", "m1", "m2"]))["steps"][-1]["depends_on"] == ["m1", "m2", "m3"]


def test_round_trip_from_definition() -> None:
    with Pipeline("rt", retry=Retry(3, initial_delay_seconds=0.5)) as p:
        a = p.http_request("a", url=p.param("url"), headers={"X": "1"}, expected_status=200)
        b = p.transform("b-b", value=a.output["body"])
        c = p.log("c", message="done").when((a.output["status_code"] == 200) & (b.status != "x"))
        b >> c
        p.model_add("m", name="x", source="cloud", uri="s3://b/x", wait=True).with_timeout(30)
    built = p.build()
    again = Pipeline.from_definition(built, name="rt")
    assert again.build() == built
    # Definitions as a server may return them, with explicit nulls and empty lists.
    loose: dict[str, Any] = {
        "steps": [
            {"id": "a", "action": "log", "params": {"message": "x"}, "depends_on": [],
             "condition": None, "retry": None, "timeout_seconds": None},
            {"id": "b", "action": "log", "depends_on": ["a"], "retry": {"max_attempts": 2,
             "backoff_multiplier": 1}},
        ]
    }  # fmt: skip
    assert Pipeline.from_definition(loose).build() == loose
    # Keys this SDK does not know (from a newer gateway) survive the round trip.
    newer: dict[str, Any] = {
        "version": 2,
        "steps": [{"id": "a", "action": "log", "params": {}, "on_failure": "continue"}],
    }
    assert Pipeline.from_definition(newer).build() == newer


def test_retry_upper_bounds() -> None:
    p = Pipeline("bounds")
    p.log("a", message="a", retry=Retry(101, backoff_multiplier=101, initial_delay_seconds=3601))
    p.log("b", message="b", retry=Retry(100, backoff_multiplier=100, initial_delay_seconds=3600))
    p.log("c", message="c", retry=Retry(True, backoff_multiplier=float("inf")))
    problems = p.problems()
    assert len([x for x in problems if x.startswith("step 'a'")]) == 3
    assert not [x for x in problems if x.startswith("step 'b'")]
    assert len([x for x in problems if x.startswith("step 'c'")]) == 2


def test_to_mermaid_draws_nodes_edges_and_conditions() -> None:
    with Pipeline("draw") as p:
        a = p.http_request("fetch-it", url="http://x.invalid/")
        b = p.log("ok", message=a.output["body"], condition=a.output["status_code"] == 200)
        p.log("end", message="x").after(b)
    assert p.to_mermaid() == (
        "flowchart TD\n"
        '    s_fetch__it["fetch-it<br/>http_request"]\n'
        '    s_ok{"ok<br/>log<br/>if steps[#quot;fetch-it#quot;].output.status_code == 200"}\n'
        '    s_end["end<br/>log"]\n'
        "    s_fetch__it --> s_ok\n"
        "    s_ok --> s_end\n"
    )


def test_typed_helpers_send_only_given_params() -> None:
    with Pipeline("helpers") as p:
        p.wait("w", seconds=0.1)
        p.fail("f", message="boom")
        p.deployment_create(
            "dc", model_id="model_1", cluster_id="cluster_1",
            resources={"cpu": "1", "memory": "1Gi"}, wait=False,
        )  # fmt: skip
        p.deployment_scale("ds", deployment_id=p["dc"].output["id"], replicas=p.param("n"))
        p.deployment_delete("dd", deployment_id="dep_1")
        p.model_delete("md", model_id="model_1", wait_timeout_seconds=5)
        p.cluster_health("ch", cluster_id="cluster_1")
        p.chat_completion(
            "cc", model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    steps = steps_by_id(p)
    assert steps["w"]["params"] == {"seconds": 0.1}
    assert steps["dc"]["params"] == {
        "model_id": "model_1", "cluster_id": "cluster_1",
        "resources": {"cpu": "1", "memory": "1Gi"}, "wait": False,
    }  # fmt: skip
    assert steps["ds"] == {
        "id": "ds",
        "action": "deployment_scale",
        "params": {"deployment_id": "{{ steps.dc.output.id }}", "replicas": "{{ params.n }}"},
        "depends_on": ["dc"],
    }
    assert steps["md"]["params"] == {"model_id": "model_1", "wait_timeout_seconds": 5}
    assert steps["cc"]["params"] == {
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
    }  # fmt: skip
