"""Local checks of a compiled definition: what the action catalogue and the template grammar
can tell without a gateway.

* The catalogue (``budai.pipeline_actions``, the same table the gateway serves and validates
  with): unknown actions, misspelt or missing params (with a "did you mean"), literal values of
  the wrong type or outside an enum.
* The grammar (Jinja2, as the gateway evaluates it; imported only when a definition holds a
  template): conditions and templates that do not parse, unknown names, filters and tests,
  and ``_private`` attributes the sandbox refuses. Without Jinja2 installed, only unbalanced
  ``{{ }}`` / ``{% %}`` are found.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..pipeline_actions import ACTIONS, is_template, param_problems

__all__ = ["check_steps"]

ROOT_NAMES = frozenset({"params", "steps"})
_FULL_EXPR = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


# -- the template grammar ----------------------------------------------------------------------


def _balanced(source: str) -> str | None:
    for open_, close in (("{{", "}}"), ("{%", "%}")):
        if source.count(open_) != source.count(close):
            return f"unbalanced {open_} {close}"
    return None


@functools.cache
def _env() -> Any:
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:  # jinja2 comes with the `cli` extra; the bare SDK checks less
        return None
    return ImmutableSandboxedEnvironment()


def _grammar_problem(source: str, expression: bool) -> str | None:
    env = _env()
    if env is None:
        return _balanced(source)
    from jinja2 import TemplateSyntaxError, nodes
    from jinja2.parser import Parser

    try:
        if expression:
            match = _FULL_EXPR.match(source)
            parser = Parser(env, match.group("expr") if match else source, state="variable")
            tree: Any = parser.parse_expression()
            if not parser.stream.eos:
                return f"unexpected {parser.stream.current.value!r} after the expression"
        else:
            tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return f"syntax error: {exc.message}"

    def walk(node: Any) -> Iterator[Any]:
        yield node
        for child in node.iter_child_nodes():
            yield from walk(child)

    stored = {n.name for n in walk(tree) if isinstance(n, nodes.Name) and n.ctx == "store"}
    for node in walk(tree):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            return f"access to attribute {node.attr!r} is not allowed"
        if (
            isinstance(node, nodes.Name)
            and node.ctx == "load"
            and node.name not in ROOT_NAMES | stored
        ):
            return f"unknown name {node.name!r} (expressions see 'params' and 'steps')"
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            return f"unknown filter {node.name!r}"
        if isinstance(node, nodes.Test) and node.name not in env.tests:
            return f"unknown test {node.name!r}"
    return None


def check_steps(steps: list[Mapping[str, Any]]) -> list[str]:
    """Every catalogue and grammar problem of compiled steps, each naming its step."""
    problems: list[str] = []
    for step in steps:
        sid = step.get("id")
        action = step.get("action")
        params = step.get("params") or {}
        if action not in ACTIONS:
            close = difflib.get_close_matches(str(action), list(ACTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"step {sid!r}: unknown action {action!r} (`budai actions list` shows the "
                f"catalogue){hint}"
            )
        elif not isinstance(params, Mapping):
            problems.append(f"step {sid!r}: params must be an object, not {type(params).__name__}")
        else:
            problems.extend(f"step {sid!r}: {m}" for _, m in param_problems(str(action), params))
        condition = step.get("condition")
        if isinstance(condition, str):
            problem = _grammar_problem(condition, expression=True)
            if problem:
                problems.append(f"step {sid!r}: invalid condition: {problem}")
        for path, text in _strings(params, "params"):
            if is_template(text):
                problem = _grammar_problem(text, expression=False)
                if problem:
                    problems.append(f"step {sid!r}: {path}: invalid template: {problem}")
    return problems
