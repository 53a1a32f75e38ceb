"""The operator's gateway side against the real local gateway: list-based refresh, the token
bucket, error mapping and the key staying out of reprs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pydantic import SecretStr

from budai import AsyncBudClient
from budai_operator.metrics import GATEWAY_REQUESTS, endpoint_of
from budai_operator.ratelimit import TokenBucket
from budai_operator.remote import GatewayLink, to_failure
from budai_operator.settings import OperatorSettings, SettingsError, read_api_key


def settings(gateway: Any, **over: Any) -> OperatorSettings:
    values: dict[str, Any] = {
        "gateway_url": gateway.url,
        "api_key": SecretStr(gateway.api_key),
        "rate_limit": 1000.0,
        "burst": 1000,
    }
    values.update(over)
    return OperatorSettings(**values)


def requests_sent() -> float:
    total = 0.0
    for metric in GATEWAY_REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                total += sample.value
    return total


async def test_many_misses_become_one_list(gateway: Any) -> None:
    async with AsyncBudClient(api_key=gateway.api_key, base_url=gateway.url) as bud:
        ids = [
            (
                await bud.models.create(
                    name=f"cache-{i}-{time.time_ns()}", source="cloud", uri="s3://x"
                )
            ).id
            for i in range(30)
        ]
    gw = GatewayLink(settings(gateway))
    try:
        before = requests_sent()
        found = await asyncio.gather(*(gw.cache("models").observe(i, max_age=0) for i in ids))
        sent = requests_sent() - before
        assert [f["id"] for f in found if f] == ids
        # A few GETs, then one paginated list for the rest instead of 30 GETs.
        assert sent < 15, sent
        again = requests_sent()
        await asyncio.gather(*(gw.cache("models").observe(i, max_age=60) for i in ids))
        assert requests_sent() == again  # all served from the cache
        assert await gw.cache("models").observe("model_doesnotexist", max_age=0) is None
    finally:
        await gw.aclose()


async def test_refresh_reports_changed_objects(gateway: Any) -> None:
    gw = GatewayLink(settings(gateway))
    try:
        await gw.cache("models").refresh()
        async with AsyncBudClient(api_key=gateway.api_key, base_url=gateway.url) as bud:
            model = await bud.models.create(
                name=f"changed-{time.time_ns()}", source="cloud", uri="s3://y"
            )
            assert model.id in await gw.cache("models").refresh()
            assert model.id not in await gw.cache("models").refresh()
            await bud.models.update(model.id, metadata={"x": 1})
            assert model.id in await gw.cache("models").refresh()
    finally:
        await gw.aclose()


async def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(rate=20, burst=2)
    start = time.monotonic()
    waited = [await bucket.acquire() for _ in range(8)]
    elapsed = time.monotonic() - start
    assert waited[0] == 0 and waited[1] == 0
    assert 0.25 <= elapsed < 1.0


async def test_gateway_calls_wait_for_tokens(gateway: Any) -> None:
    gw = GatewayLink(settings(gateway, rate_limit=10.0, burst=1))
    try:
        start = time.monotonic()
        for _ in range(4):
            await gw.client.clusters.list()
        assert time.monotonic() - start >= 0.25
    finally:
        await gw.aclose()


async def test_errors_map_to_failures_without_the_key(gateway: Any) -> None:
    gw = GatewayLink(settings(gateway, api_key=SecretStr("bud_wrong_key_123456")))
    try:
        with pytest.raises(Exception) as info:
            await gw.client.models.get("model_x")
        failure = to_failure(info.value)  # type: ignore[arg-type]
        assert failure.status_code == 401 and failure.type == "authentication_error"
        assert "bud_wrong_key_123456" not in failure.describe()
    finally:
        await gw.aclose()


def test_settings_never_show_the_key(tmp_path: Any) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("bud_secret_abcdef\n")
    key = read_api_key(str(key_file), env={})
    s = OperatorSettings(gateway_url="http://127.0.0.1:1/v1", api_key=key)
    assert "bud_secret_abcdef" not in repr(s) and "bud_secret_abcdef" not in str(s)
    assert key.get_secret_value() == "bud_secret_abcdef"
    with pytest.raises(SettingsError, match="no gateway API key"):
        OperatorSettings(gateway_url="http://x/v1", api_key=read_api_key(None, env={}))
    with pytest.raises(SettingsError, match="cannot read the API key file"):
        read_api_key(str(tmp_path / "missing"), env={})


def test_endpoint_labels_hide_ids() -> None:
    assert endpoint_of("/v1/models/model_abc123") == "/models/{id}"
    assert endpoint_of("/v1/deployments/dep_1/stop") == "/deployments/{id}/stop"
    assert endpoint_of("/v1/clusters/cluster_9/health") == "/clusters/{id}/health"
