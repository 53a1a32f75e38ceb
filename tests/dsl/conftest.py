"""A client on the session's local gateway (fixture ``gateway`` from tests/fixtures/gateway.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from budai import BudClient


@pytest.fixture
def client(gateway: Any) -> Iterator[BudClient]:
    with BudClient(api_key=gateway.api_key, base_url=gateway.url) as c:
        yield c
