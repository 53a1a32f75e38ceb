"""The live objects at each stage of their life, judged by Argo CD's engine and by kstatus.

The stages: new (not seen yet), reconciling (a download in flight), an edit the operator has not
observed (the operator frozen), Ready, Stalled, paused, deleting, and a delete that keeps
failing. At each stage the object as the API server serves it goes through the real engines
(``tests/fixtures/engines.py``); every other Bud object of the namespace goes through them too
and the two engines must never contradict each other on it.

"Operator stopped" is literal: a leader operator of our own takes over from the shared one (it
has the higher peering priority) and is frozen with SIGSTOP, so nothing reconciles while its
peering record is still fresh; SIGCONT resumes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from budai import BudClient
from tests.fixtures.engines import Engines, Verdict
from tests.test_readme import readme_blocks

from .conftest import (
    OperatorProcess,
    condition,
    events_for,
    get_obj,
    start_operator,
    stop_operator,
    wait_for,
)
from .test_operator_e2e import deployment_yaml, model_yaml
from .test_peering import _state

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


def _judge(engines: Engines, kube: Any, ns: str, kind: str, name: str) -> tuple[Verdict, Verdict]:
    """Both verdicts on the live object, plus the never-contradict check on the namespace."""
    everything = kube.get_json("bud", "-n", ns)["items"]
    argo_all, flux_all = engines.argocd(everything), engines.kstatus(everything)
    for obj, argo, flux in zip(everything, argo_all, flux_all, strict=True):
        who = f"{obj['kind']}/{obj['metadata']['name']}"
        assert argo.error is None and flux.error is None, (who, argo, flux)
        if argo.status == "Healthy":
            assert flux.status == "Current", (who, argo, flux)
        if flux.status == "Failed":
            assert argo.status == "Degraded", (who, argo, flux)
    obj = get_obj(kube, kind, name, ns)
    return engines.both(obj)


LEADER_PRIORITY = 80


def _leader_time_left(kube: Any) -> float:
    """Seconds until the frozen leader's peering record expires (then the shared operator,
    paused in its favour, would resume)."""
    peering = kube.get_json("clusterkopfpeering", "bud-operator")
    for peer in (peering.get("status") or {}).values():
        if isinstance(peer, dict) and peer.get("priority") == LEADER_PRIORITY:
            seen = datetime.fromisoformat(str(peer["lastseen"]))
            if seen.tzinfo is None:
                seen = seen.replace(tzinfo=UTC)
            deadline = seen + timedelta(seconds=float(peer.get("lifetime", 60)))
            return (deadline - datetime.now(UTC)).total_seconds()
    pytest.fail(f"no peering record with priority {LEADER_PRIORITY}: {peering.get('status')}")


@contextmanager
def _frozen(op: OperatorProcess, kube: Any, shared: OperatorProcess) -> Iterator[None]:
    """Nothing reconciles inside: the leader is stopped while its peering record is fresh (kopf
    refreshes it every 50-55 s for a 60 s lifetime), so the shared operator stays paused."""
    wait_for("a fresh peering record of the leader", lambda: _leader_time_left(kube) > 30, 70)
    os.kill(op.process.pid, signal.SIGSTOP)
    try:
        yield
        assert _state(shared) == "pausing", "the shared operator resumed while frozen"
    finally:
        os.kill(op.process.pid, signal.SIGCONT)


@pytest.fixture
def leader(
    kube: Any, gateway: Any, operator: OperatorProcess, tmp_path: Path
) -> Iterator[OperatorProcess]:
    op = start_operator(kube, gateway, tmp_path / "leader", "--priority", str(LEADER_PRIORITY))
    try:
        wait_for(
            "our operator to lead and the shared one to pause",
            lambda: _state(op) == "resuming" and _state(operator) == "pausing",
        )
        yield op
    finally:
        stop_operator(op)


def _stage(kube: Any, kind: str, name: str, ns: str, type_: str, status: str) -> Any:
    return lambda: (
        condition(o := get_obj(kube, kind, name, ns), type_).get("status") == status and o
    )


def test_every_stage_through_both_engines(
    kube: Any,
    engines: Engines,
    leader: OperatorProcess,
    operator: OperatorProcess,
    kube_namespace: str,
    bud: BudClient,
) -> None:
    ns = kube_namespace
    big = textwrap.dedent(
        """
        apiVersion: bud.studio/v1alpha1
        kind: BudModel
        metadata: {name: big}
        spec:
          source: hugging_face
          uri: e2e/huge-model
          metadata: {simulated_size_bytes: 1000000000000000}
        """
    )
    seen: dict[str, tuple[Verdict, Verdict]] = {}

    # new: created while nobody reconciles, so it carries no status at all.
    with _frozen(leader, kube, operator):
        kube.apply(model_yaml("m"), namespace=ns)
        seen["new"] = _judge(engines, kube, ns, "bm", "m")

    # reconciling: a download that will take days of simulated time.
    kube.apply(big, namespace=ns)
    wait_for("big Reconciling", _stage(kube, "bm", "big", ns, "Reconciling", "True"), 60)
    wait_for(
        "big Downloading",
        lambda: condition(get_obj(kube, "bm", "big", ns), "Ready").get("reason") == "Downloading",
        60,
    )
    seen["reconciling"] = _judge(engines, kube, ns, "bm", "big")

    # Ready, then an edit the operator does not see because it is frozen.
    wait_for("m Ready", _stage(kube, "bm", "m", ns, "Ready", "True"), 60)
    seen["ready"] = _judge(engines, kube, ns, "bm", "m")
    kube.apply(
        model_yaml("m") + "---\n" + deployment_yaml("d", "m"), namespace=ns
    )  # the deployment, for the later stages
    wait_for("d Ready", _stage(kube, "bd", "d", ns, "Ready", "True"), 90)
    seen["ready-deployment"] = _judge(engines, kube, ns, "bd", "d")
    with _frozen(leader, kube, operator):
        kube.kubectl(
            "patch", "bm", "m", "-n", ns, "--type=merge", "-p", '{"spec":{"metadata":{"v":"2"}}}'
        )
        seen["unobserved-edit"] = _judge(engines, kube, ns, "bm", "m")
    wait_for("m Ready after the edit", _stage(kube, "bm", "m", ns, "Ready", "True"), 60)

    # Stalled: a dependency cycle only the operator can find.
    kube.apply(
        textwrap.dedent(
            """
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: loop}
            spec:
              definition:
                steps:
                  - {id: a, action: log, dependsOn: [b]}
                  - {id: b, action: log, dependsOn: [a]}
            """
        ),
        namespace=ns,
    )
    wait_for("loop Stalled", _stage(kube, "bp", "loop", ns, "Stalled", "True"), 60)
    seen["stalled"] = _judge(engines, kube, ns, "bp", "loop")

    # paused
    kube.kubectl("annotate", "bm", "big", "-n", ns, "bud.studio/paused=true")
    wait_for(
        "big paused",
        lambda: condition(get_obj(kube, "bm", "big", ns), "Synced").get("reason") == "Paused",
        60,
    )
    seen["paused"] = _judge(engines, kube, ns, "bm", "big")

    # deleting: the finalizer holds the object while the operator is frozen.
    with _frozen(leader, kube, operator):
        kube.kubectl("delete", "bd", "d", "-n", ns, "--wait=false")
        seen["deleting"] = _judge(engines, kube, ns, "bd", "d")

    # delete failing: a deployment outside Kubernetes still uses model m.
    model_id = get_obj(kube, "bm", "m", ns)["status"]["id"]
    clusters = {c.name: c.id for c in bud.clusters.list()}
    bud.deployments.create(
        model_id=model_id, cluster_id=clusters["local-cpu"], resources={"cpu": "1", "memory": "1Gi"}
    )
    kube.kubectl("delete", "bm", "m", "-n", ns, "--wait=false")
    wait_for("m DeleteFailed", _stage(kube, "bm", "m", ns, "DeleteFailed", "True"), 90)
    seen["delete-failing"] = _judge(engines, kube, ns, "bm", "m")
    kube.kubectl(
        "patch", "bm", "m", "-n", ns, "--type=merge", "-p", '{"spec":{"deletionPolicy":"Orphan"}}'
    )

    got = {stage: (a.status, f.status) for stage, (a, f) in seen.items()}
    assert got == {
        "new": ("Progressing", "Current"),  # kstatus' documented blind spot: no status yet
        "reconciling": ("Progressing", "InProgress"),
        "ready": ("Healthy", "Current"),
        "ready-deployment": ("Healthy", "Current"),
        "unobserved-edit": ("Progressing", "InProgress"),
        "stalled": ("Degraded", "Failed"),
        "paused": ("Suspended", "InProgress"),
        "deleting": ("Progressing", "Terminating"),
        "delete-failing": ("Degraded", "Terminating"),
    }, seen
    argo_edit, flux_edit = seen["unobserved-edit"]
    # The symptom: Argo CD answered a Lua error exactly here.
    assert argo_edit.message == "Waiting for the Bud operator to observe generation 2 (observed 1)"
    assert flux_edit.message == "BudModel generation is 2, but latest observed generation is 1"
    assert "Downloading" in (seen["reconciling"][0].message or "") or "download" in (
        seen["reconciling"][0].message or ""
    ), seen["reconciling"]


def test_why_it_scaled_download_figures_and_last_run(
    kube: Any,
    engines: Engines,
    operator: OperatorProcess,
    kube_namespace: str,
    gateway: Any,
) -> None:
    ns = kube_namespace
    kube.apply(
        model_yaml("m")
        + textwrap.dedent(
            """
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudDeployment
            metadata: {name: auto}
            spec:
              modelRef: {name: m}
              clusterName: local-cpu
              resources: {cpu: "1", memory: 1Gi}
              autoScaling: {enabled: true, minReplicas: 1, maxReplicas: 4, targetCPU: 50}
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudModel
            metadata: {name: big}
            spec:
              source: hugging_face
              uri: e2e/huge-model-2
              metadata: {simulated_size_bytes: 1000000000000000}
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: p}
            spec:
              definition:
                steps: [{id: a, action: log}]
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudExecution
            metadata: {name: run-1}
            spec:
              pipelineRef: {name: p}
            """
        ),
        namespace=ns,
    )
    dep = wait_for("auto Ready", _stage(kube, "bd", "auto", ns, "Ready", "True"), 90)

    # Download figures, in status and in the printer columns.
    big = wait_for(
        "big's download figures",
        lambda: (o := get_obj(kube, "bm", "big", ns))["status"].get("etaSeconds") and o,
        60,
    )
    st = big["status"]
    assert st["downloadSimulated"] is True and st["sizeBytes"] == 10**15
    assert st["bytesPerSecond"] > 0 and 0 < st["downloadedBytes"] < st["sizeBytes"]
    assert condition(big, "Ready")["reason"] == "Downloading"
    assert "(simulated, " in condition(big, "Ready")["message"]
    wide = kube.kubectl("get", "bm", "big", "-n", ns, "-o", "wide").stdout
    assert {"PROGRESS", "RATE", "ETA"} <= set(wide.split("\n")[0].split()), wide

    # A load change through the gateway's /_local/ controls: the autoscaler scales up.
    gateway.local("POST", f"/deployments/{dep['status']['id']}/load", {"requests_per_second": 9})
    scaled = wait_for(
        "a scaling decision in status",
        lambda: (
            ((o := get_obj(kube, "bd", "auto", ns))["status"].get("autoScaling") or {}).get(
                "lastDecisions"
            )
            and o
        ),
        60,
    )
    (decision,) = scaled["status"]["autoScaling"]["lastDecisions"]
    assert (decision["fromReplicas"], decision["toReplicas"]) == (1, 4), decision
    assert decision["metric"] == "requests_per_second" and decision["target"] == 2.5
    events = wait_for(
        "a Scaled Event",
        lambda: [e for e in events_for(kube, ns, "auto") if e["reason"] == "Scaled"],
        30,
    )
    assert events[0]["type"] == "Normal"
    assert "scaled up from 1 to 4" in events[0]["message"], events[0]
    gateway.local("POST", f"/deployments/{dep['status']['id']}/load", {"requests_per_second": 0})

    # The pipeline's Last-Run column once its execution finished.
    wait_for("run-1 Ready", _stage(kube, "bx", "run-1", ns, "Ready", "True"), 60)
    last = wait_for(
        "p's lastExecution",
        lambda: (
            (le := (get_obj(kube, "bp", "p", ns)["status"].get("lastExecution") or {})).get("state")
            == "completed"
            and le
        ),
        60,
    )
    assert last["id"] == get_obj(kube, "bx", "run-1", ns)["status"]["id"]
    table = kube.kubectl("get", "bp", "p", "-n", ns).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert row[header.index("LAST-RUN")] == "completed", table

    # And all of it judged by both engines.
    everything = kube.get_json("bud", "-n", ns)["items"]
    for obj, argo, flux in zip(
        everything, engines.argocd(everything), engines.kstatus(everything), strict=True
    ):
        assert argo.error is None and flux.error is None, (obj["metadata"]["name"], argo, flux)


def _recipe() -> str:
    (block,) = [b for b in readme_blocks() if b.mode == "recipe"]
    return block.code


def test_readme_wait_recipe_waits_for_ready_and_stops_at_stalled(
    kube: Any, operator: OperatorProcess, kube_namespace: str
) -> None:
    ns = kube_namespace
    kube.apply(
        model_yaml("m")
        + "---\n"
        + deployment_yaml("d", "m")
        + textwrap.dedent(
            """
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: p}
            spec:
              definition:
                steps: [{id: a, action: log}]
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudExecution
            metadata: {name: run-1}
            spec:
              pipelineRef: {name: p}
            """
        ),
        namespace=ns,
    )
    env = {**kube.env, "NS": ns, "TIMEOUT": "240s"}
    ok = subprocess.run(
        ["bash", "-c", _recipe()], env=env, capture_output=True, text=True, timeout=280
    )
    assert ok.returncode == 0, (ok.stdout, ok.stderr)
    for kind in ("budmodel", "buddeployment", "budpipeline", "budexecution"):
        assert f"{kind}.bud.studio/" in ok.stdout, ok.stdout  # kubectl wait named each kind
    for item in kube.get_json("bud", "-n", ns)["items"]:
        assert condition(item, "Ready")["status"] == "True", item["metadata"]["name"]

    # A Stalled object ends the wait at once (the timeout is far away), saying why.
    kube.apply(
        textwrap.dedent(
            """
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: loop}
            spec:
              definition:
                steps:
                  - {id: a, action: log, dependsOn: [b]}
                  - {id: b, action: log, dependsOn: [a]}
            """
        ),
        namespace=ns,
    )
    stalled = subprocess.run(
        ["bash", "-c", _recipe()],
        env={**env, "TIMEOUT": "3600s"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stalled.returncode == 1, (stalled.stdout, stalled.stderr)
    assert "BudPipeline/loop is Stalled:" in stalled.stderr, stalled.stderr
    assert "dependency cycle" in stalled.stderr, stalled.stderr
