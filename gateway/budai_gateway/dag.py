"""Pipeline definitions: the action catalogue and every check made before a DAG is stored.

``validate_definition`` returns all problems at once, each naming the field with a dotted path
(``definition.steps[2].depends_on[0]``); ``POST /pipelines`` answers the first with a 422 and
``POST /pipelines/validate`` returns them all.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from budai.pipeline_rules import MAX_STEPS, find_cycle
from budai_gateway.errors import loc_to_param
from budai_gateway.expressions import ExpressionError, check_expression, check_template, is_template
from budai_gateway.schemas import Definition, Step

_STR = {"type": "string"}
_NUM = {"type": "number"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_OBJ = {"type": "object"}
_ANY: dict[str, Any] = {}
_WAIT = {"type": "boolean", "description": "wait until the resource settles (default true)"}
_WAIT_S = {"type": "number", "description": "give up waiting after this many seconds"}


def _schema(props: dict[str, Any], required: list[str], extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": extra,
    }


ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "log": (
        "Write a message to the gateway log; output {message, level, logged}.",
        _schema({"message": _ANY, "level": {"enum": ["debug", "info", "warning", "error"]}}, []),
    ),
    "transform": (
        "Render `value` (templates keep native types when a string is one `{{ expr }}`); the "
        "output is the rendered value.",
        _schema({"value": _ANY}, ["value"]),
    ),
    "set_output": (
        "Output `outputs` (or, without it, every parameter) as the step's output.",
        _schema({"outputs": _OBJ}, [], extra=True),
    ),
    "fail": (
        "Fail the step with `message`.",
        _schema({"message": _STR, "error_code": _STR}, []),
    ),
    "wait": ("Sleep `seconds` (real time).", _schema({"seconds": _NUM}, ["seconds"])),
    "http_request": (
        "Make an HTTP request; output {status_code, headers, body}. Fails when the status is "
        "not `expected_status` (an int or a list), or is >= 400 when that is not given.",
        _schema(
            {
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
                "url": _STR,
                "headers": _OBJ,
                "json": _ANY,
                "body": _STR,
                "timeout_seconds": _NUM,
                "expected_status": {"type": ["integer", "array"]},
            },
            ["url"],
        ),
    ),
    "model_add": (
        "Register a model (same as POST /models) and wait until it is available; output the model.",
        _schema(
            {
                "name": _STR,
                "source": {"enum": ["hugging_face", "url", "local", "cloud"]},
                "uri": _STR,
                "metadata": _OBJ,
                "wait": _WAIT,
                "wait_timeout_seconds": _WAIT_S,
            },
            ["name", "source", "uri"],
        ),
    ),
    "model_delete": (
        "Delete a model (same as DELETE /models/{id}); output {model_id, deleted}.",
        _schema({"model_id": _STR, "wait": _WAIT, "wait_timeout_seconds": _WAIT_S}, ["model_id"]),
    ),
    "deployment_create": (
        "Create a deployment (same as POST /deployments) and wait until it is active; output it.",
        _schema(
            {
                "model_id": _STR,
                "cluster_id": _STR,
                "name": _STR,
                "replicas": _INT,
                "resources": _OBJ,
                "auto_scaling": _OBJ,
                "wait": _WAIT,
                "wait_timeout_seconds": _WAIT_S,
            },
            ["model_id", "cluster_id"],
        ),
    ),
    "deployment_scale": (
        "Set a deployment's replicas and wait until it is active again; output the deployment.",
        _schema(
            {
                "deployment_id": _STR,
                "replicas": _INT,
                "wait": _WAIT,
                "wait_timeout_seconds": _WAIT_S,
            },
            ["deployment_id", "replicas"],
        ),
    ),
    "deployment_delete": (
        "Delete a deployment and wait until it is gone; output {deployment_id, deleted}.",
        _schema(
            {"deployment_id": _STR, "wait": _WAIT, "wait_timeout_seconds": _WAIT_S},
            ["deployment_id"],
        ),
    ),
    "cluster_health": (
        "Read a cluster's health; output the ClusterHealth plus `healthy` (bool).",
        _schema({"cluster_id": _STR}, ["cluster_id"]),
    ),
    "chat_completion": (
        "Run a chat completion; output {content, usage, finish_reason, model}.",
        _schema(
            {
                "model": _STR,
                "messages": {"type": "array"},
                "prompt": _STR,
                "max_tokens": _INT,
                "temperature": _NUM,
            },
            ["model"],
        ),
    ),
}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if isinstance(value, str) and is_template(value):
        return True  # known only once rendered
    if "enum" in schema:
        return value in schema["enum"]
    types = schema.get("type")
    if types is None:
        return True
    names = [types] if isinstance(types, str) else list(types)
    for name in names:
        if name in ("number", "integer") and isinstance(value, bool):
            continue
        if isinstance(value, _JSON_TYPES[name]):
            return True
    return False


def check_params(action: str, params: dict[str, Any], path: str) -> list[tuple[str, str]]:
    _, schema = ACTIONS[action]
    problems: list[tuple[str, str]] = []
    props: dict[str, Any] = schema["properties"]
    for name in schema["required"]:
        if name not in params:
            problems.append((f"{path}.{name}", f"action '{action}' requires parameter '{name}'"))
    for name, value in params.items():
        if name not in props:
            if not schema["additionalProperties"]:
                problems.append((f"{path}.{name}", f"action '{action}' has no parameter '{name}'"))
            continue
        if not _type_ok(value, props[name]):
            problems.append((f"{path}.{name}", f"invalid value for '{name}' of action '{action}'"))
    return problems


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


def catalogue() -> list[dict[str, Any]]:
    return [
        {"name": name, "description": desc, "parameters": schema}
        for name, (desc, schema) in ACTIONS.items()
    ]
