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
from tests.gitops import connection_fixtures
from tests.gitops.lua_health import HEALTH_DIR, evaluate

KINDS = [*(adapter.kind for adapter in REGISTRY), *REGISTRY.connections]
REQUIRED = {"Healthy", "Progressing", "Degraded", "Suspended"}
# A connection cannot be Suspended: the operator honours bud.studio/paused only for the kinds
# with a remote object (a connection writes nothing remote), so it has no paused state to show.
NEVER = {kind: {"Suspended"} for kind in REGISTRY.connections}


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
    statuses = {t["healthStatus"]["status"] for t in spec["tests"]}
    assert statuses >= REQUIRED - NEVER.get(kind, set())
    assert not statuses & NEVER.get(kind, set())
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


def test_the_connection_fixtures_are_the_operators_own_statuses() -> None:
    # Written by `python -m tests.gitops.connection_fixtures` from the connection loop's
    # decisions; a decision that changes must change the fixtures Argo CD's verdicts rest on.
    made = connection_fixtures.fixtures()
    on_disk = {
        str(p.relative_to(HEALTH_DIR)): p.read_text()
        for kind in REGISTRY.connections
        for p in (HEALTH_DIR / f"bud.studio_{kind}" / "testdata").glob("*.yaml")
    }
    assert on_disk == {rel: connection_fixtures.render(obj) for rel, obj in made.items()}


def test_a_connection_in_use_names_its_users_and_counts_the_rest(tmp_path: Path) -> None:
    # usedBy keeps at most 20 names; the message counts the ones it cannot name.
    kind = connection_fixtures.NAMESPACED
    obj = connection_fixtures.fixtures()[f"bud.studio_{kind}/testdata/deleting-in-use.yaml"]
    obj["status"]["users"] = 3
    obj["status"]["usedBy"] = ["BudModel/team-a/llama"]
    script = HEALTH_DIR / f"bud.studio_{kind}" / "health.lua"
    assert evaluate(script, obj) == (
        "Progressing",
        "Deleting: still used by 3 resources (BudModel/team-a/llama and 2 more)",
    )
    obj["status"]["users"] = 1
    assert evaluate(script, obj) == (
        "Progressing",
        "Deleting: still used by 1 resource (BudModel/team-a/llama)",
    )
