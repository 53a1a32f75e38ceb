"""Helpers shared by the gateway tests: raw httpx clients on the session gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from budai_gateway.testing import LocalGateway


@pytest.fixture
def gw(gateway: LocalGateway) -> LocalGateway:
    """The session gateway, reset to its seeded state."""
    gateway.reset()
    return gateway


@pytest.fixture
def client(gw: LocalGateway) -> Iterator[httpx.Client]:
    with gw.client() as c:
        yield c


@pytest.fixture
def read_client(gw: LocalGateway) -> Iterator[httpx.Client]:
    with gw.client(gw.read_key) as c:
        yield c


def wait_for(fn: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``fn`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def wait_status(
    c: httpx.Client, path: str, statuses: set[str], timeout: float = 15.0
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = c.get(path)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["status"] in statuses else None

    result: dict[str, Any] = wait_for(check, timeout)
    return result


def assert_error(
    r: httpx.Response, status: int, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err: dict[str, Any] = body["error"]
    assert set(err) == {"message", "type", "code", "param", "request_id"}, err
    assert err["type"] == type_, err
    assert err["request_id"] == r.headers["x-request-id"]
    assert err["message"]
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


def cluster_ids(c: httpx.Client) -> dict[str, str]:
    return {x["name"]: x["id"] for x in c.get("/clusters").json()["data"]}


def make_model(
    c: httpx.Client, name: str = "m1", source: str = "cloud", uri: str = "gpt-x", **extra: Any
) -> dict[str, Any]:
    r = c.post("/models", json={"name": name, "source": source, "uri": uri, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def make_active_deployment(c: httpx.Client, name: str = "dep1", **extra: Any) -> dict[str, Any]:
    model = make_model(c, name=f"{name}-model")
    cid = cluster_ids(c)["local-cpu"]
    r = c.post(
        "/deployments", json={"model_id": model["id"], "cluster_id": cid, "name": name, **extra}
    )
    assert r.status_code == 201, r.text
    return wait_status(c, f"/deployments/{r.json()['id']}", {"active"})
