"""Fixtures of the SDK tests: a real local HTTP server (``server``), the small in-memory API on
it (``fake``), and clients pointed at it with retries that do not sleep for long; the real
local gateway, reset (``gw``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from budai import AsyncBudClient, BudClient

from ._server import API_KEY, FakeBud, ScriptedServer


@pytest.fixture(scope="session")
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture
def fake(server: ScriptedServer) -> Iterator[FakeBud]:
    server.reset()
    server._routes.clear()
    yield FakeBud(server)
    server.reset()
    server._routes.clear()


@pytest.fixture
def client(server: ScriptedServer, fake: FakeBud) -> Iterator[BudClient]:
    with BudClient(api_key=API_KEY, base_url=server.url, timeout=5) as c:
        yield c


@pytest.fixture
async def aclient(server: ScriptedServer, fake: FakeBud) -> AsyncIterator[AsyncBudClient]:
    async with AsyncBudClient(api_key=API_KEY, base_url=server.url, timeout=5) as c:
        yield c


@pytest.fixture
def gw(gateway: Any) -> Iterator[Any]:
    """The session's real local gateway, reset and without faults."""
    gateway.reset()
    gateway.clear_faults()
    yield gateway
    gateway.clear_faults()


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry sleeps instead of sleeping (the delays are asserted, not waited for)."""
    slept: list[float] = []
    monkeypatch.setattr("budai._client._sleep", slept.append)

    async def fake_async_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("budai._client._async_sleep", fake_async_sleep)
    return slept
