"""The pipeline builder: ``Pipeline``, ``PipelineStep`` and ``Retry``, and the build-time checks.

A ``Pipeline`` collects steps; edges come from ``>>``, ``after()`` and from output references used
in params. ``build()`` compiles to the wire ``PipelineDefinition`` after checking the whole graph,
and reports every problem in one ``PipelineValidationError`` so a user fixes them in one pass.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, overload

from budai.types import PipelineDefinition, RetryConfig
from budai.types import Step as StepDict

from .. import pipeline_rules as _rules
from ._actions import ActionHelpers
from ._expr import Expr, Ref, referenced_step_ids, template_step_ids

__all__ = ["Pipeline", "PipelineStep", "PipelineValidationError", "Retry"]

# The bounds the gateway enforces (one contract); checking them here reports them with the rest.
STEP_ID_PATTERN: Final = _rules.STEP_ID
MAX_STEPS: Final = _rules.MAX_STEPS
MAX_ATTEMPTS: Final = _rules.MAX_ATTEMPTS
MAX_BACKOFF_MULTIPLIER: Final = _rules.MAX_BACKOFF_MULTIPLIER
MAX_INITIAL_DELAY_SECONDS: Final = _rules.MAX_INITIAL_DELAY_SECONDS
MAX_TIMEOUT_SECONDS: Final = _rules.MAX_TIMEOUT_SECONDS
_STEP_KEYS: Final = frozenset({"id", "action", "params", "depends_on", "condition", "retry",
                               "timeout_seconds"})  # fmt: skip
_OPTIONAL_KEYS: Final = ("depends_on", "condition", "retry", "timeout_seconds")

Condition = Expr | str
"""A step condition: an expression object or a raw Jinja expression string."""


class PipelineValidationError(ValueError):
    """``build()`` found problems; ``problems`` lists every one of them."""

    def __init__(self, pipeline: str, problems: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.problems = list(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"pipeline {pipeline!r} has {count}:\n{lines}")


@dataclass(frozen=True)
class Retry:
    """How the gateway retries a failed step: attempt ``n`` waits
    ``initial_delay_seconds * backoff_multiplier ** (n - 1)`` seconds before it runs.

    Bounds are checked by ``Pipeline.build()`` together with every other problem.
    """

    max_attempts: int
    """Attempts in total, the first one included (>= 1)."""
    backoff_multiplier: float | None = _rules.DEFAULT_BACKOFF_MULTIPLIER
    """Growth of the delay between attempts (>= 1); ``None`` leaves it to the gateway."""
    initial_delay_seconds: float | None = None
    """Delay before the first retry (>= 0); ``None`` leaves the gateway's default (1 s)."""

    def to_config(self) -> RetryConfig:
        """The wire form; unset optional fields are left out."""
        out: dict[str, Any] = {"max_attempts": self.max_attempts}
        if self.backoff_multiplier is not None:
            out["backoff_multiplier"] = self.backoff_multiplier
        if self.initial_delay_seconds is not None:
            out["initial_delay_seconds"] = self.initial_delay_seconds
        return out  # type: ignore[return-value]  # backoff_multiplier may be left to the server

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Retry:
        """Read the wire form."""
        return cls(
            max_attempts=config.get("max_attempts"),  # type: ignore[arg-type]
            backoff_multiplier=config.get("backoff_multiplier"),
            initial_delay_seconds=config.get("initial_delay_seconds"),
        )

    def problems(self) -> list[str]:
        """What is out of bounds, as sentences."""
        out: list[str] = []
        if not _is_int(self.max_attempts) or not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            out.append(
                f"retry.max_attempts must be an integer from 1 to {MAX_ATTEMPTS} "
                f"(got {self.max_attempts!r})"
            )
        multiplier = self.backoff_multiplier
        if multiplier is not None and (
            not _is_number(multiplier) or not 1 <= multiplier <= MAX_BACKOFF_MULTIPLIER
        ):
            out.append(
                f"retry.backoff_multiplier must be a number from 1 to {MAX_BACKOFF_MULTIPLIER:g} "
                f"(got {multiplier!r})"
            )
        delay = self.initial_delay_seconds
        if delay is not None and (
            not _is_number(delay) or not 0 <= delay <= MAX_INITIAL_DELAY_SECONDS
        ):
            out.append(
                "retry.initial_delay_seconds must be a number from 0 to "
                f"{MAX_INITIAL_DELAY_SECONDS:g} (got {delay!r})"
            )
        return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class PipelineStep:
    """One step of a ``Pipeline``; create it with ``p.step(...)`` or a typed helper.

    ``step.output["key"]`` and ``step.status`` are references for params and conditions;
    ``a >> b`` makes ``b`` depend on ``a``.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        id: str,
        action: str,
        params: Mapping[str, Any],
    ) -> None:
        self.pipeline = pipeline
        self.id = id
        self.action = action
        self.params: dict[str, Any] = dict(params)
        self.condition: Condition | None = None
        self.retry: Retry | None = None
        self.timeout_seconds: float | None = None
        self._depends_on: set[str] = set()
        # Optional keys a loaded definition spelled out as null or [] (kept for the round trip),
        # and whether it left out `params`.
        self._explicit_empty: dict[str, Any] = {}
        self._omit_empty_params = False
        # Keys this SDK does not know (a newer gateway's), carried through unchanged.
        self._extra: dict[str, Any] = {}

    @property
    def output(self) -> Ref:
        """The step's output; ``step.output["key"]`` renders ``steps.<id>.output.key``."""
        return Ref("steps", ("output",), step=self, step_id=self.id)

    @property
    def status(self) -> Ref:
        """The step's status (``completed``, ``skipped``, ...), for conditions."""
        return Ref("steps", ("status",), step=self, step_id=self.id)

    @property
    def depends_on(self) -> list[str]:
        """Explicit dependencies (sorted); ``build()`` adds those implied by output references."""
        return sorted(self._depends_on)

    def after(self, *steps: PipelineStep | Iterable[PipelineStep] | str) -> Self:
        """Make this step depend on ``steps`` (steps or step ids)."""
        for item in steps:
            if isinstance(item, PipelineStep | str):
                self._add_dependency(item)
            else:
                for step in item:
                    self._add_dependency(step)
        return self

    def when(self, condition: Condition | None) -> Self:
        """Run the step only when ``condition`` holds (else it is ``skipped``)."""
        self.condition = condition
        return self

    def with_retry(self, retry: Retry | None) -> Self:
        """Retry the step on failure (overrides the pipeline's default)."""
        self.retry = retry
        return self

    def with_timeout(self, seconds: float | None) -> Self:
        """Fail an attempt that runs longer than ``seconds``."""
        self.timeout_seconds = seconds
        return self

    def _add_dependency(self, step: PipelineStep | str) -> None:
        if isinstance(step, PipelineStep):
            if step.pipeline is not self.pipeline:
                raise ValueError(
                    f"step {step.id!r} belongs to pipeline {step.pipeline.name!r}, "
                    f"not to {self.pipeline.name!r}"
                )
            self._depends_on.add(step.id)
        elif isinstance(step, str):
            self._depends_on.add(step)
        else:
            raise TypeError(f"expected a PipelineStep or a step id, got {type(step).__name__}")

    @overload
    def __rshift__(self, other: PipelineStep) -> PipelineStep: ...
    @overload
    def __rshift__(self, other: Sequence[PipelineStep]) -> list[PipelineStep]: ...
    def __rshift__(
        self, other: PipelineStep | Sequence[PipelineStep]
    ) -> PipelineStep | list[PipelineStep]:
        """``a >> b``: ``b`` runs after ``a``; returns ``b`` so chains read left to right."""
        if isinstance(other, PipelineStep):
            other._add_dependency(self)
            return other
        targets = _only_steps(other)
        for step in targets:
            step._add_dependency(self)
        return targets

    def __rrshift__(self, other: Sequence[PipelineStep]) -> PipelineStep:
        """``[a, b] >> c``: ``c`` runs after both."""
        for step in _only_steps(other):
            self._add_dependency(step)
        return self

    @overload
    def __lshift__(self, other: PipelineStep) -> PipelineStep: ...
    @overload
    def __lshift__(self, other: Sequence[PipelineStep]) -> list[PipelineStep]: ...
    def __lshift__(
        self, other: PipelineStep | Sequence[PipelineStep]
    ) -> PipelineStep | list[PipelineStep]:
        """``b << a``: ``b`` runs after ``a``; returns ``a``."""
        if isinstance(other, PipelineStep):
            self._add_dependency(other)
            return other
        sources = _only_steps(other)
        for step in sources:
            self._add_dependency(step)
        return sources

    def __rlshift__(self, other: Sequence[PipelineStep]) -> PipelineStep:
        """``[b, c] << a``: both run after ``a``."""
        for step in _only_steps(other):
            step._add_dependency(self)
        return self

    def __repr__(self) -> str:
        return f"PipelineStep(id={self.id!r}, action={self.action!r})"


