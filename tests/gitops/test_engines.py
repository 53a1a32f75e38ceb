"""Our status judged by the real engines: Argo CD's Lua (``util/lua``) and kstatus (cli-utils).

Every recorded fixture (``gitops/argocd/health/*/testdata`` and the hand-written objects of
``tests/gitops``) goes through both, and the verdicts are asserted. The fast stand-ins used by
the other tests here (the lupa emulation and the Python kstatus port) must agree with the real
engines on every case, or they prove nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from tests.fixtures.engines import ARGOCD_CM, Engines
from tests.gitops import kstatus as kstatus_port
from tests.gitops.lua_health import HEALTH_DIR, evaluate
from tests.gitops.test_kstatus import EXPECTED as KSTATUS_EXPECTED
from tests.gitops.test_kstatus import README_CASES


def _fixtures() -> list[tuple[str, dict[str, Any], str, str]]:
    """(id, object, expected Argo status, expected Argo message) for every recorded fixture."""
    out = []
    for folder in sorted(HEALTH_DIR.iterdir()):
        spec = yaml.safe_load((folder / "health_test.yaml").read_text())
        for test in spec["tests"]:
            obj = yaml.safe_load((folder / test["inputPath"]).read_text())
            want = test["healthStatus"]
            out.append((f"{folder.name}/{test['inputPath']}", obj, want["status"], want["message"]))
    return out


FIXTURES = _fixtures()


def _bud(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A README case as a Bud object, so Argo CD has a health check to run for it."""
    meta = {"name": "case", "namespace": "default", **obj.get("metadata", {})}
    return {"apiVersion": "bud.studio/v1alpha1", "kind": kind, **obj, "metadata": meta}


README_OBJECTS = [_bud(kind, obj) for kind in ("BudModel",) for obj, _ in README_CASES]


def test_every_fixture_runs_in_argo_cds_engine(engines: Engines) -> None:
    got = engines.argocd(obj for _, obj, _, _ in FIXTURES)
    wrong = {
        fid: (v.status, v.message, v.error)
        for (fid, _, status, message), v in zip(FIXTURES, got, strict=True)
        if (v.status, v.message, v.error) != (status, message, None)
    }
    assert not wrong, wrong


def test_every_fixture_gets_the_expected_kstatus(engines: Engines) -> None:
    got = engines.kstatus(obj for _, obj, _, _ in FIXTURES)
    wrong = {
        fid: (v.status, v.error)
        for (fid, _, _, _), v in zip(FIXTURES, got, strict=True)
        if (v.status, v.error) != (KSTATUS_EXPECTED[fid], None)
    }
    assert not wrong, wrong


def test_readme_cases_through_both_engines(engines: Engines) -> None:
    kstatus = engines.kstatus(README_OBJECTS)
    assert [v.status for v in kstatus] == [expected for _, expected in README_CASES]
    argo = engines.argocd(README_OBJECTS)
    assert all(v.error is None and v.status for v in argo), argo


@pytest.mark.parametrize("objs", ["fixtures", "readme"])
def test_lupa_emulation_agrees_with_argo_cd(engines: Engines, objs: str) -> None:
    cases = [o for _, o, _, _ in FIXTURES] if objs == "fixtures" else README_OBJECTS
    real = engines.argocd(cases)
    for obj, verdict in zip(cases, real, strict=True):
        script = HEALTH_DIR / f"bud.studio_{obj['kind']}" / "health.lua"
        assert evaluate(script, obj) == verdict.pair, obj


@pytest.mark.parametrize("objs", ["fixtures", "readme"])
def test_python_kstatus_port_agrees_with_cli_utils(engines: Engines, objs: str) -> None:
    cases = [o for _, o, _, _ in FIXTURES] if objs == "fixtures" else README_OBJECTS
    real = engines.kstatus(cases)
    for obj, verdict in zip(cases, real, strict=True):
        port = kstatus_port.compute(obj)
        assert (port.status, port.message) == verdict.pair, obj


def test_argo_and_flux_never_contradict(engines: Engines) -> None:
    objs = [o for _, o, _, _ in FIXTURES]
    for obj, argo, flux in zip(objs, engines.argocd(objs), engines.kstatus(objs), strict=True):
        assert argo.error is None and flux.error is None, (obj, argo, flux)
        if argo.status == "Healthy":
            assert flux.status == "Current", (obj, argo, flux)
        if flux.status == "InProgress":
            assert argo.status != "Healthy", (obj, argo, flux)
        if flux.status == "Failed":
            assert argo.status == "Degraded", (obj, argo, flux)


