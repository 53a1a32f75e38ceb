"""Namespaces are tenants: two namespaces, two projects, two keys, each namespace with its own
BudConnection. An operator with no key of its own (--connections-only) serves both; every
cross-tenant path answers like a missing object, a rotated key heals without a restart, a
namespace without a connection is told what to create, and a connection in use stays. At each
of the connection's stages Argo CD's engine (our health check) and kstatus judge it as served."""

from __future__ import annotations

import base64
import secrets
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from budai import BudClient
from budai_gateway.testing import LocalGateway
from tests.fixtures.engines import Engines

from .conftest import condition, get_obj, start_operator, stop_operator, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

KEY_A = "bud_e2e_a_" + secrets.token_hex(8)
KEY_B = "bud_e2e_b_" + secrets.token_hex(8)
KEY_B2 = "bud_e2e_b2_" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def pgw() -> Iterator[LocalGateway]:
    keys = [
        {"key": KEY_A, "name": "team-a", "project": "team-a"},
        {"key": KEY_B, "name": "team-b", "project": "team-b"},
        {"key": KEY_B2, "name": "team-b-rotated", "project": "team-b"},
    ]
    with LocalGateway(speed=20, config={"api_keys": keys}) as g:
        yield g


@pytest.fixture
def namespaces(kube: Any) -> Iterator[tuple[str, str, str]]:
    tag = uuid.uuid4().hex[:6]
    names = (f"t-conn-a-{tag}", f"t-conn-b-{tag}", f"t-conn-c-{tag}")
    for n in names:
        kube.kubectl("create", "namespace", n)
    yield names
    for n in names:
        kube.kubectl("delete", "namespace", n, "--wait=false", "--ignore-not-found", check=False)


def secret(name: str, key: str) -> str:
    value = base64.b64encode(key.encode()).decode()
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ndata: {{apiKey: {value}}}\n"


def connection(url: str) -> str:
    return textwrap.dedent(
        f"""
        apiVersion: bud.studio/v1alpha1
        kind: BudConnection
        metadata: {{name: default}}
        spec: {{url: "{url}", secretRef: {{name: bud-key}}}}
        """
    )


def model(name: str, extra: str = "") -> str:
    return textwrap.dedent(
        f"""
        apiVersion: bud.studio/v1alpha1
        kind: BudModel
        metadata: {{name: {name}}}
        spec:
          source: cloud
          uri: s3://{name}
        """
    ) + "".join(f"  {line}\n" for line in extra.splitlines() if line)


def reason(kube: Any, kind: str, name: str, ns: str, cond: str, want: str) -> dict[str, Any] | None:
    obj = get_obj(kube, kind, name, ns)
    c = condition(obj, cond)
    ok = c.get("reason") == want and (cond != "Stalled" or c.get("status") == "True")
    return obj if ok else None


def ready(kube: Any, kind: str, name: str, ns: str) -> dict[str, Any] | None:
    obj = get_obj(kube, kind, name, ns)
    return obj if condition(obj, "Ready").get("status") == "True" else None


