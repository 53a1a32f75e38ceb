"""The ASGI layer in front of the routes: a sequence of small stages, declared in order by
:func:`stages` (ARCHITECTURE.md lists the same order; a test checks that the two agree).

Each stage has one job and at most one reason to refuse. It sees the request as an
:class:`Exchange`, and either answers (a :class:`Refusal`, rendered as the contract's error
body), or calls the next stage and returns, or changes, what that one answers. Authentication
and scope come before the body is read, so a refused request's body is never read.

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from budai_gateway.config import ApiKey, AuthFailureLimit, RateLimit, Settings
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
class RequestPolicy:
    """What the stages decide with, kept in memory (reset with the state): the API keys, the
    rate-limit and failed-authentication buckets, the injected fault rules and the per-key
    idempotency locks."""

    keys: dict[str, ApiKey]
    rate_limit: RateLimit
    faults: list[FaultRule] = field(default_factory=list)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    auth_failures: AuthFailureLimit = field(default_factory=AuthFailureLimit)
    failed: dict[str, Bucket] = field(default_factory=dict)
    # (client address, key fingerprint) pairs that authenticated while the client was not
    # locked out: such a key keeps working through a lockout, so one tenant's wrong key behind a
    # shared client (an operator serving many teams) cannot lock the others out, while a guess
    # made during a lockout gets the same 429 whether it is right or not (no oracle).
    proven: dict[tuple[str, str], None] = field(default_factory=dict)

    def authenticate(self, headers: Mapping[str, str]) -> tuple[str, ApiKey | None]:
        """(bearer token, its key or None)."""
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return token, (self.keys.get(token) if token else None)

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

    def failure_wait(self, client: str) -> float | None:
        b = self._failure_bucket(client)
        if b.tokens >= 1.0:
            return None
        return (1.0 - b.tokens) / self.auth_failures.refill_per_second

    def proved(self, client: str, who: str) -> bool:
        """Whether key `who` authenticated from `client` before (see `proven`)."""
        return (client, who) in self.proven

    def record_success(self, client: str, who: str) -> None:
        if len(self.proven) > 10_000:
            self.proven.clear()  # bounded memory; a cleared pair is proven again on next use
        self.proven[(client, who)] = None

    def record_failure(self, client: str) -> None:
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


# -- what passes between the stages ----------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An error answer; :class:`Respond` renders it as the contract's error body."""

    status: int
    code: str
    message: str
    param: str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Reply:
    """A whole answer held back (buffered), sent as it is."""

    status: int
    headers: dict[str, str]
    body: bytes


# ``None``: answered already (streamed through, connection dropped, or the client left).
Outcome = Refusal | Reply | None


@dataclass
class Exchange:
    """One HTTP request on its way through the stages, and what they learnt about it."""

    scope: Scope
    receive: Receive
    send: Send
    method: str
    path: str
    headers: dict[str, str]
    request_id: str = ""
    token: str = ""
    key: ApiKey | None = None
    who: str = "anonymous"  # whose rate-limit bucket the answer reports
    extra: dict[str, str] = field(default_factory=dict)  # headers every answer carries
    body: bytes = b""
    buffer: bool = False  # hold the app's answer back (to store it, or to drop it)

    @classmethod
    def of(cls, scope: Scope, receive: Receive, send: Send) -> Exchange:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        return cls(scope, receive, send, scope["method"], scope["path"], headers)

    @property
    def public(self) -> bool:
        return self.path in PUBLIC_PATHS

    @property
    def local(self) -> bool:
        return self.path.startswith("/_local")

    @property
    def client(self) -> str:
        """The client's address: what failed authentications are counted by."""
        return str((self.scope.get("client") or ("unknown", 0))[0])

    @property
    def idempotency_key(self) -> str | None:
        """The Idempotency-Key when it applies: a mutating, authenticated, non-local request."""
        idem = self.headers.get("idempotency-key")
        if idem is None or self.method not in MUTATING or self.local or self.key is None:
            return None
        return idem


Next = Callable[[Exchange], Awaitable[Outcome]]


class Stage(Protocol):
    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome: ...


class Check:
    """A stage that only looks at the request: it refuses it, or lets it on."""

    def applies(self, ex: Exchange) -> bool:
        return True

    def check(self, ex: Exchange) -> Refusal | None:
        raise NotImplementedError

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        if self.applies(ex):
            refusal = self.check(ex)
            if refusal is not None:
                return refusal
        return await call_next(ex)


class Guarded(Check):
    """A check of the non-public paths only."""

    def applies(self, ex: Exchange) -> bool:
        return not ex.public


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


# -- the stages, in the order they run --------------------------------------------------------


