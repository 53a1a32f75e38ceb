"""The FastAPI application: ``create_app(settings)`` assembles the routers, the middleware and
the services' lifespan. Errors of every origin leave in the contract's shape.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from budai_gateway import __version__, expressions
from budai_gateway import schemas as S
from budai_gateway.config import Settings
from budai_gateway.errors import APIError, error_body, loc_to_param, printable
from budai_gateway.local import local_router
from budai_gateway.middleware import GatewayMiddleware, RequestPolicy
from budai_gateway.routers import (
    chat,
    clusters,
    deployments,
    executions,
    health,
    models,
    pipelines,
)
from budai_gateway.routers.common import ERRORS, request_id
from budai_gateway.wiring import Services

log = logging.getLogger("budai_gateway")
ROUTERS = [
    health.router,
    chat.router,
    models.router,
    clusters.router,
    deployments.router,
    pipelines.router,
    executions.router,
]
"""Every ``/v1`` router, in the order the OpenAPI document lists them."""


def _err(
    request: Request,
    status: int,
    code: str,
    msg: str,
    param: str | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, code, msg, param, request_id(request)), status, headers=headers
    )


def _is_unknown_query(error: Any) -> bool:
    return bool(error.get("type") == "extra_forbidden" and tuple(error["loc"])[:1] == ("query",))


def _unknown_filter(request: Request, name: str) -> JSONResponse:
    """400 naming the parameter and what the route accepts: the fields of its list query."""
    route = request.scope.get("route")
    accepted: list[str] = []
    if isinstance(route, APIRoute):
        for hint in get_type_hints(route.endpoint, include_extras=True).values():
            model = get_args(hint)[0] if get_origin(hint) is Annotated else hint
            if isinstance(model, type) and issubclass(model, S.ListQuery):
                accepted = list(model.model_fields)
    where = request.url.path.removeprefix("/v1")
    msg = f"Unknown filter '{name}'; " + (
        f"this list accepts: {', '.join(accepted)}" if accepted else f"{where} has none."
    )
    return _err(request, 400, "unknown_filter", msg, name)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves in the contract's shape, whoever raised it."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(request_id(request)), exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        all_errors = exc.errors()
        # Query parameters a route does not declare; they matter only when nothing else is wrong.
        unknown = [e for e in all_errors if _is_unknown_query(e)]
        errors = [e for e in all_errors if not _is_unknown_query(e)]
        if unknown and not errors:
            return _unknown_filter(request, str(tuple(unknown[0]["loc"])[-1]))
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


def create_app(settings: Settings) -> FastAPI:
    svc = Services(settings)
    runtime = RequestPolicy(
        keys={k.key: k for k in settings.api_keys},
        rate_limit=settings.rate_limit.model_copy(),
        auth_failures=settings.limits.auth_failures,
    )
    expressions.MAX_DEPTH = settings.limits.max_expression_depth
    expressions.MAX_SOURCE_BYTES = settings.limits.max_expression_bytes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with svc.running():
            yield

    app = FastAPI(
        title="Bud gateway (local)",
        version=__version__,
        description="The Bud REST contract served locally by budai-gateway.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = svc
    app.state.runtime = runtime
    _install_error_handlers(app)

    @app.get("/health", include_in_schema=False)
    async def root_health() -> dict[str, str]:
        return svc.health()

    @app.get("/v1/openapi.json", include_in_schema=False)
    async def openapi_under_base_url() -> dict[str, Any]:
        # The contract's paths are relative to the base URL, so serve the schema there too.
        return app.openapi()

    for router in ROUTERS:
        app.include_router(router, prefix="/v1", responses=ERRORS)
    app.include_router(local_router(svc, runtime), prefix="/_local", responses=ERRORS)
    app.add_middleware(GatewayMiddleware, gw=svc, policy=runtime)
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
