"""Shared machinery of the fault tests: an operator subprocess that can be SIGKILLed and
restarted, manifests in bulk, convergence checks, counts of remote objects, and a restart of the
real kube-apiserver.

Every operator started here runs cluster-wide with kopf peering name ``bud-operator`` and a
priority higher than any earlier one. Two reasons: the operator e2e fixture (priority 0, session
scoped) may still be alive in a full-suite run and must pause while our operator works against
our own gateway; and a SIGKILLed instance leaves its peering record behind until it expires, so a
restarted instance with the *same* priority would pause itself for a minute (kopf pauses every
operator when it sees a same-priority peer).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from budai import BudClient

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("bm", "bd", "bp", "bx")
KIND_NAMES = {
    "bm": "BudModel",
    "bd": "BudDeployment",
    "bp": "BudPipeline",
    "bx": "BudExecution",
}
FINALIZER = "bud.studio/finalizer"

# Resources per kind in the two mass scenarios (gateway faults, operator SIGKILLs): the issue's
# 200 of every kind (800 objects), about 3 minutes per scenario on a 2-core machine.
# BUDAI_FAULTS_SCALE=15 gives a quick local run.
SCALE = int(os.environ.get("BUDAI_FAULTS_SCALE", "200"))
# The scenarios that kill the gateway or the API server need objects in flight, not volume.
INFLIGHT_SCALE = int(os.environ.get("BUDAI_FAULTS_INFLIGHT_SCALE", "15"))

_priorities = itertools.count(1000 + int(time.time()) % 100000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    what: str,
    probe: Callable[[], Any],
    timeout: float,
    interval: float = 0.5,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``probe`` until truthy; fail with the last value (or exception) seen, or with what
    ``explain`` says about the current state."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as err:  # the object or the server may not be there yet
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    detail = explain() if explain else str(last)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {detail[:3000]}")


# -- the operator ------------------------------------------------------------------------------


@dataclass
class OperatorRunner:
    """``budai-operator run`` as a subprocess, with SIGKILL and restart; one log for all runs."""

    kube: Any
    gateway_url: str
    key_file: Path
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    metrics_url: str = ""
    health_url: str = ""
    starts: int = 0
    kills: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "operator.log"

    def start(self, wait: bool = True) -> OperatorRunner:
        metrics_port, health_port = free_port(), free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.health_url = f"http://127.0.0.1:{health_port}/healthz"
        env = dict(self.kube.env)
        env.pop("BUD_API_KEY", None)
        env["BUD_API_KEY_FILE"] = str(self.key_file)
        args = [
            sys.executable, "-m", "budai_operator", "run",
            "--gateway-url", self.gateway_url,
            "--bind-address", "127.0.0.1",
            "--metrics-port", str(metrics_port),
            "--health-port", str(health_port),
            "--log-format", "json",
            "--peering", "bud-operator",
            "--priority", str(next(_priorities)),
            # Test timings: in-flight work polled every second, list refresh every 2 s.
            "--in-flight-interval", "1",
            "--stable-interval", "30",
            "--refresh-interval", "2",
            "--cluster-interval", "2",
            "--rate-limit", "200",
            "--burst", "400",
            *self.extra_args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        self.starts += 1
        if wait:
            wait_until("the operator's health endpoint", self._healthy, 60, 0.2)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"operator exited with {self.process.returncode}:\n{self.logs()[-4000:]}")
        return httpx.get(self.health_url, timeout=2).status_code == 200

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful peering exit, like an OOM kill or a node loss."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def gateway_requests(self) -> dict[str, float]:
        """``bud_operator_gateway_requests_total`` summed by status (this process only)."""
        text = httpx.get(self.metrics_url, timeout=5).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("bud_operator_gateway_requests_total{"):
                status = re.search(r'status="([^"]*)"', line)
                key = status.group(1) if status else "?"
                out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
        return out


# -- manifests ---------------------------------------------------------------------------------


def model_doc(name: str, source: str = "cloud", uri: str | None = None) -> str:
    uri = uri or f"s3://faults/{name}"
    return textwrap.dedent(
        f"""\
        apiVersion: bud.studio/v1alpha1
        kind: BudModel
        metadata: {{name: {name}}}
        spec: {{source: {source}, uri: "{uri}", metadata: {{suite: faults}}}}
        """
    )


def deployment_doc(name: str, model: str, replicas: int = 1) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: bud.studio/v1alpha1
        kind: BudDeployment
        metadata: {{name: {name}}}
        spec:
          modelRef: {{name: {model}}}
          clusterName: local-cpu
          replicas: {replicas}
          resources: {{cpu: 10m, memory: 16Mi}}
        """
    )


