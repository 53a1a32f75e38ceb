"""Drive the installed ``budai`` script (a real subprocess) against the session's local gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUDAI = Path(sys.executable).parent / "budai"


@dataclass
class Result:
    code: int
    out: str
    err: str


class Budai:
    """Runs ``budai ARGS`` with the gateway's URL and admin key in the environment."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.env = {
            **os.environ,
            "BUD_API_KEY": gateway.api_key,
            "BUD_BASE_URL": gateway.url,
            "NO_COLOR": "1",
        }

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str = "") -> Result:
        proc = subprocess.run(
            [str(BUDAI), *args],
            env=env if env is not None else self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=240,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module", autouse=True)
def clean_gateway(gateway: Any) -> None:
    """Start each module from the gateway's initial state (clusters with free capacity, no
    faults), whatever earlier tests in the session left behind."""
    gateway.reset()


@pytest.fixture
def budai(gateway: Any) -> Budai:
    assert BUDAI.exists(), f"the budai script is not installed next to {sys.executable}"
    return Budai(gateway)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
