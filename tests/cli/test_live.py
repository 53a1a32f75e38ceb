"""Following an execution: the live display on a real pseudo-terminal, the --timeout deadline,
and Ctrl-C (which stops following but leaves the execution running, to be cancelled)."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import time
from pathlib import Path

from .conftest import BUDAI, Budai

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _create(budai: Budai, tmp_path: Path, name: str, body: str) -> None:
    source = tmp_path / f"{name}.py"
    source.write_text(
        f"from budai.dsl import Pipeline\nwith Pipeline({name!r}) as pipeline:\n{body}"
    )
    created = budai("pipelines", "create", "-f", str(source))
    assert created.code == 0, created.err


def test_live_display_on_a_terminal(budai: Budai, tmp_path: Path, unique: str) -> None:
    _create(
        budai, tmp_path, f"live-{unique}",
        "    first = pipeline.wait('nap', seconds=1)\n"
        "    pipeline.transform('after-nap', value='done', depends_on=first)\n",
    )  # fmt: skip
    controller, terminal = pty.openpty()
    env = {**budai.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [str(BUDAI), "executions", "run", f"live-{unique}", "--wait"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env,
    )  # fmt: skip
    os.close(terminal)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    assert proc.wait(timeout=120) == 0
    screen = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    assert re.search(r"execution exec_\w+\s+running", screen), screen
    assert "nap" in screen and "after-nap" in screen
    assert "✓" in screen and re.search(r"exec_\w+ completed in \d+\.\d\ds", screen)


def test_wait_timeout_exits_1_and_the_execution_goes_on(
    budai: Budai, tmp_path: Path, unique: str
) -> None:
    _create(budai, tmp_path, f"slow-{unique}", "    pipeline.wait('nap', seconds=3)\n")
    ran = budai("executions", "run", f"slow-{unique}", "--wait", "--timeout", "0.5")
    assert ran.code == 1
    last = ran.err.strip().splitlines()[-1]
    assert last.startswith("error: execution exec_") and "0.5s" in last
    exec_id = re.search(r"exec_\w+", last)
    assert exec_id is not None
    watched = budai("executions", "watch", exec_id.group(0), "-o", "json")
    assert watched.code == 0, watched.err
    assert json.loads(watched.out)["status"] == "completed"


def test_ctrl_c_stops_following_and_cancel_stops_the_run(
    budai: Budai, tmp_path: Path, unique: str
) -> None:
    _create(budai, tmp_path, f"long-{unique}", "    pipeline.wait('nap', seconds=30)\n")
    proc = subprocess.Popen(
        [str(BUDAI), "executions", "run", f"long-{unique}", "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=budai.env, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "nap: running" in line or not line:
            break
    assert "nap: running" in line, line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "keeps running" in err
    exec_id = line.split()[0]
    cancelled = budai("executions", "cancel", exec_id, "-o", "json")
    assert cancelled.code == 0, cancelled.err
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = json.loads(budai("executions", "get", exec_id, "-o", "json").out)["status"]
        if status == "cancelled":
            break
        time.sleep(0.5)
    assert status == "cancelled"
