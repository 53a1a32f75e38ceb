"""`helm upgrade` from the chart before connections existed keeps every resource Ready, with no
spec change: the upgraded chart's ClusterBudConnection default carries today's gateway.url and
key, and the operator runs with exactly the upgraded chart's RBAC (its ServiceAccount token)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from budai import BudClient
from tests.chart.chartlib import CHART, CRD_NAMES, adopt_crds, wait_served
from tests.chart.test_rbac_e2e import (
    READY_TIMEOUT,
    Install,
    Operator,
    _cleanup_model,
    _model,
    _wait_ready,
)
from tests.fixtures.kube import Kube

pytestmark = [pytest.mark.kube, pytest.mark.slow]

# The chart as installed before tenancy (commit e9facc7, `git archive ... charts/bud-operator`),
# kept as a file so the test also runs on a shallow clone.
BEFORE_CONNECTIONS = Path(__file__).parent / "testdata" / "bud-operator-e9facc7.tar.gz"


def _old_chart(tmp: Path) -> Path:
    subprocess.run(["tar", "-xzf", str(BEFORE_CONNECTIONS), "-C", str(tmp)], check=True)
    return tmp / "charts" / "bud-operator"


def _container(kube: Kube, full: str, ns: str) -> dict[str, Any]:
    workload = kube.get_json("statefulset", full, "-n", ns)
    container: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return container


def test_upgrade_from_todays_chart_keeps_resources_ready(
    kube: Kube, kube_namespace: str, gateway: Any, tmp_path: Path
) -> None:
    ns = kube_namespace
    release = f"up-{uuid.uuid4().hex[:6]}"
    full = f"{release}-bud-operator"
    values = ["--set", f"gateway.apiKey.value={gateway.api_key}",
              "--set", f"gateway.url={gateway.url}",
              "--set", f"leaderElection.name={release}"]  # fmt: skip
    adopt_crds(kube, release, ns)
    kube.helm("install", release, str(_old_chart(tmp_path)), "-n", ns, *values, timeout=180)
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 *[f"crd/{name}" for name in CRD_NAMES[:4]])
    wait_served(kube, ns)
    old = Operator(kube, Install(release, ns, full, _container(kube, full, ns), "ClusterRole"),
                   gateway, tmp_path, 0)  # fmt: skip
    new: Operator | None = None
    try:
        kube.apply(_model(ns, "kept"))
        before = _wait_ready(kube, ns, "kept", old, READY_TIMEOUT)
        old.stop()

        adopt_crds(kube, release, ns)
        kube.helm("upgrade", release, str(CHART), "-n", ns, *values, timeout=180)
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     *[f"crd/{name}" for name in CRD_NAMES])
        wait_served(kube, ns)
        container = _container(kube, full, ns)
        assert "--connections-only" in container["args"]
        new = Operator(kube, Install(release, ns, full, container, "ClusterRole"), gateway,
                       tmp_path, 1)  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        conn: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert new.proc.poll() is None, new.log()[-4000:]
            got = kube.kubectl("get", "clusterbudconnection", "default", "-o", "json",
                               check=False)  # fmt: skip
            conn = json.loads(got.stdout) if got.returncode == 0 else {}
            status = conn.get("status") or {}
            ready = {c["type"]: c for c in status.get("conditions", [])}.get("Ready", {})
            if ready.get("status") == "True" and status.get("users", 0) >= 1:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"default connection not Ready: {conn}\n{new.log()[-4000:]}")
        assert conn["spec"]["url"] == gateway.url
        assert "BudModel/" + ns + "/kept" in conn["status"]["usedBy"]
        after = _wait_ready(kube, ns, "kept", new, READY_TIMEOUT)
        assert after["status"]["id"] == before["status"]["id"]
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert "Forbidden" not in new.log() and " 403" not in new.log(), new.log()[-4000:]
        with BudClient(api_key=gateway.api_key, base_url=gateway.url, max_retries=0) as bud:
            assert len(list(bud.models.list(name=f"{ns}-kept"))) == 1
    finally:
        old.stop()
        if new is not None:
            new.stop()
        _cleanup_model(kube, ns, "kept")
        kube.helm("uninstall", release, "-n", ns, timeout=180, check=False)
        kube.kubectl("patch", "clusterbudconnection", "default", "--type=merge",
                     "-p", '{"metadata":{"finalizers":null}}', check=False)
        kube.kubectl("delete", "clusterbudconnection", "default", "--ignore-not-found",
                     "--wait=false", check=False)
