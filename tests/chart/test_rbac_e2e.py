"""RBAC proof: the operator works with exactly the chart's permissions, and not with fewer.

The chart is installed into the real control plane; a token for its ServiceAccount is minted
with the TokenRequest API (`kubectl create token`); the operator process runs outside the
cluster (there are no kubelets) with the container's args and env from the installed
StatefulSet and a kubeconfig holding only that token. A BudModel applied with kubectl must
become Ready against the local gateway; with one rule removed from the chart's Role the same
flow must fail with a 403 from the API server.

This test needs the operator (`budai-operator run`): if it is missing the test fails, it does
not skip. No other operator may serve the test's namespace meanwhile (tests/operator/e2e starts a
session-wide one; pytest collects tests/chart first).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartlib import CHART, CRD_NAMES, adopt_crds, wait_served
from tests.fixtures.engines import Engines
from tests.fixtures.kube import Kube
from tests.gitops import kstatus
from tests.gitops.lua_health import HEALTH_DIR, evaluate

pytestmark = [pytest.mark.kube, pytest.mark.slow]

READY_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _operator_exe() -> str:
    exe = shutil.which("budai-operator", path=str(Path(sys.executable).parent))
    assert exe, "the budai-operator console script is not installed: the operator is missing"
    return exe


@dataclass
class Install:
    release: str
    namespace: str
    fullname: str
    container: dict[str, Any]
    role_kind: str  # where the rules on Bud objects live: "Role" or "ClusterRole"


@pytest.fixture(params=["named-namespace", "all-namespaces"])
def install(request: pytest.FixtureRequest, kube: Kube, kube_namespace: str) -> Iterator[Install]:
    ns = kube_namespace
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    mode = (["--set", "watch.allNamespaces=false"] if request.param == "named-namespace"
            else ["--set", "watch.allNamespaces=true"])
    adopt_crds(kube, release, ns)
    # A peering name of its own: an operator of another test (same default name, same priority)
    # would otherwise make both pause.
    kube.helm("install", release, str(CHART), "-n", ns, "--set", "gateway.apiKey.value=unused",
              "--set", f"leaderElection.name={release}", *mode, timeout=180)
    full = f"{release}-bud-operator"
    # The chart may have just created the CRDs: wait until the API server serves them.
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 *[f"crd/{name}" for name in CRD_NAMES])
    wait_served(kube, ns)
    workload = kube.get_json("statefulset", full, "-n", ns)
    container = workload["spec"]["template"]["spec"]["containers"][0]
    kind = "Role" if request.param == "named-namespace" else "ClusterRole"
    try:
        yield Install(release, ns, full, container, kind)
    finally:
        kube.helm("uninstall", release, "-n", ns, timeout=180, check=False)
        # The operator kept a ClusterBudConnection default for this release's gateway (and held
        # it with its finalizer); it is cluster-wide, so it must not outlive the test.
        kube.kubectl("patch", "clusterbudconnection", "default", "--type=merge",
                     "-p", '{"metadata":{"finalizers":null}}', check=False)
        kube.kubectl("delete", "clusterbudconnection", "default", "--ignore-not-found",
                     "--wait=false", check=False)


class Operator:
    """The operator process, started the way the chart's container would start it."""

    def __init__(
        self, kube: Kube, inst: Install, gateway: Any, tmp: Path, index: int = 0
    ) -> None:
        tmp = tmp / f"pod-{index}"
        tmp.mkdir()
        token = kube.kubectl("create", "token", inst.fullname, "-n", inst.namespace,
                             "--duration=1h").stdout.strip()
        self.kubeconfig = kube.token_kubeconfig(token)
        self.health = _free_port()
        key = tmp / "api-key"
        key.write_text(gateway.api_key)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "BUD_"))}
        for item in inst.container["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
        env.update(
            KUBECONFIG=self.kubeconfig,  # the ServiceAccount token and nothing else
            BUD_BASE_URL=gateway.url,
            BUD_API_KEY_FILE=str(key),
            # What the StatefulSet's downward API gives pod <index>: its name and, as the
            # peering priority, its apps.kubernetes.io/pod-index label.
            POD_ID=f"{inst.fullname}-{index}",
            BUD_PRIORITY=str(index),
            HOME=str(tmp),
            TMPDIR=str(tmp),
        )
        args = []
        for arg in inst.container["args"]:
            if arg.startswith("--health-port="):
                arg = f"--health-port={self.health}"
            elif arg.startswith("--metrics-port="):
                arg = f"--metrics-port={_free_port()}"
            args.append(arg)
        self.log_path = tmp / "operator.log"
        self._log = self.log_path.open("w")
        # The image's ENTRYPOINT is `budai-operator run`; the chart supplies the rest.
        self.proc = subprocess.Popen([_operator_exe(), "run", *args], env=env, cwd=tmp,
                                     stdout=self._log, stderr=subprocess.STDOUT, text=True)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _model(ns: str, name: str, source: str = "cloud", uri: str | None = None) -> str:
    return json.dumps({
        "apiVersion": "bud.studio/v1alpha1", "kind": "BudModel",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"source": source, "uri": uri or f"rbac-test/{name}"},
    })


