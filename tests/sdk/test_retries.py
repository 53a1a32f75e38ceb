"""Retries over a real socket: scripted status sequences, Retry-After, idempotency keys reused on
every retry, no retry on other 4xx, connection resets and read timeouts."""

from __future__ import annotations

import logging

import httpx
import pytest

from budai import AsyncBudClient, BudClient
from budai import exceptions as exc

from ._server import API_KEY, FakeBud, Reply, ScriptedServer, error_reply

MODEL_PATH = "/models/model_abc"


def test_get_retried_on_503_then_succeeds(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, error_reply(503, "server_error", "busy"), Reply(502))
    model = client.models.get("model_abc")
    assert model.id == "model_abc"
    reqs = server.requests_to("GET", MODEL_PATH)
    assert [r.headers["x-bud-retry-count"] for r in reqs] == ["0", "1", "2"]
    assert "idempotency-key" not in reqs[0].headers
    assert len(no_sleep) == 2
    assert 0.375 <= no_sleep[0] <= 0.5 and 0.75 <= no_sleep[1] <= 1.0


def test_write_reuses_one_idempotency_key_across_retries(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script("POST", "/models", Reply(500), Reply(504), Reply(408))
    model = client.models.create(name="m", source="url", uri="https://x/m.bin")
    reqs = server.requests_to("POST", "/models")
    assert len(reqs) == 4
    keys = {r.headers["idempotency-key"] for r in reqs}
    assert len(keys) == 1 and len(next(iter(keys))) == 36
    assert [r.json for r in reqs] == [reqs[0].json] * 4
    assert model.status == "downloading"


def test_caller_idempotency_key_is_sent_and_replayed(
    client: BudClient, server: ScriptedServer, fake: FakeBud
) -> None:
    a = client.models.create(name="m", source="url", uri="u", idempotency_key="uid-123")
    b = client.models.create(name="m", source="url", uri="u", idempotency_key="uid-123")
    assert a.id == b.id
    assert {r.headers["idempotency-key"] for r in server.requests_to("POST", "/models")} == {
        "uid-123"
    }
    with pytest.raises(exc.ConflictError) as info:
        client.models.create(name="other", source="url", uri="u", idempotency_key="uid-123")
    assert info.value.code == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.PermissionError),
        (404, exc.NotFoundError),
        (409, exc.ConflictError),
        (422, exc.ValidationError),
    ],
)
def test_other_4xx_never_retried(
    client: BudClient,
    server: ScriptedServer,
    no_sleep: list[float],
    status: int,
    cls: type[exc.BudAPIError],
) -> None:
    server.script("GET", MODEL_PATH, Reply(status, body=b""), Reply(200))
    with pytest.raises(cls) as info:
        client.models.get("model_abc")
    assert info.value.status_code == status
    assert info.value.request_id.startswith("req_")
    assert len(server.requests_to("GET", MODEL_PATH)) == 1
    assert no_sleep == []


def test_retry_after_is_honoured(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script(
        "GET", MODEL_PATH,
        Reply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}},
              headers={"Retry-After": "7"}),
        Reply(503, headers={"Retry-After": "0"}),
    )
    assert client.models.get("model_abc").id == "model_abc"
    assert no_sleep == [7.0, 0.0]


