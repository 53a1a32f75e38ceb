"""Smoke tests: the control plane from tests/fixtures/kube.py is a real Kubernetes API server.

They run unchanged against another cluster (``BUDAI_TEST_KUBECONFIG``, e.g. kind).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.kube import REPO, Kube

pytestmark = pytest.mark.kube

GROUP = "smoke.budai.dev"
CRD = f"widgets.{GROUP}"
CRD_YAML = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {CRD}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [replicas, maxReplicas]
            x-kubernetes-validations:
            - rule: "self.replicas <= self.maxReplicas"
              message: "replicas must not exceed maxReplicas"
            properties:
              replicas: {{type: integer, minimum: 0}}
              maxReplicas: {{type: integer, default: 3}}
          status:
            type: object
            properties:
              phase: {{type: string}}
"""


def widget(name: str, replicas: int, max_replicas: int, finalizers: list[str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": meta,
            "spec": {"replicas": replicas, "maxReplicas": max_replicas},
        }
    )


def eventually(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def exists(kube: Kube, *args: str) -> bool:
    return kube.kubectl("get", *args, "--ignore-not-found", "-o", "name").stdout.strip() != ""


@pytest.fixture(scope="module")
def widget_crd(kube: Kube) -> Iterator[str]:
    kube.apply(CRD_YAML)
    kube.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=30s")
    yield CRD
    kube.kubectl("delete", "crd", CRD, "--wait=false", "--ignore-not-found", check=False)


def test_server_and_helm_versions_are_stamped(
    kube: Kube, kube_namespace: str, tmp_path: Path
) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)
    server = version["serverVersion"]["gitVersion"]
    assert server.startswith("v1.") and "master" not in server
    assert version["clientVersion"]["gitVersion"].startswith("v1.")
    if kube.managed:
        pins = dict(
            line.split("=", 1)
            for line in (REPO / "hack" / "versions.env").read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert server == pins["KUBERNETES_VERSION"]
        assert version["clientVersion"]["gitVersion"] == pins["KUBERNETES_VERSION"]
        helm_version = kube.helm("version", "--template", "{{.Version}}").stdout.strip()
        assert helm_version == pins["HELM_VERSION"]

    # Helm asks the server for its version: a chart's kubeVersion constraint and
    # .Capabilities.KubeVersion see the real one.
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: smoke\nversion: 0.1.0\nkubeVersion: '>=1.20.0-0'\n"
    )
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: smoke}\n"
        "data: {kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}}\n"
    )
    kube.helm("install", "smoke", str(chart), "-n", kube_namespace)
    data = kube.get_json("configmap", "smoke", "-n", kube_namespace)["data"]
    assert data["kubeVersion"] == server
    releases = json.loads(kube.helm("list", "-n", kube_namespace, "-o", "json").stdout)
    assert [r["name"] for r in releases] == ["smoke"]
    kube.helm("uninstall", "smoke", "-n", kube_namespace)
    assert not exists(kube, "configmap", "smoke", "-n", kube_namespace)


def test_crd_cel_rule_rejects_bad_object(kube: Kube, widget_crd: str, kube_namespace: str) -> None:
    bad = kube.apply(widget("bad", 5, 2), namespace=kube_namespace, check=False)
    assert bad.returncode != 0
    assert "replicas must not exceed maxReplicas" in bad.stderr
    assert not exists(kube, "widgets", "bad", "-n", kube_namespace)

    # The schema is enforced too, and defaulting happens on the server.
    negative = kube.apply(widget("neg", -1, 2), namespace=kube_namespace, check=False)
    assert negative.returncode != 0
    assert "should be greater than or equal to 0" in negative.stderr

    kube.apply(
        json.dumps(
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": "good"},
                "spec": {"replicas": 2},
            }
        ),
        namespace=kube_namespace,
    )
    obj = kube.get_json("widget", "good", "-n", kube_namespace)
    assert obj["spec"] == {"replicas": 2, "maxReplicas": 3}

    # The CEL rule also guards updates.
    patch = kube.kubectl(
        "patch",
        "widget",
        "good",
        "-n",
        kube_namespace,
        "--type=merge",
        "-p",
        '{"spec":{"replicas":4}}',
        check=False,
    )
    assert patch.returncode != 0
    assert "replicas must not exceed maxReplicas" in patch.stderr


def test_status_subresource_and_server_side_apply(
    kube: Kube, widget_crd: str, kube_namespace: str
) -> None:
    ns = ("-n", kube_namespace)
    kube.apply(widget("w", 1, 3), namespace=kube_namespace, server_side=True)
    kube.kubectl(
        "patch",
        "widget",
        "w",
        *ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Ready"}}',
    )
    # A write to the main resource ignores status; the status subresource ignores spec.
    kube.kubectl(
        "patch",
        "widget",
        "w",
        *ns,
        "--type=merge",
        "-p",
        '{"spec":{"replicas":2},"status":{"phase":"Broken"}}',
    )
    obj = kube.get_json("widget", "w", *ns)
    assert obj["spec"]["replicas"] == 2
    assert obj["status"] == {"phase": "Ready"}

    # Server-side apply tracks field ownership: another manager setting the same field conflicts.
    conflict = kube.kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        "-",
        *ns,
        input=widget("w", 3, 3),
        check=False,
    )
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    kube.kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
        *ns,
        input=widget("w", 3, 3),
    )
    assert kube.get_json("widget", "w", *ns)["spec"]["replicas"] == 3


