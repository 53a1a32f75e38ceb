"""SDK figures: import time against openai and httpx, and per-request overhead of
``client.models.get`` against raw ``httpx.Client`` doing the same requests to the same server.

Import times are measured in fresh interpreters (median of N runs each, interleaved). The server
is a minimal keep-alive HTTP/1.1 responder on loopback that answers every request with the same
model JSON, so server time is as small as possible and the SDK's own cost is not diluted; the
overhead is also printed in microseconds per call.

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


def import_time(stmt: str, runs: int) -> float:
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        samples.append(float(out))
    return statistics.median(samples) * 1000


def import_rows(runs: int) -> list[Row]:
    stmts = {
        "budai": "import budai",
        "budai_client": "from budai import BudClient",
        "openai": "import openai",
        "openai_client": "from openai import OpenAI",
        "httpx": "import httpx",
    }
    for stmt in stmts.values():  # warm the file cache
        import_time(stmt, 1)
    t = {name: import_time(stmt, runs) for name, stmt in stmts.items()}
    return [
        Row("import budai", t["budai"], t["openai"], "ms", "< 0.5x openai", "import openai"),
        Row("import budai", t["budai"], t["httpx"], "ms", "-", "import httpx"),
        Row("from budai import BudClient", t["budai_client"], t["openai_client"], "ms",
            "< 0.5x openai", "from openai import OpenAI"),
        Row("from budai import BudClient", t["budai_client"], t["httpx"], "ms", "-",
            "import httpx"),
    ]


def per_request_rows(calls: int, rounds: int) -> list[Row]:
    from budai import BudClient

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    threading.Thread(target=serve, args=(sock,), daemon=True).start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"

    raw = httpx.Client(headers={"Authorization": f"Bearer {KEY}"})
    bud = BudClient(api_key=KEY, base_url=base)

    def run_raw() -> float:
        t = time.perf_counter()
        for _ in range(calls):
            resp = raw.get(base + "/models/model_abc")
            resp.raise_for_status()
            resp.json()
        return (time.perf_counter() - t) / calls * 1e6

    def run_bud() -> float:
        t = time.perf_counter()
        for _ in range(calls):
            bud.models.get("model_abc")
        return (time.perf_counter() - t) / calls * 1e6

    run_raw(), run_bud()  # warm up connections, caches and the deferred model build
    raw_t, bud_t = [], []
    for _ in range(rounds):  # interleaved so drift on a shared machine hits both alike
        raw_t.append(run_raw())
        bud_t.append(run_bud())
    raw.close()
    bud.close()
    sock.close()
    r, b = statistics.median(raw_t), statistics.median(bud_t)
    return [
        Row(f"models.get per call ({calls} calls, median of {rounds})", b, r, "us",
            "<= 1.2x raw httpx", "raw httpx.Client"),
        Row("models.get overhead over raw httpx", b - r, None, "us", "-"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imports", type=int, default=15, help="fresh interpreters per import")
    ap.add_argument("--calls", type=int, default=2000, help="requests per timed run")
    ap.add_argument("--rounds", type=int, default=5, help="timed runs per client")
    args = ap.parse_args()
    rows = import_rows(args.imports) + per_request_rows(args.calls, args.rounds)
    report("SDK", rows)


if __name__ == "__main__":
    main()
