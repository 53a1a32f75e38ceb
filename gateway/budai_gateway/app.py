"""The FastAPI application: ``create_app(settings)`` wires routes, middleware and the scheduler.

Routes are thin: they validate with the models in :mod:`budai_gateway.schemas` and call
:class:`budai_gateway.service.Gateway`. Errors of every origin leave in the contract's shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from budai_gateway import __version__, chat, dag, expressions, openai_compat
from budai_gateway import schemas as S
from budai_gateway.config import Settings
from budai_gateway.errors import APIError, error_body, loc_to_param, printable
from budai_gateway.local import local_router
from budai_gateway.middleware import GatewayMiddleware, RequestPolicy
from budai_gateway.service import Gateway

log = logging.getLogger("budai_gateway")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": S.ErrorBody, "description": desc}
    for code, desc in [
        (400, "Bad request (unknown filter, bad cursor, malformed JSON)"),
        (401, "Missing or unknown API key"),
        (403, "The key lacks the scope"),
        (404, "Not found"),
        (409, "Conflict (exists, in use, idempotency key reused, wrong state)"),
        (413, "Body too large"),
        (422, "Validation error; `param` names the field"),
        (429, "Rate limited; see Retry-After"),
        (500, "Server error"),
        (502, "Upstream model server failed or refused (chat forwarded to a configured upstream)"),
        (408, "The request body did not arrive in time"),
        (503, "Unavailable; see Retry-After"),
    ]
}

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1..100)")]
After = Annotated[str | None, Query(max_length=128, description="Cursor: the last id seen")]


def _rid(request: Request) -> str:
    return str(getattr(request.state, "request_id", "req_unknown"))


def _err(
    request: Request,
    status: int,
    code: str,
    msg: str,
    param: str | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, code, msg, param, _rid(request)), status, headers=headers
    )


def create_app(settings: Settings) -> FastAPI:
    gw = Gateway(settings)
    runtime = RequestPolicy(
        keys={k.key: k for k in settings.api_keys},
        rate_limit=settings.rate_limit.model_copy(),
        auth_failures=settings.limits.auth_failures,
    )
    expressions.MAX_DEPTH = settings.limits.max_expression_depth
    expressions.MAX_SOURCE_BYTES = settings.limits.max_expression_bytes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw.http = httpx.AsyncClient(timeout=30)
        task = asyncio.create_task(gw.run_scheduler())
        try:
            yield
        finally:
            task.cancel()
            for t in [*gw.runners.values(), *gw.downloads.values()]:
                t.cancel()
            await gw.http.aclose()
            if gw._sandbox is not None:
                gw._sandbox.close()
            gw.store.close()

    app = FastAPI(
        title="Bud gateway (local)",
        version=__version__,
        description="The Bud REST contract served locally by budai-gateway.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.gateway = gw
    app.state.runtime = runtime

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(_rid(request)), exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            return _err(request, 400, "invalid_json", "Request body is not valid JSON.", None)
        param = loc_to_param(loc)
        msg = str(first.get("msg", "invalid value"))
        if first.get("type") == "missing":
            msg = "Field required"
        text = f"{param}: {msg}" if param else msg
        if len(errors) > 1:
            # Every problem, not the first one and a count: a client fixes them all at once.
            rest = []
            for e in errors[1:]:
                p = loc_to_param(tuple(e.get("loc", ())))
                m = "Field required" if e.get("type") == "missing" else str(e.get("msg", ""))
                rest.append(f"{p}: {m}" if p else m)
            text = f"{len(errors)} problems: " + "; ".join([text, *rest])
        if loc and loc[0] in ("query", "path", "header"):
            return _err(request, 400, "invalid_parameter", text, param)
        if loc == ("body",) and first.get("type") in (
            "missing",
            "model_attributes_type",
            "dict_type",
        ):
            return _err(request, 400, "invalid_body", "Request body must be a JSON object.", None)
        return _err(request, 422, "invalid_value", text, param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "route_not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's own JSON decoding failed (e.g. nesting too deep for the parser).
            return _err(request, 400, "invalid_json", "Request body is not valid JSON.", None)
        msg = (
            str(exc.detail)
            if exc.status_code not in (404, 405)
            else (
                f"No route {request.method} {request.url.path}."
                if exc.status_code == 404
                else f"Method {request.method} is not allowed on {request.url.path}."
            )
        )
        return _err(request, exc.status_code, code, msg, None)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, printable(request.url.path))
        return _err(request, 500, "internal_error", f"Internal error: {type(exc).__name__}", None)

    @app.get("/health", include_in_schema=False)
    async def root_health() -> dict[str, str]:
        return gw.health()

    @app.get("/v1/openapi.json", include_in_schema=False)
    async def openapi_under_base_url() -> dict[str, Any]:
        # The contract's paths are relative to the base URL, so serve the schema there too.
        return app.openapi()

    app.include_router(_api_router(gw), prefix="/v1")
    app.include_router(local_router(gw, runtime), prefix="/_local", responses=ERRORS)
    app.add_middleware(GatewayMiddleware, gw=gw, policy=runtime)
    _document_headers(app)
    return app


def _int_header(desc: str) -> dict[str, Any]:
    return {"description": desc, "required": True, "schema": {"type": "integer"}}


def _document_headers(app: FastAPI) -> None:
    """Add the headers the middleware sends on every response to the OpenAPI document."""
    common = {
        "X-Request-ID": {
            "description": "The client's X-Request-ID, or a generated req_ id",
            "required": True,
            "schema": {"type": "string"},
        },
        "X-RateLimit-Limit": _int_header("Bucket size of this API key"),
        "X-RateLimit-Remaining": _int_header("Requests left in the bucket"),
        "X-RateLimit-Reset": _int_header("Unix time (s) when the bucket is full again"),
    }
    retry = {"Retry-After": _int_header("Seconds to wait before retrying")}

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        idem_param = {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Repeat a call safely: the same key and body within 24 h returns "
            "the first response; the same key with another body is a 409.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
        for path, ops in schema.get("paths", {}).items():
            if not path.startswith("/v1"):
                continue
            for method, op in ops.items():
                if method in ("post", "patch", "delete", "put"):
                    op.setdefault("parameters", []).append(idem_param)
                for status, resp in op.get("responses", {}).items():
                    headers = dict(common)
                    if status in ("429", "503"):
                        headers.update(retry)
                    resp["headers"] = {**headers, **resp.get("headers", {})}
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]


def _api_router(gw: Gateway) -> APIRouter:
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")
    r = APIRouter(responses=ERRORS)
    auth = [Security(bearer)]

    @r.get("/health", response_model=S.Health, tags=["health"])
    async def health() -> dict[str, str]:
        return gw.health()

    @r.get("/whoami", response_model=S.WhoAmI, tags=["health"], dependencies=auth)
    async def whoami(request: Request) -> dict[str, Any]:
        state = request.state
        return {
            "object": "whoami",
            "project": state.project,
            "scopes": list(state.scopes),
            "key_name": state.key_name,
        }

    def page(kind: str, request: Request, limit: int, after: str | None) -> dict[str, Any]:
        return gw.list_page(kind, dict(request.query_params), limit, after)

    # -- chat ------------------------------------------------------------------------------

    @r.post(
        "/chat/completions",
        response_model=S.ChatCompletion,
        tags=["chat"],
        dependencies=auth,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "A completion, "
                "or an SSE stream of chat.completion.chunk when stream is true",
            }
        },
    )
    async def chat_completions(request: Request, body: S.ChatCompletionRequest) -> Any:
        req = body.model_dump(mode="json", exclude_none=True)
        limits = gw.settings.limits
        chat.check_bounds(req, limits)
        dep, model = chat.resolve_target(gw, body.model)
        up = chat.upstream_of(gw, model)
        gw.record_request(dep["id"])
        if body.stream:
            gen = (
                await chat.open_upstream_stream(gw, up, model, req, _rid(request))
                if up is not None
                else chat.stream(req, body.model, limits)
            )
            return StreamingResponse(
                gen, media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )
        if up is not None:
            return JSONResponse(await chat.forward(gw, up, model, req))
        return chat.completion(req, body.model, limits)

    # -- the rest of the OpenAI-compatible surface --------------------------------------------

    @r.post(
        "/embeddings",
        response_model=openai_compat.EmbeddingList,
        tags=["chat"],
        dependencies=auth,
    )
    async def create_embeddings(body: openai_compat.EmbeddingRequest) -> Any:
        return await openai_compat.embeddings(gw, body)

    @r.post(
        "/completions",
        response_model=openai_compat.Completion,
        tags=["chat"],
        dependencies=auth,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "A legacy text completion (an SSE stream when stream is true)",
            }
        },
    )
    async def create_completion(body: openai_compat.CompletionRequest) -> Any:
        result = await openai_compat.completion(gw, body)
        if body.stream:
            return StreamingResponse(
                openai_compat.completion_stream(result),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        return result

    # -- models ----------------------------------------------------------------------------

    @r.post("/models", status_code=201, response_model=S.Model, tags=["models"], dependencies=auth)
    async def create_model(body: S.ModelCreate) -> Any:
        data = body.model_dump(mode="json")
        gw.check_model_metadata(data.get("metadata"))
        measured = await gw.measure_local(data["uri"]) if data["source"] == "local" else None
        return gw.create_model(data, measured)

    @r.get("/models", response_model=S.ModelList, tags=["models"], dependencies=auth)
    async def list_models(
        request: Request,
        limit: Limit = 20,
        after: After = None,
        name: str | None = None,
        status: S.ModelStatus | None = None,
        source: S.ModelSource | None = None,
    ) -> Any:
        if openai_compat.is_openai_client(request):
            # An OpenAI SDK wants the names it can chat with, not the registry's ids.
            return JSONResponse(openai_compat.models_list(gw))
        return page("model", request, limit, after)

    @r.get("/models/{model_id}", response_model=S.Model, tags=["models"], dependencies=auth)
    async def get_model(request: Request, model_id: str) -> Any:
        if openai_compat.is_openai_client(request):
            return JSONResponse(openai_compat.served_model(gw, model_id))
        return gw.get_model(model_id)

    @r.patch("/models/{model_id}", response_model=S.Model, tags=["models"], dependencies=auth)
    async def update_model(model_id: str, body: S.ModelUpdate) -> Any:
        return gw.update_model(model_id, body.model_dump(mode="json", exclude_unset=True))

    @r.delete(
        "/models/{model_id}",
        status_code=202,
        response_model=S.Model,
        tags=["models"],
        dependencies=auth,
    )
    async def delete_model(model_id: str) -> Any:
        return gw.delete_model(model_id)

    # -- clusters --------------------------------------------------------------------------

    @r.get("/clusters", response_model=S.ClusterList, tags=["clusters"], dependencies=auth)
    async def list_clusters(
        request: Request,
        limit: Limit = 20,
        after: After = None,
        name: str | None = None,
        status: S.ClusterStatus | None = None,
        provider: S.ClusterProvider | None = None,
    ) -> Any:
        return page("cluster", request, limit, after)

    @r.get("/clusters/{cluster_id}", response_model=S.Cluster, tags=["clusters"], dependencies=auth)
    async def get_cluster(cluster_id: str) -> Any:
        return gw.get_cluster(cluster_id)

    @r.get(
        "/clusters/{cluster_id}/health",
        response_model=S.ClusterHealth,
        tags=["clusters"],
        dependencies=auth,
    )
    async def cluster_health(cluster_id: str) -> Any:
        return gw.cluster_health(cluster_id)

    # -- deployments -----------------------------------------------------------------------

    @r.post(
        "/deployments",
        status_code=201,
        response_model=S.Deployment,
        tags=["deployments"],
        dependencies=auth,
    )
    async def create_deployment(body: S.DeploymentCreate) -> Any:
        return gw.create_deployment(body.model_dump(mode="json", exclude_unset=True))

    @r.get("/deployments", response_model=S.DeploymentList, tags=["deployments"], dependencies=auth)
    async def list_deployments(
        request: Request,
        limit: Limit = 20,
        after: After = None,
        name: str | None = None,
        model_id: str | None = None,
        cluster_id: str | None = None,
        status: S.DeploymentStatus | None = None,
    ) -> Any:
        return page("deployment", request, limit, after)

    @r.get(
        "/deployments/{deployment_id}",
        response_model=S.Deployment,
        tags=["deployments"],
        dependencies=auth,
    )
    async def get_deployment(deployment_id: str) -> Any:
        return gw.get_deployment(deployment_id)

    @r.patch(
        "/deployments/{deployment_id}",
        response_model=S.Deployment,
        tags=["deployments"],
        dependencies=auth,
    )
    async def update_deployment(deployment_id: str, body: S.DeploymentUpdate) -> Any:
        return gw.update_deployment(deployment_id, body.model_dump(mode="json", exclude_unset=True))

    @r.post(
        "/deployments/{deployment_id}/stop",
        response_model=S.Deployment,
        tags=["deployments"],
        dependencies=auth,
    )
    async def stop_deployment(deployment_id: str) -> Any:
        return gw.stop_deployment(deployment_id)

    @r.post(
        "/deployments/{deployment_id}/start",
        response_model=S.Deployment,
        tags=["deployments"],
        dependencies=auth,
    )
    async def start_deployment(deployment_id: str) -> Any:
        return gw.start_deployment(deployment_id)

    @r.delete(
        "/deployments/{deployment_id}",
        status_code=202,
        response_model=S.Deployment,
        tags=["deployments"],
        dependencies=auth,
    )
    async def delete_deployment(deployment_id: str) -> Any:
        return gw.delete_deployment(deployment_id)

    # -- pipelines -------------------------------------------------------------------------

    def check_definition(definition: S.Definition) -> dict[str, Any]:
        problems = dag.semantic_problems(definition, gw.settings.max_pipeline_steps)
        if problems:
            param, message = problems[0]
            if len(problems) > 1:  # every problem, each with where it is
                message = f"{len(problems)} problems: " + "; ".join(
                    f"{p}: {m}" if p else m for p, m in problems
                )
            raise APIError(422, "invalid_definition", message, param)
        return definition.model_dump(mode="json", exclude_none=True)

    @r.post(
        "/pipelines",
        status_code=201,
        response_model=S.Pipeline,
        tags=["pipelines"],
        dependencies=auth,
    )
    async def create_pipeline(body: S.PipelineCreate) -> Any:
        data = body.model_dump(mode="json")
        data["definition"] = check_definition(body.definition)
        return gw.pipeline_view(gw.create_pipeline(data))

    @r.get("/pipelines", response_model=S.PipelineList, tags=["pipelines"], dependencies=auth)
    async def list_pipelines(
        request: Request,
        limit: Limit = 20,
        after: After = None,
        name: str | None = None,
        status: S.PipelineStatus | None = None,
    ) -> Any:
        return page("pipeline", request, limit, after)

    @r.post(
        "/pipelines/validate",
        response_model=S.ValidateResult,
        tags=["pipelines"],
        dependencies=auth,
    )
    async def validate_pipeline(body: S.ValidateRequest) -> Any:
        _, problems = dag.validate_definition(body.definition, gw.settings.max_pipeline_steps)
        return {
            "valid": not problems,
            "errors": [{"param": p, "message": m} for p, m in problems],
        }

    @r.get(
        "/pipelines/{pipeline_id}", response_model=S.Pipeline, tags=["pipelines"], dependencies=auth
    )
    async def get_pipeline(pipeline_id: str) -> Any:
        return gw.pipeline_view(gw.get_pipeline(pipeline_id))

    @r.patch(
        "/pipelines/{pipeline_id}", response_model=S.Pipeline, tags=["pipelines"], dependencies=auth
    )
    async def update_pipeline(pipeline_id: str, body: S.PipelineUpdate) -> Any:
        data = body.model_dump(mode="json", exclude_unset=True)
        if body.definition is not None:
            data["definition"] = check_definition(body.definition)
        return gw.pipeline_view(gw.update_pipeline(pipeline_id, data))

    @r.delete(
        "/pipelines/{pipeline_id}", response_model=S.Deleted, tags=["pipelines"], dependencies=auth
    )
    async def delete_pipeline(pipeline_id: str) -> Any:
        return gw.delete_pipeline(pipeline_id)

    @r.get("/actions", response_model=S.ActionList, tags=["pipelines"], dependencies=auth)
    async def list_actions(request: Request) -> Any:
        for name in request.query_params:
            raise APIError(
                400, "unknown_filter", f"Unknown filter '{name}'; /actions has none.", name
            )
        return {"object": "list", "data": dag.catalogue(), "has_more": False, "next_cursor": None}

    # -- executions ------------------------------------------------------------------------

    @r.post(
        "/executions",
        status_code=201,
        response_model=S.Execution,
        tags=["executions"],
        dependencies=auth,
    )
    async def create_execution(body: S.ExecutionCreate) -> Any:
        return gw.create_execution(body.model_dump(mode="json"))

    @r.get("/executions", response_model=S.ExecutionList, tags=["executions"], dependencies=auth)
    async def list_executions(
        request: Request,
        limit: Limit = 20,
        after: After = None,
        pipeline_id: str | None = None,
        status: S.ExecutionStatus | None = None,
    ) -> Any:
        """Executions, newest first."""
        return page("execution", request, limit, after)

    @r.get(
        "/executions/{execution_id}",
        response_model=S.Execution,
        tags=["executions"],
        dependencies=auth,
    )
    async def get_execution(execution_id: str) -> Any:
        return gw.get_execution(execution_id)

    @r.post(
        "/executions/{execution_id}/cancel",
        response_model=S.Execution,
        tags=["executions"],
        dependencies=auth,
    )
    async def cancel_execution(execution_id: str) -> Any:
        return await gw.cancel_execution(execution_id)

    return r
