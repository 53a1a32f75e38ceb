"""The reference page, end to end: every snippet runs (against the local server and against the
local gateway) and type-checks under ``mypy --strict``; every name on it exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from budai import BudClient

from . import seed_snippets
from ._server import API_KEY, FakeBud, ScriptedServer

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

EVERY_SECTION = [
    "budclient", "chat_completion", "choice", "message", "pipeline", "pipeline_definition",
    "step_and_retry", "execution", "execution_step", "model", "model_source", "deployment",
    "auto_scaling_and_resources", "cluster", "cluster_health", "exception_types",
    "response_wrapper", "with_mypy", "with_ide_autocomplete", "custom_type_annotations",
    "pydantic_models",
]


def test_snippets_run_against_the_local_server(
    server: ScriptedServer, fake: FakeBud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUD_BASE_URL", server.url)
    with BudClient(api_key=API_KEY, base_url=server.url) as client:
        ctx = seed_snippets.prepare(client, API_KEY, server.url)
    assert seed_snippets.run_all(ctx) == EVERY_SECTION


def test_snippets_run_against_the_gateway(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway.reset()
    monkeypatch.setenv("BUD_BASE_URL", gateway.url)
    with BudClient(api_key=gateway.api_key, base_url=gateway.url) as client:
        ctx = seed_snippets.prepare(client, gateway.api_key, gateway.url)
    assert seed_snippets.run_all(ctx) == EVERY_SECTION


def test_snippets_type_check_strict() -> None:
    files = [HERE / "seed_snippets.py", HERE / "seed_typed.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--config-file", str(ROOT / "pyproject.toml"), *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_rejects_what_the_page_rules_out(tmp_path: Path) -> None:
    """The checks are real: wrong literal types and wrong stream types are errors."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from budai import BudClient\n"
        "from budai.types import ChatCompletion, ChatCompletionChunk, Step\n"
        "from budai._streaming import Stream\n"
        "c = BudClient(api_key='k')\n"
        "r: ChatCompletion = c.chat.completions.create(model='m', messages=[], stream=True)\n"
        "s: Stream[ChatCompletionChunk] = c.chat.completions.create(model='m', messages=[],"
        " stream=True)\n"
        "step: Step = {'id': 'a'}\n"
        "n: int = c.models.get('x').name\n"
        "c.executions.create('p', wait='yes')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--config-file", str(ROOT / "pyproject.toml"), str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "bad.py:5:" in out  # a stream is not a ChatCompletion
    assert "bad.py:6:" not in out  # ... but is a Stream of chunks
    assert "bad.py:7:" in out  # Step needs an action
    assert "bad.py:8:" in out  # name is a str
    assert "bad.py:9:" in out  # wait is a bool