class IsolateProject:
    """The project set for this request must not outlive it (in-process transports share the
    caller's context)."""

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        token = current_project.set(None)
        try:
            return await call_next(ex)
        finally:
            current_project.reset(token)


@dataclass
class Respond:
    """Sends what the stages below answered; a refusal carries the rate-limit headers as they
    stand at that moment."""

    policy: RequestPolicy

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        outcome = await call_next(ex)
        if isinstance(outcome, Refusal):
            _, rl_headers, _ = self.policy.take(ex.who, consume=False)
            headers = {**ex.extra, **rl_headers, **(outcome.headers or {})}
            headers.setdefault("content-type", "application/json")
            body = error_bytes(
                outcome.status, outcome.code, outcome.message, outcome.param, ex.request_id
            )
            outcome = Reply(outcome.status, headers, body)
        if outcome is not None:
            await send_reply(ex.send, outcome)
        return None


class RequestId(Check):
    """Every answer carries an ``x-request-id``: the client's when it is sane, else a new one."""

    def check(self, ex: Exchange) -> None:
        rid = ex.headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = "req_" + secrets.token_hex(12)
        ex.scope.setdefault("state", {})["request_id"] = rid
        ex.request_id = rid
        ex.extra["x-request-id"] = rid


@dataclass
class Identify(Check):
    """Which API key the bearer token is (refusing is for the stages after this one)."""

    policy: RequestPolicy

    def check(self, ex: Exchange) -> None:
        ex.token, ex.key = self.policy.authenticate(ex.headers)
        # Buckets are per key (names in a config file need not be unique).
        if ex.key is not None:
            ex.who = hashlib.sha256(ex.token.encode()).hexdigest()[:16]


@dataclass
class FailedAuthLimit(Guarded):
    """A client that keeps failing authentication is told to wait (429), whatever key it sends
    now, except a key that already worked from this client (``RequestPolicy.proven``)."""

    policy: RequestPolicy

    def check(self, ex: Exchange) -> Refusal | None:
        wait = self.policy.failure_wait(ex.client)
        if wait is None:
            if ex.key is not None:
                self.policy.record_success(ex.client, ex.who)
            return None
        if ex.key is not None and self.policy.proved(ex.client, ex.who):
            return None
        retry = _retry_after(wait)
        return Refusal(429, "too_many_failed_authentications",
                       f"Too many failed authentications from this client; retry in {retry} s.",
                       None, {"retry-after": retry})  # fmt: skip


@dataclass
class RequireKey(Guarded):
    """No key, no entry (401); each refusal counts against the client's failure bucket."""

    policy: RequestPolicy

    def check(self, ex: Exchange) -> Refusal | None:
        if ex.key is not None:
            return None
        self.policy.record_failure(ex.client)
        if ex.token:
            return Refusal(401, "invalid_api_key", "Invalid API key.")
        return Refusal(
            401, "missing_api_key", "Missing API key: send 'Authorization: Bearer <key>'."
        )


@dataclass
class RateLimitPerKey(Check):
    """Every authenticated request takes a token from its key's bucket, refused ones included
    (429 when empty; the /_local/ controls are not counted). Every answer says where the
    bucket stands."""

    policy: RequestPolicy

    def check(self, ex: Exchange) -> Refusal | None:
        if not ex.public and not ex.local:
            allowed, _, wait = self.policy.take(ex.who, consume=True)
            if not allowed:
                retry = _retry_after(wait)
                message = f"Rate limit exceeded; retry in {retry} s."
                return Refusal(429, "rate_limit_exceeded", message, None, {"retry-after": retry})
        _, rl_headers, _ = self.policy.take(ex.who, consume=False)
        ex.extra.update(rl_headers)
        return None


class RequireScope(Guarded):
    """The key's scope covers the request (403): reads need 'read', writes 'admin', the
    /_local/ controls 'local'."""

    def check(self, ex: Exchange) -> Refusal | None:
        assert ex.key is not None
        if ex.local:
            needed = "local"
        elif ex.method in MUTATING and (ex.method, ex.path) not in READ_WRITES:
            needed = "admin"
        else:
            needed = "read"
        if needed in ex.key.scopes():
            return None
        return Refusal(403, "insufficient_scope",
                       f"This API key has the '{ex.key.scope}' scope; {ex.method} "
                       f"{printable(ex.path)} needs '{needed}'.")  # fmt: skip


class BindProject(Guarded):
    """The key is its project: every object query below is scoped to it. The /_local/ controls
    act on the whole gateway, so they stay unscoped."""

    def check(self, ex: Exchange) -> None:
        assert ex.key is not None
        state = ex.scope["state"]
        state["project"] = None if ex.local else ex.key.project
        state["scopes"] = ex.key.scopes()
        state["key_name"] = ex.key.name
        current_project.set(state["project"])


