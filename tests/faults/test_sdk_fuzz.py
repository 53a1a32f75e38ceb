"""The SDK's parsers fuzzed with hypothesis: whatever a gateway (or a proxy in front of it) sends
back, a call returns a typed object or raises a ``BudAPIError`` subclass with a message, never a
``KeyError``/``TypeError``/pydantic error, and never shows the API key.

Responses come from an ``httpx.MockTransport`` plugged into the real client, so the whole path
runs: status mapping, JSON decoding, model parsing, Retry-After, the SSE decoder."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budai import BudClient
from budai._base_client import parse_retry_after, status_error_class
from budai.exceptions import BudAPIError

from .conftest import LEDGER

KEY = "bud_fuzz_secret_key_5f0c2a9e71d4"
LEDGER.secrets.add(KEY)
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
# Bodies shaped like the contract's, like other servers' errors, and like nothing at all; some
# echo the key back (a careless proxy) to prove the SDK scrubs it.
error_bodies = st.one_of(
    st.builds(
        lambda msg, typ, code, param, echo: {
            "error": {
                "message": msg + (f" key={KEY}" if echo else ""),
                "type": typ,
                "code": code,
                "param": param,
            }
        },
        st.text(max_size=40),
        json_values,
        json_values,
        json_values,
        st.booleans(),
    ),
    st.builds(lambda d: {"detail": d}, json_values),
    st.builds(lambda m: {"message": m}, json_values),
    json_values,
)
raw_bodies = st.one_of(
    error_bodies.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=200),
    st.just(b""),
    st.just(b"<html><body>502 Bad Gateway</body></html>"),
    st.text(max_size=80).map(lambda t: (t + " " + KEY).encode("utf-8", "surrogatepass")),
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30
) | st.sampled_from(["1", "0", "-5", "nan", "inf", "1e309", "Wed, 21 Oct 2015 07:28:00 GMT", ""])


def client_for(status: int, body: bytes, headers: dict[str, str]) -> BudClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    http = httpx.Client(transport=httpx.MockTransport(handler), timeout=5)
    return BudClient(
        api_key=KEY, base_url="http://fuzz.invalid/v1", max_retries=0, http_client=http
    )


def check_error(err: BudAPIError, status: int | None = None) -> None:
    # What gets printed or logged: str, repr, message. (``body`` has its own test below.)
    text = f"{err!s} {err!r} {err.message!r}"
    LEDGER.add("sdk fuzz exception", text)
    # The message shows where the key was, redacted: this report is scanned for keys too.
    # (pytest.fail, not assert: assert introspection would print the key itself)
    if KEY in text:
        pytest.fail(f"API key in exception: {text.replace(KEY, '<KEY>')[:300]}")
    assert str(err).strip(), "exception without a message"
    if status is not None:
        assert isinstance(err, status_error_class(status)), (status, type(err))


def test_key_echoed_in_a_json_error_body_is_scrubbed_everywhere() -> None:
    """A proxy that echoes the request (Authorization included) into a JSON error body: the key
    must not survive in any attribute of the exception, ``body`` included, since callers log
    ``err.body`` to see what the server said."""
    body = json.dumps(
        {"error": {"message": f"bad token {KEY}", "type": "invalid_request_error"}, "echo": KEY}
    ).encode()
    with client_for(400, body, {"content-type": "application/json"}) as bud:
        try:
            bud.models.get("model_abc")
        except BudAPIError as err:
            text = f"{err!s} {err!r} {err.message!r} {err.body!r} {vars(err)!r}"
            LEDGER.add("sdk exception (echoed key)", text.replace(KEY, "<key>"))
            where = {k: "<KEY>" in repr(v).replace(KEY, "<KEY>") for k, v in vars(err).items()}
            if KEY in text:  # not assert: its introspection would print the key
                pytest.fail(
                    f"API key left in the exception (attributes holding it: "
                    f"{[k for k, v in where.items() if v]}): {text.replace(KEY, '<KEY>')}"
                )
        else:
            raise AssertionError("HTTP 400 did not raise")


@FUZZ
@given(
    status=st.integers(min_value=400, max_value=599),
    body=raw_bodies,
    retry_after=header_values,
    ctype=st.sampled_from(["application/json", "text/html", "text/plain", ""]),
)
def test_error_responses_map_to_typed_exceptions(
    status: int, body: bytes, retry_after: str, ctype: str
) -> None:
    headers = {"retry-after": retry_after, "x-request-id": "req_fuzz"}
    if ctype:
        headers["content-type"] = ctype
    with client_for(status, body, headers) as bud:
        try:
            bud.models.get("model_abc")
        except BudAPIError as err:
            check_error(err, status)
            if status == 429:
                assert isinstance(err.retry_after, int) and err.retry_after >= 0, err.retry_after  # type: ignore[attr-defined]
        else:
            raise AssertionError(f"HTTP {status} did not raise")


@FUZZ
@given(
    status=st.sampled_from([200, 201, 202]),
    body=st.one_of(raw_bodies, json_values.map(lambda v: json.dumps(v).encode())),
)
def test_success_responses_with_any_body(status: int, body: bytes) -> None:
    with client_for(status, body, {"content-type": "application/json"}) as bud:
        for call in (
            lambda: bud.models.get("model_abc"),
            lambda: list(bud.models.list()),
            lambda: bud.executions.get("exec_abc"),
            lambda: bud.clusters.health("cluster_abc"),
        ):
            try:
                call()
            except BudAPIError as err:
                check_error(err)


@FUZZ
@given(
    extra=st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=5),
    progress=st.none() | st.integers(min_value=0, max_value=100),
)
def test_models_keep_unknown_fields(extra: dict[str, Any], progress: int | None) -> None:
    """A newer gateway adds fields: the SDK keeps them and still parses what it knows."""
    base = {
        "id": "model_1", "name": "m", "source": "cloud", "uri": "s3://x", "size_bytes": 1,
        "status": "available", "metadata": {}, "created_at": "2026-01-01T00:00:00Z",
        "progress_percent": progress,
    }  # fmt: skip
    doc = {**{k: v for k, v in extra.items() if k not in base}, **base}
    with client_for(200, json.dumps(doc).encode(), {"content-type": "application/json"}) as bud:
        model = bud.models.get("model_1")
    assert model.id == "model_1" and model.status == "available"


sse_lines = st.lists(
    st.one_of(
        st.builds(lambda v: "data: " + json.dumps(v), json_values),
        st.just('data: {"error": {"message": "upstream died", "type": "server_error"}}'),
        st.just("data: [DONE]"),
        st.just(""),
        st.just(": keep-alive"),
        st.text(max_size=30).map(lambda t: t.replace("\n", " ")),
    ),
    max_size=8,
)


@FUZZ
@given(lines=sse_lines)
def test_stream_decoder_with_any_event_lines(lines: list[str]) -> None:
    body = ("\n".join(lines) + "\n\n").encode("utf-8", "surrogatepass")
    with client_for(200, body, {"content-type": "text/event-stream"}) as bud:
        try:
            for _ in bud.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass
        except BudAPIError as err:
            check_error(err)


@FUZZ
@given(ms=st.none() | header_values, seconds=st.none() | header_values)
def test_retry_after_is_none_or_a_finite_wait(ms: str | None, seconds: str | None) -> None:
    headers = {}
    if ms is not None:
        headers["retry-after-ms"] = ms
    if seconds is not None:
        headers["retry-after"] = seconds
    wait = parse_retry_after(headers, now=1_800_000_000.0)
    assert wait is None or (math.isfinite(wait) and wait >= 0), (headers, wait)