def pipeline_doc(name: str, wait_seconds: float = 0) -> str:
    first = (
        f"{{id: nap, action: wait, params: {{seconds: {wait_seconds}}}}}"
        if wait_seconds
        else "{id: nap, action: log, params: {message: start}}"
    )
    return textwrap.dedent(
        f"""\
        apiVersion: bud.studio/v1alpha1
        kind: BudPipeline
        metadata: {{name: {name}}}
        spec:
          definition:
            steps:
              - {first}
              - id: value
                action: set_output
                dependsOn: [nap]
                params: {{outputs: {{count: 1}}}}
              - id: say
                action: transform
                dependsOn: [value]
                params: {{value: "{{{{ params.who }}}} {{{{ steps.value.output.count }}}}"}}
        """
    )


def execution_doc(name: str, pipeline: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: bud.studio/v1alpha1
        kind: BudExecution
        metadata: {{name: {name}}}
        spec: {{pipelineRef: {{name: {pipeline}}}, params: {{who: {name}}}}}
        """
    )


def fleet(
    n: int, *, model_source: str = "cloud", model_uri: str | None = None, wait_seconds: float = 0
) -> str:
    """``n`` resources of every kind: model i, deployment i on model i, pipeline i, execution i."""
    docs: list[str] = []
    for i in range(n):
        docs.append(model_doc(f"m{i}", model_source, model_uri and f"{model_uri}-{i}"))
        docs.append(pipeline_doc(f"p{i}", wait_seconds))
        docs.append(deployment_doc(f"d{i}", f"m{i}"))
        docs.append(execution_doc(f"x{i}", f"p{i}"))
    return "---\n".join(docs)


def apply_in_chunks(kube: Any, yaml_text: str, ns: str, chunk: int = 40) -> None:
    """``kubectl apply`` in chunks so one call stays well under kubectl's timeout."""
    docs = yaml_text.split("---\n")
    for start in range(0, len(docs), chunk):
        kube.kubectl(
            "apply", "-n", ns, "-f", "-", input="---\n".join(docs[start : start + chunk]),
            timeout=180,
        )  # fmt: skip


# -- observation -------------------------------------------------------------------------------


def all_objects(kube: Any, ns: str) -> list[dict[str, Any]]:
    data = json.loads(
        kube.kubectl(
            "get", ",".join(KIND_NAMES[k].lower() for k in KINDS), "-n", ns, "-o", "json",
            timeout=120,
        ).stdout
    )  # fmt: skip
    items: list[dict[str, Any]] = data.get("items", [])
    return items


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def conditions_table(kube: Any, ns: str) -> str:
    """kind/name: type=status(reason) for every condition, to explain a failed wait."""
    lines = []
    for o in all_objects(kube, ns):
        conds = " ".join(
            f"{c['type']}={c['status']}({c.get('reason')})"
            for c in (o.get("status") or {}).get("conditions") or []
        )
        lines.append(f"{o['kind']}/{o['metadata']['name']}: {conds or 'no conditions'}")
    return "\n".join(lines)


def is_ready(obj: dict[str, Any]) -> bool:
    return cond(obj, "Ready").get("status") == "True"


def summary(objs: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per kind: total, ready, stalled, without status, by Ready reason when not ready."""
    out: dict[str, dict[str, int]] = {}
    for o in objs:
        s = out.setdefault(o["kind"], {"total": 0, "ready": 0, "no_status": 0})
        s["total"] += 1
        if is_ready(o):
            s["ready"] += 1
        else:
            reason = cond(o, "Ready").get("reason") or "none"
            s[f"not_ready:{reason}"] = s.get(f"not_ready:{reason}", 0) + 1
        if not (o.get("status") or {}).get("conditions"):
            s["no_status"] += 1
    return out


def converged(kube: Any, ns: str, expected: int) -> list[dict[str, Any]] | None:
    objs = all_objects(kube, ns)
    if len(objs) == expected and all(is_ready(o) for o in objs):
        return objs
    return None


def wait_converged(kube: Any, ns: str, expected: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    objs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        objs = all_objects(kube, ns)
        if len(objs) == expected and all(is_ready(o) for o in objs):
            return objs
        time.sleep(2)
    pytest.fail(
        f"{sum(is_ready(o) for o in objs)}/{expected} resources Ready after {timeout:.0f}s "
        f"({len(objs)} exist): {json.dumps(summary(objs))}; "
        f"first not ready: {json.dumps([o.get('status') for o in objs if not is_ready(o)][:2])}"
    )


@dataclass
class RemoteCounts:
    """Remote objects named after one namespace's resources, by kind."""

    models: dict[str, int]
    deployments: dict[str, int]
    pipelines: dict[str, int]
    executions: dict[str, int]  # by pipeline name
    ids: set[str] = field(default_factory=set)

    def duplicates(self) -> dict[str, list[str]]:
        return {
            kind: sorted(name for name, n in counts.items() if n > 1)
            for kind, counts in (
                ("models", self.models),
                ("deployments", self.deployments),
                ("pipelines", self.pipelines),
                ("executions", self.executions),
            )
            if any(n > 1 for n in counts.values())
        }

    def totals(self) -> dict[str, int]:
        return {
            "models": sum(self.models.values()),
            "deployments": sum(self.deployments.values()),
            "pipelines": sum(self.pipelines.values()),
            "executions": sum(self.executions.values()),
        }


def remote_counts(gateway: Any, ns: str) -> RemoteCounts:
    prefix = f"{ns}-"
    with BudClient(api_key=gateway.api_key, base_url=gateway.url, max_retries=5) as bud:
        ids: set[str] = set()

        def by_name(items: Iterable[Any]) -> dict[str, int]:
            out: dict[str, int] = {}
            for item in items:
                if item.name.startswith(prefix):
                    out[item.name] = out.get(item.name, 0) + 1
                    ids.add(item.id)
            return out

        models = by_name(bud.models.list(limit=100))
        deployments = by_name(bud.deployments.list(limit=100))
        pipeline_objs = [p for p in bud.pipelines.list(limit=100) if p.name.startswith(prefix)]
        pipelines = by_name(pipeline_objs)
        names = {p.id: p.name for p in pipeline_objs}
        executions: dict[str, int] = {}
        for x in bud.executions.list(limit=100):
            if x.pipeline_id in names:
                executions[names[x.pipeline_id]] = executions.get(names[x.pipeline_id], 0) + 1
                ids.add(x.id)
    return RemoteCounts(models, deployments, pipelines, executions, ids)


def assert_one_remote_per_resource(
    gateway: Any, ns: str, n: int, objs: list[dict[str, Any]]
) -> None:
    """Remote objects == custom resources, kind by kind, and each CR's status.id is one of them."""
    counts = remote_counts(gateway, ns)
    expected = {"models": n, "deployments": n, "pipelines": n, "executions": n}
    assert counts.totals() == expected and not counts.duplicates(), (
        f"remote objects {counts.totals()} != custom resources {expected}; "
        f"duplicated names: {counts.duplicates()}"
    )
    missing_id = [o["metadata"]["name"] for o in objs if not (o.get("status") or {}).get("id")]
    assert not missing_id, f"{len(missing_id)} resources without status.id: {missing_id[:10]}"
    # status.id must name an object of *this* gateway (another operator writing status from
    # another gateway, or a stale id after a re-create, would show here).
    foreign = {o["metadata"]["name"]: o["status"]["id"] for o in objs
               if o["status"]["id"] not in counts.ids}  # fmt: skip
    assert not foreign, f"{len(foreign)} status.id values unknown to the gateway: {foreign}"


# -- the API server ----------------------------------------------------------------------------


def restart_apiserver(
    kube: Any, down_seconds: float = 3.0, during: Callable[[], Any] | None = None
) -> float:
    """Stop the fixture's kube-apiserver (SIGTERM), keep it down, start it again with the same
    command line, and wait until it is ready. Returns the outage in seconds.

    hack/control-plane.sh has no restart subcommand, so this does what its ``start`` function
    does: same argv from /proc, its own session, the log appended, the pid file rewritten (so
    ``down`` still stops the new process)."""
    state = Path(kube.tmp_dir) / "controlplane"
    pid_file = state / "pids" / "kube-apiserver.pid"
    pid = int(pid_file.read_text().strip())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    assert str(state).encode() in b" ".join(argv), f"pid {pid} is not our kube-apiserver: {argv}"
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    if during is not None:
        during()
    time.sleep(down_seconds)
    with (state / "logs" / "kube-apiserver.log").open("ab") as log:
        proc = subprocess.Popen(
            [a.decode() for a in argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    wait_until(
        "kube-apiserver ready after restart",
        lambda: kube.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0,
        120,
    )
    return time.monotonic() - t0


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
