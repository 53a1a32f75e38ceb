"""`helm install / upgrade / uninstall` of the chart into the real control plane.

There is no kubelet, so pods never run (tests/fixtures/kube.py); everything the API server
itself decides is real: object creation, the CRD upgrade, the keep policy, RBAC answers and the
PodSecurity admission of the operator's pod.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartlib import BUD_PLURALS, CHART, CRD_NAMES, adopt_crds
from tests.fixtures.kube import Kube

pytestmark = pytest.mark.kube


def _release() -> str:
    return f"bud-{uuid.uuid4().hex[:6]}"


def _restricted(kube: Kube, namespace: str) -> None:
    # Enforce the "restricted" Pod Security Standard, and warn for workloads (Deployments).
    kube.kubectl("label", "--overwrite", "namespace", namespace,
                 "pod-security.kubernetes.io/enforce=restricted",
                 "pod-security.kubernetes.io/warn=restricted")


def _install(kube: Kube, release: str, namespace: str, *args: str,
             chart: Path = CHART, verb: str = "install") -> str:
    adopt_crds(kube, release, namespace)
    proc = kube.helm(verb, release, str(chart), "--namespace", namespace,
                     "--set", "gateway.apiKey.value=install-test-key", *args, timeout=180)
    assert "violate" not in proc.stderr, proc.stderr  # PodSecurity warnings
    return proc.stdout


def _uninstall(kube: Kube, release: str, namespace: str) -> str:
    return kube.helm("uninstall", release, "--namespace", namespace, timeout=180).stdout


def _auth(kube: Kube, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={sa}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    return kube.kubectl(*args, check=False).stdout.strip() == "yes"


def test_install_creates_what_it_should(kube: Kube, kube_namespace: str) -> None:
    ns = kube_namespace
    _restricted(kube, ns)
    release = _release()
    full = f"{release}-bud-operator"
    notes = _install(kube, release, ns)
    try:
        assert "Check the install" in notes and f"statefulset/{full}" in notes
        for name in CRD_NAMES:
            crd = kube.get_json("crd", name)
            assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
        # A CRD the install (re)created is Established a moment later, not at once: wait as
        # a user's pipeline would, and fail if the API server never serves it.
        proc = kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                            *(f"crd/{name}" for name in CRD_NAMES), check=False)
        assert proc.returncode == 0, proc.stderr
        workload = kube.get_json("statefulset", full, "-n", ns)
        pod_spec = workload["spec"]["template"]["spec"]
        assert pod_spec["serviceAccountName"] == full
        kube.get_json("serviceaccount", full, "-n", ns)
        kube.get_json("service", f"{full}-metrics", "-n", ns)
        kube.get_json("secret", f"{full}-api-key", "-n", ns)
        kube.get_json("clusterrole", full)
        kube.get_json("clusterrolebinding", full)
        # Kubernetes 1.37 serves MutatingAdmissionPolicy: the chart installs the finalizer policy.
        policy = kube.get_json("mutatingadmissionpolicy", f"{full}-finalizer")
        assert "bud.studio/finalizer" in json.dumps(policy["spec"]["mutations"])
        binding = kube.get_json("mutatingadmissionpolicybinding", f"{full}-finalizer")
        assert binding["spec"]["policyName"] == f"{full}-finalizer"

        # The API server's PodSecurity admission ("restricted" is enforced in this namespace)
        # accepts a pod built from the StatefulSet's template.
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "psa-probe", "namespace": ns},
               "spec": pod_spec}
        proc = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod),
                            check=False)
        assert proc.returncode == 0, proc.stderr
        # ... and refuses a weakened one, so the check above is a real check.
        weak: Any = json.loads(json.dumps(pod))
        weak["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        proc = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(weak),
                            check=False)
        assert proc.returncode != 0 and "allowPrivilegeEscalation" in proc.stderr

        # RBAC as the API server answers it for the ServiceAccount.
        sa = f"system:serviceaccount:{ns}:{full}"
        for plural in BUD_PLURALS:
            for verb in ("get", "list", "watch", "patch"):
                assert _auth(kube, sa, verb, f"{plural}.bud.studio", None), (verb, plural)
            assert _auth(kube, sa, "patch", f"{plural}.bud.studio/status", None)
            if plural != "budexecutions":
                assert not _auth(kube, sa, "delete", f"{plural}.bud.studio", None)
            assert not _auth(kube, sa, "create", f"{plural}.bud.studio", None)
        assert _auth(kube, sa, "create", "events", ns)
        assert _auth(kube, sa, "watch", "customresourcedefinitions", None)
        assert not _auth(kube, sa, "get", "secrets", ns)
        assert not _auth(kube, sa, "patch", "customresourcedefinitions", None)
        assert _auth(kube, sa, "patch", "clusterkopfpeerings.kopf.dev/bud-operator", None)
        assert not _auth(kube, sa, "patch", "clusterkopfpeerings.kopf.dev/other", None)
        assert _auth(kube, sa, "delete", "budexecutions.bud.studio", None)  # the TTL
    finally:
        _uninstall(kube, release, ns)


def test_named_namespaces_get_roles_not_cluster_access(kube: Kube, kube_namespace: str) -> None:
    ns = kube_namespace
    release = _release()
    full = f"{release}-bud-operator"
    _install(kube, release, ns, "--set", "watch.allNamespaces=false")
    try:
        sa = f"system:serviceaccount:{ns}:{full}"
        assert _auth(kube, sa, "patch", "budmodels.bud.studio", ns)
        assert _auth(kube, sa, "patch", "kopfpeerings.kopf.dev/bud-operator", ns)
        assert not _auth(kube, sa, "list", "budmodels.bud.studio", None)
        assert not _auth(kube, sa, "list", "budmodels.bud.studio", "default")
        assert _auth(kube, sa, "watch", "namespaces", None)
        assert kube.get_json("role", full, "-n", ns)["rules"]
    finally:
        _uninstall(kube, release, ns)


def _changed_chart(tmp_path: Path) -> Path:
    """A copy of the chart whose BudModel CRD has one more printer column."""
    chart = tmp_path / "bud-operator"
    shutil.copytree(CHART, chart)
    crd_file = chart / "templates" / "crds" / "budmodels.bud.studio.yaml"
    text = crd_file.read_text()
    marker = "    additionalPrinterColumns:\n"
    assert marker in text
    column = yaml.safe_dump([{"name": "Upgraded", "type": "string", "jsonPath": ".spec.uri",
                              "priority": 1}])
    crd_file.write_text(text.replace(
        marker, marker + "".join(f"    {line}\n" for line in column.splitlines()), 1))
    return chart


def _columns(kube: Kube) -> list[str]:
    crd = kube.get_json("crd", "budmodels.bud.studio")
    return [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def test_upgrade_changes_the_crd_and_uninstall_keeps_it(
    kube: Kube, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    release = _release()
    _install(kube, release, ns)
    changed = _changed_chart(tmp_path)
    try:
        assert "Upgraded" not in _columns(kube)
        _install(kube, release, ns, chart=changed, verb="upgrade")
        assert "Upgraded" in _columns(kube), "helm upgrade did not upgrade the CRD"
        # Back to the real chart: the column goes again (and the shared CRD is as before).
        _install(kube, release, ns, verb="upgrade")
        assert "Upgraded" not in _columns(kube)

        model = {"apiVersion": "bud.studio/v1alpha1", "kind": "BudModel",
                 "metadata": {"name": "kept", "namespace": ns},
                 "spec": {"source": "cloud", "uri": "kept-model"}}
        kube.apply(json.dumps(model))
    finally:
        out = _uninstall(kube, release, ns)
    # keep: the CRDs and the objects in them survive the uninstall.
    assert "kept due to the resource policy" in out
    for name in CRD_NAMES:
        kube.get_json("crd", name)
    assert kube.get_json("budmodel", "kept", "-n", ns)["spec"]["uri"] == "kept-model"
    assert kube.kubectl("get", "statefulset", "-n", ns, "-o", "name").stdout.strip() == ""
    # Not leave a finalizer-less object behind for the next test's operator to adopt.
    kube.kubectl("delete", "budmodel", "kept", "-n", ns, "--wait=false", check=False)