def test_retry_after_beyond_60s_raises_rate_limit_error(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script(
        "GET", MODEL_PATH,
        Reply(429, {"error": {"message": "quota", "type": "rate_limit_error"}},
              headers={"Retry-After": "120"}),
    )
    with pytest.raises(exc.RateLimitError) as info:
        client.models.get("model_abc")
    assert info.value.retry_after == 120
    assert info.value.message == "quota"
    assert no_sleep == []


def test_out_of_retries_raises_the_last_error(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, *[Reply(503, body=b"<html>down</html>")] * 4)
    with pytest.raises(exc.ServerError) as info:
        client.models.get("model_abc")
    assert info.value.status_code == 503 and "down" in info.value.message
    assert len(server.requests_to("GET", MODEL_PATH)) == 4
    assert len(no_sleep) == 3


def test_max_retries_zero_disables(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, Reply(503), Reply(200))
    with BudClient(api_key=API_KEY, base_url=server.url, max_retries=0) as c, pytest.raises(
        exc.ServerError
    ):
        c.models.get("model_abc")
    assert len(server.requests_to("GET", MODEL_PATH)) == 1


def test_with_options_max_retries(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, Reply(503), Reply(503), Reply(200))
    with pytest.raises(exc.ServerError):
        client.with_options(max_retries=1).models.get("model_abc")
    assert len(server.requests_to("GET", MODEL_PATH)) == 2


def test_connection_reset_is_retried(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, Reply(reset=True))
    assert client.models.get("model_abc").id == "model_abc"
    assert len(server.requests_to("GET", MODEL_PATH)) == 2


def test_connection_reset_out_of_retries(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    server.script("POST", "/models", Reply(reset=True), Reply(reset=True))
    with BudClient(api_key=API_KEY, base_url=server.url, max_retries=1) as c, pytest.raises(
        exc.APIConnectionError
    ) as info:
        c.models.create(name="m", source="url", uri="u")
    assert info.value.status_code == 0
    reqs = server.requests_to("POST", "/models")
    assert len(reqs) == 2 and reqs[0].headers["idempotency-key"] == reqs[1].headers[
        "idempotency-key"
    ]


def test_read_timeout_becomes_timeout_error(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, Reply(delay=0.6), Reply(delay=0.6))
    with BudClient(api_key=API_KEY, base_url=server.url, timeout=0.2, max_retries=1) as c:
        with pytest.raises(exc.TimeoutError) as info:
            c.models.get("model_abc")
        assert isinstance(info.value, TimeoutError)  # the builtin, too
        assert "2 attempt" in str(info.value)


def test_read_timeout_then_success(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, Reply(delay=0.6))
    with BudClient(api_key=API_KEY, base_url=server.url, timeout=0.2) as c:
        assert c.models.get("model_abc").id == "model_abc"


def test_connection_refused(no_sleep: list[float]) -> None:
    c = BudClient(api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_retries=2)
    with c, pytest.raises(exc.APIConnectionError, match="3 attempt"):
        c.clusters.list()
    assert len(no_sleep) == 2


# --- transport faults no server produces on purpose: httpx.MockTransport ---------------------


def test_mock_transport_faults_are_retried(no_sleep: list[float]) -> None:
    faults = [httpx.ReadTimeout("read"), httpx.RemoteProtocolError("peer closed"),
              httpx.WriteError("broken pipe")]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if faults:
            raise faults.pop(0)
        return httpx.Response(200, json={"status": "ok", "version": "mock"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with BudClient(api_key=API_KEY, base_url="http://bud.invalid/v1", http_client=http) as c:
        assert c.health() == {"status": "ok", "version": "mock"}
    assert [r.headers["x-bud-retry-count"] for r in seen] == ["0", "1", "2", "3"]
    assert not http.is_closed  # a caller's http_client is left to the caller
    http.close()


async def test_async_retries_and_key_reuse(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    server.script("POST", "/models", Reply(503), Reply(reset=True))
    server.script("GET", MODEL_PATH, Reply(429, headers={"Retry-After": "2"}))
    async with AsyncBudClient(api_key=API_KEY, base_url=server.url) as c:
        model = await c.models.create(name="m", source="url", uri="u")
        assert (await c.models.get("model_abc")).id == "model_abc"
    reqs = server.requests_to("POST", "/models")
    assert len(reqs) == 3 and len({r.headers["idempotency-key"] for r in reqs}) == 1
    assert model.status == "downloading"
    assert no_sleep[-1] == 2.0


async def test_async_no_retry_on_422_and_timeout(
    server: ScriptedServer, fake: FakeBud, no_sleep: list[float]
) -> None:
    server.script("GET", MODEL_PATH, Reply(422, body=b"not json"), Reply(delay=0.6))
    async with AsyncBudClient(api_key=API_KEY, base_url=server.url, timeout=0.2,
                              max_retries=0) as c:
        with pytest.raises(exc.ValidationError, match="not json"):
            await c.models.get("model_abc")
        with pytest.raises(exc.TimeoutError):
            await c.models.get("model_abc")


def test_retries_are_logged_without_the_key(
    client: BudClient, server: ScriptedServer, no_sleep: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script("GET", MODEL_PATH, Reply(503))
    with caplog.at_level(logging.DEBUG):
        client.models.get("model_abc")
    assert "retry 1 of 3" in caplog.text and "HTTP 503" in caplog.text
    assert API_KEY not in caplog.text


def test_idempotency_key_in_extra_headers_is_the_key(
    client: BudClient, server: ScriptedServer, no_sleep: list[float]
) -> None:
    server.script("POST", "/models", Reply(503))
    client.models.create(name="m", source="url", uri="u",
                         extra_headers={"idempotency-key": "op-uid-1", "Authorization": "x"})
    reqs = server.requests_to("POST", "/models")
    assert [r.headers["idempotency-key"] for r in reqs] == ["op-uid-1", "op-uid-1"]
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in reqs)
