"""Jinja2 conditions and templates, evaluated in an immutable sandbox with strict undefineds.

Validation (``check_expression`` / ``check_template``) works on the parsed AST so a pipeline that
tries to leave the sandbox (``{{ ''.__class__ }}``) or reads a step that is not upstream is
rejected with a 422 before it is stored; evaluation runs in the sandbox all the same.

Evaluation: a template made only of lookups (``{{ steps.a.output.x }}``, comparisons, a few
linear filters) is evaluated in-process, since its cost is bounded by the data it reads;
anything else goes to :mod:`budai_gateway.sandbox` (worker processes with budgets), off the
event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT_NAMES = frozenset({"params", "steps"})
# Set from the config at start (limits.max_expression_depth / max_expression_bytes).
MAX_DEPTH = 64
MAX_SOURCE_BYTES = 65_536
_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")
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


def _check_shape(source: str) -> None:
    """Refuse sources the recursive parser would choke on, before parsing them."""
    if len(source) > MAX_SOURCE_BYTES:
        raise ExpressionError(
            f"expression is {len(source):,} characters long; the limit is {MAX_SOURCE_BYTES:,}"
            " (limits.max_expression_bytes)"
        )
    depth = deepest = 0
    for ch in source:
        if ch in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in _CLOSE:
            depth -= 1
    if deepest > MAX_DEPTH:
        raise ExpressionError(
            f"expression nests deeper than {MAX_DEPTH} levels (limits.max_expression_depth)"
        )


def _parse_expression(source: str) -> nodes.Expr:
    _check_shape(source)
    try:
        parser = Parser(ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(
                f"unexpected '{parser.stream.current.value}' after the expression"
            )
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.message}") from exc
    except RecursionError as exc:
        raise ExpressionError(
            f"expression nests deeper than {MAX_DEPTH} levels (limits.max_expression_depth)"
        ) from exc
    return expr


def _parse_template(source: str) -> nodes.Template:
    _check_shape(source)
    try:
        return ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.message}") from exc
    except RecursionError as exc:
        raise ExpressionError(
            f"template nests deeper than {MAX_DEPTH} levels (limits.max_expression_depth)"
        ) from exc


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    stack = [node]
    while stack:  # iterative: a deep tree must not hit the recursion limit
        cur = stack.pop()
        yield cur
        stack.extend(reversed(list(cur.iter_child_nodes())))


def _too_deep(tree: nodes.Node) -> bool:
    """Whether the tree nests deeper than MAX_DEPTH (``not not ...``, ``a.b.c...``)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return False


def _check_ast(tree: nodes.Node, upstream: set[str] | None, all_steps: set[str]) -> set[str]:
    """Raise on sandbox escapes and unknown names; return the step ids referenced."""
    if _too_deep(tree):
        raise ExpressionError(
            f"expression nests deeper than {MAX_DEPTH} levels (limits.max_expression_depth)"
        )
    local_names = {n.name for n in _walk(tree) if isinstance(n, nodes.Name) and n.ctx == "store"}
    # A local that shadows a root or a Jinja global would make the name check below accept
    # that global everywhere in the template (``{% set range = 1 %}`` then ``range(...)``).
    shadowing = sorted(local_names & (ROOT_NAMES | set(ENV.globals) | {"loop", "self"}))
    if shadowing:
        raise ExpressionError(f"templates may not assign to '{shadowing[0]}'")
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


def _checked(fn: Callable[[], set[str]]) -> set[str]:
    try:
        return fn()
    except RecursionError as exc:
        raise ExpressionError(
            f"expression nests deeper than {MAX_DEPTH} levels (limits.max_expression_depth)"
        ) from exc


def check_expression(source: str, upstream: set[str] | None, all_steps: set[str]) -> set[str]:
    return _checked(
        lambda: _check_ast(_parse_expression(bare_condition(source)), upstream, all_steps)
    )


def check_template(source: str, upstream: set[str] | None, all_steps: set[str]) -> set[str]:
    return _checked(lambda: _check_ast(_parse_template(source), upstream, all_steps))


# Node types and filters whose cost is linear in the data they read: evaluated in-process.
_SIMPLE_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.Getattr,
    nodes.Getitem, nodes.Compare, nodes.Operand, nodes.Not, nodes.And, nodes.Or, nodes.Test,
    nodes.CondExpr, nodes.Filter, nodes.Neg, nodes.Pos, nodes.List, nodes.Tuple, nodes.Dict,
    nodes.Pair, nodes.If,
)  # fmt: skip
_SIMPLE_FILTERS = frozenset(
    {
        "default", "d", "length", "count", "lower", "upper", "title", "capitalize", "trim",
        "string", "int", "float", "tojson", "first", "last", "abs", "round", "e", "escape",
        "safe", "list", "sort", "reverse", "unique", "min", "max", "sum", "join", "items",
        "dictsort", "attr", "bool",
    }
)  # fmt: skip
_TREES: dict[tuple[str, str], tuple[bool, frozenset[str] | None]] = {}