def test_namespaces_are_tenants(
    kube: Any,
    bud_crds: None,
    pgw: LocalGateway,
    namespaces: tuple[str, str, str],
    tmp_path: Path,
    engines: Engines,
) -> None:
    a, b, c = namespaces
    op = start_operator(
        kube, pgw, tmp_path / "op", "--priority", "90", "--connections-only",
        "--operator-namespace", a,
    )  # fmt: skip
    try:
        kube.apply(secret("bud-key", KEY_A) + "---\n" + connection(pgw.url), namespace=a)
        # Team b starts with a wrong key: its resources say Unauthorized, then heal on rotation.
        kube.apply(secret("bud-key", "bud_wrong_" + secrets.token_hex(4)), namespace=b)
        kube.apply(connection(pgw.url), namespace=b)

        # A namespace without a connection is told what to create.
        kube.apply(model("lonely"), namespace=c)
        lonely = wait_for(
            "NoConnection", lambda: reason(kube, "bm", "lonely", c, "Stalled", "NoConnection"), 60
        )
        message = condition(lonely, "Stalled")["message"]
        assert f"create a BudConnection named default in {c}" in message

        pipeline = textwrap.dedent(
            """
            apiVersion: bud.studio/v1alpha1
            kind: BudPipeline
            metadata: {name: flow}
            spec:
              definition:
                steps:
                  - {id: hello, action: log, params: {message: hi}}
            """
        )
        kube.apply(model("m") + "---\n" + pipeline, namespace=a)
        victim = wait_for("victim Ready", lambda: ready(kube, "bm", "m", a), 60)
        vpipe = wait_for("victim pipeline Ready", lambda: ready(kube, "bp", "flow", a), 60)
        vid, vpid = victim["status"]["id"], vpipe["status"]["id"]
        conn_a = wait_for(
            "connection a Ready with its users",
            lambda: (
                o
                if condition(o := get_obj(kube, "budconnection", "default", a), "Ready").get(
                    "status"
                )
                == "True"
                and (o.get("status") or {}).get("users", 0) >= 2
                else None
            ),
            60,
        )
        assert conn_a["status"]["project"] == "team-a"
        assert KEY_A not in str(conn_a)
        argo, flux = engines.both(conn_a)
        assert (argo.pair, flux.status) == (("Healthy", "Connected to project team-a"), "Current")

        # Team b, wrong key: Unauthorized on the connection and the resource; rotation heals.
        kube.apply(model("own"), namespace=b)
        wait_for(
            "b Unauthorized", lambda: reason(kube, "bm", "own", b, "Stalled", "Unauthorized"), 60
        )
        conn_b = wait_for(
            "connection b Unauthorized",
            lambda: reason(kube, "budconnection", "default", b, "Stalled", "Unauthorized"),
            60,
        )
        argo, flux = engines.both(conn_b)
        assert (argo.status, flux.status) == ("Degraded", "Failed"), (argo, flux)
        assert (argo.message or "").startswith("Unauthorized: whoami failed"), argo
        kube.apply(secret("bud-key", KEY_B2), namespace=b)
        wait_for("b healed after rotation", lambda: ready(kube, "bm", "own", b), 60)
        wait_for(
            "connection b Ready",
            lambda: (
                o
                if (o := ready(kube, "budconnection", "default", b))
                and o["status"].get("project") == "team-b"
                else None
            ),
            60,
        )

        # Every cross-tenant path from b: another project's ids do not exist for b's key.
        kube.apply(
            model("adopt", f"externalId: {vid}")
            + "---\n"
            + model("clash", f"name: {a}-m")
            + "---\n"
            + textwrap.dedent(
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
        for kind, name in (("bm", "adopt"), ("bd", "steal"), ("bx", "run")):
            wait_for(
                f"{kind}/{name} RemoteNotFound",
                lambda kind=kind, name=name: reason(
                    kube, kind, name, b, "Stalled", "RemoteNotFound"
                ),
                60,
            )
        # Names are per project: b's model of the same remote name is b's own.
        clash = wait_for("clash Ready in b's project", lambda: ready(kube, "bm", "clash", b), 60)
        assert clash["status"]["id"] != vid
        kube.kubectl("delete", "bm,bd,bx", "--all", "-n", b, "--timeout=60s")

        with BudClient(api_key=KEY_A, base_url=pgw.url, max_retries=0) as team_a:
            assert team_a.models.get(vid).name == f"{a}-m"
            assert [x.id for x in team_a.executions.list(pipeline_id=vpid)] == []
            assert [d.id for d in team_a.deployments.list(model_id=vid)] == []
        assert ready(kube, "bm", "m", a) and ready(kube, "bp", "flow", a)

        # A connection in use is not deleted; its status says why; it goes once unused.
        kube.kubectl("delete", "budconnection", "default", "-n", a, "--wait=false")
        held = wait_for(
            "InUse",
            lambda: reason(kube, "budconnection", "default", a, "Stalled", "InUse"),
            30,
        )
        assert held["metadata"].get("deletionTimestamp")
        assert "deletion waits" in condition(held, "Stalled")["message"]
        argo, flux = engines.both(held)
        assert (argo.status, flux.status) == ("Progressing", "Terminating"), (argo, flux)
        users = held["status"]["users"]
        assert (argo.message or "").startswith(f"Deleting: still used by {users} resource"), argo
        assert all(u in (argo.message or "") for u in held["status"]["usedBy"]), argo
        assert ready(kube, "bm", "m", a)
        for ns in (a, b, c):
            kube.kubectl("delete", "bud", "--all", "-n", ns, "--timeout=60s")
        wait_for(
            "the unused connection to go",
            lambda: (
                "NotFound"
                in kube.kubectl("get", "budconnection", "default", "-n", a, check=False).stderr
            ),
            60,
        )
    finally:
        stop_operator(op)