def test_watch_sees_a_change(kube: Kube, kube_namespace: str) -> None:
    ns = ("-n", kube_namespace)
    kube.kubectl("create", "configmap", "watched", *ns, "--from-literal=color=red")
    proc = subprocess.Popen(
        [
            kube.tool_path("kubectl"),
            "get",
            "configmap",
            "watched",
            *ns,
            "--watch",
            "--output-watch-events",
            "-o",
            'jsonpath={.type} {.object.metadata.name} {.object.data.color}{"\\n"}',
        ],
        env=kube.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    try:
        # The initial state arrives first, so the watch is established before the change.
        assert lines.get(timeout=30) == "ADDED watched red"
        kube.kubectl(
            "patch", "configmap", "watched", *ns, "--type=merge", "-p", '{"data":{"color":"blue"}}'
        )
        assert lines.get(timeout=30) == "MODIFIED watched blue"
        kube.kubectl("delete", "configmap", "watched", *ns)
        assert lines.get(timeout=30) == "DELETED watched blue"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_finalizer_keeps_object_until_removed(
    kube: Kube, widget_crd: str, kube_namespace: str
) -> None:
    ns = ("-n", kube_namespace)
    kube.apply(widget("held", 1, 1, finalizers=["smoke.budai.dev/hold"]), namespace=kube_namespace)
    kube.kubectl("delete", "widget", "held", *ns, "--wait=false")
    time.sleep(1)
    obj = kube.get_json("widget", "held", *ns)
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["smoke.budai.dev/hold"]
    # While deleting, the object stays, and no new finalizers may be added... but it can still
    # be read and patched; removing the finalizer lets the deletion finish.
    kube.kubectl(
        "patch", "widget", "held", *ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    kube.kubectl("wait", "--for=delete", "widget/held", *ns, "--timeout=30s")
    assert not exists(kube, "widget", "held", *ns)


def test_service_account_token_denied_until_role_grants(kube: Kube, kube_namespace: str) -> None:
    ns = ("-n", kube_namespace)
    # Created explicitly: the suite must not rely on the controller-manager for this.
    kube.kubectl("create", "serviceaccount", "reader", *ns)
    token = kube.kubectl("create", "token", "reader", *ns, "--duration=10m").stdout.strip()
    assert token.count(".") == 2  # a JWT minted by the TokenRequest API
    as_reader = ("--kubeconfig", kube.token_kubeconfig(token))

    who = kube.kubectl(*as_reader, "auth", "whoami", "-o", "json")
    username = json.loads(who.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{kube_namespace}:reader"

    denied = kube.kubectl(*as_reader, "get", "configmaps", *ns, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()

    kube.kubectl("create", "role", "cm-reader", *ns, "--verb=get,list", "--resource=configmaps")
    kube.kubectl(
        "create",
        "rolebinding",
        "reader-cm-reader",
        *ns,
        "--role=cm-reader",
        f"--serviceaccount={kube_namespace}:reader",
    )

    eventually(
        lambda: kube.kubectl(*as_reader, "get", "configmaps", *ns, check=False).returncode == 0,
        what="the RoleBinding to take effect",
    )
    # Only what the Role grants: no writes, no other namespaces, no Secrets.
    for args in (
        ("create", "configmap", "nope", *ns),
        ("get", "configmaps", "-n", "default"),
        ("get", "secrets", *ns),
    ):
        result = kube.kubectl(*as_reader, *args, check=False)
        assert result.returncode != 0, args
        assert "forbidden" in result.stderr.lower(), args


needs_controller_manager = pytest.mark.skipif(
    os.environ.get("BUDAI_CP_CONTROLLERS") == "none",
    reason="BUDAI_CP_CONTROLLERS=none: kube-controller-manager explicitly disabled",
)


@needs_controller_manager
def test_garbage_collection_and_namespace_deletion(kube: Kube, kube_namespace: str) -> None:
    ns = ("-n", kube_namespace)
    kube.kubectl("create", "configmap", "parent", *ns)
    uid = kube.get_json("configmap", "parent", *ns)["metadata"]["uid"]
    kube.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "child",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": uid}
                    ],
                },
            }
        ),
        namespace=kube_namespace,
    )
    kube.kubectl("delete", "configmap", "parent", *ns)
    eventually(lambda: not exists(kube, "configmap", "child", *ns), what="garbage collection")

    # The ServiceAccount controller gives every namespace its "default" ServiceAccount.
    eventually(lambda: exists(kube, "serviceaccount", "default", *ns), what="default SA")

    scratch = f"{kube_namespace}-x"
    kube.kubectl("create", "namespace", scratch)
    kube.kubectl("create", "configmap", "inside", "-n", scratch)
    kube.kubectl("delete", "namespace", scratch, "--wait=false")
    eventually(
        lambda: not exists(kube, "namespace", scratch), timeout=60, what="namespace deletion"
    )
