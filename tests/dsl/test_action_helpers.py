"""The DSL's action helpers against the catalogue's params models: one helper per action, the
same params, required where the model requires them, of the type the served schema gives, and
a template ``Expr`` accepted wherever a plain value is."""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from budai.dsl import _actions
from budai.dsl._actions import ActionHelpers
from budai.dsl._expr import Expr
from budai.pipeline_actions import ACTIONS, catalogue, param_problems

STEP_OPTIONS = {"self", "id", "depends_on", "condition", "retry", "timeout"}
SCALARS = {"string", "integer", "number", "boolean"}


def _members(tp: Any) -> list[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp]


def shape(tp: Any) -> frozenset[str]:
    """The JSON shape of a Python type: JSON type names, ``enum:<value>``s, or ``any``."""
    out: set[str] = set()
    for m in _members(tp):
        origin = typing.get_origin(m) or m
        if m is Any:
            out.add("any")
        elif m is type(None) or m is Expr:
            continue
        elif origin is typing.Literal:
            out.update(f"enum:{v}" for v in typing.get_args(m))
        elif m is bool:
            out.add("boolean")
        elif m is int:
            out.add("integer")
        elif m is float:
            out.add("number")
        elif m is str:
            out.add("string")
        elif typing.is_typeddict(m) or (isinstance(origin, type) and issubclass(origin, Mapping)):
            out.add("object")
        elif isinstance(origin, type) and issubclass(origin, Sequence):
            out.add("array")
        else:
            raise AssertionError(f"no JSON shape for {m!r}")
    return frozenset(out)


def schema_shape(schema: Mapping[str, Any]) -> frozenset[str]:
    if "enum" in schema:
        return frozenset(f"enum:{v}" for v in schema["enum"])
    if "type" not in schema:
        return frozenset({"any"})
    kinds = schema["type"]
    return frozenset([kinds] if isinstance(kinds, str) else kinds)


def drift(action: str, helper: Callable[..., Any]) -> list[str]:
    """How ``helper``'s keyword params differ from the action's params model."""
    schema = ACTIONS[action].schema
    sig = inspect.signature(helper)
    namespace = vars(_actions)
    params = {n: p for n, p in sig.parameters.items() if n not in STEP_OPTIONS}
    problems = []
    props: dict[str, Any] = schema["properties"]
    if set(params) != set(props):
        problems.append(f"params {sorted(params)} != model fields {sorted(props)}")
    for name, p in params.items():
        if name not in props:
            continue
        required = p.default is inspect.Parameter.empty
        if name in schema["required"] and not required:
            problems.append(f"{name}: the model requires it, the helper does not")
        annotation = (
            eval(p.annotation, namespace) if isinstance(p.annotation, str) else p.annotation
        )
        got, want = shape(annotation), schema_shape(props[name])
        if got != want:
            problems.append(f"{name}: helper takes {sorted(got)}, the model {sorted(want)}")
        plain = want <= SCALARS or all(k.startswith("enum:") for k in want)
        if plain and Expr not in _members(annotation):
            problems.append(f"{name}: a template (Expr) is not accepted")
    return problems


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_helper_matches_its_actions_model(action: str) -> None:
    helper = getattr(ActionHelpers, action, None)
    assert helper is not None, f"no DSL helper for action {action!r}"
    assert drift(action, helper) == []


def test_every_helper_is_an_action() -> None:
    helpers = {n for n, f in vars(ActionHelpers).items() if inspect.isfunction(f)}
    assert helpers - {"step"} == set(ACTIONS)


def test_drift_is_caught() -> None:
    """The check itself fails on the drifts it is there for."""

    def wait(self: Any, id: str, *, second: float | Expr) -> None: ...

    def wait_untyped(self: Any, id: str, *, seconds: str | Expr) -> None: ...

    def wait_optional(self: Any, id: str, *, seconds: float | Expr | None = None) -> None: ...

    def wait_no_template(self: Any, id: str, *, seconds: float) -> None: ...

    assert drift("wait", wait)
    assert drift("wait", wait_untyped) == ["seconds: helper takes ['string'], the model ['number']"]
    assert drift("wait", wait_optional) == ["seconds: the model requires it, the helper does not"]
    assert drift("wait", wait_no_template) == ["seconds: a template (Expr) is not accepted"]


def test_templates_stand_for_any_value_null_for_none() -> None:
    """A template is accepted for a param of any type; ``null`` only where any value is."""
    assert (
        param_problems("deployment_scale", {"deployment_id": "{{ x }}", "replicas": "{{ n }}"})
        == []
    )
    assert param_problems("log", {"message": None}) == []
    assert param_problems("wait", {"seconds": None}) == [
        ("seconds", "invalid value for 'seconds' of action 'wait': must be number, not NoneType")
    ]
    assert param_problems("wait", {"seconds": True}) == [
        ("seconds", "invalid value for 'seconds' of action 'wait': must be number, not bool")
    ]
    assert param_problems("deployment_scale", {"deployment_id": "d", "replicas": "3"}) == [
        (
            "replicas",
            "invalid value for 'replicas' of action 'deployment_scale': must be integer, not str",
        )
    ]


def test_the_served_catalogue_is_what_it_was_before_the_models() -> None:
    """``GET /actions`` clients read the params schema (``type``, ``enum``, ``required``,
    ``additionalProperties``): deriving it from the models changed none of it. An action whose
    params change on purpose updates its entry in the data file."""
    before = json.loads((Path(__file__).parent / "data" / "actions_before_models.json").read_text())
    served = {a["name"]: a for a in catalogue()}
    for entry in before:
        assert served[entry["name"]] == entry
