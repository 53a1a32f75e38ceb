"""SDK figures: import time against openai and httpx, and per-request overhead of
``client.models.get`` against raw ``httpx.Client`` doing the same requests to the same server.

Import times are measured in fresh interpreters (median of N runs each). The server is a minimal
keep-alive HTTP/1.1 responder in its own process that answers every request with the same model
JSON, so server time is small and the SDK's own cost is not diluted. Both wall time and this
process's CPU time per call are reported: CPU time is the client's cost alone and stays
meaningful on a loaded machine.

    python benchmarks/bench_sdk.py [--imports N] [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, report

MODEL = json.dumps({
    "id": "model_abc", "object": "model", "name": "llama-3.2-1b", "source": "hugging_face",
    "uri": "meta-llama/Llama-3.2-1B", "size_bytes": 2_000_000_000, "status": "available",
    "metadata": {"family": "llama"}, "created_at": "2026-11-27T10:00:00Z",
    "updated_at": "2026-11-27T10:00:00Z", "progress_percent": None, "error": None,
}).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
    b"x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 999\r\nx-ratelimit-reset: 0\r\n"
    b"content-length: " + str(len(MODEL)).encode() + b"\r\n\r\n" + MODEL
)
KEY = "sk-bench-0123456789"


def serve(sock: socket.socket) -> None:
    def conn(c: socket.socket) -> None:
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                _, buf = buf.split(b"\r\n\r\n", 1)  # GETs only: no body to skip
                c.sendall(RESPONSE)

    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=conn, args=(c,), daemon=True).start()


IMPORTS = {
    "budai": "import budai",
    "budai_client": "from budai import BudClient",
    "budai_ready": "from budai import BudClient; BudClient(api_key='k').models",
    "openai": "import openai",
    "openai_client": "from openai import OpenAI",
    "httpx": "import httpx",
}


def import_times(runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) per statement, each in a fresh interpreter; the statements take
    turns within every run so that load on a shared machine affects them alike."""
    code = (
        "import time; w, c = time.perf_counter(), time.process_time(); {stmt}; "
        "print(time.perf_counter() - w, time.process_time() - c)"
    )
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in IMPORTS}
    for i in range(runs + 1):
        for name, stmt in IMPORTS.items():
            out = subprocess.run([sys.executable, "-c", code.format(stmt=stmt)],
                                 capture_output=True, text=True, check=True).stdout.split()
            if i:  # the first run only warms the file cache
                samples[name].append((float(out[0]) * 1000, float(out[1]) * 1000))
    return {
        name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
        for name, s in samples.items()
    }


def import_rows(runs: int) -> list[Row]:
    t = import_times(runs)
    rows = []
    for kind, i in (("wall", 0), ("CPU", 1)):
        rows += [
            Row(f"import budai ({kind})", t["budai"][i], t["openai"][i], "ms", "< 0.5x openai",
                "import openai"),
            Row(f"from budai import BudClient ({kind})", t["budai_client"][i],
                t["openai_client"][i], "ms", "< 0.5x openai", "from openai import OpenAI"),
            Row(f"BudClient + models resource ({kind})", t["budai_ready"][i],
                t["openai_client"][i], "ms", "-", "from openai import OpenAI"),
            Row(f"from budai import BudClient ({kind})", t["budai_client"][i], t["httpx"][i],
                "ms", "-", "import httpx"),
        ]
    return rows


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """The responder runs in its own process, so this process's CPU time is the client's alone."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def per_request_rows(calls: int, rounds: int) -> list[Row]:
    from budai import BudClient

    proc, base = start_server()
    raw = httpx.Client(headers={"Authorization": f"Bearer {KEY}"})
    bud = BudClient(api_key=KEY, base_url=base)
    block = 50  # alternate small blocks so load spikes on a shared machine hit both alike

    def raw_block() -> None:
        for _ in range(block):
            resp = raw.get(base + "/models/model_abc")
            resp.raise_for_status()
            resp.json()

    def bud_block() -> None:
        for _ in range(block):
            bud.models.get("model_abc")

    raw_block(), bud_block()  # warm up connections, caches and the deferred model build
    wall: dict[str, list[float]] = {"raw": [], "bud": []}
    cpu: dict[str, list[float]] = {"raw": [], "bud": []}
    for _ in range(rounds):
        totals = {"raw": [0.0, 0.0], "bud": [0.0, 0.0]}
        for _ in range(calls // block):
            for name, fn in (("raw", raw_block), ("bud", bud_block)):
                w, c = time.perf_counter(), time.process_time()
                fn()
                totals[name][0] += time.perf_counter() - w
                totals[name][1] += time.process_time() - c
        for name, (w, c) in totals.items():
            wall[name].append(w / calls * 1e6)
            cpu[name].append(c / calls * 1e6)
    raw.close()
    bud.close()
    proc.terminate()
    proc.wait()
    rw, bw = statistics.median(wall["raw"]), statistics.median(wall["bud"])
    rc, bc = statistics.median(cpu["raw"]), statistics.median(cpu["bud"])
    return [
        Row(f"models.get wall time per call ({calls} calls, median of {rounds})", bw, rw, "us",
            "<= 1.2x raw httpx", "raw httpx.Client"),
        Row("models.get client CPU per call", bc, rc, "us", "<= 1.2x raw httpx",
            "raw httpx.Client"),
        Row("models.get client CPU overhead over raw httpx", bc - rc, None, "us", "-"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imports", type=int, default=9, help="fresh interpreters per import")
    ap.add_argument("--calls", type=int, default=2000, help="requests per timed run")
    ap.add_argument("--rounds", type=int, default=5, help="timed runs per client")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        print(sock.getsockname()[1], flush=True)
        serve(sock)
        return
    rows = import_rows(args.imports) + per_request_rows(args.calls, args.rounds)
    report("SDK", rows)


if __name__ == "__main__":
    main()
