"""The operator end to end: real kube-apiserver, real kubectl, the local gateway, and
`budai-operator run` as a subprocess. Each test works in its own namespace."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from budai import BudClient
from budai.exceptions import NotFoundError

from .conftest import OperatorProcess, condition, dump, events_for, get_obj, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[3]


def ready(kube: Any, kind: str, name: str, ns: str) -> dict[str, Any] | None:
    obj = get_obj(kube, kind, name, ns)
    return obj if condition(obj, "Ready").get("status") == "True" else None


def model_yaml(name: str, policy: str = "Delete", source: str = "cloud") -> str:
    return textwrap.dedent(
        f"""
        apiVersion: bud.studio/v1alpha1
        kind: BudModel
        metadata: {{name: {name}}}
        spec:
          source: {source}
          uri: s3://models/{name}
          deletionPolicy: {policy}
          metadata: {{owner: e2e}}
        """
    )


def deployment_yaml(name: str, model: str, cluster: str = "local-cpu", replicas: int = 1) -> str:
    return textwrap.dedent(
        f"""
        apiVersion: bud.studio/v1alpha1
        kind: BudDeployment
        metadata: {{name: {name}}}
        spec:
          modelRef: {{name: {model}}}
          clusterName: {cluster}
          replicas: {replicas}
          resources: {{cpu: "1", memory: 1Gi}}
        """
    )


def test_examples_become_ready(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient
) -> None:
    ns = kube_namespace
    for name in ("budmodel", "buddeployment", "budpipeline", "budexecution"):
        kube.kubectl("apply", "-n", ns, "-f", str(ROOT / "examples" / f"{name}.yaml"))

    model = wait_for("BudModel Ready", lambda: ready(kube, "bm", "llama-3-8b", ns), 90)
    assert model["status"]["state"] == "available"
    assert model["metadata"]["annotations"]["bud.studio/external-id"] == model["status"]["id"]
    assert condition(model, "ModelAvailable")["status"] == "True"
    assert model["status"]["observedGeneration"] == model["metadata"]["generation"]
    remote = bud.models.get(model["status"]["id"])
    assert remote.name == f"{ns}-llama-3-8b" and remote.metadata["team"] == "research"

    dep = wait_for("BudDeployment Ready", lambda: ready(kube, "bd", "llama-3-8b", ns), 90)
    assert dep["status"]["replicas"] >= 1
    assert dep["status"]["autoScaling"]["enabled"] is True
    assert dep["status"]["cluster"]["health"] == "healthy"
    assert condition(dep, "ClusterHealthy")["status"] == "True"
    assert condition(dep, "ReplicasReady")["status"] == "True"

    wait_for("BudPipeline Ready", lambda: ready(kube, "bp", "nightly-report", ns), 60)
    run = wait_for("BudExecution Ready", lambda: ready(kube, "bx", "nightly-report-1", ns), 90)
    steps = {s["id"]: s["state"] for s in run["status"]["steps"]}
    assert steps == {
        "collect": "completed",
        "warm-up": "completed",
        "summary": "completed",
        "announce": "completed",
    }, dump(run["status"])
    assert run["status"]["outputs"]["summary"] == "prod: 1200 requests"
    assert condition(run, "ExecutionSucceeded")["status"] == "True"

    # `kubectl get bud` lists every kind through the category, with the printer columns.
    table = kube.kubectl("get", "bud", "-n", ns).stdout
    for kind in ("budmodel", "buddeployment", "budpipeline", "budexecution"):
        assert kind in table.lower()
    assert "READY" in table and "STATE" in table

    # Idle reconciles leave lastTransitionTime alone; a reconcile request is echoed.
    before = {c["type"]: c["lastTransitionTime"] for c in model["status"]["conditions"]}
    kube.kubectl(
        "annotate",
        "bm",
        "llama-3-8b",
        "-n",
        ns,
        "bud.studio/reconcile-requested-at=now-1",
        "--overwrite",
    )
    after = wait_for(
        "lastHandledReconcileAt",
        lambda: (
            (o := get_obj(kube, "bm", "llama-3-8b", ns))["status"].get("lastHandledReconcileAt")
            == "now-1"
            and o
        ),
        30,
    )
    assert {c["type"]: c["lastTransitionTime"] for c in after["status"]["conditions"]} == before


def test_kubectl_scale_and_drift_come_back(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient, gateway: Any
) -> None:
    ns = kube_namespace
    kube.apply(model_yaml("m") + "---\n" + deployment_yaml("d", "m", replicas=1), namespace=ns)
    dep = wait_for("BudDeployment Ready", lambda: ready(kube, "bd", "d", ns), 90)
    dep_id = dep["status"]["id"]

    kube.kubectl("scale", "bd", "d", "-n", ns, "--replicas=3")
    wait_for("gateway sees 3 replicas", lambda: bud.deployments.get(dep_id).replicas == 3, 30)
    wait_for(
        "status shows 3/3",
        lambda: (
            (s := get_obj(kube, "bd", "d", ns)["status"]).get("replicas") == 3
            and s.get("desiredReplicas") == 3
        ),
        60,
    )

    # Out of band: someone scales the remote deployment; the operator puts it back.
    gateway.local("POST", f"/deployments/{dep_id}", {"replicas": 1})
    assert bud.deployments.get(dep_id).replicas == 1
    wait_for("drift corrected", lambda: bud.deployments.get(dep_id).replicas == 3, 30)
    reasons = wait_for(
        "DriftCorrected event",
        lambda: [e for e in events_for(kube, ns, "d") if e["reason"] == "DriftCorrected"],
        30,
    )
    assert "drifted" in reasons[0]["message"] and reasons[0]["type"] == "Warning"


def test_autoscaling_is_not_fought(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient
) -> None:
    ns = kube_namespace
    kube.apply(model_yaml("m"), namespace=ns)
    # spec.replicas stays at its default of 1 while the autoscaler keeps 2..3 replicas: an
    # operator that "corrected" replicas would fight it (and the gateway would answer 409).
    kube.apply(
        textwrap.dedent(
            """
            apiVersion: bud.studio/v1alpha1
            kind: BudDeployment
            metadata: {name: auto}
            spec:
              modelRef: {name: m}
              clusterName: local-cpu
              autoScaling: {enabled: true, minReplicas: 2, maxReplicas: 3}
              resources: {cpu: 100m, memory: 128Mi}
            """
        ),
        namespace=ns,
    )
    dep = wait_for("BudDeployment Ready", lambda: ready(kube, "bd", "auto", ns), 90)
    dep_id = dep["status"]["id"]
    kube.kubectl("scale", "bd", "auto", "-n", ns, "--replicas=1")
    time.sleep(6)  # several refreshes and reconciles
    assert bud.deployments.get(dep_id).replicas >= 2
    obj = get_obj(kube, "bd", "auto", ns)
    assert obj["status"]["desiredReplicas"] >= 2
    assert condition(obj, "Synced")["status"] == "True", dump(obj["status"])
    events = events_for(kube, ns, "auto")
    assert not [e for e in events if e["reason"] == "DriftCorrected"], dump(events)
    assert not [e for e in events if "autoscaling_enabled" in e.get("message", "")]


def test_cluster_health_drives_ready(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient, gateway: Any
) -> None:
    ns = kube_namespace
    kube.apply(model_yaml("m") + "---\n" + deployment_yaml("d", "m"), namespace=ns)
    dep = wait_for("BudDeployment Ready", lambda: ready(kube, "bd", "d", ns), 90)
    cluster_id = dep["status"]["cluster"]["id"]
    try:
        gateway.local("POST", f"/clusters/{cluster_id}", {"ready_nodes": 0})
        broken = wait_for(
            "ClusterHealthy=False",
            lambda: (
                condition(o := get_obj(kube, "bd", "d", ns), "ClusterHealthy").get("status")
                == "False"
                and o
            ),
            30,
        )
        assert condition(broken, "ClusterHealthy")["reason"] == "Unhealthy"
        assert condition(broken, "Ready")["status"] == "False"
        assert broken["status"]["cluster"]["health"] == "unhealthy"
    finally:
        gateway.local("POST", f"/clusters/{cluster_id}", {"ready_nodes": 3})
    wait_for("Ready again", lambda: ready(kube, "bd", "d", ns), 60)


def test_delete_with_each_policy(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient
) -> None:
    ns = kube_namespace
    kube.apply(model_yaml("gone") + "---\n" + model_yaml("kept", policy="Orphan"), namespace=ns)
    gone = wait_for("gone Ready", lambda: ready(kube, "bm", "gone", ns), 60)
    kept = wait_for("kept Ready", lambda: ready(kube, "bm", "kept", ns), 60)
    assert gone["metadata"]["finalizers"] == ["bud.studio/finalizer"]

    kube.kubectl("delete", "bm", "gone", "kept", "-n", ns, "--timeout=60s")

    def remote_gone() -> bool:
        try:
            bud.models.get(gone["status"]["id"])
        except NotFoundError:
            return True
        return False

    wait_for("remote model deleted", remote_gone, 30)
    assert bud.models.get(kept["status"]["id"]).id == kept["status"]["id"]


def test_delete_failed_is_visible_and_orphan_gets_out(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient
) -> None:
    ns = kube_namespace
    kube.apply(model_yaml("busy"), namespace=ns)
    model = wait_for("Ready", lambda: ready(kube, "bm", "busy", ns), 60)
    clusters = {c.name: c.id for c in bud.clusters.list()}
    # A deployment outside Kubernetes uses the model: the gateway refuses to delete it.
    bud.deployments.create(
        model_id=model["status"]["id"],
        cluster_id=clusters["local-cpu"],
        resources={"cpu": "1", "memory": "1Gi"},
    )
    kube.kubectl("delete", "bm", "busy", "-n", ns, "--wait=false")
    failed = wait_for(
        "DeleteFailed",
        lambda: (
            condition(o := get_obj(kube, "bm", "busy", ns), "DeleteFailed").get("status") == "True"
            and o
        ),
        60,
    )
    message = condition(failed, "DeleteFailed")["message"]
    assert "model_in_use" in message and "deletionPolicy to Orphan" in message, message
    kube.kubectl(
        "patch",
        "bm",
        "busy",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"deletionPolicy":"Orphan"}}',
    )
    wait_for(
        "resource released",
        lambda: kube.kubectl("get", "bm", "busy", "-n", ns, check=False).returncode != 0,
        60,
    )
    assert bud.models.get(model["status"]["id"]).status == "available"


def test_execution_cancel_and_cancel_on_delete(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient
) -> None:
    ns = kube_namespace
    kube.apply(
        textwrap.dedent(
            """
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: slow}
            spec:
              definition:
                steps:
                  - {id: nap, action: wait, params: {seconds: 60}}
                  - {id: after, action: log, dependsOn: [nap], params: {message: done}}
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudExecution
            metadata: {name: run-a}
            spec: {pipelineRef: {name: slow}}
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudExecution
            metadata: {name: run-b}
            spec: {pipelineRef: {name: slow}}
            """
        ),
        namespace=ns,
    )

    def running(name: str) -> dict[str, Any] | None:
        obj = get_obj(kube, "bx", name, ns)
        steps = {s["id"]: s.get("state") for s in obj["status"].get("steps") or []}
        return obj if steps.get("nap") == "running" else None

    a = wait_for("run-a running", lambda: running("run-a"), 60)
    b = wait_for("run-b running", lambda: running("run-b"), 60)
    assert condition(a, "Reconciling")["status"] == "True"

    kube.kubectl("patch", "bx", "run-a", "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    cancelled = wait_for(
        "run-a cancelled",
        lambda: (o := get_obj(kube, "bx", "run-a", ns))["status"].get("state") == "cancelled" and o,
        30,
    )
    assert condition(cancelled, "ExecutionSucceeded")["reason"] == "Cancelled"
    assert bud.executions.get(a["status"]["id"]).status == "cancelled"

    kube.kubectl("delete", "bx", "run-b", "-n", ns, "--timeout=60s")
    wait_for(
        "run-b cancelled remotely",
        lambda: bud.executions.get(b["status"]["id"]).status == "cancelled",
        30,
    )

    # Mutating a BudExecution's spec (other than cancel) is refused by the API server.
    result = kube.kubectl(
        "patch",
        "bx",
        "run-a",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"params":{"x":1}}}',
        check=False,
    )
    assert result.returncode != 0 and "params is immutable" in result.stderr


def test_execution_ttl_deletes_the_resource(
    kube: Any, operator: OperatorProcess, kube_namespace: str
) -> None:
    ns = kube_namespace
    kube.apply(
        textwrap.dedent(
            """
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: quick}
            spec:
              definition:
                steps: [{id: hello, action: log, params: {message: hi}}]
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudExecution
            metadata: {name: once}
            spec: {pipelineRef: {name: quick}, ttlSecondsAfterFinished: 2}
            """
        ),
        namespace=ns,
    )
    wait_for(
        "execution finished then deleted by TTL",
        lambda: kube.kubectl("get", "bx", "once", "-n", ns, check=False).returncode != 0,
        90,
    )


BAD_MANIFESTS = {
    "wrong type": (
        """
        kind: BudDeployment
        metadata: {name: bad}
        spec: {modelId: model_x, clusterId: cluster_x, replicas: two}
        """,
        "spec.replicas",
    ),
    "min > max": (
        """
        kind: BudDeployment
        metadata: {name: bad}
        spec:
          modelId: model_x
          clusterId: cluster_x
          autoScaling: {enabled: true, minReplicas: 5, maxReplicas: 2}
        """,
        "minReplicas must be less than or equal to maxReplicas",
    ),
    "modelRef and modelId": (
        """
        kind: BudDeployment
        metadata: {name: bad}
        spec: {modelId: model_x, modelRef: {name: m}, clusterId: cluster_x}
        """,
        "exactly one of modelRef and modelId must be set",
    ),
    "duplicate step ids": (
        """
        kind: BudPipeline
        metadata: {name: bad}
        spec:
          definition:
            steps: [{id: a, action: log}, {id: a, action: log}]
        """,
        "step ids must be unique",
    ),
    "dangling dependsOn": (
        """
        kind: BudPipeline
        metadata: {name: bad}
        spec:
          definition:
            steps: [{id: a, action: log, dependsOn: [ghost]}]
        """,
        "every dependsOn entry must name a step of this pipeline",
    ),
    "self dependency": (
        """
        kind: BudPipeline
        metadata: {name: bad}
        spec:
          definition:
            steps: [{id: a, action: log, dependsOn: [a]}]
        """,
        "step a depends on itself",
    ),
    "bad enum": (
        """
        kind: BudModel
        metadata: {name: bad}
        spec: {source: ftp, uri: x}
        """,
        "spec.source",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifests_are_rejected_by_the_api_server(
    kube: Any, bud_crds: None, kube_namespace: str, case: str
) -> None:
    manifest, expected = BAD_MANIFESTS[case]
    text = "apiVersion: bud.studio/v1alpha1\n" + textwrap.dedent(manifest)
    result = kube.apply(text, namespace=kube_namespace, check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert expected in result.stderr, result.stderr


def test_immutable_fields(kube: Any, bud_crds: None, kube_namespace: str) -> None:
    ns = kube_namespace
    kube.apply(model_yaml("fixed"), namespace=ns)
    changed = model_yaml("fixed").replace("s3://models/fixed", "s3://models/other")
    result = kube.apply(changed, namespace=ns, check=False)
    assert result.returncode != 0 and "uri is immutable" in result.stderr, result.stderr
    adopted = model_yaml("fixed").replace("deletionPolicy: Delete", "externalId: model_x")
    result = kube.apply(adopted, namespace=ns, check=False)
    assert result.returncode != 0 and "externalId is immutable" in result.stderr, result.stderr


def test_explain_shows_field_docs(kube: Any, bud_crds: None) -> None:
    out = kube.kubectl("explain", "buddeployment.spec.autoScaling.minReplicas").stdout
    assert "Lowest replica count the autoscaler may choose" in out
    out = kube.kubectl("explain", "budexecution.spec.cancel").stdout
    assert "the only mutable field" in out


def test_cycle_and_unknown_action_stall_naming_the_step(
    kube: Any, operator: OperatorProcess, kube_namespace: str
) -> None:
    ns = kube_namespace
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
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: magic}
            spec:
              definition:
                steps: [{id: zap, action: teleport}]
            """
        ),
        namespace=ns,
    )
    loop = wait_for(
        "loop Stalled",
        lambda: (
            condition(o := get_obj(kube, "bp", "loop", ns), "Stalled").get("status") == "True" and o
        ),
        30,
    )
    assert "step a is in a dependency cycle: a -> b -> a" in condition(loop, "Stalled")["message"]
    magic = wait_for(
        "magic Stalled",
        lambda: (
            condition(o := get_obj(kube, "bp", "magic", ns), "Stalled").get("status") == "True"
            and o
        ),
        30,
    )
    assert "step zap uses unknown action 'teleport'" in condition(magic, "Stalled")["message"]
    assert "id" not in magic["status"]  # nothing was created remotely


