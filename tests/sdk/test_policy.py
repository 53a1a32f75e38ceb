"""The pure decisions of ``budai._base_client``: backoff, Retry-After, the retry table, error
mapping from status and body (including bodies that are not the contract's shape)."""

from __future__ import annotations

import email.utils
import json

import pytest

from budai import _base_client as base
from budai import exceptions as exc

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("n", "lo", "hi"),
    [(0, 0.375, 0.5), (1, 0.75, 1.0), (2, 1.5, 2.0), (3, 3.0, 4.0), (4, 6.0, 8.0), (9, 6.0, 8.0)],
)
def test_backoff_schedule(n: int, lo: float, hi: float) -> None:
    assert base.backoff_delay(n, rand=0.0) == hi
    assert base.backoff_delay(n, rand=1.0) == lo
    for _ in range(50):
        assert lo <= base.backoff_delay(n) <= hi


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "120"}, 120.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert base.parse_retry_after(headers, NOW) == expected


def decide(method: str = "GET", status: int | None = 503, retries: int = 0, **kw: object) -> bool:
    d = base.decide_retry(
        method=method,
        status=status,
        headers=kw.get("headers", {}),  # type: ignore[arg-type]
        retries_taken=retries,
        max_retries=kw.get("max_retries", 3),  # type: ignore[arg-type]
        idempotency_key=kw.get("key", "k"),  # type: ignore[arg-type]
        now=NOW,
    )
    return d.retry


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, None])
def test_retryable(status: int | None) -> None:
    assert decide(status=status)
    assert decide("POST", status=status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 422, 501, 505])
def test_never_retried(status: int) -> None:
    assert not decide(status=status)
    assert not decide("POST", status=status)


def test_writes_need_an_idempotency_key() -> None:
    for method in ("POST", "PATCH", "DELETE", "PUT"):
        assert not decide(method, key=None)
        assert not decide(method, status=None, key=None)
    assert decide("GET", key=None)


def test_out_of_retries_and_disabled() -> None:
    assert decide(retries=2, max_retries=3)
    assert not decide(retries=3, max_retries=3)
    assert not decide(retries=0, max_retries=0)


def test_retry_after_replaces_backoff_up_to_60s() -> None:
    d = base.decide_retry(method="GET", status=429, headers={"retry-after": "7"}, retries_taken=0,
                          max_retries=3, idempotency_key=None, now=NOW)
    assert d == base.RetryDecision(True, 7.0, "Retry-After")
    d = base.decide_retry(method="GET", status=503, headers={"retry-after": "60"},
                          retries_taken=0, max_retries=3, idempotency_key=None, now=NOW)
    assert d.retry and d.delay == 60.0
    d = base.decide_retry(method="GET", status=429, headers={"retry-after": "61"},
                          retries_taken=0, max_retries=3, idempotency_key=None, now=NOW)
    assert not d.retry


def test_poll_interval_grows_to_5s() -> None:
    seq = [base.POLL_INITIAL_INTERVAL]
    for _ in range(10):
        seq.append(base.next_poll_interval(seq[-1]))
    assert seq[:4] == [0.5, 0.75, 1.125, 1.6875]
    assert seq[-1] == 5.0 and max(seq) == 5.0


def contract_body(type_: str, **extra: object) -> bytes:
    return json.dumps({"error": {"message": "human sentence", "type": type_, **extra}}).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.PermissionError),
        (404, exc.NotFoundError),
        (408, exc.TimeoutError),
        (409, exc.ConflictError),
        (422, exc.ValidationError),
        (429, exc.RateLimitError),
        (500, exc.ServerError),
        (502, exc.ServerError),
        (503, exc.ServerError),
        (504, exc.ServerError),
        (418, exc.BudAPIError),
    ],
)
@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>", b"oops", b"[1, 2]",
     b'{"detail": "Not Found"}', b"null"],
    ids=["empty", "html", "text", "json-list", "fastapi", "null"],
)
def test_status_maps_to_class_whatever_the_body(
    status: int, cls: type[exc.BudAPIError], body: bytes
) -> None:
    err = base.error_from_response(status, {"x-request-id": "req_9"}, body, reason="Reason")
    assert type(err) is cls
    assert err.status_code == status
    assert err.request_id == "req_9"
    assert err.message.startswith(f"HTTP {status}")
    if b"nginx" in body:
        assert "502 Bad Gateway nginx" in err.message
        assert "<" not in err.message
    if b"detail" in body:
        assert "Not Found" in err.message


