"""THE action catalogue: every built-in pipeline action, its params as a pydantic model.

One class per action (its docstring is the action's description) and one line in ``_MODELS``.
Everything else comes from the models: the JSON schema ``GET /v1/actions`` serves
(``catalogue()``), the params check the gateway and the DSL both run (``param_problems``), and
the DSL helpers' keyword types (``tests/dsl/test_action_helpers.py`` fails when they drift).

Any param may be a template string (``"{{ steps.a.output.id }}"``): its value, and so its type,
is known only at run time, so a template is accepted wherever a value is. ``None`` in a model
means "not given": a definition leaves the param out rather than sending ``null``.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from budai.types.model import ModelSource

__all__ = [
    "ACTIONS",
    "Action",
    "ActionParams",
    "HttpMethod",
    "LogLevel",
    "catalogue",
    "is_template",
    "param_problems",
]


def is_template(value: str) -> bool:
    """Whether a string is rendered at run time (its type is known only then)."""
    return "{{" in value or "{%" in value


# A JSON array; a Python caller's tuple is one too.
Array = Annotated[list[Any], BeforeValidator(lambda v: list(v) if isinstance(v, tuple) else v)]
Object = dict[str, Any]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
LogLevel = Literal["debug", "info", "warning", "error"]
# The two params of every action that waits for a resource to settle.
WaitFlag = Annotated[
    bool | None, Field(description="wait until the resource settles (default true)")
]
WaitTimeout = Annotated[float | None, Field(description="give up waiting after this many seconds")]


class ActionParams(BaseModel):
    """An action's params. Strict: a JSON value is checked as it is, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())
    action: ClassVar[str]

    @field_validator("*", mode="wrap")
    @classmethod
    def _templates_resolve_later(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        if isinstance(value, str) and is_template(value):
            return value
        field = cls.model_fields.get(info.field_name or "")
        if value is None and field is not None and field.annotation is not Any:
            raise PydanticCustomError("null_param", "null is not a value of this param")
        return handler(value)


class Log(ActionParams):
    """Write a message to the gateway log; output {message, level, logged}."""

    action = "log"
    message: Any = None
    level: LogLevel | None = None


class Transform(ActionParams):
    """Render `value` (templates keep native types when a string is one `{{ expr }}`); the
    output is the rendered value."""

    action = "transform"
    value: Any


class SetOutput(ActionParams):
    """Output `outputs` (or, without it, every parameter) as the step's output."""

    model_config = ConfigDict(extra="allow")
    action = "set_output"
    outputs: Object | None = None


class Fail(ActionParams):
    """Fail the step with `message`."""

    action = "fail"
    message: str | None = None
    error_code: str | None = None


class Wait(ActionParams):
    """Sleep `seconds` (real time)."""

    action = "wait"
    seconds: float


class HttpRequest(ActionParams):
    """Make an HTTP request; output {status_code, headers, body}. Fails when the status is not
    `expected_status` (an int or a list), or is >= 400 when that is not given."""

    action = "http_request"
    method: HttpMethod | None = None
    url: str
    headers: Object | None = None
    json_: Any = Field(None, alias="json")
    body: str | None = None
    timeout_seconds: float | None = None
    expected_status: int | Array | None = None


class ModelAdd(ActionParams):
    """Register a model (same as POST /models) and wait until it is available; output the
    model."""

    action = "model_add"
    name: str
    source: ModelSource
    uri: str
    metadata: Object | None = None
    wait: WaitFlag = None
    wait_timeout_seconds: WaitTimeout = None


class ModelDelete(ActionParams):
    """Delete a model (same as DELETE /models/{id}); output {model_id, deleted}."""

    action = "model_delete"
    model_id: str
    wait: WaitFlag = None
    wait_timeout_seconds: WaitTimeout = None


class DeploymentCreate(ActionParams):
    """Create a deployment (same as POST /deployments) and wait until it is active; output
    it."""

    action = "deployment_create"
    model_id: str
    cluster_id: str
    name: str | None = None
    replicas: int | None = None
    resources: Object | None = None
    auto_scaling: Object | None = None
    wait: WaitFlag = None
    wait_timeout_seconds: WaitTimeout = None


class DeploymentScale(ActionParams):
    """Set a deployment's replicas and wait until it is active again; output the deployment."""

    action = "deployment_scale"
    deployment_id: str
    replicas: int
    wait: WaitFlag = None
    wait_timeout_seconds: WaitTimeout = None


class DeploymentDelete(ActionParams):
    """Delete a deployment and wait until it is gone; output {deployment_id, deleted}."""

    action = "deployment_delete"
    deployment_id: str
    wait: WaitFlag = None
    wait_timeout_seconds: WaitTimeout = None


class ClusterHealth(ActionParams):
    """Read a cluster's health; output the ClusterHealth plus `healthy` (bool)."""

    action = "cluster_health"
    cluster_id: str


class ChatCompletion(ActionParams):
    """Run a chat completion; output {content, usage, finish_reason, model}."""

    action = "chat_completion"
    model: str
    messages: Array | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Action:
    """A catalogue entry: the action's name, description and params model."""

    name: str
    description: str
    params: type[ActionParams]

    @classmethod
    def of(cls, params: type[ActionParams]) -> Action:
        return cls(params.action, " ".join(inspect.cleandoc(params.__doc__ or "").split()), params)

    @property
    def schema(self) -> dict[str, Any]:
        """The params' JSON schema, as served (shared: read it, do not change it)."""
        return params_schema(self.params)


_MODELS: Final[tuple[type[ActionParams], ...]] = (
    Log,
    Transform,
    SetOutput,
    Fail,
    Wait,
    HttpRequest,
    ModelAdd,
    ModelDelete,
    DeploymentCreate,
    DeploymentScale,
    DeploymentDelete,
    ClusterHealth,
    ChatCompletion,
)
ACTIONS: Final[dict[str, Action]] = {m.action: Action.of(m) for m in _MODELS}


class _CatalogueSchema(GenerateJsonSchema):
    """Plain JSON schema, as a client reads it: no titles or defaults, ``None`` (not given)
    left out, a union of plain types as a ``type`` list."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        return {"enum": list(schema["expected"])}

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        return {"type": "object"}

    def list_schema(self, schema: core_schema.ListSchema) -> JsonSchemaValue:
        out = super().list_schema(schema)
        if out.get("items") == {}:
            del out["items"]
        return out

    def union_schema(self, schema: core_schema.UnionSchema) -> JsonSchemaValue:
        out = super().union_schema(schema)
        members = out.get("anyOf", [])
        if members and all(list(m) == ["type"] and isinstance(m["type"], str) for m in members):
            return {"type": [m["type"] for m in members]}
        return out

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        out = super().model_schema(schema)
        return {
            "type": "object",
            "properties": out.get("properties", {}),
            "required": out.get("required", []),
            "additionalProperties": out.get("additionalProperties", True),
        }


@cache
def params_schema(model: type[ActionParams]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, schema_generator=_CatalogueSchema)


def catalogue() -> list[dict[str, Any]]:
    """The catalogue as ``GET /actions`` serves it."""
    return [
        {"name": a.name, "description": a.description, "parameters": copy.deepcopy(a.schema)}
        for a in ACTIONS.values()
    ]


def _expected(schema: Mapping[str, Any], value: Any) -> str:
    """What a param must be, in the schema's words (the same words for every path)."""
    if "enum" in schema:
        return "must be one of " + ", ".join(repr(v) for v in schema["enum"])
    types = schema.get("type", [])
    names = [types] if isinstance(types, str) else list(types)
    return f"must be {' or '.join(names)}, not {type(value).__name__}"


def param_problems(action: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(param name, message)`` for every missing, unknown or mistyped param of a known
    action (the missing ones first, then in the params' order); an unknown name gets the
    closest known one as a hint."""
    entry = ACTIONS[action]
    try:
        entry.params.model_validate(dict(params))
        return []
    except ValidationError as exc:
        errors = exc.errors()
    props: dict[str, Any] = entry.schema["properties"]
    missing: list[tuple[str, str]] = []
    found: dict[str, str] = {}
    for err in errors:
        name = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "missing":
            missing.append((name, f"action '{action}' requires parameter '{name}'"))
        elif err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(props), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(props) or "none"
            found[name] = f"action '{action}' has no parameter '{name}' (known: {known}){hint}"
        elif name not in found:
            typed = err["type"].endswith("_type") or err["type"] in ("literal_error", "null_param")
            problem = _expected(props[name], params[name]) if typed else err["msg"]
            found[name] = f"invalid value for '{name}' of action '{action}': {problem}"
    return missing + [(name, found[name]) for name in params if name in found]
