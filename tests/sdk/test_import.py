"""``import budai`` stays light: no FastAPI, kopf or kubernetes ever; httpx and pydantic only
once a client or the types are used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("fastapi", "starlette", "uvicorn", "kopf", "kubernetes_asyncio", "budai_gateway",
         "budai_operator", "jinja2")
# httpx itself imports click and rich (for its own CLI) when they are installed, so they are
# only checked where httpx is not imported.
CLI = ("rich", "click")


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_budai_is_light() -> None:
    mods = modules_after("import budai")
    assert not {m.split(".")[0] for m in mods} & {*HEAVY, *CLI, "httpx", "pydantic"}


def test_a_client_imports_httpx_but_nothing_heavy() -> None:
    mods = modules_after(
        "from budai import BudClient\nc = BudClient(api_key='k')\nc.models; c.chat.completions"
    )
    top = {m.split(".")[0] for m in mods}
    assert "httpx" in top and "pydantic" in top
    assert not top & set(HEAVY)


def test_types_and_models_import_nothing_heavy() -> None:
    top = {m.split(".")[0] for m in modules_after("import budai.types, budai.models")}
    assert not top & {*HEAVY, *CLI, "httpx"}