@dataclass
class ReadBody:
    """Reads the body, bounded in size (413) and in time, against a slow sender (408)."""

    settings: Settings

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        limit = self.settings.max_body_bytes
        timeout = self.settings.limits.body_timeout_seconds
        too_large = Refusal(413, "request_too_large", f"Request body exceeds {limit} bytes.")
        try:
            declared = int(ex.headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return too_large
        chunks: list[bytes] = []
        size = 0
        more_body = True
        deadline = time.monotonic() + timeout
        while more_body:
            try:
                msg = await asyncio.wait_for(ex.receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                return Refusal(408, "request_timeout",
                               f"The request body did not arrive within {timeout:g} s"
                               " (limits.body_timeout_seconds).",
                               None, {"connection": "close"})  # fmt: skip
            if msg["type"] == "http.disconnect":
                return None
            part = msg.get("body", b"")
            size += len(part)
            if size > limit:
                return too_large
            chunks.append(part)
            more_body = msg.get("more_body", False)
        ex.body = b"".join(chunks)
        return await call_next(ex)


@dataclass
class JsonDepth(Check):
    """A body nests no deeper than limits.max_json_depth (422)."""

    settings: Settings

    def check(self, ex: Exchange) -> Refusal | None:
        limit = self.settings.limits.max_json_depth
        if json_depth(ex.body, limit) <= limit:
            return None
        message = f"Request body nests deeper than {limit} levels (limits.max_json_depth)."
        return Refusal(422, "invalid_body", message)


@dataclass
class InjectFaults:
    """The first matching fault rule (/_local/faults) acts: delay, answer with its status,
    drop the connection before the work, or do the work and drop the answer."""

    policy: RequestPolicy

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        rule = None if ex.local else self._pick(ex)
        if rule is None:
            return await call_next(ex)
        if rule.latency_seconds:
            await asyncio.sleep(rule.latency_seconds)
        if rule.action == "status":
            more = {}
            if rule.retry_after is not None:
                more["retry-after"] = str(math.ceil(rule.retry_after))
            elif rule.status in (429, 503):
                more["retry-after"] = "1"
            return Refusal(rule.status, "injected_fault", f"Injected fault: HTTP {rule.status}.",
                           None, more)  # fmt: skip
        if rule.action == "drop":
            await drop_connection()
            return None
        if rule.action != "drop_after":
            return await call_next(ex)  # latency only
        ex.buffer = True
        outcome = await call_next(ex)
        if isinstance(outcome, Reply):  # refusals are still answered; streams are gone
            await drop_connection()
            return None
        return outcome

    def _pick(self, ex: Exchange) -> FaultRule | None:
        for rule in list(self.policy.faults):
            if not rule.matches(ex.method, ex.path):
                continue
            if rule.probability < 1.0 and random.random() >= rule.probability:
                continue
            rule.hits += 1
            return rule
        return None


class IdempotencyKeyFormat(Check):
    """An Idempotency-Key is 1 to 255 characters (400)."""

    def applies(self, ex: Exchange) -> bool:
        return ex.idempotency_key is not None

    def check(self, ex: Exchange) -> Refusal | None:
        if 1 <= len(ex.idempotency_key or "") <= 255:
            return None
        message = "Idempotency-Key must be 1 to 255 characters."
        return Refusal(400, "invalid_idempotency_key", message, "Idempotency-Key")


@dataclass
class Idempotency:
    """A retried write with the same Idempotency-Key gets the first answer again, not a second
    object; the same key on a different request is refused (409). One request per key at a
    time."""

    policy: RequestPolicy
    gw: Services

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        idem = ex.idempotency_key
        if idem is None:
            return await call_next(ex)
        key_hash = hashlib.sha256(ex.token.encode()).hexdigest()
        body = _canonical_body(ex.body)
        fp = _fingerprint(ex.method, ex.path, ex.scope.get("query_string", b""), body)
        lock = self.policy.locks.setdefault((key_hash, idem), asyncio.Lock())
        async with lock:
            stored = self.gw.store.idem_get(
                key_hash, idem, self.gw.settings.idempotency_ttl_seconds
            )
            if stored is not None:
                return self._replay(ex, fp, *stored)
            ex.buffer = True
            token = IDEMPOTENCY.set([key_hash, idem, fp, False])
            try:
                outcome = await call_next(ex)
            finally:
                IDEMPOTENCY.reset(token)
            if isinstance(outcome, Reply) and outcome.status < 500 and outcome.status != 429:
                keep = {
                    k: v for k, v in outcome.headers.items() if k in ("content-type", "location")
                }
                self.gw.store.idem_put(key_hash, idem, fp, outcome.status, keep, outcome.body)
        if self.policy.locks.get((key_hash, idem)) is lock and not lock.locked():
            self.policy.locks.pop((key_hash, idem), None)
        return outcome

    def _replay(
        self, ex: Exchange, fp: str, old_fp: str, status: int, headers: dict[str, Any], body: bytes
    ) -> Refusal | Reply:
        if old_fp != fp:
            return Refusal(409, "idempotency_key_reused",
                           "This Idempotency-Key was used with a different request.",
                           "Idempotency-Key")  # fmt: skip
        if status == RESERVED:
            # The object was committed but its response was not stored (a crash in between):
            # answer with the object as it is now.
            status, headers, body = self._reserved_reply(headers)
        replayed = {**headers, **ex.extra, "idempotent-replayed": "true"}
        replayed.setdefault("content-type", "application/json")
        return Reply(status, replayed, body)

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


def _replayed(body: bytes) -> Receive:
    """The app's receive(): the body already read, then (while it streams) no disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # Starlette waits for a disconnect while streaming; park until cancelled.
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


@dataclass
class _Capture:
    """The app's send(): the answer, with the headers every answer carries, streams through
    unless it is to be held back (``buffer``, and not an event stream)."""

    send: Send
    extra: Mapping[str, str]
    buffer: bool
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    parts: list[bytes] = field(default_factory=list)
    streaming: bool = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in message.get("headers", [])
            }
            self.headers.update(self.extra)
            event_stream = self.headers.get("content-type", "").startswith("text/event-stream")
            if not self.buffer or event_stream:
                self.streaming = True
                await self.send({"type": "http.response.start", "status": self.status,
                                 "headers": _raw_headers(self.headers)})  # fmt: skip
        elif message["type"] == "http.response.body":
            if self.streaming:
                await self.send(message)
            else:
                self.parts.append(message.get("body", b""))


@dataclass
class Dispatch:
    """Runs the app on the body read. Its answer streams through, unless a stage above asked
    for it to be held back (and it is not an event stream). An unhandled error is a 500 with
    the contract's body and the same headers as every other answer."""

    app: ASGIApp

    async def __call__(self, ex: Exchange, call_next: Next) -> Outcome:
        capture = _Capture(ex.send, ex.extra, ex.buffer)
        try:
            await self.app(ex.scope, _replayed(ex.body), capture)
        except Exception as exc:
            if capture.streaming:
                raise  # the status line is gone; closing the connection is all that is left
            # Answered here rather than in Starlette's outer handler, so the 500 carries the
            # contract's body and the same headers as every other response.
            log.error("unhandled error on %s %s", ex.method, printable(ex.path), exc_info=exc)
            msg = f"Internal error: {type(exc).__name__}"
            error = error_bytes(500, "internal_error", msg, None, ex.request_id)
            return Reply(500, {**ex.extra, "content-type": "application/json"}, error)
        if capture.streaming:
            return None
        return Reply(capture.status, capture.headers, b"".join(capture.parts))


def stages(app: ASGIApp, gw: Services, policy: RequestPolicy) -> list[Stage]:
    """The stages in the order they run: the outermost first, the app last."""
    return [
        IsolateProject(),
        Respond(policy),
        RequestId(),
        Identify(policy),
        FailedAuthLimit(policy),
        RequireKey(policy),
        RateLimitPerKey(policy),
        RequireScope(),
        BindProject(),
        ReadBody(gw.settings),
        JsonDepth(gw.settings),
        InjectFaults(policy),
        IdempotencyKeyFormat(),
        Idempotency(policy, gw),
        Dispatch(app),
    ]


async def run_stages(chain: Sequence[Stage], ex: Exchange) -> Outcome:
    """Run ``ex`` through ``chain``; the last stage must answer without calling on."""

    async def at(i: int, ex: Exchange) -> Outcome:
        if i == len(chain):
            raise RuntimeError("the last stage called on: nothing is left to answer")
        return await chain[i](ex, lambda nxt: at(i + 1, nxt))

    return await at(0, ex)


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, gw: Services, policy: RequestPolicy) -> None:
        self.app = app
        self.stages = stages(app, gw, policy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await run_stages(self.stages, Exchange.of(scope, receive, send))


def _raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def send_reply(send: Send, reply: Reply) -> None:
    headers = {**reply.headers, "content-length": str(len(reply.body))}
    await send({"type": "http.response.start", "status": reply.status,
                "headers": _raw_headers(headers)})  # fmt: skip
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})
