"""Operator figures on the local control plane and the local gateway, against a plain asyncio
baseline doing the same gateway calls and status patches in the same run.

1. Time for N BudModels created at once to all be Ready (operator vs the baseline script).
2. Gateway requests per second while the N Ready resources sit idle.
3. Operator memory (RSS) with N and with BIG resources.
4. Latency from `kubectl scale` to the gateway seeing the new replica count (p50/p95), with N
   resources present.

    python benchmarks/bench_operator.py [--count 1000] [--big 5000] [--scales 20] [--idle 60]

Uses `$KUBECONFIG` when set (any cluster), else starts the local control plane with
`hack/control-plane.sh up` in a temporary state dir and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, report

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION = "bud.studio", "v1alpha1"
MERGE = {"_content_type": "application/merge-patch+json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def kubectl(env: dict[str, str], *args: str, check: bool = True) -> str:
    """Run kubectl quietly; its standard output."""
    return subprocess.run(
        ["kubectl", *args], env=env, check=check, capture_output=True, text=True
    ).stdout


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def control_plane_cpu(env: dict[str, str]) -> float | None:
    """CPU seconds of the local kube-apiserver and etcd (None on an outside cluster)."""
    state = env.get("BUDAI_CP_STATE")
    if not state:
        return None
    total = 0.0
    for name in ("kube-apiserver", "etcd"):
        pid_file = Path(state) / "pids" / f"{name}.pid"
        if not pid_file.exists():
            return None
        total += cpu_s(int(pid_file.read_text().strip()))
    return total


def model_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BudModel",
        "metadata": {"name": name},
        "spec": {"source": "cloud", "uri": f"s3://bench/{name}"},
    }


async def wait_started(op: subprocess.Popen[bytes], health_port: int, log_path: Path) -> None:
    """Wait until the operator answers its health probe (60 s), or fail with its last log."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or op.poll() is not None:
            raise RuntimeError("operator did not start:\n" + log_path.read_text()[-3000:])
        await asyncio.sleep(0.5)

