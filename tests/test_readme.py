"""Every code block of README.md runs here, so the README cannot drift from the product.

A block's info string says how it runs: ```` ```<lang> readme:<mode> ````.
- `gateway`: python or bash against the local gateway (BUD_API_KEY / BUD_BASE_URL set);
- `background`: a long-running command; it must come up (its `--port` answers) and keep running;
- `kube`: bash against the real API server, with the gateway's URL and key in the environment;
- `kubectl`: a YAML manifest, applied with server-side dry run (CRD schema and CEL checks run);
- `demo`: `make demo` with BUDAI_DEMO_ONCE=1 (it exits once everything is Ready);
- `ci`: the test command itself; checked to be what `.ci/run` runs (running it here would recurse);
- `bench`: `make bench` in quick mode (BUDAI_BENCH_QUICK=1);
- `recipe`: bash run by ``tests/operator/e2e/test_status_engines.py`` against a running operator
  (it needs objects that become Ready or Stalled).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MODES = {"gateway", "background", "kube", "kubectl", "demo", "ci", "bench", "recipe"}


@dataclass(frozen=True)
class Block:
    lang: str
    mode: str
    code: str
    line: int

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang}-{self.mode}"


def readme_blocks() -> list[Block]:
    blocks = []
    text = README.read_text(encoding="utf-8")
    for m in re.finditer(r"^```(\S*)([^\n]*)\n(.*?)^```", text, re.S | re.M):
        lang, attrs, code = m.group(1), m.group(2), m.group(3)
        found = re.search(r"readme:(\S+)", attrs)
        mode = found.group(1) if found else ""
        blocks.append(Block(lang, mode, code, text.count("\n", 0, m.start()) + 1))
    return blocks


BLOCKS = readme_blocks()


def test_every_block_declares_how_it_runs() -> None:
    bad = [b.id for b in BLOCKS if b.mode not in MODES]
    assert not bad, f"README blocks without a known readme:<mode> ({sorted(MODES)}): {bad}"
    assert len(BLOCKS) >= 8, f"only {len(BLOCKS)} code blocks found in README.md"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _run(block: Block, env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    if block.lang == "python":
        argv = [sys.executable, "-c", block.code]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", block.code]
    proc = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"README block at line {block.line} failed ({proc.returncode}):\n"
        f"{block.code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


def _blocks(mode: str) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.mode == mode]


@pytest.mark.parametrize("block", _blocks("gateway"))
def test_gateway_block(block: Block, gateway: Any) -> None:
    env = _env({"BUD_API_KEY": gateway.api_key, "BUD_BASE_URL": gateway.url})
    out = _run(block, env, ROOT)
    assert gateway.api_key not in out
    # Examples are copied and re-run: a second run must work too (create-or-get, apply).
    again = _run(block, env, ROOT)
    assert gateway.api_key not in again


@pytest.mark.parametrize("block", _blocks("background"))
def test_background_block(block: Block, tmp_path: Path) -> None:
    port = re.search(r"--port\s+(\d+)", block.code)
    assert port, f"background block at line {block.line} must name its --port"
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + block.code.strip()],
        env=_env({}),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"exited early: {proc.stdout.read() if proc.stdout else ''}"
            try:
                r = httpx.get(f"http://127.0.0.1:{port.group(1)}/health", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health within 30 s"
            time.sleep(0.2)
        assert r.json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("block", _blocks("kubectl"))
def test_manifest_block(block: Block, kube: Any, kube_namespace: str) -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    out = kube.kubectl(
        "apply", "--dry-run=server", "-n", kube_namespace, "-f", "-", input=block.code
    ).stdout
    assert "created (server dry run)" in out, out


@pytest.mark.parametrize("block", _blocks("kube"))
def test_kube_block(block: Block, kube: Any, gateway: Any) -> None:
    env = {**kube.env, "BUD_API_KEY": gateway.api_key, "BUD_BASE_URL": gateway.url}
    # Earlier tests uninstalled other releases of the chart, which keep their CRDs (crds.keep).
    # The README's troubleshooting table gives the fix a user applies; apply it here too.
    for crd in kube.kubectl("get", "crd", "-o", "name").stdout.split():
        if crd.endswith((".bud.studio", ".kopf.dev")):
            kube.kubectl(
                "annotate",
                crd,
                "--overwrite",
                "meta.helm.sh/release-name=bud-operator",
                "meta.helm.sh/release-namespace=bud-system",
            )
            kube.kubectl("label", crd, "--overwrite", "app.kubernetes.io/managed-by=Helm")
    try:
        _run(block, _env(env), ROOT)
        workloads = kube.get_json("statefulsets,deployments", "-n", "bud-system")
        names = [d["metadata"]["name"] for d in workloads["items"]]
        assert any("bud-operator" in n for n in names), names
        # The operator must be pointed at the gateway and the Secret the README created.
        assert gateway.url in json.dumps(workloads), "gateway.url did not reach the workload"
        assert "bud-api-key" in json.dumps(workloads), "existingSecret did not reach the workload"
    finally:
        kube.helm("uninstall", "bud-operator", "-n", "bud-system", check=False)


@pytest.mark.parametrize("block", _blocks("demo"))
def test_demo_block(block: Block, kube: Any) -> None:
    env = _env({**kube.env, "BUDAI_DEMO_ONCE": "1"})
    out = _run(block, env, ROOT, timeout=600)
    assert "everything is Ready" in out, out


@pytest.mark.parametrize("block", _blocks("ci"))
def test_ci_block_is_what_ci_runs(block: Block) -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = block.code.strip()
    assert re.search(rf"^\s*(exec\s+)?{re.escape(command)}\s*$", ci, re.M), (
        f"README's test command {command!r} is not what .ci/run runs:\n{ci}"
    )


@pytest.mark.parametrize("block", _blocks("bench"))
def test_bench_block(block: Block) -> None:
    out = _run(block, _env({"BUDAI_BENCH_QUICK": "1"}), ROOT, timeout=900)
    assert "== all benchmarks ==" in out, out
