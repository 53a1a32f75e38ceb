"""The chart, rendered by the real helm: lint, schema, what each setting produces.

No cluster objects are created here (tests/chart/test_chart_install.py does that); the `kube`
fixture only provides the helm binary from the control-plane build.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest
import yaml

from tests.chart import values_doc
from tests.chart.chartlib import BUD_KINDS, BUD_PLURALS, CHART, EVERYTHING, Rendered, template
from tests.fixtures.kube import Kube


def _container(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.kube
@pytest.mark.parametrize("values", [[], ["-f", str(EVERYTHING)]], ids=["defaults", "everything"])
def test_helm_lint_is_clean(kube: Kube, values: list[str]) -> None:
    proc = kube.helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in proc.stdout
    # --strict turns warnings into failures; also refuse INFO-level findings (e.g. missing icon).
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.kube
def test_defaults_render_what_the_chart_promises(kube: Kube) -> None:
    r = template(kube)
    kinds = sorted(d["kind"] for d in r.docs)
    # Four Bud kinds, the two connection kinds and kopf's two peerings.
    assert kinds.count("CustomResourceDefinition") == 8
    crd_names = {d["metadata"]["name"] for d in r.of_kind("CustomResourceDefinition")}
    assert {f"{p}.bud.studio" for p in BUD_PLURALS} <= crd_names
    for kind in ("StatefulSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"):
        r.one(kind)
    args = _container(r)["args"]
    assert not any(a.startswith("--namespace") for a in args)  # every namespace
    assert "--peering=bud-operator" in args
    assert not r.of_kind("ServiceMonitor")
    assert not r.of_kind("Secret")  # no key given: the pod waits for the user's Secret
    assert not r.of_kind("Role")
    for crd in r.of_kind("CustomResourceDefinition"):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.kube
def test_everything_enabled(kube: Kube) -> None:
    r = template(kube, "-f", str(EVERYTHING))
    workload = r.one("StatefulSet")
    assert workload["spec"]["replicas"] == 2
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert pod["serviceAccountName"] == "bud-operator-sa"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"} in container["env"]
    args = container["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--verbose" in args and "--log-format=plain" in args and "--peering=bud-leader" in args
    # Each replica's peering priority is its StatefulSet index, so exactly one is active.
    priority = {e["name"]: e for e in container["env"]}["BUD_PRIORITY"]
    assert priority["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']")
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    # Namespaced mode: a Role + RoleBinding in each served namespace, peering rules included.
    roles = r.of_kind("Role")
    assert sorted(x["metadata"]["namespace"] for x in roles) == ["team-a", "team-b"]
    assert len(r.of_kind("RoleBinding")) == 2
    for role in roles:
        named = [rule for rule in role["rules"] if rule.get("resourceNames")]
        assert named == [{"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"],
                          "resourceNames": ["bud-leader"], "verbs": ["patch"]}]
    monitor = r.one("ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = r.one("Service")
    assert service["spec"]["ports"][0]["port"] == 9100
    # The created Secret holds the key; nothing else in the output does.
    secret = r.one("Secret")
    assert secret["data"] == {"token": "dGVzdC1rZXktZXZlcnl0aGluZy03YzFl"}
    assert r.text.count("test-key-everything-7c1e") == 0
    mount = {m["name"]: m for m in container["volumeMounts"]}["api-key"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BUD_API_KEY_FILE"] == mount["mountPath"] + "/token"
    assert "BUD_API_KEY" not in env


@pytest.mark.kube
def test_existing_secret_is_mounted_and_not_created(kube: Kube) -> None:
    r = template(kube, "--set", "gateway.apiKey.existingSecret=my-key",
                 "--set", "gateway.apiKey.value=ignored")
    assert not r.of_kind("Secret")
    volumes = r.one("StatefulSet")["spec"]["template"]["spec"]["volumes"]
    assert {v["name"]: v for v in volumes}["api-key"]["secret"]["secretName"] == "my-key"


@pytest.mark.kube
@pytest.mark.parametrize("values", [[], ["-f", str(EVERYTHING)]], ids=["defaults", "everything"])
def test_pod_security_restricted(kube: Kube, values: list[str]) -> None:
    # The static half; test_chart_install.py has the API server's PodSecurity admission judge it.
    pod = template(kube, *values).one("StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert "/tmp" in mounts  # the only writable path
        assert all(m.get("readOnly") for p, m in mounts.items() if p != "/tmp")
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"  # kopf serves only this
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    tmp = {v["name"]: v for v in pod["volumes"]}["tmp"]
    assert tmp["emptyDir"]["sizeLimit"]


@pytest.mark.kube
@pytest.mark.parametrize("values", [[], ["-f", str(EVERYTHING)]], ids=["all-namespaces", "named"])
def test_every_rbac_rule_is_commented(kube: Kube, values: list[str]) -> None:
    r = template(kube, *values)
    rules = 0
    for doc_text in r.text.split("\n---\n"):
        if not re.search(r"^kind: (Cluster)?Role$", doc_text, re.M):
            continue
        lines = doc_text.splitlines()
        for i, line in enumerate(lines):
            if line.lstrip().startswith("- apiGroups:"):
                rules += 1
                above = lines[i - 1].strip()
                assert above.startswith("#"), f"rule without a comment: {line!r} after {above!r}"
                # The comment block says whose need the rule serves.
                block = []
                j = i - 1
                while j >= 0 and lines[j].strip().startswith("#"):
                    block.insert(0, lines[j].strip())
                    j -= 1
                assert re.match(r"# (Framework|Application|Framework and application):",
                                block[0]), block
    assert rules >= 4


@pytest.mark.kube
def test_rbac_is_least_privilege(kube: Kube) -> None:
    for values in ([], ["-f", str(EVERYTHING)]):
        r = template(kube, *values)
        for role in r.of_kind("ClusterRole") + r.of_kind("Role"):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
                assert "secrets" not in rule["resources"], "the key is mounted, not read"
                assert not {"update", "deletecollection", "escalate", "bind"} & set(rule["verbs"])
                if "create" in rule["verbs"]:
                    # clusterbudconnections: the default connection made from the values.
                    assert rule["resources"] in (["events"], ["kopfpeerings"],
                                                 ["clusterkopfpeerings"],
                                                 ["clusterbudconnections"]), rule
                if "delete" in rule["verbs"]:
                    assert rule["resources"] == ["budexecutions"], rule  # the TTL
    # Named namespaces: no rule on Bud objects is cluster-wide.
    named = template(kube, "-f", str(EVERYTHING))
    cluster_resources = {res for rule in named.one("ClusterRole")["rules"]
                         for res in rule["resources"]}
    assert not cluster_resources & set(BUD_PLURALS)


@pytest.mark.kube
def test_crd_toggles(kube: Kube) -> None:
    off = template(kube, "--set", "crds.enabled=false")
    assert not off.of_kind("CustomResourceDefinition")
    loose = template(kube, "--set", "crds.keep=false")
    crds = loose.of_kind("CustomResourceDefinition")
    assert len(crds) == 8
    assert all("helm.sh/resource-policy" not in (c["metadata"].get("annotations") or {})
               for c in crds)
    kinds = {c["spec"]["names"]["kind"] for c in crds}
    assert set(BUD_KINDS) <= kinds


@pytest.mark.kube
@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("gateway.ulr=https://x", "ulr"),
        ("crds.kep=true", "kep"),
        ("metrics.serviceMonitor.lables.a=b", "lables"),
        ("replicas=3", "replicas"),
    ],
)
def test_schema_rejects_unknown_keys(kube: Kube, setting: str, needle: str) -> None:
    proc = kube.helm("template", "bud", str(CHART), "--set", setting, check=False)
    assert proc.returncode != 0
    message = proc.stderr
    assert "values don't meet the specifications of the schema" in message, message
    assert "additional properties" in message.lower() and needle in message, message


@pytest.mark.kube
@pytest.mark.parametrize(
    "setting",
    ["watch.namespaces[0]=Not_A_Namespace", "logging.format=xml", "securityContext.runAsUser=0",
     "gateway.url=ftp://x", "metrics.port=70000"],
)
def test_schema_rejects_bad_values(kube: Kube, setting: str) -> None:
    proc = kube.helm("template", "bud", str(CHART), "--set", setting, check=False)
    assert proc.returncode != 0 and "schema" in proc.stderr, proc.stderr


def test_schema_is_closed_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    # affinity's inner objects are Kubernetes API types, passed through as written.
    open_ok = {"affinity.nodeAffinity", "affinity.podAffinity", "affinity.podAntiAffinity"}

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and path not in open_ok:
            extra = node.get("additionalProperties")
            assert extra is False or isinstance(extra, dict), f"{path or '<root>'} is open"
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}".lstrip("."))
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(schema, "")


def test_every_value_is_documented_and_typed() -> None:
    text = (CHART / "values.yaml").read_text()
    values = values_doc.parse(text)
    assert len(values) > 40
    schema = json.loads((CHART / "values.schema.json").read_text())
    for value in values:
        name = value.path.rsplit(".", 1)[-1]
        assert value.comment, f"{value.path} has no comment"
        assert value.comment[0].startswith(f"{name} "), (value.path, value.comment[0])
        node = schema
        for part in value.path.split("."):
            node = node["properties"][part]  # every value has a schema entry
        assert node.get("description"), value.path


def test_readme_values_table_is_up_to_date() -> None:
    readme = (CHART / "README.md").read_text()
    assert values_doc.render_readme(readme) == readme, "run: python -m tests.chart.values_doc"


def test_default_values_match_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema_rs.validate(schema, yaml.safe_load((CHART / "values.yaml").read_text()))
    # values-everything.yaml is an override file: Helm merges it over the defaults.
    merged = _merge(yaml.safe_load((CHART / "values.yaml").read_text()),
                    yaml.safe_load(EVERYTHING.read_text()))
    jsonschema_rs.validate(schema, merged)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
