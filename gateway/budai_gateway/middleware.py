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

from budai_gateway.config import ApiKey, AuthFailureLimit, RateLimit
from budai_gateway.errors import error_bytes, printable
from budai_gateway.store import IDEMPOTENCY, RESERVED
from budai_gateway.tenancy import current_project
from budai_gateway.wiring import Services

log = logging.getLogger("budai_gateway")

PUBLIC_PATHS = {"/health", "/v1/health", "/openapi.json", "/v1/openapi.json", "/docs", "/v1/docs"}
READ_WRITES = {
    ("POST", "/v1/pipelines/validate"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
}
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
    auth_failures: AuthFailureLimit = field(default_factory=AuthFailureLimit)
    failed: dict[str, Bucket] = field(default_factory=dict)

    def authenticate(self, headers: dict[str, str]) -> tuple[str, ApiKey | None]:
        """(bearer token, its key or None)."""
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return token, (self.keys.get(token) if token else None)

    def authorize(
        self, scope: Scope, token: str, key: ApiKey | None, method: str, path: str, local: bool
    ) -> tuple[int, str, str, str | None, dict[str, str] | None] | None:
        """The refusal (status, code, message, param, headers) of a non-public request, if any.

        Checked from headers alone, before the body is read. A client that keeps failing
        authentication is told to wait (429) without its keys being looked at.
        """
        client = str((scope.get("client") or ("unknown", 0))[0])
        wait = self._failure_wait(client)
        if wait is not None:
            retry = str(max(1, math.ceil(wait)))
            return (429, "too_many_failed_authentications",
                    f"Too many failed authentications from this client; retry in {retry} s.",
                    None, {"retry-after": retry})  # fmt: skip
        if key is None:
            self._record_failure(client)
            if token:
                return 401, "invalid_api_key", "Invalid API key.", None, None
            return (401, "missing_api_key",
                    "Missing API key: send 'Authorization: Bearer <key>'.", None, None)  # fmt: skip
        who = hashlib.sha256(token.encode()).hexdigest()[:16]
        # Every authenticated request counts, refused ones included.
        if not local:
            allowed, _, wait_s = self.take(who, consume=True)
            if not allowed:
                retry = str(max(1, math.ceil(wait_s)))
                return (429, "rate_limit_exceeded", f"Rate limit exceeded; retry in {retry} s.",
                        None, {"retry-after": retry})  # fmt: skip
        needed = (
            "local"
            if local
            else "admin"
            if method in MUTATING and (method, path) not in READ_WRITES
            else "read"
        )
        if needed not in key.scopes():
            return (403, "insufficient_scope",
                    f"This API key has the '{key.scope}' scope; {method} {printable(path)} "
                    f"needs '{needed}'.", None, None)  # fmt: skip
        return None

    def _failure_bucket(self, client: str) -> Bucket:
        lim = self.auth_failures
        now = time.monotonic()
        b = self.failed.get(client)
        if b is None:
            if len(self.failed) > 10_000:
                self.failed.clear()  # bounded memory under a flood of client addresses
            b = self.failed[client] = Bucket(float(lim.capacity), now)
        b.tokens = min(float(lim.capacity), b.tokens + (now - b.last) * lim.refill_per_second)
        b.last = now
        return b

    def _failure_wait(self, client: str) -> float | None:
        b = self._failure_bucket(client)
        if b.tokens >= 1.0:
            return None
        return (1.0 - b.tokens) / self.auth_failures.refill_per_second

    def _record_failure(self, client: str) -> None:
        b = self._failure_bucket(client)
        b.tokens = max(b.tokens - 1.0, 0.0)

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


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(body: bytes, limit: int) -> int:
    """How deep a JSON body nests (stops counting past ``limit``); strings are skipped."""
    if b"[" not in body and b"{" not in body:
        return 0
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for ch in brackets:
        if ch in (91, 123):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


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
    def __init__(self, app: ASGIApp, gw: Services, runtime: Runtime) -> None:
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
        token, key = self.rt.authenticate(headers)
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

        # Authentication and scope come first: a refused request's body is never read.
        if not public:
            refusal = self.rt.authorize(scope, token, key, method, path, local)
            if refusal is not None:
                await error(*refusal)
                return
            assert key is not None
            # The key is its project: every object query below is scoped to it. The /_local/
            # controls act on the whole gateway, so they stay unscoped.
            state = scope["state"]
            state["project"] = None if local else key.project
            state["scopes"] = key.scopes()
            state["key_name"] = key.name
            current_project.set(state["project"])
        _, rl_headers, _ = self.rt.take(who, consume=False)
        extra.update(rl_headers)

        # Body, bounded in size, in time (a slow sender) and in nesting.
        limits = self.gw.settings.limits
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
        deadline = time.monotonic() + limits.body_timeout_seconds
        while more_body:
            try:
                msg = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                await error(
                    408,
                    "request_timeout",
                    f"The request body did not arrive within {limits.body_timeout_seconds:g} s"
                    " (limits.body_timeout_seconds).",
                    None,
                    {"connection": "close"},
                )
                return
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
        depth = json_depth(body, limits.max_json_depth)
        if depth > limits.max_json_depth:
            await error(
                422,
                "invalid_body",
                f"Request body nests deeper than {limits.max_json_depth} levels"
                " (limits.max_json_depth).",
            )
            return

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
                    if status == RESERVED:
                        # The object was committed but its response was not stored (a crash
                        # in between): answer with the object as it is now.
                        status, old_headers, old_body = self._reserved_reply(old_headers)
                    await _send_simple(
                        send,
                        status,
                        old_body,
                        {**old_headers, **extra, "idempotent-replayed": "true"},
                    )
                    return
                token_var = IDEMPOTENCY.set([key_hash, idem, fp, False])
                try:
                    status, resp_headers, resp_body, streamed = await self._run(
                        scope, body, send, extra, buffer=True
                    )
                finally:
                    IDEMPOTENCY.reset(token_var)
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

    def _reserved_reply(self, reserved: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        found = self.gw.store.get_any(str(reserved.get("object_id", "")))
        headers = {"content-type": "application/json"}
        if found is None:
            body = error_bytes(409, "idempotency_key_reused",
                               "The object this Idempotency-Key created is gone.",
                               "Idempotency-Key", "")  # fmt: skip
            return 409, headers, body
        kind, doc = found
        if kind == "execution":
            doc = self.gw.executions.view(doc)
        return 201, headers, json.dumps(doc).encode()

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
            log.error(
                "unhandled error on %s %s",
                scope["method"],
                printable(scope["path"]),
                exc_info=exc,
            )
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
