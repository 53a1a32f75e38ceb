"""The contract's error shape: one exception type raised anywhere, one JSON body on the wire."""

from __future__ import annotations

import json
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "validation_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


class APIError(Exception):
    """An error the gateway answers with; ``param`` names the offending field when there is one."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message, self.param, request_id)


def error_body(
    status: int, code: str, message: str, param: str | None, request_id: str
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": error_type(status),
            "code": code,
            "param": param,
            "request_id": request_id,
        }
    }


def error_bytes(status: int, code: str, message: str, param: str | None, request_id: str) -> bytes:
    return json.dumps(error_body(status, code, message, param, request_id)).encode()


def not_found(kind: str, obj_id: str, param: str) -> APIError:
    return APIError(404, f"{kind}_not_found", f"No {kind} with id '{obj_id}'.", param)


def loc_to_param(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """A pydantic location as a dotted path.

    ``("body", "definition", "steps", 2)`` -> ``definition.steps[2]``.
    """
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif isinstance(p, str) and p.startswith(("function-", "json-or-python")):
            # pydantic's internal union branch labels say nothing to a client
            continue
        else:
            out += ("." if out else "") + str(p)
    return out or None


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def printable(value: object, limit: int = 2000) -> str:
    """A user-supplied string made safe for one log line: control characters escaped
    (no forged lines, no terminal escapes) and the length capped."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return text.translate(_CONTROL)
