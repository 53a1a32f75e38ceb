"""What every router shares: the error responses it documents, the bearer scheme, ``Svc``."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPBearer

from budai_gateway import schemas as S
from budai_gateway.wiring import Services

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

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")
AUTH = [Security(_bearer)]
"""Documents the bearer key (the middleware checks it) on every route but the health check."""


def _services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


Svc = Annotated[Services, Depends(_services)]


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "req_unknown"))


def no_query(query: Annotated[S.NoQuery, Query()]) -> None:
    """A dependency that refuses every query parameter (a route without filters)."""
