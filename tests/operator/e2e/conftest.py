"""Fixtures for the operator's end-to-end tests: the CRDs on the real API server and
`budai-operator run` as a subprocess pointed at the local gateway."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from budai import BudClient
from tests.chart.chartlib import wait_served

ROOT = Path(__file__).resolve().parents[3]
BUD_CRDS = [
    "budmodels.bud.studio",
    "buddeployments.bud.studio",
    "budpipelines.bud.studio",
    "budexecutions.bud.studio",
    "budconnections.bud.studio",
    "clusterbudconnections.bud.studio",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 60, interval: float = 0.3
) -> Any:
    """Poll `probe` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as err:  # the object may not exist yet
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_url: str
    health_url: str

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def bud_crds(kube: Any) -> Iterator[None]:
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    # The API server adds the operator's finalizer at creation (Kubernetes 1.36+). The fault
    # tests run without it, so the operator's own finalizer write is tested there.
    served = kube.kubectl(
        "api-resources", "--api-group=admissionregistration.k8s.io", "-o", "name"
    ).stdout
    if "mutatingadmissionpolicies" in served:
        kube.kubectl("apply", "-f", str(ROOT / "policies"))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *[f"crd/{name}" for name in BUD_CRDS],
    )
    # Established comes a moment before creates stop answering 503 "Kind=... not found".
    wait_served(kube, "default")
    yield


def start_operator(
    kube: Any, gateway: Any, tmp: Path, *extra: str, peering: str = "bud-operator"
) -> OperatorProcess:
    """`budai-operator run` on `gateway`, watching every namespace, with short intervals."""
    tmp.mkdir(parents=True, exist_ok=True)
    key_file = tmp / "api-key"
    key_file.write_text(gateway.api_key, encoding="utf-8")
    log_path = tmp / "operator.log"
    metrics_port, health_port = free_port(), free_port()
    env = dict(kube.env)
    env.pop("BUD_API_KEY", None)
    env["BUD_API_KEY_FILE"] = str(key_file)
    args = [
        sys.executable,
        "-m",
        "budai_operator",
        "run",
        "--gateway-url",
        gateway.url,
        "--bind-address",
        "127.0.0.1",
        "--metrics-port",
        str(metrics_port),
        "--health-port",
        str(health_port),
        "--log-format",
        "json",
        "--verbose",
        "--in-flight-interval",
        "1",
        "--stable-interval",
        "30",
        "--refresh-interval",
        "2",
        "--cluster-interval",
        "1",
        "--rate-limit",
        "50",
        "--peering",
        peering,
        *extra,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    op = OperatorProcess(
        proc,
        log_path,
        f"http://127.0.0.1:{metrics_port}/metrics",
        f"http://127.0.0.1:{health_port}/healthz",
    )

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"operator exited with {proc.returncode}:\n{op.logs()[-4000:]}")
        return httpx.get(op.health_url, timeout=2).status_code == 200

    try:
        wait_for("the operator's health endpoint", healthy, timeout=60)
    except BaseException:
        stop_operator(op)
        raise
    return op


def stop_operator(op: OperatorProcess) -> None:
    """SIGTERM (kopf leaves the peering gracefully), SIGKILL after 20 s."""
    op.process.terminate()
    try:
        op.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        op.process.kill()
        op.process.wait()


def reconciles(op: OperatorProcess, kind: str | None = None) -> float:
    """The operator's reconcile counter (all results), from its metrics endpoint."""
    total = 0.0
    for line in httpx.get(op.metrics_url, timeout=5).text.splitlines():
        if line.startswith("bud_operator_reconciles_total{") and (
            kind is None or f'kind="{kind}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


# Package scope, not session: this operator watches every namespace, so it must be gone before
# later test modules (the README's demo, for one) run operators of their own on other gateways.
@pytest.fixture(scope="package")
def operator(
    kube: Any, gateway: Any, bud_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    op = start_operator(kube, gateway, tmp_path_factory.mktemp("operator"))
    yield op
    # Let the operator finalize what the tests left, so namespaces and CRDs can go.
    kube.kubectl(
        "delete",
        "bud",
        "--all-namespaces",
        "--all",
        "--wait=true",
        "--timeout=60s",
        check=False,
        timeout=90,
    )
    stop_operator(op)


@pytest.fixture
def bud(gateway: Any) -> Iterator[BudClient]:
    """An SDK client on the same gateway, to look at what the operator did."""
    with BudClient(api_key=gateway.api_key, base_url=gateway.url, max_retries=0) as client:
        yield client


def get_obj(kube: Any, kind: str, name: str, namespace: str) -> dict[str, Any]:
    data: dict[str, Any] = kube.get_json(kind, name, "-n", namespace)
    return data


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def events_for(kube: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    data = kube.get_json(
        "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )
    items: list[dict[str, Any]] = data.get("items", [])
    return items


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)[:4000]


__all__ = [
    "OperatorProcess",
    "condition",
    "dump",
    "events_for",
    "get_obj",
    "reconciles",
    "start_operator",
    "stop_operator",
    "wait_for",
]