# Filters whose cost is more than linear, or which build big structures in one call: a template
# using them always runs in a worker process (see Evaluator.render_async).
_HEAVY_FILTERS = frozenset(
    {"sort", "dictsort", "unique", "groupby", "batch", "slice", "wordwrap", "urlize", "xmlattr",
     "indent", "center", "format", "filesizeformat", "random", "pprint"}
)  # fmt: skip
_INLINE: dict[tuple[str, str], bool] = {}


def _inline_ok(kind: str, source: str) -> bool:
    """Whether a template may be tried in-process, with budgets, for a short slice."""
    key = (kind, source)
    got = _INLINE.get(key)
    if got is None:
        if kind == "condition":
            tree: nodes.Node = _parse_expression(bare_condition(source))
        else:
            match = _FULL_EXPR.match(source)
            tree = _parse_expression(match.group("expr")) if match else _parse_template(source)
        got = not any(isinstance(n, nodes.Filter) and n.name in _HEAVY_FILTERS for n in _walk(tree))
        if len(_INLINE) < 10_000:
            _INLINE[key] = got
    return got


def _shape(kind: str, source: str) -> tuple[bool, frozenset[str] | None]:
    """(simple, referenced steps or None for 'any') of a condition or template string."""
    key = (kind, source)
    got = _TREES.get(key)
    if got is not None:
        return got
    tree: nodes.Node
    if kind == "condition":
        tree = _parse_expression(bare_condition(source))
    else:
        match = _FULL_EXPR.match(source)
        tree = _parse_expression(match.group("expr")) if match else _parse_template(source)
    simple = True
    refs: set[str] | None = set()
    parents: dict[int, nodes.Node] = {}
    for node in _walk(tree):
        for child in node.iter_child_nodes():
            parents[id(child)] = node
        if not isinstance(node, _SIMPLE_NODES) or (
            isinstance(node, nodes.Filter)
            and (node.name not in _SIMPLE_FILTERS or node.dyn_args or node.dyn_kwargs)
        ):
            simple = False
        if isinstance(node, nodes.Name) and node.name == "steps" and refs is not None:
            parent = parents.get(id(node))
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                refs.add(parent.attr)
            elif (
                isinstance(parent, nodes.Getitem)
                and parent.node is node
                and isinstance(parent.arg, nodes.Const)
            ):
                refs.add(str(parent.arg.value))
            else:
                refs = None  # steps used as a whole: send them all
    got = (simple, None if refs is None else frozenset(refs))
    if len(_TREES) < 10_000:
        _TREES[key] = got
    return got


class Evaluator:
    """Compiles each distinct expression once (a 1,000-step pipeline repeats them a lot).

    With a ``pool`` (:class:`budai_gateway.sandbox.SandboxPool`), ``condition_async`` and
    ``render_async`` send everything but plain lookups there; without one (budgets disabled)
    they evaluate in-process like the synchronous methods.
    """

    def __init__(self, pool: Any = None, max_output_bytes: int | None = None) -> None:
        self._exprs: dict[str, Callable[..., Any]] = {}
        self._templates: dict[str, Any] = {}
        self.pool = pool
        self.max_output_bytes = max_output_bytes

    @staticmethod
    def _context_for(refs: frozenset[str] | None, context: dict[str, Any]) -> dict[str, Any]:
        if refs is None:
            return context
        steps = context.get("steps") or {}
        return {**context, "steps": {k: steps[k] for k in refs if k in steps}}

    async def condition_async(self, source: str, context: dict[str, Any]) -> bool:
        if self.pool is None:
            return self.condition(source, context)
        simple, refs = _shape("condition", source)
        if simple:
            return self.condition(source, context)
        sub = self._context_for(refs, context)
        if _inline_ok("condition", source):
            done, result = self.pool.inline("condition", source, sub)
            if done:
                return bool(result)
        return bool(await self.pool.evaluate("condition", source, sub))

    async def render_async(self, value: Any, context: dict[str, Any]) -> Any:
        if self.pool is None:
            return self.render(value, context)
        any_complex = False
        inline_ok = True
        refs_all: set[str] | None = set()
        for _, text in iter_strings(value, ""):
            if not is_template(text):
                continue
            simple, refs = _shape("template", text)
            any_complex = any_complex or not simple
            inline_ok = inline_ok and _inline_ok("template", text)
            refs_all = None if refs is None or refs_all is None else refs_all | refs
        if not any_complex:
            return self._bounded(self.render(value, context))

        # Simple strings of the same step go along: one round trip per step.
        sub = self._context_for(None if refs_all is None else frozenset(refs_all), context)
        if inline_ok:
            done, result = self.pool.inline("render", value, sub)
            if done:
                return result
        return await self.pool.evaluate("render", value, sub)

    def _bounded(self, value: Any) -> Any:
        cap = self.max_output_bytes
        if cap is not None and isinstance(value, str) and len(value) > cap:
            raise ExpressionError(
                f"the rendered output is {len(value):,} long, over the {cap:,} budget"
                " (limits.template_max_output_bytes)"
            )
        return value

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