async def gather_limited(n: int, coros: list[Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def create_models(api: Any, ns: str, count: int, prefix: str = "m") -> list[Any]:
    return await gather_limited(
        32,
        [
            api.create_namespaced_custom_object(
                GROUP, VERSION, ns, "budmodels", model_body(f"{prefix}-{i:05d}")
            )
            for i in range(count)
        ],
    )


async def count_ready(api: Any, ns: str) -> int:
    # resourceVersion=0: served from the API server's watch cache, so polling stays cheap.
    data = await api.list_namespaced_custom_object(
        GROUP, VERSION, ns, "budmodels", resource_version="0"
    )
    ready = 0
    for item in data["items"]:
        for c in (item.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") == "True":
                ready += 1
    return ready


async def wait_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.5
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await probe():
            return time.monotonic() - start
        await asyncio.sleep(every)
    raise TimeoutError(f"not done after {timeout}s")


async def baseline(api: Any, gw_url: str, key: str, ns: str, count: int) -> float:
    """What a hand-written script would do, making the same gateway calls and status patches as
    the operator (its pure decision functions give the create body and the status): create each
    remote model, read it until available, patch the custom resource's status. No finalizer, no
    external-id annotation, no Event, no watch: those are what the operator adds."""
    from budai_operator.models import BudModelSpec
    from budai_operator.reconcile import Ctx, Observation, reconcile_model

    start = time.monotonic()
    created = await create_models(api, ns, count, prefix="b")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gw_url, headers=headers, timeout=30) as http:

        async def one(obj: dict[str, Any]) -> None:
            meta = obj["metadata"]

            def ctx(status: dict[str, Any]) -> Any:
                return Ctx(
                    kind="BudModel",
                    name=meta["name"],
                    namespace=ns,
                    uid=meta["uid"],
                    generation=1,
                    annotations={},
                    status=status,
                    now=datetime.now(UTC),
                )

            spec = BudModelSpec.model_validate(obj["spec"])
            create = reconcile_model(ctx({}), spec, Observation()).actions[0]
            r = await http.post(
                "/models",
                json=dict(create.body),
                headers={"Idempotency-Key": create.idempotency_key},
            )
            model = r.json()
            while model["status"] != "available":
                await asyncio.sleep(0.2)
                model = (await http.get(f"/models/{model['id']}")).json()
            status = reconcile_model(ctx({}), spec, Observation(model, via="action")).status
            await api.patch_namespaced_custom_object_status(
                GROUP, VERSION, ns, "budmodels", meta["name"], {"status": status}, **MERGE
            )

        await gather_limited(32, [one(obj) for obj in created])
    return time.monotonic() - start


def gateway_requests(metrics_url: str) -> float:
    total = 0.0
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith("bud_operator_gateway_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def run(args: argparse.Namespace, env: dict[str, str]) -> list[Row]:
    from kubernetes_asyncio import client, config

    from budai import AsyncBudClient
    from budai_gateway.testing import LocalGateway

    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    kubectl(env, "apply", "-f", str(ROOT / "crds"))
    kubectl(env, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    group = "--api-group=admissionregistration.k8s.io"
    served = kubectl(env, "api-resources", group, "-o", "name", check=False)
    if "mutatingadmissionpolicies" in served:  # Kubernetes 1.36+: the finalizer at creation
        kubectl(env, "apply", "-f", str(ROOT / "policies"))
    await config.load_kube_config(config_file=env["KUBECONFIG"])
    api_client = client.ApiClient()
    api = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    stamp = str(int(time.time()))
    ns_base, ns_op = f"bench-base-{stamp}", f"bench-op-{stamp}"
    for ns in (ns_base, ns_op):
        await core.create_namespace({"metadata": {"name": ns}})
    # Established comes before creates are served: the admission policy that adds the finalizer
    # maps kinds through discovery, which lags (503 "Kind=BudModel not found"), kind by kind.
    # A dry-run create of each kind this benchmark makes; a validation error (422) means the
    # request got past admission.
    for plural, kind in (("budmodels", "BudModel"), ("buddeployments", "BudDeployment")):
        probe = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": "probe"}}
        deadline = time.monotonic() + 120
        while True:
            try:
                await api.create_namespaced_custom_object(
                    GROUP, VERSION, ns_op, plural, {**probe, "spec": {}}, dry_run="All"
                )
                break
            except client.exceptions.ApiException as exc:
                if exc.status == 422:
                    break
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    rows: list[Row] = []
    with LocalGateway(speed=args.speed) as gw, tempfile.TemporaryDirectory() as tmp:
        cpu0, cp0 = cpu_s(), control_plane_cpu(env)
        base_s = await baseline(api, gw.url, gw.api_key, ns_base, args.count)
        # The baseline's own CPU; the script also created the objects, which costs it more.
        base_cpu = cpu_s() - cpu0
        cp1 = control_plane_cpu(env)
        base_cp = cp1 - cp0 if cp0 is not None and cp1 is not None else None
        print(f"baseline: {args.count} models Ready in {base_s:.1f}s", flush=True)

        key_file = Path(tmp) / "key"
        key_file.write_text(gw.api_key)
        metrics_port, health_port = free_port(), free_port()
        op_env = {**env, "BUD_API_KEY_FILE": str(key_file)}
        cmd = [
            sys.executable,
            "-m",
            "budai_operator",
            "run",
            "-n",
            ns_op,
            "--gateway-url",
            gw.url,
            "--bind-address",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            str(health_port),
            "--log-format",
            "json",
            "--rate-limit",
            str(args.rate_limit),
            "--burst",
            str(args.burst),
            "--standalone",
        ]
        log_path = Path(tmp) / "operator.log"
        with log_path.open("wb") as log:
            op = subprocess.Popen(cmd, env=op_env, stdout=log, stderr=subprocess.STDOUT)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            await wait_started(op, health_port, log_path)

            start, op_cpu0, op_cp0 = time.monotonic(), cpu_s(op.pid), control_plane_cpu(env)
            await create_models(api, ns_op, args.count)

            async def all_ready() -> bool:
                return await count_ready(api, ns_op) >= args.count

            await wait_until(all_ready, args.timeout, every=2.0)
            op_s = time.monotonic() - start
            op_cpu = cpu_s(op.pid) - op_cpu0
            op_cp1 = control_plane_cpu(env)
            print(f"operator: {args.count} models Ready in {op_s:.1f}s", flush=True)
            rows.append(
                Row(
                    f"{args.count} BudModels to Ready",
                    op_s,
                    base_s,
                    "s",
                    "<= 2x baseline",
                    "asyncio script",
                )
            )
            rows.append(
                Row(
                    f"CPU used to get {args.count} Ready",
                    op_cpu,
                    base_cpu,
                    "s",
                    "-",
                    "asyncio script",
                )
            )
            if op_cp0 is not None and op_cp1 is not None and base_cp is not None:
                rows.append(
                    Row(
                        "kube-apiserver + etcd CPU meanwhile",
                        op_cp1 - op_cp0,
                        base_cp,
                        "s",
                        "-",
                        "asyncio script",
                    )
                )

            # Idle: let startup traffic settle, then count requests over the window.
            await asyncio.sleep(min(30.0, args.idle))
            before = gateway_requests(metrics_url)
            await asyncio.sleep(args.idle)
            idle_rps = (gateway_requests(metrics_url) - before) / args.idle
            rows.append(
                Row(
                    f"idle gateway req/s at {args.count}",
                    idle_rps,
                    None,
                    "req/s",
                    "< 1 req/s total",
                )
            )
            rows.append(Row(f"operator RSS at {args.count}", rss_mb(op.pid), None, "MB", "-"))

            # Scale latency with N resources present.
            async with AsyncBudClient(api_key=gw.api_key, base_url=gw.url) as bud:
                clusters = [c async for c in bud.clusters.list()]
                cpu = next(c for c in clusters if c.name == "local-cpu")
                deps = []
                for i in range(args.scales):
                    body = {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "BudDeployment",
                        "metadata": {"name": f"d-{i:03d}"},
                        "spec": {
                            "modelRef": {"name": f"m-{i:05d}"},
                            "clusterId": cpu.id,
                            "replicas": 1,
                            "resources": {"cpu": "100m", "memory": "64Mi"},
                        },
                    }
                    await api.create_namespaced_custom_object(
                        GROUP, VERSION, ns_op, "buddeployments", body
                    )
                    deps.append(f"d-{i:03d}")

                async def deps_ready() -> bool:
                    data = await api.list_namespaced_custom_object(
                        GROUP, VERSION, ns_op, "buddeployments"
                    )
                    return (
                        sum(
                            1
                            for it in data["items"]
                            if (it.get("status") or {}).get("state") == "active"
                        )
                        >= args.scales
                    )

                await wait_until(deps_ready, 300, every=1.0)
                data = await api.list_namespaced_custom_object(
                    GROUP, VERSION, ns_op, "buddeployments"
                )
                ids = {it["metadata"]["name"]: it["status"]["id"] for it in data["items"]}
                latencies = []
                for name in deps:
                    t0 = time.monotonic()
                    kubectl(env, "scale", "bd", name, "-n", ns_op, "--replicas=2")
                    while (await bud.deployments.get(ids[name])).replicas != 2:
                        if time.monotonic() - t0 > 60:
                            raise TimeoutError(f"{name} never scaled")
                        await asyncio.sleep(0.02)
                    latencies.append(time.monotonic() - t0)
            latencies.sort()
            p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
            rows.append(
                Row(
                    f"kubectl scale -> gateway p50 ({args.scales} scales)",
                    statistics.median(latencies),
                    None,
                    "s",
                    "-",
                )
            )
            rows.append(
                Row(
                    f"kubectl scale -> gateway p95 ({args.scales} scales)",
                    p95,
                    None,
                    "s",
                    "p95 < 2 s",
                )
            )

            if args.big > args.count:
                await create_models(api, ns_op, args.big - args.count, prefix="x")

                async def big_ready() -> bool:
                    return await count_ready(api, ns_op) >= args.big

                await wait_until(big_ready, args.timeout * 4, every=2.0)
                await asyncio.sleep(10)
                rows.append(
                    Row(
                        f"operator RSS at {args.big}",
                        rss_mb(op.pid),
                        None,
                        "MB",
                        "< 300 MB at 5000",
                    )
                )
        finally:
            op.terminate()
            try:
                op.wait(20)
            except subprocess.TimeoutExpired:
                op.kill()
            print(f"operator log: {log_path.stat().st_size} bytes", flush=True)
            for ns in (ns_base, ns_op):
                # Drop finalizers left behind: the operator is gone.
                kubectl(env, "delete", "namespace", ns, "--wait=false", check=False)
    await api_client.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--big", type=int, default=5000)
    parser.add_argument("--scales", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=200.0,
        help="operator token bucket rate (the default of 10/s is for production)",
    )
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    env = dict(os.environ)
    state = None
    if not env.get("KUBECONFIG"):
        state = tempfile.mkdtemp(prefix="bench-cp-")
        cp_env = {**env, "BUDAI_CP_STATE": state}
        subprocess.run(
            ["bash", str(ROOT / "hack" / "control-plane.sh"), "up"], env=cp_env, check=True
        )
        script = f'eval "$(bash {ROOT / "hack" / "control-plane.sh"} env)"; env -0'
        out = subprocess.run(
            ["bash", "-c", script], env=cp_env, check=True, capture_output=True
        ).stdout.decode()
        for item in out.split("\0"):
            key, _, value = item.partition("=")
            if key in ("KUBECONFIG", "PATH"):
                env[key] = value
        env["BUDAI_CP_STATE"] = state
    try:
        rows = asyncio.run(run(args, env))
    finally:
        if state:
            subprocess.run(
                ["bash", str(ROOT / "hack" / "control-plane.sh"), "down"],
                env={**env, "BUDAI_CP_STATE": state},
                check=False,
            )
    print(json.dumps({"rate_limit": args.rate_limit, "count": args.count, "big": args.big}))
    report("operator", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