def _only_steps(items: object) -> list[PipelineStep]:
    # `a >> "b"` would otherwise iterate the string's characters.
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"expected a step or a list of steps, got {type(items).__name__}")
    out = list(items)
    for item in out:
        if not isinstance(item, PipelineStep):
            raise TypeError(f"expected a step, got {type(item).__name__}: {item!r}")
    return out


class Pipeline(ActionHelpers):
    """A pipeline under construction.

    Example::

        with Pipeline("health-check", description="ping and report") as p:
            fetch = p.http_request("fetch", url=p.param("url"))
            ok = p.log("ok", message=f"status {fetch.output['status_code']}")
            ok.when(fetch.output["status_code"] == 200)

        client.pipelines.create(name=p.name, definition=p)

    ``retry`` is the default for every step that sets none of its own.
    """

    def __init__(
        self, name: str, description: str | None = None, *, retry: Retry | None = None
    ) -> None:
        self.name = name
        self.description = description
        self.retry = retry
        self._steps: list[PipelineStep] = []
        # Top-level definition keys other than `steps`, kept by from_definition for the round trip.
        self._extra: dict[str, Any] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Validation waits for build(): a half-built pipeline is not an error until it is used.
        return None

    @property
    def steps(self) -> tuple[PipelineStep, ...]:
        """The steps in the order they were added."""
        return tuple(self._steps)

    def __getitem__(self, step_id: str) -> PipelineStep:
        for step in self._steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def __iter__(self) -> Iterator[PipelineStep]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def __bool__(self) -> bool:
        # A builder is truthy even before its first step (``__len__`` would say otherwise).
        return True

    @overload
    def param(self, name: str) -> Ref: ...
    @overload
    def param(self, name: str, default: object) -> Expr: ...
    def param(self, name: str, default: object = ...) -> Expr:
        """A reference to the execution parameter ``name`` (``{{ params.name }}`` in a template;
        index it for nested values: ``p.param("cfg")["replicas"]``), or, with ``default``, to
        ``params.name | default(...)`` for executions that do not set it."""
        ref = Ref("params", (name,))
        return ref if default is ... else ref.default(default)

    def step(
        self,
        id: str,
        action: str,
        *,
        params: Mapping[str, Any] | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        **kwparams: Any,
    ) -> PipelineStep:
        """Add a step running ``action``; its params are ``params`` and/or keyword arguments.

        Pass action params named ``params``, ``depends_on``, ``condition``, ``retry`` or
        ``timeout`` through ``params={...}``. ``timeout`` is the step's ``timeout_seconds``.
        """
        merged: dict[str, Any] = dict(params or {})
        merged.update(kwparams)
        step = PipelineStep(self, id, action, merged)
        if depends_on is not None:
            if isinstance(depends_on, PipelineStep | str):
                step.after(depends_on)
            else:
                step.after(*depends_on)
        step.condition = condition
        step.retry = retry
        step.timeout_seconds = timeout
        self._steps.append(step)
        return step

    # -- compilation -----------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every problem ``build()`` would report (empty when the pipeline is valid)."""
        return self._compile()[1]

    def build(self) -> PipelineDefinition:
        """Compile to a ``PipelineDefinition``.

        Raises:
            PipelineValidationError: listing every problem (duplicate ids, unknown dependencies,
                cycles with their path, conditions on steps that are not upstream, retry bounds).
        """
        definition, problems = self._compile()
        if problems:
            raise PipelineValidationError(self.name, problems)
        return definition

    def to_definition(self) -> PipelineDefinition:
        """Same as ``build()``; the name ``pipelines.create`` also looks for."""
        return self.build()

    def _compile(self) -> tuple[PipelineDefinition, list[str]]:
        problems: list[str] = []
        by_id: dict[str, PipelineStep] = {}
        counts: dict[str, int] = {}
        for step in self._steps:
            counts[step.id] = counts.get(step.id, 0) + 1
            by_id.setdefault(step.id, step)
        if len(self._steps) > MAX_STEPS:
            problems.append(f"{len(self._steps)} steps; a pipeline holds at most {MAX_STEPS}")
        for step_id, count in counts.items():
            if count > 1:
                problems.append(f"duplicate step id {step_id!r} ({count} steps use it)")
        for step_id in by_id:
            if not isinstance(step_id, str) or not STEP_ID_PATTERN.match(step_id):
                problems.append(
                    f"step {step_id!r}: id must match {STEP_ID_PATTERN.pattern} "
                    "(lower-case letters, digits, '_' and '-')"
                )
        if self.retry is not None:
            problems.extend(f"default {p}" for p in self.retry.problems())

        # Explicit edges first; implied edges are those output references not already upstream.
        explicit: dict[str, set[str]] = {}
        for step_id, step in by_id.items():
            deps: set[str] = set()
            for dep in sorted(step._depends_on):
                if dep == step_id:
                    problems.append(f"step {step_id!r} depends on itself")
                elif dep not in by_id:
                    problems.append(f"step {step_id!r} depends on unknown step {dep!r}")
                else:
                    deps.add(dep)
            explicit[step_id] = deps
        explicit_up = {s: _ancestors(s, explicit) for s in by_id}

        graph: dict[str, set[str]] = {s: set(d) for s, d in explicit.items()}
        for step_id, step in by_id.items():
            for ref_id in sorted(self._param_refs(step, problems)):
                if ref_id == step_id:
                    problems.append(f"step {step_id!r}: params reference the step's own output")
                elif ref_id not in by_id:
                    problems.append(f"step {step_id!r}: params reference unknown step {ref_id!r}")
                elif ref_id not in explicit_up[step_id]:
                    graph[step_id].add(ref_id)

        for cycle in _cycles(graph):
            # Written in the direction steps run, as the user wrote the edges with >>.
            problems.append("cycle: " + " >> ".join(reversed(cycle)))
        upstream = {s: _ancestors(s, graph) for s in by_id}

        for step_id, step in by_id.items():
            if step.condition is not None:
                problems.extend(
                    f"step {step_id!r}: {p}"
                    for p in self._condition_problems(step, by_id, upstream[step_id])
                )
            if step.retry is not None:
                problems.extend(f"step {step_id!r}: {p}" for p in step.retry.problems())
            t = step.timeout_seconds
            if t is not None and (not _is_number(t) or not 0 < t <= MAX_TIMEOUT_SECONDS):
                problems.append(
                    f"step {step_id!r}: timeout_seconds must be > 0 and at most "
                    f"{MAX_TIMEOUT_SECONDS:g} (got {t!r})"
                )

        steps_out: list[StepDict] = []
        for step in self._steps:
            steps_out.append(self._step_dict(step, graph.get(step.id, set())))
        definition: dict[str, Any] = {**copy.deepcopy(self._extra), "steps": steps_out}
        return definition, problems  # type: ignore[return-value]  # extra keys are allowed

    def _param_refs(self, step: PipelineStep, problems: list[str]) -> set[str]:
        found: set[str] = set()
        for value in _walk(step.params):
            if isinstance(value, Expr):
                for ref in value.refs():
                    if ref.step is not None and ref.step.pipeline is not self:
                        problems.append(
                            f"step {step.id!r}: params reference step {ref.step.id!r} of "
                            f"another pipeline ({ref.step.pipeline.name!r})"
                        )
                    elif ref.step_id is not None:
                        found.add(ref.step_id)
                found |= value.step_ids()
            elif isinstance(value, str):
                found |= template_step_ids(value)
        return found

    def _condition_problems(
        self, step: PipelineStep, by_id: Mapping[str, PipelineStep], upstream: set[str]
    ) -> list[str]:
        condition = step.condition
        out: list[str] = []
        if isinstance(condition, Expr):
            ids = condition.step_ids()
            for ref in condition.refs():
                if ref.step is not None and ref.step.pipeline is not self:
                    out.append(f"condition references step {ref.step.id!r} of another pipeline")
        elif isinstance(condition, str):
            if "{{" in condition or "{%" in condition:
                out.append("condition is a bare expression; drop the {{ }} around it")
            ids = referenced_step_ids(condition)
        else:
            return [f"condition must be an expression or a string, not {type(condition).__name__}"]
        for ref_id in sorted(ids):
            if ref_id == step.id:
                out.append("condition references the step itself")
            elif ref_id not in by_id:
                out.append(f"condition references unknown step {ref_id!r}")
            elif ref_id not in upstream:
                out.append(
                    f"condition references step {ref_id!r}, which is not upstream "
                    f"(add the edge {ref_id} >> {step.id})"
                )
        return out

    def _step_dict(self, step: PipelineStep, deps: set[str]) -> StepDict:
        out: dict[str, Any] = {"id": step.id, "action": step.action}
        if step.params or not step._omit_empty_params:
            out["params"] = _render(step.params)
        retry = step.retry if step.retry is not None else self.retry
        condition = step.condition
        values: dict[str, Any] = {
            "depends_on": sorted(deps) or None,
            "condition": condition.render() if isinstance(condition, Expr) else condition,
            "retry": retry.to_config() if retry is not None else None,
            "timeout_seconds": step.timeout_seconds,
        }
        for key in _OPTIONAL_KEYS:
            value = values[key]
            if value is not None:
                out[key] = value
            elif key in step._explicit_empty:
                out[key] = step._explicit_empty[key]
        for key, value in step._extra.items():
            out.setdefault(key, copy.deepcopy(value))
        return out  # type: ignore[return-value]

    # -- round trip and drawing ------------------------------------------------------------

    @classmethod
    def from_definition(
        cls,
        definition: Mapping[str, Any],
        name: str = "pipeline",
        description: str | None = None,
    ) -> Pipeline:
        """A builder holding ``definition``; ``from_definition(d).build() == d`` for any valid,
        sorted definition (such as one ``build()`` produced or the gateway returned)."""
        p = cls(name, description)
        p._extra = {k: copy.deepcopy(v) for k, v in definition.items() if k != "steps"}
        for raw in definition.get("steps", []):
            step = p.step(
                raw["id"],
                raw["action"],
                params=copy.deepcopy(dict(raw.get("params") or {})),
            )
            step.after(*(raw.get("depends_on") or []))
            step.condition = raw.get("condition")
            if raw.get("retry") is not None:
                step.retry = Retry.from_config(raw["retry"])
            step.timeout_seconds = raw.get("timeout_seconds")
            step._explicit_empty = {
                k: copy.deepcopy(raw[k]) for k in _OPTIONAL_KEYS if k in raw and not raw[k]
            }
            step._omit_empty_params = "params" not in raw
            step._extra = {k: copy.deepcopy(v) for k, v in raw.items() if k not in _STEP_KEYS}
        return p

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (conditional steps are drawn as diamonds, and edges
        implied by output references are included)."""
        definition, _ = self._compile()
        lines = ["flowchart TD"]
        for step in definition["steps"]:
            label = f"{step['id']}<br/>{step['action']}"
            if step.get("condition"):
                label += f"<br/>if {step.get('condition')}"
            label = label.replace('"', "#quot;")
            node = _mermaid_id(step["id"])
            if step.get("condition"):
                lines.append(f'    {node}{{"{label}"}}')
            else:
                lines.append(f'    {node}["{label}"]')
        for step in definition["steps"]:
            for dep in step.get("depends_on") or []:
                lines.append(f"    {_mermaid_id(dep)} --> {_mermaid_id(step['id'])}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, steps={len(self._steps)})"


def _mermaid_id(step_id: str) -> str:
    # Mermaid node ids may not contain '-'; the label keeps the real id.
    return "s_" + step_id.replace("-", "__")


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v)


def _render(value: Any) -> Any:
    """Params as JSON data: expressions become ``{{ ... }}`` template strings."""
    if isinstance(value, Expr):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _render(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(v) for v in value]
    return copy.deepcopy(value)


def _ancestors(step_id: str, graph: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(graph.get(step_id, ()))
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(graph.get(current, ()))
    seen.discard(step_id)
    return seen


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle path per strongly connected component that has one, e.g. ``[a, b, a]``
    (``a`` depends on ``b`` which depends on ``a``), starting from the smallest id."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles: list[list[str]] = []
    for component in components:
        start = min(component)
        path = _path_back(start, graph, component)
        cycles.append(path)
    return sorted(cycles)


def _path_back(start: str, graph: Mapping[str, set[str]], component: set[str]) -> list[str]:
    # Breadth-first search inside the component for the shortest way back to `start`.
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(set(graph.get(node, set())) & component):
                if nxt == start:
                    trail = [node]
                    while trail[-1] != start:
                        trail.append(previous[trail[-1]])
                    return [*reversed(trail), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]