# -- the sandbox: what Argo CD opens for an argocd-cm health check ---------------------------------

PROBES = {
    "string": 'hs.message = string.format("%d", 1)',
    "string-method": 'hs.message = ("x"):upper()',
    "math": "hs.message = tostring(math.floor(1.5))",
    "os": "hs.message = tostring(os.time())",
    "io": 'hs.message = tostring(io.open("/etc/hostname"))',
    "table": 'local t = {"b", "a"}\ntable.sort(t)\nhs.message = table.concat(t, ",")',
    "require-os": 'local o = require("os")\nhs.message = type(o.time())',
    "base": 'hs.message = tostring(tonumber("7")) .. type(pcall) .. select("#", 1, 2)',
}
PROBE_OK = {"table": "a,b", "require-os": "number", "base": "7function2"}


def _probe_cm(tmp_path: Path, body: str, *, open_libs: bool) -> Path:
    script = f'local hs = {{}}\nhs.status = "Healthy"\n{body}\nreturn hs\n'
    data = {"resource.customizations.health.bud.studio_BudModel": script}
    if open_libs:
        data["resource.customizations.useOpenLibs.bud.studio_BudModel"] = "true"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}, "data": data}
    path = tmp_path / f"cm-{open_libs}.yaml"
    path.write_text(yaml.safe_dump(cm))
    (tmp_path / "health.lua").write_text(script)
    return path


MODEL = {"apiVersion": "bud.studio/v1alpha1", "kind": "BudModel", "metadata": {"name": "m"}}


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_argo_cd_opens_only_base_table_and_package(
    engines: Engines, tmp_path: Path, probe: str
) -> None:
    cm = _probe_cm(tmp_path, PROBES[probe], open_libs=False)
    (verdict,) = engines.argocd([MODEL], cm=cm)
    emulated: tuple[str, str] | str
    try:
        emulated = evaluate(tmp_path / "health.lua", MODEL)
    except lua51.LuaError as err:  # the emulation must fail exactly where Argo CD does
        emulated = f"error: {err}"
    if probe in PROBE_OK:
        assert verdict.pair == ("Healthy", PROBE_OK[probe]), verdict
        assert emulated == verdict.pair
    else:
        # The issue's own symptom: indexing a library that is not there (or, for a string
        # method, a string with no metatable).
        assert verdict.error is not None, verdict
        assert "attempt to index a non-table object" in verdict.error, verdict
        assert isinstance(emulated, str) and emulated.startswith("error:"), emulated
    # With useOpenLibs every library is there: the probes above fail only for that reason.
    (opened,) = engines.argocd([MODEL], cm=_probe_cm(tmp_path, PROBES[probe], open_libs=True))
    if probe != "require-os":
        assert opened.error is None and opened.status == "Healthy", opened


def test_argo_cd_gives_a_script_one_second(engines: Engines, tmp_path: Path) -> None:
    cm = _probe_cm(tmp_path, "while true do end", open_libs=False)
    (verdict,) = engines.argocd([MODEL], cm=cm)
    assert verdict.error is not None and "context deadline exceeded" in verdict.error, verdict


def test_shipped_argocd_cm_needs_no_open_libs() -> None:
    data = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    assert not [k for k in data if ".useOpenLibs." in k]
    assert "No resource.customizations.useOpenLibs" in ARGOCD_CM.read_text()


def test_the_issues_symptom_is_gone(engines: Engines, tmp_path: Path) -> None:
    # The old "generation not observed" branch used string.format: in Argo CD's engine it
    # failed exactly when a team pushed a change with the operator down.
    folder = HEALTH_DIR / "bud.studio_BudModel"
    obj = yaml.safe_load((folder / "testdata" / "generation-not-observed.yaml").read_text())
    ours = (folder / "health.lua").read_text()
    old_branch = (
        'return result("Progressing", string.format('
        '"Waiting for the Bud operator to observe generation %d (observed %d)", '
        "generation, obj.status.observedGeneration))\n"
    )
    start = ours.index(
        '  return result("Progressing", "Waiting for the Bud operator to observe gen'
    )
    end = ours.index("end\n", start)
    old = ours[:start] + "  " + old_branch + ours[end:]
    data = {"resource.customizations.health.bud.studio_BudModel": old}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}, "data": data}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(cm))
    (before,) = engines.argocd([obj], cm=tmp_path / "old.yaml")
    assert before.error is not None
    assert "attempt to index a non-table object(nil) with key 'format'" in before.error, before
    (after,) = engines.argocd([obj])
    assert after.pair == (
        "Progressing",
        "Waiting for the Bud operator to observe generation 3 (observed 2)",
    )
