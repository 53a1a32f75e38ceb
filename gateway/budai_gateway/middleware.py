"""The ASGI layer in front of the routes: request ids, body limit, auth and scopes, rate limits,
fault injection and idempotency keys.

It is a plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``) because two faults need
the raw connection: "drop before responding" and "do the work, then drop the response".
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import logging
import math
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from budai_gateway.config import ApiKey, RateLimit
from budai_gateway.errors import error_bytes
from budai_gateway.service import Gateway
from budai_gateway.tenancy import current_project

log = logging.getLogger("budai_gateway")

PUBLIC_PATHS = {"/health", "/v1/health", "/openapi.json", "/v1/openapi.json", "/docs", "/v1/docs"}
READ_WRITES = {("POST", "/v1/pipelines/validate"), ("POST", "/v1/chat/completions")}
MUTATING = {"POST", "PATCH", "DELETE", "PUT"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")


@dataclass
class FaultRule:
    """One injected fault. ``action``: status | latency | drop | drop_after."""

    id: str
    method: str
    path: str
    action: str
    status: int = 503
    retry_after: float | None = None
    latency_seconds: float = 0.0
    count: int | None = None
    probability: float = 1.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.method not in ("*", method):
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "action": self.action,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency_seconds": self.latency_seconds,
            "count": self.count,
            "probability": self.probability,
            "hits": self.hits,
            "remaining": None if self.count is None else max(self.count - self.hits, 0),
        }


@dataclass
class Bucket:
    tokens: float
    last: float


@dataclass
class Runtime:
    """In-memory controls: fault rules and token buckets (reset with the state)."""

    keys: dict[str, ApiKey]
    rate_limit: RateLimit
    faults: list[FaultRule] = field(default_factory=list)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def take(self, who: str, consume: bool) -> tuple[bool, dict[str, str], float]:
        rl = self.rate_limit
        now = time.time()
        b = self.buckets.get(who)
        if b is None:
            b = self.buckets[who] = Bucket(float(rl.capacity), now)
        b.tokens = min(float(rl.capacity), b.tokens + (now - b.last) * rl.refill_per_second)
        b.last = now
        allowed = True
        wait = 0.0
        if consume:
            if b.tokens >= 1.0:
                b.tokens -= 1.0
            else:
                allowed = False
                wait = (1.0 - b.tokens) / rl.refill_per_second
        refill = (rl.capacity - b.tokens) / rl.refill_per_second if rl.refill_per_second else 0
        headers = {
            "x-ratelimit-limit": str(rl.capacity),
            "x-ratelimit-remaining": str(max(math.floor(b.tokens), 0)),
            "x-ratelimit-reset": str(math.ceil(now + refill)),
        }
        return allowed, headers, wait


class ConnectionDropped(Exception):
    """Raised when the connection cannot be aborted directly (in-process transports)."""


async def drop_connection() -> None:
    """Abort the TCP connection under the current request so the client sees no response.

    uvicorn runs each request in a task whose coroutine is ``RequestResponseCycle.run_asgi``;
    its ``transport`` is the socket. Marking the cycle disconnected stops uvicorn from writing
    a 500 after we return without a response.
    """
    task = asyncio.current_task()
    coro: Any = task.get_coro() if task is not None else None
    frame = getattr(coro, "cr_frame", None)
    cycle = frame.f_locals.get("self") if frame is not None else None
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionDropped("fault injection: connection dropped")
    transport.abort()
    if cycle is not None:
        cycle.disconnected = True
    await asyncio.sleep(0)


def _fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _canonical_body(body: bytes) -> bytes:
    """JSON bodies compare by value so key order and spacing do not make a retry 'different'."""
    if not body:
        return b""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        return body  # not JSON (or absurdly nested): compare the bytes


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, gw: Gateway, runtime: Runtime) -> None:
        self.app = app
        self.gw = gw
        self.rt = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The project set for this request must not outlive it (in-process transports share
        # the caller's context).
        token = current_project.set(None)
        try:
            await self._handle(scope, receive, send)
        finally:
            current_project.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = rid
        public = path in PUBLIC_PATHS
        local = path.startswith("/_local")

        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        key = self.rt.keys.get(token) if token else None
        # Buckets are per key (names in a config file need not be unique).
        who = hashlib.sha256(token.encode()).hexdigest()[:16] if key else "anonymous"
        extra: dict[str, str] = {"x-request-id": rid}

        async def error(
            status: int,
            code: str,
            message: str,
            param: str | None = None,
            more: dict[str, str] | None = None,
        ) -> None:
            _, rl_headers, _ = self.rt.take(who, consume=False)
            hdrs = {**extra, **rl_headers, **(more or {})}
            body = error_bytes(status, code, message, param, rid)
            await _send_simple(send, status, body, hdrs)

        # Body, bounded.
        limit = self.gw.settings.max_body_bytes
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await error(413, "request_too_large", f"Request body exceeds {limit} bytes.")
            return
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            part = msg.get("body", b"")
            size += len(part)
            if size > limit:
                await error(413, "request_too_large", f"Request body exceeds {limit} bytes.")
                return
            chunks.append(part)
            more_body = msg.get("more_body", False)
        body = b"".join(chunks)

        if not public:
            if key is None:
                await error(
                    401,
                    "invalid_api_key" if token else "missing_api_key",
                    "Invalid API key."
                    if token
                    else "Missing API key: send 'Authorization: Bearer <key>'.",
                )
                return
            # Every authenticated request counts, refused ones included.
            if not local:
                allowed, rl_headers, wait = self.rt.take(who, consume=True)
                if not allowed:
                    retry = str(max(1, math.ceil(wait)))
                    await error(
                        429,
                        "rate_limit_exceeded",
                        f"Rate limit exceeded; retry in {retry} s.",
                        None,
                        {"retry-after": retry},
                    )
                    return
            needed = (
                "local"
                if local
                else "admin"
                if method in MUTATING and (method, path) not in READ_WRITES
                else "read"
            )
            if needed not in key.scopes():
                await error(
                    403,
                    "insufficient_scope",
                    f"This API key has the '{key.scope}' scope; {method} {path} needs '{needed}'.",
                )
                return
            # The key is its project: every object query below is scoped to it. The /_local/
            # controls act on the whole gateway, so they stay unscoped.
            state = scope["state"]
            state["project"] = None if local else key.project
            state["scopes"] = key.scopes()
            state["key_name"] = key.name
            current_project.set(state["project"])
        if public or local:
            _, rl_headers, _ = self.rt.take(who, consume=False)
        extra.update(rl_headers)

        drop_after = False
        if not local:
            for rule in list(self.rt.faults):
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1.0 and random.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.latency_seconds:
                    await asyncio.sleep(rule.latency_seconds)
                if rule.action == "status":
                    more = {}
                    if rule.retry_after is not None:
                        more["retry-after"] = str(math.ceil(rule.retry_after))
                    elif rule.status in (429, 503):
                        more["retry-after"] = "1"
                    await error(
                        rule.status,
                        "injected_fault",
                        f"Injected fault: HTTP {rule.status}.",
                        None,
                        more,
                    )
                    return
                if rule.action == "drop":
                    await drop_connection()
                    return
                if rule.action == "drop_after":
                    drop_after = True
                break

        idem = headers.get("idempotency-key")
        if idem is not None and method in MUTATING and not local and key is not None:
            if not 1 <= len(idem) <= 255:
                await error(
                    400,
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 characters.",
                    "Idempotency-Key",
                )
                return
            key_hash = hashlib.sha256(token.encode()).hexdigest()
            fp = _fingerprint(method, path, scope.get("query_string", b""), _canonical_body(body))
            lock = self.rt.locks.setdefault((key_hash, idem), asyncio.Lock())
            async with lock:
                ttl = self.gw.settings.idempotency_ttl_seconds
                stored = self.gw.store.idem_get(key_hash, idem, ttl)
                if stored is not None:
                    old_fp, status, old_headers, old_body = stored
                    if old_fp != fp:
                        await error(
                            409,
                            "idempotency_key_reused",
                            "This Idempotency-Key was used with a different request.",
                            "Idempotency-Key",
                        )
                        return
                    if drop_after:
                        await drop_connection()
                        return
                    await _send_simple(
                        send,
                        status,
                        old_body,
                        {**old_headers, **extra, "idempotent-replayed": "true"},
                    )
                    return
                status, resp_headers, resp_body, streamed = await self._run(
                    scope, body, send, extra, buffer=True
                )
                if not streamed and status < 500 and status != 429:
                    keep = {
                        k: v for k, v in resp_headers.items() if k in ("content-type", "location")
                    }
                    self.gw.store.idem_put(key_hash, idem, fp, status, keep, resp_body)
            if self.rt.locks.get((key_hash, idem)) is lock and not lock.locked():
                self.rt.locks.pop((key_hash, idem), None)
        else:
            status, resp_headers, resp_body, streamed = await self._run(
                scope, body, send, extra, buffer=drop_after
            )
        if streamed:
            return
        if drop_after:
            await drop_connection()
            return
        await _send_simple(send, status, resp_body, resp_headers, raw=True)

    async def _run(
        self, scope: Scope, body: bytes, send: Send, extra: dict[str, str], buffer: bool
    ) -> tuple[int, dict[str, str], bytes, bool]:
        """Run the app. Buffer its response (returned) unless it streams or ``buffer`` is off."""
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Starlette waits for a disconnect while streaming; park until cancelled.
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        status = 500
        resp_headers: dict[str, str] = {}
        parts: list[bytes] = []
        streaming = False

        async def capture(message: Message) -> None:
            nonlocal status, resp_headers, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = [
                    (k.decode("latin-1").lower(), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                ]
                resp_headers = dict(raw)
                resp_headers.update(extra)
                if not buffer or resp_headers.get("content-type", "").startswith(
                    "text/event-stream"
                ):
                    streaming = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": [
                                (k.encode("latin-1"), v.encode("latin-1"))
                                for k, v in resp_headers.items()
                            ],
                        }
                    )
            elif message["type"] == "http.response.body":
                if streaming:
                    await send(message)
                else:
                    parts.append(message.get("body", b""))

        try:
            await self.app(scope, replay, capture)
        except Exception as exc:
            if streaming:
                raise  # the status line is gone; closing the connection is all that is left
            # Answer here rather than in Starlette's outer handler, so the 500 carries the
            # contract's body and the same headers as every other response.
            log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
            rid = str(scope.get("state", {}).get("request_id", ""))
            msg = f"Internal error: {type(exc).__name__}"
            body = error_bytes(500, "internal_error", msg, None, rid)
            resp_headers = {**extra, "content-type": "application/json"}
            if not buffer:
                await _send_simple(send, 500, body, resp_headers)
                return 500, resp_headers, body, True
            return 500, resp_headers, body, False
        return status, resp_headers, b"".join(parts), streaming


async def _send_simple(
    send: Send, status: int, body: bytes, headers: dict[str, str], raw: bool = False
) -> None:
    hdrs = dict(headers)
    if not raw:
        hdrs.setdefault("content-type", "application/json")
    hdrs["content-length"] = str(len(body))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
