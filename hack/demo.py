"""`make demo`: the whole system on one machine, converging in front of you.

Starts (or reuses) a Kubernetes API server, the local gateway and the operator, applies
`examples/`, shows the custom resources converge, sends a chat completion through the deployed
model, then keeps running until Ctrl-C and stops everything it started.

With KUBECONFIG set to a reachable cluster, that cluster is used instead of a local control plane.
BUDAI_DEMO_ONCE=1 exits as soon as everything is Ready (the README test uses it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from budai import BudClient
from budai_gateway.testing import LocalGateway, free_port
from budai_operator.kinds.registry import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
CP = ["bash", str(ROOT / "hack" / "control-plane.sh")]
NAMESPACE = "bud-demo"
KINDS = ",".join(adapter.plural for adapter in REGISTRY)
CONVERGE_TIMEOUT = float(os.environ.get("BUDAI_DEMO_TIMEOUT", "300"))


def say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m", flush=True)


def fail(msg: str) -> None:
    print(f"demo: error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def kubectl(env: dict[str, str], *args: str, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["kubectl", *args], env=env, input=input, capture_output=True, text=True, check=False
    )
    if check and proc.returncode:
        fail(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def reachable(env: dict[str, str]) -> bool:
    if shutil.which("kubectl", path=env["PATH"]) is None:
        return False
    probe = ["kubectl", "get", "--raw", "/readyz", "--request-timeout=5s"]
    return subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0


def cluster_env(stack: ExitStack) -> dict[str, str]:
    """An environment whose KUBECONFIG and PATH reach a running API server."""
    env = dict(os.environ)
    bin_dir = subprocess.run([*CP, "bin-dir"], capture_output=True, text=True, check=True)
    env["PATH"] = bin_dir.stdout.strip() + os.pathsep + env.get("PATH", "")
    if os.environ.get("KUBECONFIG"):
        if not reachable(env):
            fail(
                f"KUBECONFIG={os.environ['KUBECONFIG']} is set but its cluster does not answer; "
                "unset KUBECONFIG to let the demo start a local control plane"
            )
        say(f"using the cluster in KUBECONFIG ({os.environ['KUBECONFIG']})")
        return env
    say("building (or reusing) the control-plane binaries")
    subprocess.run([*CP, "build"], check=True)
    state = ROOT / ".tmp" / "demo-controlplane"
    env["BUDAI_CP_STATE"] = str(state)
    say("starting etcd and kube-apiserver on loopback")
    subprocess.run([*CP, "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    stack.callback(lambda: subprocess.run([*CP, "down"], env=env, check=False))
    env["KUBECONFIG"] = str(state / "kubeconfig")
    return env


def start_operator(stack: ExitStack, env: dict[str, str], gw: LocalGateway) -> None:
    key_file = Path(gw.db_path).parent / "api-key"
    key_file.write_text(gw.api_key)
    key_file.chmod(0o600)
    log_path = Path(gw.db_path).parent / "operator.log"
    op_env = {
        **env,
        "BUD_BASE_URL": gw.url,
        "BUD_API_KEY_FILE": str(key_file),
        "BUD_IN_FLIGHT_INTERVAL": "2",
        "BUD_REFRESH_INTERVAL": "5",
        "BUD_CLUSTER_INTERVAL": "5",
    }
    op_env.pop("BUD_API_KEY", None)
    cmd = [
        str(Path(sys.executable).with_name("budai-operator")),
        "run",
        "--namespace",
        NAMESPACE,
        "--standalone",
        "--log-format",
        "plain",
        "--metrics-port",
        str(free_port()),
        "--health-port",
        str(free_port()),
        "--bind-address",
        "127.0.0.1",
    ]
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, env=op_env, stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    stack.callback(stop)
    say(f"operator running (pid {proc.pid}, log {log_path})")


def ready_table(env: dict[str, str]) -> tuple[str, bool]:
    items = json.loads(kubectl(env, "get", KINDS, "-n", NAMESPACE, "-o", "json"))["items"]
    lines = [f"{'KIND':<14} {'NAME':<22} {'READY':<6} {'STATE':<12} REASON"]
    all_ready = bool(items)
    for obj in items:
        status = obj.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
        ok = ready.get("status") == "True"
        all_ready &= ok
        lines.append(
            f"{obj['kind']:<14} {obj['metadata']['name']:<22} {ready.get('status', '-'):<6} "
            f"{status.get('state', '-'):<12} {ready.get('reason', '')}"
        )
    return "\n".join(lines), all_ready


def main() -> int:
    once = os.environ.get("BUDAI_DEMO_ONCE") == "1"
    with ExitStack() as stack:
        env = cluster_env(stack)
        say("starting the local gateway")
        gw = stack.enter_context(LocalGateway(speed=float(os.environ.get("BUDAI_DEMO_SPEED", "5"))))
        say(f"gateway at {gw.url} (local admin key in {gw.db_path.rsplit('/', 1)[0]})")
        kubectl(env, "apply", "-f", str(ROOT / "crds"))
        kubectl(env, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        # Kubernetes 1.36+ adds the operator's finalizer at creation (policies/); older
        # clusters do without it (the operator adds the finalizer itself).
        group = "--api-group=admissionregistration.k8s.io"
        if "mutatingadmissionpolicies" in kubectl(env, "api-resources", group, "-o", "name"):
            kubectl(env, "apply", "-f", str(ROOT / "policies"))
        kubectl(
            env,
            "apply",
            "-f",
            "-",
            input=json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            ),
        )
        start_operator(stack, env, gw)
        say("applying examples/")
        kubectl(env, "apply", "-n", NAMESPACE, "-f", str(ROOT / "examples"))
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        last = ""
        while True:
            table, done = ready_table(env)
            if table != last:
                print(table + "\n", flush=True)
                last = table
            if done:
                break
            if time.monotonic() > deadline:
                fail(
                    f"not every resource became Ready within {CONVERGE_TIMEOUT:.0f}s; "
                    "see the REASON column and the operator log"
                )
            time.sleep(1)
        say("everything is Ready; a chat completion through the deployed model:")
        deployment = json.loads(
            kubectl(env, "get", "buddeployments", "-n", NAMESPACE, "-o", "json")
        )
        remote_id = deployment["items"][0]["status"]["id"]
        with BudClient(api_key=gw.api_key, base_url=gw.url) as client:
            # Chat routes by the remote deployment's name, which the operator chose.
            remote_name = client.deployments.get(remote_id).name
            reply = client.chat.completions.create(
                model=remote_name, messages=[{"role": "user", "content": "Hello from the demo"}]
            )
        print(f"   {remote_name}: {reply.choices[0].message.content}", flush=True)
        if once:
            say("BUDAI_DEMO_ONCE=1: stopping")
            return 0
        say("running; press Ctrl-C to stop everything")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            say("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