def test_adoption_pause_and_idempotent_create(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient, gateway: Any
) -> None:
    ns = kube_namespace
    existing = bud.models.create(name=f"{ns}-outside", source="cloud", uri="s3://outside")
    kube.apply(
        model_yaml("adopter")
        .replace("deletionPolicy: Delete", f"externalId: {existing.id}")
        .replace("s3://models/adopter", "s3://outside"),
        namespace=ns,
    )
    adopted = wait_for("adopted Ready", lambda: ready(kube, "bm", "adopter", ns), 60)
    assert adopted["status"]["id"] == existing.id

    # The first create's response is lost after the gateway did the work: no duplicate.
    gateway.add_fault("/v1/models", method="POST", drop_after=True, count=1)
    try:
        kube.apply(model_yaml("lossy"), namespace=ns)
        lossy = wait_for("lossy Ready", lambda: ready(kube, "bm", "lossy", ns), 60)
    finally:
        gateway.clear_faults()
    same_name = [m for m in bud.models.list(name=f"{ns}-lossy")]
    assert [m.id for m in same_name] == [lossy["status"]["id"]]

    kube.kubectl("annotate", "bm", "lossy", "-n", ns, "bud.studio/paused=true")
    paused = wait_for(
        "Synced=False Paused",
        lambda: (
            condition(o := get_obj(kube, "bm", "lossy", ns), "Synced").get("reason") == "Paused"
            and o
        ),
        30,
    )
    assert condition(paused, "Synced")["status"] == "False"


