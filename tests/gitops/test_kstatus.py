"""Flux compatibility: kstatus' verdict on recorded Bud objects, with no custom health rules.

Flux's kustomize-controller (``wait: true`` / ``healthChecks``) computes health with kstatus, so
the operator's conditions must make kstatus say Current / InProgress / Failed at the right
moments. ``tests/gitops/kstatus.py`` implements kstatus' documented rules; the objects are the
Argo CD fixtures (one recorded status per situation), so both GitOps tools see the same objects.
"""

from __future__ import annotations

import pytest
import yaml

from tests.gitops import kstatus
from tests.gitops.lua_health import HEALTH_DIR, evaluate

# kstatus result per fixture. "InProgress" for a finished-but-not-Ready object is kstatus' own
# reading of Ready=False; the operator marks true failures Stalled so Flux stops waiting.
EXPECTED = {
    "bud.studio_BudModel/testdata/healthy.yaml": "Current",
    "bud.studio_BudModel/testdata/progressing.yaml": "InProgress",
    "bud.studio_BudModel/testdata/degraded.yaml": "Failed",
    "bud.studio_BudModel/testdata/suspended.yaml": "Current",
    # No status yet: kstatus' documented blind spot ("sees the resource before the controller").
    "bud.studio_BudModel/testdata/new.yaml": "Current",
    "bud.studio_BudModel/testdata/generation-not-observed.yaml": "InProgress",
    "bud.studio_BudModel/testdata/error-state.yaml": "Failed",
    "bud.studio_BudModel/testdata/deleting.yaml": "Terminating",
    "bud.studio_BudModel/testdata/delete-failed.yaml": "Terminating",
    "bud.studio_BudDeployment/testdata/healthy.yaml": "Current",
    "bud.studio_BudDeployment/testdata/progressing.yaml": "InProgress",
    "bud.studio_BudDeployment/testdata/degraded.yaml": "InProgress",
    "bud.studio_BudDeployment/testdata/suspended.yaml": "InProgress",
    "bud.studio_BudDeployment/testdata/stalled-unauthorized.yaml": "Failed",
    "bud.studio_BudDeployment/testdata/creating.yaml": "InProgress",
    "bud.studio_BudDeployment/testdata/insufficient-capacity.yaml": "InProgress",
    "bud.studio_BudPipeline/testdata/healthy.yaml": "Current",
    "bud.studio_BudPipeline/testdata/progressing.yaml": "InProgress",
    "bud.studio_BudPipeline/testdata/degraded.yaml": "Failed",
    "bud.studio_BudPipeline/testdata/suspended.yaml": "Current",
    "bud.studio_BudExecution/testdata/healthy.yaml": "Current",
    "bud.studio_BudExecution/testdata/progressing.yaml": "InProgress",
    "bud.studio_BudExecution/testdata/degraded.yaml": "Failed",
    "bud.studio_BudExecution/testdata/suspended.yaml": "InProgress",
    "bud.studio_BudExecution/testdata/cancelled.yaml": "Failed",
    "bud.studio_BudConnection/testdata/healthy.yaml": "Current",
    "bud.studio_BudConnection/testdata/new.yaml": "Current",
    "bud.studio_BudConnection/testdata/generation-not-observed.yaml": "InProgress",
    "bud.studio_BudConnection/testdata/unauthorized.yaml": "Failed",
    "bud.studio_BudConnection/testdata/unreachable.yaml": "Failed",
    "bud.studio_BudConnection/testdata/secret-not-found.yaml": "Failed",
    "bud.studio_BudConnection/testdata/deleting-in-use.yaml": "Terminating",
    "bud.studio_BudConnection/testdata/deleting-unused.yaml": "Terminating",
    "bud.studio_BudConnection/testdata/paused-annotation.yaml": "Current",
    "bud.studio_ClusterBudConnection/testdata/healthy.yaml": "Current",
    "bud.studio_ClusterBudConnection/testdata/new.yaml": "Current",
    "bud.studio_ClusterBudConnection/testdata/generation-not-observed.yaml": "InProgress",
    "bud.studio_ClusterBudConnection/testdata/unauthorized.yaml": "Failed",
    "bud.studio_ClusterBudConnection/testdata/unreachable.yaml": "Failed",
    "bud.studio_ClusterBudConnection/testdata/secret-not-found.yaml": "Failed",
    "bud.studio_ClusterBudConnection/testdata/deleting-in-use.yaml": "Terminating",
    "bud.studio_ClusterBudConnection/testdata/deleting-unused.yaml": "Terminating",
    "bud.studio_ClusterBudConnection/testdata/paused-annotation.yaml": "Current",
}


def _load(rel: str) -> dict:
    return yaml.safe_load((HEALTH_DIR / rel).read_text())


def test_every_fixture_has_a_kstatus_expectation() -> None:
    on_disk = {str(p.relative_to(HEALTH_DIR)) for p in HEALTH_DIR.glob("*/testdata/*.yaml")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize(("rel", "expected"), sorted(EXPECTED.items()))
def test_kstatus_result(rel: str, expected: str) -> None:
    assert kstatus.compute(_load(rel)).status == expected


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_argo_and_flux_agree(rel: str) -> None:
    # Whatever reading of the Ready rule a kstatus release uses, the tools must never contradict:
    # Argo CD Healthy <=> kstatus Current, and kstatus Failed => Argo CD Degraded.
    obj = _load(rel)
    argo, _ = evaluate(HEALTH_DIR / rel.split("/")[0] / "health.lua", obj)
    for strict in (True, False):
        flux = kstatus.compute(obj, strict_ready=strict).status
        if argo == "Healthy":
            assert flux == "Current", (rel, strict)
        if flux == "Failed":
            assert argo == "Degraded", (rel, strict)
        if flux == "InProgress":
            assert argo != "Healthy", (rel, strict)
    if argo == "Healthy":
        conds = {c["type"]: c for c in obj["status"]["conditions"]}
        # kstatus' abnormal-true pair must be False (or absent) on a healthy object.
        assert conds.get("Reconciling", {}).get("status", "False") == "False"
        assert conds.get("Stalled", {}).get("status", "False") == "False"


# Hand-written objects for kstatus' rules (tests/gitops/test_engines.py runs them through the
# real status.Compute too).
README_CASES: list[tuple[dict, str]] = [
    ({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}}, "InProgress"),
    ({"metadata": {"generation": 1, "deletionTimestamp": "x"}}, "Terminating"),
    (
        {
            "metadata": {"generation": 1},
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Stalled", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
            },
        },
        "Failed",
    ),
    ({"metadata": {"generation": 1}, "status": {}}, "Current"),
]


@pytest.mark.parametrize(("obj", "expected"), README_CASES)
def test_kstatus_helper_follows_the_readme(obj: dict, expected: str) -> None:
    assert kstatus.compute(obj).status == expected
