"""Expression objects of the pipeline DSL: references and conditions that render to Jinja.

The gateway evaluates a step's ``condition`` (a bare expression) and ``{{ ... }}`` templates in
string params as Jinja2 over ``params`` and ``steps.<id>.output`` / ``steps.<id>.status``. These
classes let Python build those expressions with operators and remember which steps they read, so
the builder can add dependencies (params) or check that a step is upstream (conditions).

Comparison operators return expressions, not booleans, as in SQLAlchemy; ``bool(expr)`` raises so
that ``a == 1 and b == 2`` (which Python cannot overload) fails loudly instead of dropping a term.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._pipeline import PipelineStep

__all__ = ["Expr", "Raw", "Ref", "referenced_step_ids", "render_literal", "template_step_ids"]

_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that Jinja parses as keywords or constants, so they cannot follow a dot as an attribute.
_RESERVED: Final = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None"}
    # Dict methods: plain Jinja resolves `x.items` to the method, not to the key.
    | {"items", "keys", "values", "get", "pop", "popitem", "update", "copy", "clear", "setdefault"}
)
# `steps.<id>` or `steps['<id>']` / `steps["<id>"]` inside an expression.
_STEP_REF: Final = re.compile(
    r"(?<![A-Za-z0-9_.])steps\s*(?:\.\s*([A-Za-z0-9_]+)|\[\s*(['\"])([^'\"]*)\2\s*\])"
)
_TEMPLATE_BLOCK: Final = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)


def render_literal(value: object) -> str:
    """Render a Python value as a Jinja literal (or an expression, for ``Expr``)."""
    if isinstance(value, Expr):
        return value.render()
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Jinja literal")
        return repr(value)
    if isinstance(value, str):
        # Jinja unescapes string literals like Python, so JSON escaping round-trips.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{render_literal(str(k))}: {render_literal(v)}" for k, v in value.items()
        )
        return "{" + items + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(render_literal(v) for v in value) + "]"
    raise TypeError(f"cannot use {type(value).__name__} in a pipeline expression")


def _operand(value: object) -> str:
    if isinstance(value, Expr) and not value.atomic:
        return f"({value.render()})"
    return render_literal(value)


def referenced_step_ids(expression: str) -> set[str]:
    """Ids of the steps a bare Jinja expression reads (``steps.x`` or ``steps['x']``)."""
    found: set[str] = set()
    for match in _STEP_REF.finditer(expression):
        found.add(match.group(1) if match.group(1) is not None else match.group(3))
    return found


def template_step_ids(text: str) -> set[str]:
    """Ids of the steps the ``{{ }}`` / ``{% %}`` blocks of a template string read; text outside
    the blocks is literal and may mention ``steps.x`` freely."""
    found: set[str] = set()
    for match in _TEMPLATE_BLOCK.finditer(text):
        found |= referenced_step_ids(match.group(1) or match.group(2) or "")
    return found


class Expr:
    """A Jinja expression built from Python operators.

    ``==, !=, <, <=, >, >=`` compare, ``&, |, ~`` combine (``and``, ``or``, ``not`` in Jinja).
    ``str(expr)`` is the ``{{ ... }}`` template, so an expression can sit inside an f-string.
    """

    __slots__ = ()
    atomic: bool = False
    """Whether the rendering needs no parentheses as an operand."""

    def render(self) -> str:
        """The bare Jinja expression (what a ``condition`` holds)."""
        raise NotImplementedError

    def refs(self) -> Iterator[Ref]:
        """Every ``Ref`` the expression contains."""
        return iter(())

    def step_ids(self) -> set[str]:
        """Ids of the steps the expression reads."""
        return {r.step_id for r in self.refs() if r.step_id is not None}

    def _compare(self, op: str, other: object) -> Expr:
        return _Binary(self, op, other)

    def __eq__(self, other: object) -> Expr:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: object) -> Expr:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: object) -> Expr:
        return self._compare("<", other)

    def __le__(self, other: object) -> Expr:
        return self._compare("<=", other)

    def __gt__(self, other: object) -> Expr:
        return self._compare(">", other)

    def __ge__(self, other: object) -> Expr:
        return self._compare(">=", other)

    def __and__(self, other: Expr | bool) -> Expr:
        return _Binary(self, "and", other)

    def __rand__(self, other: Expr | bool) -> Expr:
        return _Binary(other, "and", self)

    def __or__(self, other: Expr | bool) -> Expr:
        return _Binary(self, "or", other)

    def __ror__(self, other: Expr | bool) -> Expr:
        return _Binary(other, "or", self)

    def __invert__(self) -> Expr:
        return _Not(self)

    def is_in(self, values: Sequence[object] | Expr) -> Expr:
        """``self in values``."""
        return _Binary(self, "in", values)

    def contains(self, item: object) -> Expr:
        """``item in self`` (substring or membership)."""
        return _Binary(item, "in", self)

    __hash__ = None  # type: ignore[assignment]  # __eq__ builds an expression

    def __bool__(self) -> bool:
        raise TypeError(
            "a pipeline expression has no truth value in Python; combine conditions with "
            "&, | and ~ instead of and, or and not, and avoid chained comparisons"
        )

    def __str__(self) -> str:
        return "{{ " + self.render() + " }}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.render()!r})"


class Ref(Expr):
    """A reference to an execution parameter (``params.env``) or to a step's output or status
    (``steps.fetch.output.status_code``). Index it to go deeper: ``ref["items"][0]``."""

    __slots__ = ("_path", "_root", "step", "step_id")
    atomic = True

    def __init__(
        self,
        root: str,
        path: tuple[str | int, ...],
        *,
        step: PipelineStep | None = None,
        step_id: str | None = None,
    ) -> None:
        self._root = root
        self._path = path
        self.step = step
        self.step_id = step_id

    def __getitem__(self, key: str | int) -> Ref:
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise TypeError("output keys are strings or list indexes")
        return Ref(self._root, (*self._path, key), step=self.step, step_id=self.step_id)

    def default(self, value: object) -> Expr:
        """The value, or ``value`` when it is undefined (Jinja's ``default`` filter)."""
        return _Filter(self, "default", value)

    def render(self) -> str:
        out = self._root
        if self.step_id is not None:
            out += _attr(self.step_id)
        for part in self._path:
            out += _attr(part)
        return out

    def refs(self) -> Iterator[Ref]:
        yield self


def _attr(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if _IDENT.match(part) and part not in _RESERVED:
        return f".{part}"
    return f"[{render_literal(part)}]"


class Raw(Expr):
    """A Jinja expression written by hand (the escape hatch); it can still be combined with
    ``&``, ``|`` and ``~``. Steps it reads are found by their ``steps.<id>`` references."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self) -> str:
        return self.text

    def step_ids(self) -> set[str]:
        return referenced_step_ids(self.text)


class _Binary(Expr):
    __slots__ = ("left", "op", "right")

    def __init__(self, left: object, op: str, right: object) -> None:
        self.left = left
        self.op = op
        self.right = right

    def render(self) -> str:
        return f"{_operand(self.left)} {self.op} {_operand(self.right)}"

    def refs(self) -> Iterator[Ref]:
        for side in (self.left, self.right):
            if isinstance(side, Expr):
                yield from side.refs()

    def step_ids(self) -> set[str]:
        found: set[str] = set()
        for side in (self.left, self.right):
            if isinstance(side, Expr):
                found |= side.step_ids()
        return found


class _Not(Expr):
    __slots__ = ("inner",)

    def __init__(self, inner: Expr) -> None:
        self.inner = inner

    def render(self) -> str:
        return f"not {_operand(self.inner)}"

    def refs(self) -> Iterator[Ref]:
        return self.inner.refs()

    def step_ids(self) -> set[str]:
        return self.inner.step_ids()


class _Filter(Expr):
    __slots__ = ("arg", "inner", "name")
    atomic = False

    def __init__(self, inner: Expr, name: str, arg: object) -> None:
        self.inner = inner
        self.name = name
        self.arg = arg

    def render(self) -> str:
        return f"{_operand(self.inner)} | {self.name}({render_literal(self.arg)})"

    def refs(self) -> Iterator[Ref]:
        return self.inner.refs()

    def step_ids(self) -> set[str]:
        return self.inner.step_ids()
