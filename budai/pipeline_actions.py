"""THE action catalogue: every built-in pipeline action with its params as a JSON schema.

The gateway validates and serves it (``GET /v1/actions``); the DSL checks definitions against
it before anything is sent (``Pipeline.build()``, ``budai pipelines validate -f``). One table,
so a param means the same on every path. ``param_problems`` is the one params check both use.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ACTIONS", "catalogue", "is_template", "param_problems"]

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


ACTIONS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
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

_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
}


def is_template(value: str) -> bool:
    """Whether a string is rendered at run time (its type is known only then)."""
    return "{{" in value or "{%" in value


def catalogue() -> list[dict[str, Any]]:
    """The catalogue as ``GET /actions`` serves it."""
    return [
        {"name": name, "description": desc, "parameters": schema}
        for name, (desc, schema) in ACTIONS.items()
    ]


def _value_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    if isinstance(value, str) and is_template(value):
        return None
    if "enum" in schema:
        if value in schema["enum"]:
            return None
        return "must be one of " + ", ".join(repr(v) for v in schema["enum"])
    types = schema.get("type")
    if types is None:
        return None
    names = [types] if isinstance(types, str) else list(types)
    for name in names:
        if name in ("number", "integer") and isinstance(value, bool):
            continue
        if isinstance(value, _JSON_TYPES[name]):
            return None
    return f"must be {' or '.join(names)}, not {type(value).__name__}"


def param_problems(action: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(param name, message)`` for every missing, unknown or mistyped param of a known
    action; an unknown name gets the closest known one as a hint."""
    _, schema = ACTIONS[action]
    problems: list[tuple[str, str]] = []
    props: dict[str, Any] = schema["properties"]
    for name in schema["required"]:
        if name not in params:
            problems.append((name, f"action '{action}' requires parameter '{name}'"))
    for name, value in params.items():
        if name not in props:
            if not schema["additionalProperties"]:
                close = difflib.get_close_matches(str(name), list(props), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                known = ", ".join(props) or "none"
                problems.append(
                    (name, f"action '{action}' has no parameter '{name}' (known: {known}){hint}")
                )
            continue
        problem = _value_problem(value, props[name])
        if problem:
            problems.append((name, f"invalid value for '{name}' of action '{action}': {problem}"))
    return problems
