"""Argo CD health checks: every kind has a health.lua whose fixtures pass under real Lua 5.1.

The layout is Argo CD's own (``health.lua``, ``health_test.yaml``, ``testdata/*.yaml``), so the
same folders can be copied into argo-cd's ``resource_customizations/`` and run by its test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lupa.lua51 as lua51
import pytest
import yaml

from budai_operator.kinds.registry import REGISTRY
from tests.gitops.lua_health import HEALTH_DIR, evaluate

KINDS = [adapter.kind for adapter in REGISTRY]
REQUIRED = {"Healthy", "Progressing", "Degraded", "Suspended"}


def _cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for folder in sorted(HEALTH_DIR.iterdir()):
        spec = yaml.safe_load((folder / "health_test.yaml").read_text())
        for test in spec["tests"]:
            expected = test["healthStatus"]
            cases.append(
                (folder.name, test["inputPath"], expected["status"], expected["message"])
            )
    return cases


def test_one_health_check_per_kind() -> None:
    folders = {p.name for p in HEALTH_DIR.iterdir() if p.is_dir()}
    assert folders == {f"bud.studio_{kind}" for kind in KINDS}
    for kind in KINDS:
        assert (HEALTH_DIR / f"bud.studio_{kind}" / "health.lua").is_file()


@pytest.mark.parametrize("kind", KINDS)
def test_fixtures_cover_every_argo_status(kind: str) -> None:
    folder = HEALTH_DIR / f"bud.studio_{kind}"
    spec = yaml.safe_load((folder / "health_test.yaml").read_text())
    assert {t["healthStatus"]["status"] for t in spec["tests"]} >= REQUIRED
    # Every fixture file is used, and every used file is the kind the script is for.
    used = {t["inputPath"] for t in spec["tests"]}
    assert used == {f"testdata/{p.name}" for p in (folder / "testdata").glob("*.yaml")}
    for path in used:
        assert yaml.safe_load((folder / path).read_text())["kind"] == kind


@pytest.mark.parametrize(("folder", "input_path", "status", "message"), _cases())
def test_health_lua(folder: str, input_path: str, status: str, message: str) -> None:
    obj = yaml.safe_load((HEALTH_DIR / folder / input_path).read_text())
    assert evaluate(HEALTH_DIR / folder / "health.lua", obj) == (status, message)


def test_sandbox_is_argo_like(tmp_path: Path) -> None:
    # A script reaching for os/io must fail here as it does in Argo CD, or the checks prove less.
    script = tmp_path / "health.lua"
    script.write_text('local hs = {}\nhs.status = "Healthy"\nhs.message = os.date()\nreturn hs\n')
    with pytest.raises(lua51.LuaError, match="os"):
        evaluate(script, {"metadata": {}})


def test_argocd_cm_snippet_is_up_to_date() -> None:
    render = HEALTH_DIR.parent / "render_cm.py"
    proc = subprocess.run(
        [sys.executable, str(render), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load((HEALTH_DIR.parent / "argocd-cm.yaml").read_text())["data"]
    for kind in KINDS:
        key = f"resource.customizations.health.bud.studio_{kind}"
        script = HEALTH_DIR / f"bud.studio_{kind}" / "health.lua"
        assert data[key] == script.read_text()
