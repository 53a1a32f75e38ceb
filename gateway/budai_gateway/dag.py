"""Pipeline definitions: every check made before a DAG is stored (the action catalogue itself
is ``budai.pipeline_actions``, shared with the DSL).

``validate_definition`` returns all problems at once, each naming the field with a dotted path
(``definition.steps[2].depends_on[0]``); ``POST /pipelines`` answers the first with a 422 and
``POST /pipelines/validate`` returns them all.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from budai.pipeline_actions import ACTIONS, param_problems
from budai.pipeline_actions import catalogue as catalogue  # served by GET /actions
from budai.pipeline_rules import MAX_STEPS, find_cycle
from budai_gateway.errors import loc_to_param
from budai_gateway.expressions import ExpressionError, check_expression, check_template, is_template
from budai_gateway.schemas import Definition, Step


def check_params(action: str, params: dict[str, Any], path: str) -> list[tuple[str, str]]:
    return [(f"{path}.{name}", message) for name, message in param_problems(action, params)]


def ancestors(steps: list[Step]) -> dict[str, set[str]]:
    """Every step's transitive dependencies (the graph must be acyclic)."""
    by_id = {s.id: s for s in steps}
    memo: dict[str, set[str]] = {}
    order = topological_order(steps)
    for sid in order:
        acc: set[str] = set()
        for dep in by_id[sid].depends_on:
            acc.add(dep)
            acc |= memo[dep]
        memo[sid] = acc
    return memo


def topological_order(steps: list[Step]) -> list[str]:
    indeg = {s.id: len(set(s.depends_on)) for s in steps}
    children: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for d in set(s.depends_on):
            children[d].append(s.id)
    ready = [s.id for s in steps if indeg[s.id] == 0]
    out: list[str] = []
    while ready:
        sid = ready.pop()
        out.append(sid)
        for c in children[sid]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    return out


def semantic_problems(definition: Definition, max_steps: int = MAX_STEPS) -> list[tuple[str, str]]:
    steps = definition.steps
    problems: list[tuple[str, str]] = []
    if len(steps) > max_steps:
        return [("definition.steps", f"a pipeline has at most {max_steps} steps, not {len(steps)}")]
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in index:
            problems.append((f"definition.steps[{i}].id", f"duplicate step id '{step.id}'"))
        else:
            index[step.id] = i
        if step.action not in ACTIONS:
            problems.append(
                (
                    f"definition.steps[{i}].action",
                    f"unknown action '{step.action}' (see GET /actions)",
                )
            )
        else:
            problems.extend(check_params(step.action, step.params, f"definition.steps[{i}].params"))
    graph_ok = True
    for i, step in enumerate(steps):
        for j, dep in enumerate(step.depends_on):
            if dep == step.id:
                problems.append(
                    (
                        f"definition.steps[{i}].depends_on[{j}]",
                        f"step '{step.id}' depends on itself",
                    )
                )
                graph_ok = False
            elif dep not in index:
                problems.append(
                    (
                        f"definition.steps[{i}].depends_on[{j}]",
                        f"unknown step '{dep}' in depends_on",
                    )
                )
                graph_ok = False
    if len(index) != len(steps):
        graph_ok = False
    if graph_ok:
        cycle = find_cycle([(s.id, s.depends_on) for s in steps])
        if cycle is not None:
            i, j, loop = cycle
            problems.append(
                (f"definition.steps[{i}].depends_on[{j}]", "dependency cycle: " + " -> ".join(loop))
            )
            graph_ok = False
    upstream = ancestors(steps) if graph_ok else {}
    all_ids = set(index)
    for i, step in enumerate(steps):
        ups = upstream.get(step.id) if graph_ok else None
        if step.condition is not None:
            try:
                check_expression(step.condition, ups, all_ids)
            except ExpressionError as exc:
                problems.append((f"definition.steps[{i}].condition", f"invalid condition: {exc}"))
        for path, text in _strings(step.params, f"definition.steps[{i}].params"):
            if is_template(text):
                try:
                    check_template(text, ups, all_ids)
                except ExpressionError as exc:
                    problems.append((path, f"invalid template: {exc}"))
    return problems


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    from budai_gateway.expressions import iter_strings

    return list(iter_strings(value, path))


def validate_definition(
    raw: Any, max_steps: int = MAX_STEPS
) -> tuple[Definition | None, list[tuple[str, str]]]:
    """Parse and check a definition; returns it (when it parses) and every problem found."""
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            param = loc_to_param(("definition", *err["loc"])) or "definition"
            problems.append((param, str(err["msg"])))
        return None, problems
    return definition, semantic_problems(definition, max_steps)
