"""The committed CRDs match what the Pydantic models generate, and carry what users rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from budai_operator import crdgen

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_do_not_drift(tmp_path: Path) -> None:
    written = crdgen.write(tmp_path)
    assert written, "crdgen wrote nothing"
    for rel in written:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} missing: run `{crdgen.COMMAND}`"
        assert committed.read_text(encoding="utf-8") == (tmp_path / rel).read_text(
            encoding="utf-8"
        ), f"{rel} drifted from the models: run `{crdgen.COMMAND}`"
    # No stale generated file is left behind either.
    for folder in (crdgen.CRD_DIR, crdgen.CHART_CRD_DIR):
        for path in (ROOT / folder).glob("*.yaml"):
            if path.read_text(encoding="utf-8").startswith(crdgen.HEADER):
                assert folder / path.name in written, f"stale generated file {path.name}"


def _crd(plural: str) -> dict:
    text = (ROOT / "crds" / f"{plural}.bud.studio.yaml").read_text(encoding="utf-8")
    assert text.startswith(crdgen.HEADER)
    return yaml.safe_load(text)


def test_names_columns_and_subresources() -> None:
    expected = {
        "budmodels": "bm",
        "buddeployments": "bd",
        "budpipelines": "bp",
        "budexecutions": "bx",
    }
    for plural, short in expected.items():
        crd = _crd(plural)
        names = crd["spec"]["names"]
        assert names["shortNames"] == [short]
        assert names["categories"] == ["bud"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"]["status"] == {}
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        assert columns[0] == "Ready" and columns[1] == "State" and columns[-1] == "Age"
    scale = _crd("buddeployments")["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}


def test_schemas_are_structural_and_documented() -> None:
    def walk(node: dict, path: str) -> None:
        assert "anyOf" not in node or node.get("x-kubernetes-int-or-string"), path
        assert "$ref" not in node and "title" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for name, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{path}.{name} has no description for kubectl explain"
            walk(sub, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    for plural in ("budmodels", "buddeployments", "budpipelines", "budexecutions"):
        schema = _crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema["properties"]["spec"], f"{plural}.spec")
        walk(schema["properties"]["status"], f"{plural}.status")


def test_chart_copies_are_gated_and_kept() -> None:
    for path in (ROOT / crdgen.CHART_CRD_DIR).glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "{{- if .Values.crds.enabled }}" in text
        assert "helm.sh/resource-policy: keep" in text
        assert "{{- if .Values.crds.keep }}" in text


def test_camel_case_spec_fields() -> None:
    spec = _crd("buddeployments")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    props = spec["properties"]["spec"]["properties"]
    assert {"modelRef", "modelId", "clusterId", "autoScaling", "deletionPolicy"} <= set(props)
    assert "targetCPU" in props["autoScaling"]["properties"]
    assert props["replicas"]["default"] == 1
    assert props["resources"]["properties"]["cpu"]["x-kubernetes-int-or-string"] is True
