"""Ownership end to end, with one operator key shared by two namespaces (today's install): every
path by which `tenant-b` could reach `tenant-a`'s remote objects is tried, `tenant-a` stays
untouched and Ready throughout, and `tenant-b` sees a Stalled reason about its own resource."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from budai import BudClient
from budai.exceptions import NotFoundError

from .conftest import OperatorProcess, condition, events_for, get_obj, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


def ready(kube: Any, kind: str, name: str, ns: str) -> dict[str, Any] | None:
    obj = get_obj(kube, kind, name, ns)
    return obj if condition(obj, "Ready").get("status") == "True" else None


def stalled(kube: Any, kind: str, name: str, ns: str, reason: str) -> dict[str, Any] | None:
    obj = get_obj(kube, kind, name, ns)
    c = condition(obj, "Stalled")
    return obj if c.get("status") == "True" and c.get("reason") == reason else None


def model(name: str, uri: str, extra: str = "", annotations: str = "") -> str:
    meta = f"{{name: {name}{', annotations: {' + annotations + '}' if annotations else ''}}}"
    return textwrap.dedent(
        f"""
        apiVersion: bud.studio/v1alpha1
        kind: BudModel
        metadata: {meta}
        spec:
          source: cloud
          uri: {uri}
        """
    ) + "".join(f"  {line}\n" for line in extra.splitlines() if line)


@pytest.fixture
def attacker_ns(kube: Any) -> Iterator[str]:
    name = f"t-tenant-b-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def no_leak(obj: dict[str, Any], kube: Any, ns: str, secrets: list[str]) -> None:
    """Neither the attacker's status nor its Events name anything of the victim."""
    text = json.dumps(obj.get("status")) + json.dumps(
        [e.get("message") for e in events_for(kube, ns, obj["metadata"]["name"])]
    )
    for s in secrets:
        assert s not in text, f"{s!r} leaked into {text[:2000]}"


def test_another_namespace_cannot_take_over_or_touch_remote_objects(
    kube: Any,
    operator: OperatorProcess,
    kube_namespace: str,
    attacker_ns: str,
    bud: BudClient,
) -> None:
    a, b = kube_namespace, attacker_ns
    pipeline = textwrap.dedent(
        """
        apiVersion: bud.studio/v1alpha1
        kind: BudPipeline
        metadata: {name: flow}
        spec:
          definition:
            steps:
              - {id: hello, action: log, params: {message: secret-output}}
        """
    )
    kube.apply(model("m", "s3://tenant-a/private") + "---\n" + pipeline, namespace=a)
    victim = wait_for("victim model Ready", lambda: ready(kube, "bm", "m", a), 60)
    vpipe = wait_for("victim pipeline Ready", lambda: ready(kube, "bp", "flow", a), 60)
    vid, vuid, vpid = victim["status"]["id"], victim["metadata"]["uid"], vpipe["status"]["id"]
    before = bud.models.get(vid).to_dict()
    secrets = [vid, vuid, vpid, vpipe["metadata"]["uid"], "s3://tenant-a/private", f"{a}-m"]

    # 1. externalId of the victim's model: refused, nothing written.
    kube.apply(model("adopt", "s3://tenant-a/private", f"externalId: {vid}"), namespace=b)
    adopt = wait_for(
        "OwnedElsewhere", lambda: stalled(kube, "bm", "adopt", b, "OwnedElsewhere"), 60
    )
    no_leak(adopt, kube, b, [s for s in secrets if s != vid])  # vid is its own spec's value
    # 2. The annotation alone is never an adoption path: the attacker gets its own object.
    kube.apply(
        model("ann", "s3://tenant-b/own", annotations=f"bud.studio/external-id: {vid}"),
        namespace=b,
    )
    ann = wait_for("annotated model Ready", lambda: ready(kube, "bm", "ann", b), 60)
    assert ann["status"]["id"] != vid
    # 3. A name clash with the victim's remote name says nothing about the victim.
    kube.apply(model("clash", "s3://tenant-b/other", f"name: {a}-m"), namespace=b)
    clash = wait_for("NameConflict", lambda: stalled(kube, "bm", "clash", b, "NameConflict"), 60)
    no_leak(clash, kube, b, [vid, vuid, "s3://tenant-a/private"])
    # 4. modelId and pipelineId of the victim's objects are refused.
    kube.apply(
        textwrap.dedent(
            f"""
            apiVersion: bud.studio/v1alpha1
            kind: BudDeployment
            metadata: {{name: steal}}
            spec: {{modelId: {vid}, clusterName: local-cpu, replicas: 1}}
            ---
            apiVersion: bud.studio/v1alpha1
            kind: BudExecution
            metadata: {{name: run}}
            spec: {{pipelineId: {vpid}}}
            """
        ),
        namespace=b,
    )
    dep = wait_for("dep refused", lambda: stalled(kube, "bd", "steal", b, "OwnedElsewhere"), 60)
    run = wait_for("exec refused", lambda: stalled(kube, "bx", "run", b, "OwnedElsewhere"), 60)
    no_leak(dep, kube, b, [vuid, f"{a}-m", "s3://tenant-a/private"])
    no_leak(run, kube, b, [vuid, "secret-output"])
    assert [d.id for d in bud.deployments.list(model_id=vid)] == []
    assert [x.id for x in bud.executions.list(pipeline_id=vpid)] == []
    # 5. Deleting the attacker's resources (policy Delete and Orphan) deletes nothing of a's.
    kube.apply(
        model("adopt2", "s3://tenant-a/private", f"externalId: {vid}\ndeletionPolicy: Orphan"),
        namespace=b,
    )
    wait_for("OwnedElsewhere", lambda: stalled(kube, "bm", "adopt2", b, "OwnedElsewhere"), 60)
    kube.kubectl("delete", "bm,bd,bx", "--all", "-n", b, "--timeout=60s")

    # The victim: untouched remotely, Ready, and never woken into another state.
    after = bud.models.get(vid).to_dict()
    assert after["metadata"] == before["metadata"] and after["name"] == before["name"]
    assert bud.pipelines.get(vpid).id == vpid
    assert ready(kube, "bm", "m", a) is not None and ready(kube, "bp", "flow", a) is not None


def test_out_of_band_deletion_is_recreated_not_replayed(
    kube: Any, operator: OperatorProcess, kube_namespace: str, bud: BudClient
) -> None:
    ns = kube_namespace
    kube.apply(model("oob", "s3://tenant/oob"), namespace=ns)
    first = wait_for("Ready", lambda: ready(kube, "bm", "oob", ns), 60)
    old = first["status"]["id"]
    bud.models.delete(old)

    def gone() -> bool:
        try:
            bud.models.get(old)
        except NotFoundError:
            return True
        return False

    wait_for("remote deleted", gone, 30)
    kube.kubectl("annotate", "bm", "oob", "-n", ns, "bud.studio/reconcile-requested-at=now")

    def recreated() -> dict[str, Any] | None:
        obj = ready(kube, "bm", "oob", ns)
        return obj if obj and obj["status"]["id"] != old else None

    again = wait_for("Ready on a new remote model", recreated, 60)
    assert bud.models.get(again["status"]["id"]).status == "available"