def test_contract_body_fills_every_attribute() -> None:
    err = base.error_from_response(
        422, {}, contract_body("validation_error", code="invalid_step",
                              param="definition.steps[2].depends_on[0]", request_id="req_b"),
    )
    assert isinstance(err, exc.ValidationError)
    assert (err.message, err.type, err.code, err.param, err.request_id) == (
        "human sentence", "validation_error", "invalid_step",
        "definition.steps[2].depends_on[0]", "req_b",
    )
    assert err.body["error"]["code"] == "invalid_step"
    assert "definition.steps[2].depends_on[0]" in str(err)


def test_rate_limit_retry_after() -> None:
    err = base.error_from_response(429, {"retry-after": "90"}, contract_body("rate_limit_error"),
                                   now=NOW)
    assert isinstance(err, exc.RateLimitError) and err.retry_after == 90
    err = base.error_from_response(429, {"retry-after": "1.2"}, b"", now=NOW)
    assert isinstance(err, exc.RateLimitError) and err.retry_after == 2
    err = base.error_from_response(429, {"x-ratelimit-reset": str(int(NOW) + 12)}, b"", now=NOW)
    assert isinstance(err, exc.RateLimitError) and err.retry_after == 12


def test_api_key_is_scrubbed_from_messages() -> None:
    err = base.error_from_response(401, {}, b"bad key sk-abc123", api_key="sk-abc123")
    assert "sk-abc123" not in str(err) and "***" in err.message


def test_stream_error_event_maps_by_type() -> None:
    err = base.error_from_stream_event(
        {"error": {"message": "deployment went away", "type": "conflict_error"}}, "req_1"
    )
    assert isinstance(err, exc.ConflictError) and err.request_id == "req_1"
    err = base.error_from_stream_event({"error": "boom"}, "req_2")
    assert isinstance(err, exc.ServerError) and err.message == "boom"


def test_rate_limit_headers() -> None:
    assert base.parse_rate_limits(
        {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "7", "x-ratelimit-reset": "123"}
    ) == (100, 7, 123)
    assert base.parse_rate_limits({"x-ratelimit-remaining": "x"}) == (None, None, None)


def test_headers_auth_and_retry_count() -> None:
    h = base.build_headers(api_key="k", default_headers={"X-A": "1", "Authorization": "no"},
                           extra_headers={"X-A": "2"}, idempotency_key="idem", retry_count=2)
    assert h["Authorization"] == "Bearer k"
    assert h["X-A"] == "2" and h["Idempotency-Key"] == "idem" and h["X-Bud-Retry-Count"] == "2"
    assert h["User-Agent"].startswith("budai/") and " python/" in h["User-Agent"]


def test_path_segments_are_quoted_and_non_empty() -> None:
    assert base.path_segment("a/b c") == "a%2Fb%20c"
    assert base.path_segment("model_abc-1.2~x") == "model_abc-1.2~x"
    for bad in ("", ".", ".."):
        with pytest.raises(ValueError, match="model_id"):
            base.path_segment(bad, "model_id")


def test_exceptions_subclass_builtins_and_aliases() -> None:
    import builtins

    assert issubclass(exc.TimeoutError, builtins.TimeoutError)
    assert issubclass(exc.PermissionError, builtins.PermissionError)
    assert exc.BudTimeoutError is exc.TimeoutError
    assert exc.BudPermissionError is exc.PermissionError
    for cls in (exc.TimeoutError, exc.PermissionError, exc.APIConnectionError):
        assert issubclass(cls, exc.BudAPIError)
    e = exc.PermissionError("nope", status_code=403, request_id="r")
    assert str(e).startswith("nope") and e.param is None and e.type == "permission_error"


def test_caller_headers_cannot_replace_reserved_ones() -> None:
    h = base.build_headers(
        api_key="k",
        default_headers={"x-team": "a", "Accept": "text/plain"},
        extra_headers={"X-Team": "b", "authorization": "Bearer other", "IDEMPOTENCY-KEY": "x",
                       "x-bud-retry-count": "9"},
        idempotency_key="idem", retry_count=1,
    )
    assert h == {"User-Agent": base.user_agent(), "Authorization": "Bearer k",
                 "Accept": "text/plain", "X-Team": "b", "Idempotency-Key": "idem",
                 "X-Bud-Retry-Count": "1"}
    pooled = base.build_headers(api_key="k", default_headers=None, extra_headers=None,
                                idempotency_key=None, retry_count=0, include_static=False)
    assert pooled == {"X-Bud-Retry-Count": "0"}
