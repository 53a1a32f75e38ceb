"""Templates and conditions run with budgets, off the event loop, and say which budget hit."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import assert_error
from tests.gateway.hostile.conftest import run_pipeline, snapshot, watch


def _transform(value: str, sid: str = "t") -> dict[str, object]:
    return {"id": sid, "action": "transform", "params": {"value": value}}


def test_a_huge_power_in_a_condition_fails_the_step(hgw: LocalGateway, admin: httpx.Client) -> None:
    with watch(hgw):
        for cond in ("{{ 10**(10**7) > 1 }}", "{{ 10**(10**8) > 1 }}"):
            ex = run_pipeline(admin, [{**_transform("x"), "condition": cond}])
            assert ex["status"] == "failed"
            step = ex["steps"]["t"]
            assert step["status"] == "failed"
            assert "limits.template_max_int_digits" in step["error"], step
            assert step["error"].startswith("condition failed: ")


def test_a_huge_string_is_refused_and_nothing_is_stored(
    hgw: LocalGateway, admin: httpx.Client, reader: httpx.Client
) -> None:
    with watch(hgw):
        ex = run_pipeline(admin, [_transform("{{ 'a' * 50000000 }}")])
    step = ex["steps"]["t"]
    assert (ex["status"], step["status"], step["output"]) == ("failed", "failed", None)
    assert step["error"] == (
        "template error: a string would be 50,000,000 long, over the 200,000 budget "
        "(limits.template_max_string_bytes)"
    )
    got = reader.get(f"/executions/{ex['id']}")
    assert len(got.content) < 10_000 and got.json()["outputs"] == {}


def test_assigning_to_a_global_is_refused_at_create(hgw: LocalGateway, admin: httpx.Client) -> None:
    before = snapshot(admin)
    with watch(hgw):
        for source in (
            "{% set range = 1 %}{{ range(5) }}",
            "{% if false %}{% set range = 1 %}{% endif %}{{ range(99999) | list }}",
            "{% for range in params %}{% endfor %}{{ range }}",
            "{% set params = 1 %}{{ params }}",
        ):
            body = {"name": "shadow", "definition": {"steps": [_transform(source)]}}
            err = assert_error(
                admin.post("/pipelines", json=body), 422, "validation_error", "invalid_definition"
            )
            assert "may not assign to" in err["message"], err
    assert snapshot(admin) == before


def test_loops_and_padding_have_budgets(hgw: LocalGateway, admin: httpx.Client) -> None:
    loops = "{% for a in params.s * 1000 %}{% for b in params.s * 1000 %}{% endfor %}{% endfor %}"
    output = "{% for a in params.s * 3000 %}{{ params.s * 100 }}{% endfor %}"
    cases = {
        loops: "limits.template_max_loop_iterations",
        "{{ 'x' | center(100000000) }}": "limits.template_max_string_bytes",
        "{{ '%0100000000d' % 1 }}": "limits.template_max_string_bytes",
        "{{ params.s.ljust(10**9) }}": "limits.template_max_string_bytes",
        output: "limits.template_max_output_bytes",
    }
    with watch(hgw):
        for source, budget in cases.items():
            ex = run_pipeline(admin, [_transform(source)], {"s": "ab"})
            assert ex["status"] == "failed", (source, ex)
            assert budget in ex["steps"]["t"]["error"], (source, ex["steps"]["t"])


def test_a_slow_template_is_stopped_at_the_time_budget(
    hgw: LocalGateway, admin: httpx.Client
) -> None:
    slow = "{% for a in params.s * 45000 %}{{ params.t | wordcount }}{% endfor %}"
    with watch(hgw):
        ex = run_pipeline(admin, [_transform(slow)], {"s": "ab", "t": "w " * 20_000})
        assert ex["steps"]["t"]["error"] == (
            "template error: evaluation took longer than 1 s (limits.template_time_seconds)"
        )
        # The killed worker is replaced: the next template works.
        ok = run_pipeline(admin, [_transform("{{ params.n * 2 }}")], {"n": 21})
    assert ok["status"] == "completed" and ok["outputs"] == {"t": 42}


def test_plain_templates_still_work(hgw: LocalGateway, admin: httpx.Client) -> None:
    steps = [
        _transform("{{ params.n + 1 }}", "a"),
        {
            **_transform("{{ steps.a.output * 2 }}-{{ params.s | upper }}", "b"),
            "depends_on": ["a"],
            "condition": "{{ steps.a.output > 1 }}",
        },
        {**_transform("{% for x in params.xs %}{{ x }},{% endfor %}", "c"), "depends_on": ["b"]},
    ]
    ex = run_pipeline(admin, steps, {"n": 1, "s": "ok", "xs": [1, 2, 3]})
    assert ex["status"] == "completed", ex
    assert ex["outputs"] == {"a": 2, "b": "4-OK", "c": "1,2,3,"}


_NUM = st.integers(min_value=-3, max_value=10**6).map(str) | st.sampled_from(
    ["10**7", "(10**5)**3", "2**(2**20)", "params.n"]
)
_STR = st.sampled_from(["'a'", "params.s", "'%09999d' % 3", "('ab' ~ params.s)"])


@st.composite
def _hostile_template(draw: st.DrawFn) -> str:
    num = draw(_NUM)
    s = draw(_STR)
    expr = draw(
        st.sampled_from(
            [
                f"{num} ** {draw(_NUM)}",
                f"{s} * {num}",
                f"{num} * {draw(_NUM)}",
                f"{s} | center({num})",
                f"{s} | replace('a', {s} * {draw(_NUM)})",
                f"({s} * {num}) | length",
                f"{s} ~ {s} ~ {s}",
                f"'%0{abs(int(num)) if num.isdigit() else 5}d' % 1",
            ]
        )
    )
    if draw(st.booleans()):
        return "{{ " + expr + " }}"
    return "{% for x in " + s + " * " + num + " %}{{ " + expr + " }}{% endfor %}"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(source=_hostile_template())
def test_any_template_ends_within_its_budgets(hostile_gateway: LocalGateway, source: str) -> None:
    with hostile_gateway.client() as admin, watch(hostile_gateway):
        # run_pipeline fails if the execution has not finished within its timeout.
        ex = run_pipeline(admin, [_transform(source)], {"n": 7, "s": "abc"}, timeout=30)
    step = ex["steps"]["t"]
    if step["status"] == "completed":
        assert len(str(step["output"])) <= 200_000, source
    else:
        assert step["status"] == "failed", (source, step)
        assert step["error"].startswith("template error: ") or step["error"].endswith(
            "(limits.max_step_output_bytes)"
        ), (source, step)
