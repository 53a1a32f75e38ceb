"""Condition objects mean in Jinja what they mean in Python: random expressions are rendered,
evaluated by Jinja's sandbox (as the gateway does), and compared with evaluating the same tree in
Python over the same data."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from budai.dsl import Expr, Pipeline, Ref

ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined)

P = Pipeline("props")
STEP = P.transform("fetch-it", value=1)
CONTEXT: dict[str, Any] = {
    "params": {"n": 7, "env": 'pr"od', "flag": True, "ratio": 0.5, "items": [1, 2, 3]},
    "steps": {"fetch-it": {"status": "completed", "output": {"code": 200, "tag": "a'b"}}},
}
REFS: list[tuple[Ref | Expr, Any]] = [
    (P.param("n"), 7),
    (P.param("env"), 'pr"od'),
    (P.param("flag"), True),
    (P.param("ratio"), 0.5),
    (P.param("missing", 3), 3),
    (STEP.output["code"], 200),
    (STEP.output["tag"], "a'b"),
    (STEP.status, "completed"),
]
COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip

Pair = tuple[Expr, bool]


@st.composite
def comparisons(draw: st.DrawFn) -> Pair:
    ref, value = draw(st.sampled_from(REFS))
    op = draw(st.sampled_from(sorted(COMPARE)))
    if isinstance(value, bool | str):
        op = draw(st.sampled_from(["==", "!="]))
        other: Any = draw(st.sampled_from([value, "x", 'pr"od', "a'b", True, False]))
    else:
        other = draw(st.one_of(st.integers(-5, 300), st.sampled_from([0.5, 7.0, 200.5])))
    func = COMPARE[op]
    expr: Expr = {
        "==": lambda: ref == other, "!=": lambda: ref != other, "<": lambda: ref < other,
        "<=": lambda: ref <= other, ">": lambda: ref > other, ">=": lambda: ref >= other,
    }[op]()  # fmt: skip
    return expr, bool(func(value, other))


def combine(children: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    def build(kind: str, left: Pair, right: Pair) -> Pair:
        if kind == "and":
            return left[0] & right[0], left[1] and right[1]
        if kind == "or":
            return left[0] | right[0], left[1] or right[1]
        return ~left[0], not left[1]

    return st.builds(build, st.sampled_from(["and", "or", "not"]), children, children)


@settings(max_examples=300, deadline=None)
@given(st.recursive(comparisons(), combine, max_leaves=8))
def test_rendered_conditions_evaluate_like_python(pair: Pair) -> None:
    expr, expected = pair
    rendered = expr.render()
    result = ENV.compile_expression(rendered)(**CONTEXT)
    assert bool(result) is expected, rendered


@given(st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none(),
                 st.floats(allow_nan=False, allow_infinity=False)))  # fmt: skip
def test_literals_round_trip_through_jinja(value: Any) -> None:
    expr = P.param("x") == value
    assert ENV.compile_expression(expr.render())(params={"x": value}) is True
    assert ENV.compile_expression(expr.render())(params={"x": object()}) is False


def test_membership_and_templates() -> None:
    inside = P.param("n").is_in([1, 7]) & P.param("items").contains(2)
    assert ENV.compile_expression(inside.render())(**CONTEXT) is True
    template = f"code={STEP.output['code']} tag={STEP.output['tag']}"
    assert ENV.from_string(template).render(**CONTEXT) == "code=200 tag=a'b"
