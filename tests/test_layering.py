"""Layering rules of ARCHITECTURE.md (repository root), checked with import-linter and by importing
for real."""

from __future__ import annotations

import subprocess
import sys
import tomllib
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
    report = " ".join(result.stdout.split())  # long names wrap
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    for contract in contracts:
        assert f"{contract['name']} KEPT" in report, contract["name"]
    # Among them the gateway's: no import cycles between its modules, TYPE_CHECKING ones included.
    acyclic = [c for c in contracts if c["type"] == "acyclic_siblings"]
    assert [c["ancestors"] for c in acyclic] == [["budai_gateway"]]
    assert config["tool"]["importlinter"].get("exclude_type_checking_imports", False) is False


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
