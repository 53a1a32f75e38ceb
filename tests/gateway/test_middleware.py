"""The ASGI middleware on its own: around an app that fails (even a 500 keeps the contract),
and stage by stage (each refuses for its one reason; the order is ARCHITECTURE.md's)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from budai_gateway.config import ApiKey, AuthFailureLimit, RateLimit, Settings
from budai_gateway.middleware import (
    ConnectionDropped,
    Exchange,
    FailedAuthLimit,
    FaultRule,
    GatewayMiddleware,
    IdempotencyKeyFormat,
    Identify,
    InjectFaults,
    Outcome,
    RateLimitPerKey,
    ReadBody,
    Refusal,
    Reply,
    RequestPolicy,
    RequireKey,
    RequireScope,
    run_stages,
    stages,
)
from budai_gateway.wiring import Services


async def exploding_app(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


def test_unhandled_error_is_a_contract_500(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "g.db"), api_keys=[ApiKey(key="k")])

    async def go() -> list[httpx.Response]:
        gw = Services(settings)
        rt = RequestPolicy(keys={"k": settings.api_keys[0]}, rate_limit=settings.rate_limit)
        app = GatewayMiddleware(exploding_app, gw, rt)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            h = {"Authorization": "Bearer k"}
            return [
                await c.get("/v1/models", headers=h),
                await c.post("/v1/models", headers={**h, "Idempotency-Key": "a"}, json={}),
            ]

    for r in asyncio.run(go()):
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["type"] == "server_error" and err["code"] == "internal_error"
        assert err["request_id"] == r.headers["x-request-id"]
        assert "x-ratelimit-remaining" in r.headers
        assert "boom" not in r.text  # no internals leak to clients


# -- the stages, one at a time -----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def exchange(method: str = "GET", path: str = "/v1/models", **headers: str) -> Exchange:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("10.0.0.1", 1234),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: Any) -> None:
        raise AssertionError("a stage sent on its own")

    return Exchange.of(scope, receive, send)


async def passed(ex: Exchange) -> Outcome:
    return Reply(200, {}, b"on")


def run(stage: Any, ex: Exchange, call_next: Any = passed) -> Outcome:
    return asyncio.run(stage(ex, call_next))


def policy(*keys: ApiKey, **kw: Any) -> RequestPolicy:
    return RequestPolicy(keys={k.key: k for k in keys}, rate_limit=RateLimit(), **kw)


def test_the_stage_order_is_the_one_architecture_md_lists(tmp_path: Path) -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## The gateway's middleware stages", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\d+\. `(\w+)`", section, flags=re.M)
    gw = Services(Settings(db_path=str(tmp_path / "g.db"), api_keys=[ApiKey(key="k")]))
    declared = [type(s).__name__ for s in stages(exploding_app, gw, policy())]
    assert listed == declared
    # What the order promises: no refusal after the body is read is about who is asking.
    assert declared.index("ReadBody") > max(
        declared.index(n) for n in ("RequireKey", "RequireScope", "RateLimitPerKey")
    )
    assert declared[-1] == "Dispatch"


def test_identify_then_require_key() -> None:
    rp = policy(ApiKey(key="k"))
    ex = exchange(authorization="Bearer nope")
    assert run(Identify(rp), ex) == Reply(200, {}, b"on")
    assert ex.key is None and ex.who == "anonymous"
    refused = run(RequireKey(rp), ex)
    assert isinstance(refused, Refusal) and (refused.status, refused.code) == (
        401,
        "invalid_api_key",
    )
    bare = exchange()
    assert run(RequireKey(rp), bare) == Refusal(
        401, "missing_api_key", "Missing API key: send 'Authorization: Bearer <key>'."
    )
    assert run(RequireKey(rp), exchange(path="/health")) == Reply(200, {}, b"on")  # public
    ok = exchange(authorization="Bearer k")
    run(Identify(rp), ok)
    assert ok.key is not None and ok.who != "anonymous"
    assert run(RequireKey(rp), ok) == Reply(200, {}, b"on")


def test_failed_authentications_are_limited_per_client() -> None:
    rp = policy(ApiKey(key="k"), auth_failures=AuthFailureLimit(capacity=2, refill_per_second=0.5))
    for _ in range(2):
        assert isinstance(run(RequireKey(rp), exchange()), Refusal)
    refused = run(FailedAuthLimit(rp), exchange(authorization="Bearer k"))
    assert isinstance(refused, Refusal) and refused.status == 429
    assert refused.code == "too_many_failed_authentications"
    assert dict(refused.headers or {}) == {"retry-after": "2"}


def test_a_key_that_worked_before_a_lockout_keeps_working_through_it() -> None:
    """One tenant's wrong key behind a shared client (an operator serving many teams) must not
    lock the other tenants out; a guess made during the lockout learns nothing."""
    rp = policy(
        ApiKey(key="a"), ApiKey(key="b"),
        auth_failures=AuthFailureLimit(capacity=2, refill_per_second=0.01),
    )  # fmt: skip

    def attempt(token: str) -> Outcome:
        ex = exchange(authorization=f"Bearer {token}")
        run(Identify(rp), ex)
        return run(FailedAuthLimit(rp), ex)

    assert attempt("a") == Reply(200, {}, b"on")  # tenant A's key works from 10.0.0.1
    for _ in range(2):
        assert isinstance(run(RequireKey(rp), exchange(authorization="Bearer wrong")), Refusal)
    assert attempt("a") == Reply(200, {}, b"on")  # still works: proven before the lockout
    for guess in ("b", "guess"):  # right or wrong, an unproven key gets the same answer
        refused = attempt(guess)
        assert isinstance(refused, Refusal) and refused.code == "too_many_failed_authentications"
    for _ in range(2):
        rp.record_failure("10.0.0.2")
    other = exchange(authorization="Bearer a")
    other.scope["client"] = ("10.0.0.2", 1)  # proven per client address, not everywhere
    run(Identify(rp), other)
    refused = run(FailedAuthLimit(rp), other)
    assert isinstance(refused, Refusal) and refused.status == 429


def test_rate_limit_counts_keys_not_local_controls() -> None:
    rp = RequestPolicy(keys={}, rate_limit=RateLimit(capacity=1, refill_per_second=0.001))
    first, second, local = exchange(), exchange(), exchange(path="/_local/faults")
    for ex in (first, second, local):
        ex.who = "someone"
    assert run(RateLimitPerKey(rp), first) == Reply(200, {}, b"on")
    assert first.extra["x-ratelimit-remaining"] == "0"
    refused = run(RateLimitPerKey(rp), second)
    assert isinstance(refused, Refusal) and refused.code == "rate_limit_exceeded"
    assert run(RateLimitPerKey(rp), local) == Reply(200, {}, b"on")


def test_scope_is_checked_per_method_and_path() -> None:
    def with_key(scope: str, method: str, path: str) -> Outcome:
        ex = exchange(method, path)
        ex.key = ApiKey(key="k", scope=scope)  # type: ignore[arg-type]
        return run(RequireScope(), ex)

    assert with_key("read", "GET", "/v1/models") == Reply(200, {}, b"on")
    assert with_key("read", "POST", "/v1/pipelines/validate") == Reply(200, {}, b"on")
    refused = with_key("read", "POST", "/v1/models")
    assert isinstance(refused, Refusal) and refused.status == 403
    assert refused.message == "This API key has the 'read' scope; POST /v1/models needs 'admin'."
    assert isinstance(with_key("admin", "GET", "/_local/faults"), Refusal)
    assert with_key("local", "GET", "/_local/faults") == Reply(200, {}, b"on")


def test_read_body_refuses_a_declared_size_unread(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "g.db"), max_body_bytes=10)
    ex = exchange("POST", content_length="11")  # receive() raises if called
    assert run(ReadBody(settings), ex) == Refusal(
        413, "request_too_large", "Request body exceeds 10 bytes."
    )


def test_idempotency_key_format() -> None:
    ex = exchange("POST", idempotency_key="x" * 256)
    ex.key = ApiKey(key="k")
    refused = run(IdempotencyKeyFormat(), ex)
    assert isinstance(refused, Refusal) and refused.param == "Idempotency-Key"
    get = exchange("GET", idempotency_key="x" * 256)
    get.key = ApiKey(key="k")
    assert run(IdempotencyKeyFormat(), get) == Reply(200, {}, b"on")  # reads ignore the header


def test_drop_after_drops_answers_not_refusals() -> None:
    def faulted() -> RequestPolicy:
        return policy(faults=[FaultRule(id="f", method="*", path="*", action="drop_after")])

    async def refuse(ex: Exchange) -> Outcome:
        assert ex.buffer  # the answer must be held back to be dropped
        return Refusal(409, "conflict", "no")

    assert run(InjectFaults(faulted()), exchange(), refuse) == Refusal(409, "conflict", "no")
    with pytest.raises(ConnectionDropped):
        run(InjectFaults(faulted()), exchange())
    status = policy(faults=[FaultRule(id="f", method="GET", path="/v1/*", action="status")])
    refused = run(InjectFaults(status), exchange())
    assert isinstance(refused, Refusal) and refused.code == "injected_fault"
    assert dict(refused.headers or {}) == {"retry-after": "1"}
    assert status.faults[0].hits == 1


def test_a_refused_request_is_answered_without_its_body_being_read(tmp_path: Path) -> None:
    """Through the whole chain: a request without a key gets its 401 before any receive()."""
    settings = Settings(db_path=str(tmp_path / "g.db"), api_keys=[ApiKey(key="k")])
    gw = Services(settings)
    ex = exchange("POST", "/v1/models", content_length="5")
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    ex.send = send
    asyncio.run(run_stages(stages(exploding_app, gw, policy(*settings.api_keys)), ex))
    assert sent[0]["status"] == 401
    headers = dict(sent[0]["headers"])
    assert headers[b"x-request-id"] == ex.request_id.encode() and b"x-ratelimit-limit" in headers