def _wait_condition(
    kube: Kube, ns: str, name: str, op: Operator, ctype: str, status: str, reason: str | None,
    timeout: float = READY_TIMEOUT,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    obj: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert op.proc.poll() is None, f"the operator exited:\n{op.log()[-4000:]}"
        obj = kube.get_json("budmodel", name, "-n", ns)
        conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        got = conds.get(ctype, {})
        if got.get("status") == status and (reason is None or got.get("reason") == reason):
            return obj
        time.sleep(0.5)
    raise AssertionError(f"{name}: no {ctype}={status} ({reason}): {json.dumps(obj.get('status'))}")


def _gitops(engines: Engines, obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """(Argo CD health, kstatus status) of a live BudModel from the real engines; the fast
    stand-ins of tests/gitops must agree with them."""
    argo, flux = engines.both(obj)
    assert argo.error is None and flux.error is None, (argo, flux)
    assert evaluate(HEALTH_DIR / "bud.studio_BudModel" / "health.lua", obj) == argo.pair
    assert kstatus.compute(obj).status == flux.status
    return argo.status, flux.status


def _wait_ready(kube: Kube, ns: str, name: str, op: Operator, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    obj: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert op.proc.poll() is None, f"the operator exited:\n{op.log()[-4000:]}"
        obj = kube.get_json("budmodel", name, "-n", ns)
        conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        if conds.get("Ready", {}).get("status") == "True":
            return obj
        time.sleep(0.5)
    raise AssertionError(
        f"{name} not Ready after {timeout}s: {json.dumps(obj.get('status'))}\n{op.log()[-4000:]}")


def _cleanup_model(kube: Kube, ns: str, name: str) -> None:
    # The operator is gone by now: drop the finalizer so the namespace can go.
    kube.kubectl("patch", "budmodel", name, "-n", ns, "--type=merge",
                 "-p", '{"metadata":{"finalizers":null}}', check=False)
    kube.kubectl("delete", "budmodel", name, "-n", ns, "--wait=false", "--ignore-not-found",
                 check=False)


def test_operator_works_with_exactly_the_chart_rbac(
    kube: Kube, install: Install, gateway: Any, tmp_path: Path, engines: Engines
) -> None:
    ns = install.namespace
    op = Operator(kube, install, gateway, tmp_path)
    try:
        kube.apply(_model(ns, "rbac-ok"))
        obj = _wait_ready(kube, ns, "rbac-ok", op, READY_TIMEOUT)
        status = obj["status"]
        assert status["observedGeneration"] == obj["metadata"]["generation"]
        assert "bud.studio/finalizer" in obj["metadata"]["finalizers"]
        # What GitOps tools make of the live objects (same checks as tests/gitops).
        assert _gitops(engines, obj) == ("Healthy", "Current")
        kube.apply(_model(ns, "rbac-bad", "local", "/nonexistent/bud-rbac-test"))
        bad = _wait_condition(kube, ns, "rbac-bad", op, "Stalled", "True", None)
        assert _gitops(engines, bad) == ("Degraded", "Failed")
        kube.kubectl("annotate", "budmodel", "rbac-ok", "-n", ns, "bud.studio/paused=true")
        paused = _wait_condition(kube, ns, "rbac-ok", op, "Synced", "False", "Paused")
        assert _gitops(engines, paused)[0] == "Suspended"
        # The operator could post Events with its token (core events: create).
        events = kube.get_json("events", "-n", ns,
                               "--field-selector", "involvedObject.name=rbac-ok")["items"]
        assert events, "no Event was posted for the BudModel"
        assert "Forbidden" not in op.log() and " 403" not in op.log(), op.log()[-4000:]
        # The health endpoint the probes use answers.
        assert subprocess.run(
            [sys.executable, "-c", "import urllib.request; urllib.request.urlopen("
             f"'http://127.0.0.1:{op.health}/healthz', timeout=4)"],
            check=False, timeout=10).returncode == 0
    finally:
        op.stop()
        for name in ("rbac-ok", "rbac-bad"):
            _cleanup_model(kube, ns, name)


def _drop_rule(kube: Kube, install: Install, resource: str) -> dict[str, Any]:
    """Remove the rule covering `resource` from the chart's (Cluster)Role; return the rule."""
    args = [install.role_kind.lower(), install.fullname]
    if install.role_kind == "Role":
        args += ["-n", install.namespace]
    role = kube.get_json(*args)
    (dropped,) = [r for r in role["rules"] if resource in r["resources"]]
    role["rules"] = [r for r in role["rules"] if r is not dropped]
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        role["metadata"].pop(key, None)
    kube.kubectl("replace", "-f", "-", input=yaml.safe_dump(role))
    return dropped


@pytest.mark.parametrize("resource", ["budmodels/status", "budmodels"])
def test_one_rule_less_breaks_it(
    kube: Kube, install: Install, gateway: Any, tmp_path: Path, resource: str
) -> None:
    ns = install.namespace
    dropped = _drop_rule(kube, install, resource)
    op = Operator(kube, install, gateway, tmp_path)
    try:
        kube.apply(_model(ns, "rbac-broken"))
        with pytest.raises(AssertionError, match="not Ready"):
            _wait_ready(kube, ns, "rbac-broken", op, 20.0)
        log = op.log()
        assert "403" in log or "Forbidden" in log or "forbidden" in log, (dropped, log[-4000:])
    finally:
        op.stop()
        _cleanup_model(kube, ns, "rbac-broken")


def _peering_state(op: Operator) -> str:
    # kopf starts paused under peering and logs only changes: "Resuming" once no peer outranks
    # it, "Pausing" when one appears later. A standby that meets its leader at once says nothing.
    lines = [line for line in op.log().splitlines()
             if "Pausing operations" in line or "Resuming operations" in line]
    return "active" if lines and "Resuming operations" in lines[-1] else "paused"


def _wait_paused(op: Operator, leader: Operator, timeout: float) -> None:
    """Wait until `leader` leads and `op` is paused and stays so for 3 s.

    Right after start a standby can resume for one keep-alive period when its watch reads a
    peering object older than its peer's first keep-alive (kopf re-evaluates on the next
    event); the test waits that window out rather than racing it.
    """
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    while True:
        now = time.monotonic()
        if _peering_state(leader) == "active" and _peering_state(op) == "paused":
            stable_since = stable_since or now
            if now - stable_since >= 3:
                return
        else:
            stable_since = None
        assert now < deadline, f"the standby never settled paused:\n{op.log()[-4000:]}"
        time.sleep(0.5)


@pytest.mark.parametrize("install", ["named-namespace"], indirect=True)
def test_two_replicas_one_active_then_failover(
    kube: Kube, install: Install, gateway: Any, tmp_path: Path
) -> None:
    """Two replicas as the StatefulSet runs them: pod 1 works, pod 0 waits, then takes over."""
    ns = install.namespace
    standby = Operator(kube, install, gateway, tmp_path, index=0)
    active = Operator(kube, install, gateway, tmp_path, index=1)
    try:
        _wait_paused(standby, active, 90)
        kube.apply(_model(ns, "ha-one"))
        _wait_ready(kube, ns, "ha-one", active, READY_TIMEOUT)
        assert _peering_state(active) == "active"
        assert _peering_state(standby) == "paused"
        assert '"ha-one"' not in standby.log(), "the standby worked while paused"
        # The active pod stops (rollout, node loss): kopf withdraws its keep-alive on SIGTERM,
        # and the standby resumes at once instead of waiting for the keep-alive to expire.
        active.stop()
        deadline = time.monotonic() + 30
        while _peering_state(standby) != "active":
            assert time.monotonic() < deadline, standby.log()[-4000:]
            time.sleep(0.5)
        kube.apply(_model(ns, "ha-two"))
        _wait_ready(kube, ns, "ha-two", standby, READY_TIMEOUT)
    finally:
        active.stop()
        standby.stop()
        for name in ("ha-one", "ha-two"):
            _cleanup_model(kube, ns, name)