def test_metrics_and_health(operator: OperatorProcess) -> None:
    text = httpx.get(operator.metrics_url, timeout=5).text
    assert "bud_operator_reconciles_total" in text
    assert "bud_operator_gateway_requests_total" in text
    assert "bud_operator_objects{" in text
    assert httpx.get(operator.health_url, timeout=5).status_code == 200


def test_zz_api_key_never_leaks(kube: Any, operator: OperatorProcess, gateway: Any) -> None:
    """Runs last in this module: search everything the run produced for the key."""
    key = gateway.api_key
    logs = operator.logs()
    assert logs, "the operator wrote no logs"
    assert key not in logs
    everything = kube.kubectl("get", "bud", "-A", "-o", "yaml").stdout
    assert key not in everything
    events = kube.kubectl("get", "events", "-A", "-o", "yaml").stdout
    assert key not in events
    assert "reason: Created" in events or "Created" in events


def test_the_api_server_adds_the_finalizer_at_creation(
    kube: Any, bud_crds: None, kube_namespace: str
) -> None:
    # policies/bud-finalizer.yaml: the finalizer is there before any controller has seen the
    # object (a server-side dry run goes through admission, so nothing is created here).
    proc = kube.kubectl(
        "create", "--dry-run=server", "-o", "json", "-n", kube_namespace, "-f", "-",
        input=model_yaml("policy-check"),
    )  # fmt: skip
    finalizers = json.loads(proc.stdout)["metadata"].get("finalizers") or []
    assert finalizers == ["bud.studio/finalizer"], finalizers
