"""The ASGI middleware on its own, around an app that fails: even a 500 keeps the contract."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from budai_gateway.config import ApiKey, Settings
from budai_gateway.middleware import GatewayMiddleware, Runtime
from budai_gateway.wiring import Services


async def exploding_app(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


def test_unhandled_error_is_a_contract_500(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "g.db"), api_keys=[ApiKey(key="k")])

    async def go() -> list[httpx.Response]:
        gw = Services(settings)
        rt = Runtime(keys={"k": settings.api_keys[0]}, rate_limit=settings.rate_limit)
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
