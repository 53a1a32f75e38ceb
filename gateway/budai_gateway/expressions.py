"""Jinja2 conditions and templates, evaluated in an immutable sandbox with strict undefineds.

Validation (``check_expression`` / ``check_template``) works on the parsed AST so a pipeline that
tries to leave the sandbox (``{{ ''.__class__ }}``) or reads a step that is not upstream is
rejected with a 422 before it is stored; evaluation runs in the sandbox all the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT_NAMES = frozenset({"params", "steps"})
_FULL_EXPR = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)


class _Env(ImmutableSandboxedEnvironment):
    """Dict keys win over dict methods, so ``params.items`` reads the key ``items``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return super().getitem(obj, argument)


ENV = _Env(undefined=StrictUndefined, autoescape=False)


class ExpressionError(ValueError):
    """An expression that does not parse, escapes the sandbox or names something unknown."""


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def _parse_expression(source: str) -> nodes.Expr:
    try:
        parser = Parser(ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(
                f"unexpected '{parser.stream.current.value}' after the expression"
            )
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.message}") from exc
    return expr


def _parse_template(source: str) -> nodes.Template:
    try:
        return ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.message}") from exc


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _check_ast(tree: nodes.Node, upstream: set[str] | None, all_steps: set[str]) -> set[str]:
    """Raise on sandbox escapes and unknown names; return the step ids referenced."""
    local_names = {n.name for n in _walk(tree) if isinstance(n, nodes.Name) and n.ctx == "store"}
    referenced: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, nodes.Getattr):
            if node.attr.startswith("_") or not ENV.is_safe_attribute(object(), node.attr, None):
                raise ExpressionError(f"access to attribute '{node.attr}' is not allowed")
            if isinstance(node.node, nodes.Name) and node.node.name == "steps":
                referenced.add(node.attr)
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                if arg.value.startswith("_"):
                    raise ExpressionError(f"access to item '{arg.value}' is not allowed")
                if isinstance(node.node, nodes.Name) and node.node.name == "steps":
                    referenced.add(arg.value)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name not in ROOT_NAMES and node.name not in local_names:
                raise ExpressionError(
                    f"unknown name '{node.name}' (expressions see 'params' and 'steps')"
                )
        elif isinstance(node, nodes.Filter) and node.name not in ENV.filters:
            raise ExpressionError(f"unknown filter '{node.name}'")
        elif isinstance(node, nodes.Test) and node.name not in ENV.tests:
            raise ExpressionError(f"unknown test '{node.name}'")
        elif isinstance(node, (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            raise ExpressionError("templates may not load other templates")
    for ref in sorted(referenced):
        if ref not in all_steps:
            raise ExpressionError(f"reference to unknown step '{ref}'")
        if upstream is not None and ref not in upstream:
            raise ExpressionError(
                f"step '{ref}' is not upstream of this step (add it to depends_on)"
            )
    return referenced


def bare_condition(source: str) -> str:
    """A condition written as ``{{ expr }}`` means ``expr`` (clients write both)."""
    match = _FULL_EXPR.match(source)
    return match.group("expr") if match is not None else source


def check_expression(source: str, upstream: set[str] | None, all_steps: set[str]) -> set[str]:
    return _check_ast(_parse_expression(bare_condition(source)), upstream, all_steps)


def check_template(source: str, upstream: set[str] | None, all_steps: set[str]) -> set[str]:
    return _check_ast(_parse_template(source), upstream, all_steps)


class Evaluator:
    """Compiles each distinct expression once (a 1,000-step pipeline repeats them a lot)."""

    def __init__(self) -> None:
        self._exprs: dict[str, Callable[..., Any]] = {}
        self._templates: dict[str, Any] = {}

    def expression(self, source: str, context: dict[str, Any]) -> Any:
        fn = self._exprs.get(source)
        if fn is None:
            fn = ENV.compile_expression(source, undefined_to_none=False)
            self._exprs[source] = fn
        result = fn(**context)
        if isinstance(result, StrictUndefined):
            # Force the strict error now rather than later, far from the cause.
            str(result)
        return result

    def condition(self, source: str, context: dict[str, Any]) -> bool:
        return bool(self.expression(bare_condition(source), context))

    def render(self, value: Any, context: dict[str, Any]) -> Any:
        """Render every template string inside ``value``; ``"{{ x }}"`` alone keeps x's type."""
        if isinstance(value, str):
            if not is_template(value):
                return value
            match = _FULL_EXPR.match(value)
            if match is not None:
                return self.expression(match.group("expr"), context)
            tpl = self._templates.get(value)
            if tpl is None:
                tpl = ENV.from_string(value)
                self._templates[value] = tpl
            return tpl.render(**context)
        if isinstance(value, dict):
            return {k: self.render(v, context) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, context) for v in value]
        return value


def iter_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from iter_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_strings(v, f"{path}[{i}]")
