"""Fixtures of the fault tests, and the ledger the final secrets scan reads.

Every API key a fault test hands out is recorded in ``LEDGER.secrets``; every text those tests
produce (operator and gateway logs, custom resources with status and annotations, Events,
failure reports and exception messages) is added to ``LEDGER.texts`` before the producer goes
away (gateway logs live in a temp dir deleted on close). ``test_zz_secrets.py`` runs last and
searches all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from budai_gateway.testing import LocalGateway

from .harness import OperatorRunner

# Gateway settings for fault tests: a per-key bucket far above what the operator sends (its own
# limiter is the subject, not the gateway's), and short lifecycles.
GATEWAY_CONFIG: dict[str, Any] = {
    "rate_limit": {"capacity": 100000, "refill_per_second": 100000},
}


@dataclass
class Ledger:
    secrets: set[str] = field(default_factory=set)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)

    def add(self, where: str, text: str) -> None:
        if text:
            self.texts.append((where, text))


LEDGER = Ledger()


def find_leaks() -> list[dict[str, str]]:
    """Every (key, place, line) where a recorded key shows up in recorded output."""
    leaks = []
    for where, text in LEDGER.texts:
        for secret in LEDGER.secrets:
            if not secret or secret not in text:
                continue
            for line in text.splitlines():
                if secret in line:
                    shown = line.replace(secret, "<KEY>")[:300]
                    leaks.append({"key": secret[:12] + "...", "where": where, "line": shown})
    return leaks


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Teardowns run after the final scan test (operator logs, namespace snapshots): scan again
    and fail the run if a key shows up there."""
    leaks = find_leaks()
    if leaks:
        import sys

        print(f"\nAPI key leaked in {len(leaks)} places: {leaks[:10]}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Failure reports (assertion messages, tracebacks) are output too: keep them for the scan."""
    report = yield
    if report.failed and "faults" in str(item.path):
        LEDGER.add(f"report {item.nodeid}", str(report.longrepr))
    return report


@pytest.fixture(scope="session")
def fault_crds(kube: Any) -> None:
    root = Path(__file__).resolve().parents[2]
    kube.kubectl("apply", "-f", str(root / "crds"))
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/budmodels.bud.studio", "crd/buddeployments.bud.studio",
        "crd/budpipelines.bud.studio", "crd/budexecutions.bud.studio",
    )  # fmt: skip


def _record_gateway(gw: LocalGateway, where: str) -> None:
    LEDGER.secrets.update({gw.api_key, gw.read_key})
    LEDGER.add(f"gateway log ({where})", gw.logs())


@pytest.fixture
def fault_gateway(request: pytest.FixtureRequest) -> Iterator[LocalGateway]:
    """A gateway of its own (faults, kills and restarts stay in this test), speed 20."""
    with LocalGateway(speed=20, config=GATEWAY_CONFIG) as gw:
        LEDGER.secrets.update({gw.api_key, gw.read_key})
        try:
            yield gw
        finally:
            _record_gateway(gw, request.node.nodeid)


def snapshot_namespace(kube: Any, ns: str, where: str) -> None:
    """Everything the API server holds for the namespace's resources, plus its Events."""
    for what in ("bm,bd,bp,bx", "events"):
        out = kube.kubectl("get", what, "-n", ns, "-o", "yaml", check=False, timeout=120)
        LEDGER.add(f"{what} in {ns} ({where})", out.stdout)


@pytest.fixture
def operators(
    kube: Any,
    fault_crds: None,
    fault_gateway: LocalGateway,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., OperatorRunner]]:
    """Factory: ``operators(namespace, key=None, extra_args=[])`` starts an operator on
    ``fault_gateway`` (which is torn down after it, so the operator can still finalize).

    At teardown it snapshots the namespace for the secrets scan, deletes the test's resources
    while the operator still runs (so finalizers are released by the operator, not left to
    whichever operator runs next), then stops it and keeps its log for the scan."""
    started: list[tuple[OperatorRunner, str]] = []

    def start(namespace: str, key: str | None = None, extra_args: Any = ()) -> OperatorRunner:
        gateway = fault_gateway
        workdir = tmp_path / f"operator-{len(started)}"
        workdir.mkdir()
        key_file = workdir / "api-key"
        key_file.touch(mode=0o600)
        key_file.write_text(key or gateway.api_key, encoding="utf-8")
        LEDGER.secrets.add(key or gateway.api_key)
        runner = OperatorRunner(kube, gateway.url, key_file, workdir, list(extra_args))
        started.append((runner, namespace))
        return runner.start()

    yield start
    for runner, ns in started:
        try:
            snapshot_namespace(kube, ns, request.node.nodeid)
            if runner.alive():
                kube.kubectl(
                    "delete", "bm,bd,bp,bx", "--all", "-n", ns, "--wait=true", "--timeout=45s",
                    check=False, timeout=90,
                )  # fmt: skip
        finally:
            # Always stop it: a leftover operator holds a higher peering priority and would
            # pause every operator that later tests start.
            runner.stop()
        # Whatever the operator could not finalize (a test failed on it, and said so) would stay
        # stuck in a terminating namespace and slow every later cleanup: release it by hand.
        left = kube.kubectl(
            "get", "bm,bd,bp,bx", "-n", ns, "-o", "name", check=False, timeout=60
        ).stdout.split()  # fmt: skip
        for name in left:
            kube.kubectl(
                "patch", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                check=False,
            )  # fmt: skip
        LEDGER.add(f"operator log ({request.node.nodeid})", runner.logs())
