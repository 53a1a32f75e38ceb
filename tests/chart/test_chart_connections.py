"""The chart's tenancy settings: the default connection made from today's values, and the
choices for reading tenants' Secrets (get only, never list or watch; none by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.chartlib import template
from tests.fixtures.kube import Kube

pytestmark = pytest.mark.kube


def _args(r: Any) -> list[str]:
    args: list[str] = r.one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def _secret_rules(r: Any) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [
        (role["kind"], role["metadata"].get("namespace"), rule)
        for role in r.of_kind("ClusterRole") + r.of_kind("Role")
        for rule in role["rules"]
        if "secrets" in rule["resources"]
    ]


def test_default_connection_from_todays_values(kube: Kube) -> None:
    r = template(kube, "--set", "gateway.apiKey.existingSecret=my-key",
                 "--set", "gateway.apiKey.secretKey=token")  # fmt: skip
    args = _args(r)
    assert "--connections-only" in args
    assert "--default-connection-secret=my-key" in args
    assert "--default-connection-secret-key=token" in args
    assert "--default-connection-selector={}" in args
    # The default connection's key is the mounted one: no Secret is read through the API.
    assert _secret_rules(r) == []
    cluster = r.one("ClusterRole")["rules"]
    conn = [x for x in cluster if x["resources"] == ["clusterbudconnections"]]
    assert conn and "create" in conn[0]["verbs"] and "delete" not in conn[0]["verbs"]
    env = {e["name"]: e.get("value") for e in r.one("StatefulSet")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert env["BUD_OPERATOR_NAMESPACE"] == "bud-system"


def test_selector_and_opt_out(kube: Kube) -> None:
    r = template(kube, "--set",
                 "connections.defaultConnection.namespaceSelector.matchLabels.shared=yes")
    assert '--default-connection-selector={"matchLabels":{"shared":"yes"}}' in _args(r)
    off = template(kube, "--set", "connections.defaultConnection.enabled=false")
    assert not any(a.startswith(("--connections-only", "--default-connection")) for a in _args(off))
    conn = [x for x in off.one("ClusterRole")["rules"]
            if x["resources"] == ["clusterbudconnections"]]
    assert conn and "create" not in conn[0]["verbs"]


def test_tenant_secrets_are_get_only_and_opt_in(kube: Kube) -> None:
    named = template(kube, "--set", "rbac.tenantSecrets=namespaces",
                     "--set", "rbac.tenantSecretNamespaces={team-a,team-b}")  # fmt: skip
    rules = _secret_rules(named)
    assert sorted((k, ns) for k, ns, _ in rules) == [("Role", "team-a"), ("Role", "team-b")]
    assert all(rule["verbs"] == ["get"] for _, _, rule in rules)
    everywhere = template(kube, "--set", "rbac.tenantSecrets=cluster")
    rules = _secret_rules(everywhere)
    assert [(k, rule["verbs"]) for k, _, rule in rules] == [("ClusterRole", ["get"])]
    bad = kube.helm("template", "x", str(Path(__file__).resolve().parents[2] / "charts"
                                         / "bud-operator"),
                    "--set", "rbac.tenantSecrets=all", check=False)
    assert bad.returncode != 0 and "tenantSecrets" in bad.stderr
