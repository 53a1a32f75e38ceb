"""The routes' shape: every parameter a route declares is read, and every status value the
gateway serves or filters on is the SDK's (budai/types)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import budai.types as T
from budai_gateway.app import create_app
from budai_gateway.config import ApiKey, Settings
from budai_gateway.services import clusters, deployments, executions, models


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("routes")
    settings = Settings(db_path=str(data / "g.db"), data_dir=str(data), api_keys=[ApiKey(key="k")])
    return create_app(settings)


def unused_parameters(func: Any) -> list[str]:
    """Parameters of ``func`` its body never mentions."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
    declared = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
    used = {n.id for stmt in fn.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return [name for name in declared if name not in used]


def test_unused_parameters_are_found() -> None:
    # The check itself: the shape the routes had before, query parameters declared and unread.
    async def list_models(request: Any, limit: int = 20, status: str | None = None) -> Any:
        return request, limit

    assert unused_parameters(list_models) == ["status"]


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every API route, also those inside included routers (FastAPI nests them)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from api_routes(inner.routes)


def test_every_route_reads_every_parameter_it_declares(app: Any) -> None:
    routes = list(api_routes(app.routes))
    assert len(routes) > 40
    unread = {
        f"{sorted(r.methods)[0]} {r.path}": unused
        for r in routes
        if (unused := unused_parameters(r.endpoint))
    }
    assert unread == {}, f"routes declare parameters they never read: {unread}"


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        (
            "/v1/models?colour=red",
            "unknown_filter",
            "Unknown filter 'colour'; this list accepts: limit, after, name, status, source",
        ),
        (
            "/v1/executions?colour=red",
            "unknown_filter",
            "Unknown filter 'colour'; this list accepts: limit, after, pipeline_id, status",
        ),
        ("/v1/actions?colour=red", "unknown_filter", "Unknown filter 'colour'; /actions has none."),
        (
            "/v1/deployments?status=weird",
            "invalid_parameter",
            "status: Input should be 'pending', 'deploying', 'active', 'scaling', 'failed' or "
            "'stopped'",
        ),
    ],
)
def test_a_bad_filter_names_the_parameter_and_what_is_accepted(
    app: Any, url: str, code: str, message: str
) -> None:
    with TestClient(app) as client:
        r = client.get(url, headers={"Authorization": "Bearer k"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["message"]) == (code, message)
    assert error["param"] == ("colour" if code == "unknown_filter" else "status")


# (component schema or list path, field) -> the SDK type whose values it must have.
SDK_VALUES: dict[tuple[str, str], Any] = {
    ("Model", "status"): T.ModelStatus,
    ("Model", "source"): T.ModelSource,
    ("ModelCreate", "source"): T.ModelSource,
    ("Cluster", "status"): T.ClusterStatus,
    ("Cluster", "provider"): T.ClusterProvider,
    ("ClusterChange", "status"): T.ClusterStatus,
    ("ClusterHealth", "status"): T.ClusterHealth.model_fields["status"].annotation,
    ("Deployment", "status"): T.DeploymentStatus,
    ("DeploymentChange", "status"): T.DeploymentStatus,
    ("Pipeline", "status"): T.PipelineStatus,
    ("PipelineUpdate", "status"): T.PipelineStatus,
    ("Execution", "status"): T.ExecutionStatus,
    ("ExecutionStep", "status"): T.StepStatus,
    ("/v1/models", "status"): T.ModelStatus,
    ("/v1/models", "source"): T.ModelSource,
    ("/v1/clusters", "status"): T.ClusterStatus,
    ("/v1/clusters", "provider"): T.ClusterProvider,
    ("/v1/deployments", "status"): T.DeploymentStatus,
    ("/v1/pipelines", "status"): T.PipelineStatus,
    ("/v1/executions", "status"): T.ExecutionStatus,
}


def _enum(schema: dict[str, Any]) -> list[str] | None:
    if "enum" in schema:
        return list(schema["enum"])
    for option in schema.get("anyOf", []):
        if "enum" in option:
            return list(option["enum"])
    return None


def served_enums(app: Any) -> dict[tuple[str, str], list[str]]:
    """Every string enum the OpenAPI document declares, by schema (or list path) and field."""
    doc = app.openapi()
    found: dict[tuple[str, str], list[str]] = {}
    for name, schema in doc["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            values = _enum(prop)
            if values is not None and field in ("status", "source", "provider"):
                found[(name, field)] = values
    for path, ops in doc["paths"].items():
        for param in ops.get("get", {}).get("parameters", []):
            values = _enum(param["schema"])
            if param["in"] == "query" and values is not None:
                found[(path, param["name"])] = values
    return found


def test_status_values_are_the_sdks(app: Any) -> None:
    found = served_enums(app)
    # Every enum the gateway serves has its SDK counterpart listed here, and the same values.
    assert set(found) == set(SDK_VALUES)
    for where, values in found.items():
        assert values == list(get_args(SDK_VALUES[where])), where


def test_lifecycle_constants_are_sdk_statuses() -> None:
    assert set(executions.TERMINAL) == set(T.TERMINAL_STATUSES)
    assert set(executions.TERMINAL) | set(executions.UNFINISHED) == set(get_args(T.ExecutionStatus))
    for subset in (clusters.RESERVING, deployments.TICKED, deployments.IN_FLIGHT):
        assert set(subset) <= set(get_args(T.DeploymentStatus))
    assert set(models.IN_FLIGHT) <= set(get_args(T.ModelStatus))


def test_gateway_declares_no_status_literal_of_its_own() -> None:
    # The gateway imports the SDK's Literals; a copy here would be free to drift.
    root = Path(__file__).resolve().parents[2] / "gateway" / "budai_gateway"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                text = ast.unparse(node.value)
                if text.startswith("Literal[") and any(n.endswith("Status") for n in names):
                    offenders.append(f"{path.name}: {names[0]}")
    assert offenders == []
