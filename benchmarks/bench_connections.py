"""Connections at scale: N BudModels spread over 10 connections (10 namespaces, 10 projects, 10
keys) against the same N on one connection, same run, same gateway, a fresh operator each.

Figures: time to all Ready, operator memory (RSS) once Ready, and idle gateway requests per
second (one list per kind per connection, plus one key check per connection a minute).

    python benchmarks/bench_connections.py [--count 1000] [--connections 10] [--idle 60]

Uses `$KUBECONFIG` when set, else starts the local control plane (as bench_operator.py does).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, report
from bench_operator import (
    GROUP,
    ROOT,
    VERSION,
    count_ready,
    create_models,
    free_port,
    gateway_requests,
    kubectl,
    rss_mb,
    wait_started,
    wait_until,
)


async def phase(
    args: argparse.Namespace,
    env: dict[str, str],
    api: Any,
    core: Any,
    gw: Any,
    keys: list[str],
    n_conn: int,
    tmp: Path,
) -> tuple[float, float, float]:
    """(seconds to Ready, RSS MB, idle req/s) for `args.count` models over `n_conn` connections."""
    stamp = f"{int(time.time())}-{n_conn}"
    namespaces = [f"bench-conn-{stamp}-{i}" for i in range(n_conn)]
    for i, ns in enumerate(namespaces):
        await core.create_namespace({"metadata": {"name": ns}})
        value = base64.b64encode(keys[i].encode()).decode()
        await core.create_namespaced_secret(
            ns, {"metadata": {"name": "bud-key"}, "data": {"apiKey": value}}
        )
        await api.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "budconnections",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BudConnection",
                "metadata": {"name": "default"},
                "spec": {"url": gw.url, "secretRef": {"name": "bud-key"}},
            },
        )
    metrics_port, health_port = free_port(), free_port()
    cmd = [
        sys.executable, "-m", "budai_operator", "run", "--connections-only",
        *[a for ns in namespaces for a in ("-n", ns)],
        "--bind-address", "127.0.0.1", "--metrics-port", str(metrics_port),
        "--health-port", str(health_port), "--log-format", "json",
        "--rate-limit", str(args.rate_limit), "--burst", str(args.burst), "--standalone",
    ]  # fmt: skip
    log_path = tmp / f"operator-{n_conn}.log"
    op_env = {k: v for k, v in env.items() if not k.startswith("BUD_")}
    with log_path.open("wb") as log:
        op = subprocess.Popen(cmd, env=op_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        await wait_started(op, health_port, log_path)
        per = args.count // n_conn
        start = time.monotonic()
        await asyncio.gather(*(create_models(api, ns, per) for ns in namespaces))

        async def all_ready() -> bool:
            counts = await asyncio.gather(*(count_ready(api, ns) for ns in namespaces))
            return sum(counts) >= per * n_conn

        await wait_until(all_ready, args.timeout, every=2.0)
        ready_s = time.monotonic() - start
        await asyncio.sleep(10)
        rss = rss_mb(op.pid)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        await asyncio.sleep(min(30.0, args.idle))
        before = gateway_requests(metrics_url)
        await asyncio.sleep(args.idle)
        idle = (gateway_requests(metrics_url) - before) / args.idle
        print(f"{n_conn} connection(s): Ready in {ready_s:.1f}s, {rss:.0f} MB, {idle:.2f} req/s")
        return ready_s, rss, idle
    finally:
        op.terminate()
        try:
            op.wait(20)
        except subprocess.TimeoutExpired:
            op.kill()
        for ns in namespaces:
            kubectl(env, "delete", "namespace", ns, "--wait=false", check=False)


async def run(args: argparse.Namespace, env: dict[str, str]) -> list[Row]:
    from kubernetes_asyncio import client, config

    from budai_gateway.testing import LocalGateway

    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    kubectl(env, "apply", "-f", str(ROOT / "crds"))
    kubectl(env, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    served = kubectl(
        env, "api-resources", "--api-group=admissionregistration.k8s.io", "-o", "name", check=False
    )
    if "mutatingadmissionpolicies" in served:
        kubectl(env, "apply", "-f", str(ROOT / "policies"))
    await config.load_kube_config(config_file=env["KUBECONFIG"])
    api_client = client.ApiClient()
    api = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    # Established is not yet served: creates may answer 503 "Kind=BudModel not found" a while
    # longer than lists do, so probe with server-side dry-run creates of both kinds.
    probe_ns = f"bench-probe-{int(time.time())}"
    await core.create_namespace({"metadata": {"name": probe_ns}})
    probes = {
        "budmodels": {"kind": "BudModel", "spec": {"source": "cloud", "uri": "probe"}},
        "budconnections": {
            "kind": "BudConnection",
            "spec": {"url": "http://x/v1", "secretRef": {"name": "x"}},
        },
    }
    deadline = time.monotonic() + 120
    for plural, probe in probes.items():
        body = {"apiVersion": f"{GROUP}/{VERSION}", "metadata": {"name": "probe"}, **probe}
        while True:
            try:
                await api.create_namespaced_custom_object(
                    GROUP, VERSION, probe_ns, plural, body, dry_run="All"
                )
                break
            except client.exceptions.ApiException:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    await core.delete_namespace(probe_ns)
    keys = [f"bud_bench_{i}_{os.urandom(6).hex()}" for i in range(args.connections)]
    config_keys = [{"key": k, "name": f"p{i}", "project": f"p{i}"} for i, k in enumerate(keys)]
    rows: list[Row] = []
    with (
        LocalGateway(speed=args.speed, config={"api_keys": config_keys}) as gw,
        tempfile.TemporaryDirectory() as tmp,
    ):
        one = await phase(args, env, api, core, gw, keys, 1, Path(tmp))
        many = await phase(args, env, api, core, gw, keys, args.connections, Path(tmp))
    await api_client.close()
    c, n = args.count, args.connections
    rows.append(Row(f"{c} BudModels to Ready, {n} connections", many[0], one[0], "s",
                    "<= 1.2x one connection", "1 connection"))  # fmt: skip
    rows.append(Row(f"operator RSS at {c}, {n} connections", many[1], one[1], "MB",
                    "<= 1.2x one connection", "1 connection"))  # fmt: skip
    rows.append(Row(f"idle gateway req/s at {c}, {n} connections", many[2], one[2], "req/s",
                    "flat in resources", "1 connection"))  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--rate-limit", type=float, default=200.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    env = dict(os.environ)
    state = None
    if not env.get("KUBECONFIG"):
        state = tempfile.mkdtemp(prefix="bench-cp-")
        cp_env = {**env, "BUDAI_CP_STATE": state}
        script = ROOT / "hack" / "control-plane.sh"
        subprocess.run(["bash", str(script), "up"], env=cp_env, check=True)
        out = subprocess.run(
            ["bash", "-c", f'eval "$(bash {script} env)"; env -0'],
            env=cp_env,
            check=True,
            capture_output=True,
        ).stdout.decode()
        for item in out.split("\0"):
            key, _, value = item.partition("=")
            if key in ("KUBECONFIG", "PATH"):
                env[key] = value
    try:
        rows = asyncio.run(run(args, env))
    finally:
        if state:
            subprocess.run(
                ["bash", str(ROOT / "hack" / "control-plane.sh"), "down"],
                env={**env, "BUDAI_CP_STATE": state},
                check=False,
            )
    print(json.dumps({"count": args.count, "connections": args.connections}))
    report("connections", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
