"""Helpers shared by the chart tests: render the chart with the real helm and index the output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from budai_operator.kinds.registry import REGISTRY
from tests.fixtures.kube import Kube

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "bud-operator"
EVERYTHING = Path(__file__).resolve().parent / "values-everything.yaml"
BUD_KINDS = [adapter.kind for adapter in REGISTRY]
BUD_PLURALS = [adapter.plural for adapter in REGISTRY]


@dataclass
class Rendered:
    """The documents of one `helm template` run, plus the raw text (for comment checks)."""

    text: str
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]


def template(
    kube: Kube, *args: str, release: str = "bud", namespace: str = "bud-system"
) -> Rendered:
    """`helm template` the chart; extra args are passed through (--set, -f, ...)."""
    proc = kube.helm("template", release, str(CHART), "--namespace", namespace, *args)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return Rendered(proc.stdout, docs)


CRD_NAMES = [f"{p}.bud.studio" for p in BUD_PLURALS] + [
    "budconnections.bud.studio", "clusterbudconnections.bud.studio",
    "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"]


def adopt_crds(kube: Kube, release: str, namespace: str) -> list[str]:
    """Let `release` take over CRDs that already exist (returns their names).

    The control plane is shared by the whole test session and CRDs are cluster-scoped: other
    tests apply them with kubectl, and a kept CRD still names the release that installed it.
    Helm adopts an existing object that carries its ownership label and annotations (Helm >=
    3.2), which is also how a user moves CRDs installed by hand under the chart.
    """
    existing = []
    for name in CRD_NAMES:
        if kube.kubectl("get", "crd", name, "--ignore-not-found", "-o", "name").stdout.strip():
            existing.append(name)
            kube.kubectl("label", "--overwrite", "crd", name, "app.kubernetes.io/managed-by=Helm")
            kube.kubectl("annotate", "--overwrite", "crd", name,
                         f"meta.helm.sh/release-name={release}",
                         f"meta.helm.sh/release-namespace={namespace}")
    return existing


def wait_served(kube: Kube, namespace: str, timeout: float = 120.0) -> None:
    """Wait until the API server accepts objects of every managed kind: a CRD just created is
    Established a moment before creates stop answering 503 "Kind=BudModel not found" (the
    admission policy that adds the finalizer maps kinds through discovery, which lags behind,
    kind by kind). A dry-run create with an empty spec is probed per kind: a validation error
    means the request got past admission, which is all this waits for."""
    import json
    import time

    from budai_operator.kinds.registry import REGISTRY
    from budai_operator.models import API_VERSION

    for adapter in REGISTRY:
        manifest = json.dumps(
            {
                "apiVersion": API_VERSION,
                "kind": adapter.kind,
                "metadata": {"name": "probe", "namespace": namespace},
                "spec": {},
            }
        )
        deadline = time.monotonic() + timeout
        while True:
            probe = kube.kubectl(
                "create", "--dry-run=server", "-f", "-", input=manifest, check=False
            )
            if probe.returncode == 0 or "is invalid" in probe.stderr:
                break
            assert time.monotonic() < deadline, probe.stderr
            time.sleep(0.5)
