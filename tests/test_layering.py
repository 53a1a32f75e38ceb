"""Layering rules of ARCHITECTURE.md (repository root), checked with import-linter and by importing
for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every contract declared in pyproject must have been checked, not silently ignored.
    assert "0 broken" in result.stdout, result.stdout


def test_import_budai_stays_light() -> None:
    code = (
        "import sys, budai\n"
        "mods = ('fastapi', 'starlette', 'uvicorn', 'kopf', 'kubernetes_asyncio', 'click',"
        " 'rich', 'yaml', 'jinja2', 'budai_gateway', 'budai_operator')\n"
        "heavy = sorted(m for m in mods if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"import budai pulled in: {result.stdout.strip()}"
