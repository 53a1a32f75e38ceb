"""Local gateway figures: pipeline engine overhead and chat completions per second.

1. A 1,000-step pipeline of ``log`` steps (one root, a fan-out of 499 and a chain of 500) run
   on a real gateway process; total time and time per step. Baseline: the same DAG run by bare
   asyncio tasks in this process with one SQLite commit per step state change (what any durable
   engine must at least do), so the ratio shows the engine's own cost.
2. Chat completions per second through the built-in engine with the SDK's ``AsyncBudClient``
   (raw ``httpx.AsyncClient`` too), against a trivial uvicorn endpoint returning a fixed
   completion, started the same way in the same run.

    python benchmarks/bench_gateway.py [--runs N] [--requests N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, report

from budai_gateway.testing import LocalGateway, free_port

FAN = 499
CHAIN = 500


def definition() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"id": "root", "action": "log", "params": {"message": "go"}}]
    steps += [
        {"id": f"f{i}", "action": "log", "depends_on": ["root"], "params": {"message": f"f{i}"}}
        for i in range(FAN)
    ]
    prev = "root"
    for i in range(CHAIN):
        steps.append(
            {"id": f"c{i}", "action": "log", "depends_on": [prev], "params": {"message": f"c{i}"}}
        )
        prev = f"c{i}"
    return {"steps": steps}


def run_pipeline(gw: LocalGateway, runs: int) -> tuple[float, float]:
    """Median (server duration, client wall time) over ``runs`` executions."""
    server: list[float] = []
    wall: list[float] = []
    with gw.client() as c:
        r = c.post("/pipelines", json={"name": "bench-1000", "definition": definition()})
        r.raise_for_status()
        pipe_id = r.json()["id"]
        for _ in range(runs):
            t0 = time.perf_counter()
            ex = c.post("/executions", json={"pipeline_id": pipe_id}).json()
            while True:
                cur = c.get(f"/executions/{ex['id']}").json()
                if cur["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.02)
            wall.append(time.perf_counter() - t0)
            assert cur["status"] == "completed", cur["error"]
            assert len(cur["steps"]) == FAN + CHAIN + 1
            server.append(float(cur["duration_seconds"]))
    return statistics.median(server), statistics.median(wall)


async def baseline_dag(db: str) -> float:
    """The same DAG with bare asyncio tasks and one SQLite commit per state change."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS s (id TEXT PRIMARY KEY, status TEXT)")
    conn.execute("DELETE FROM s")

    def save(sid: str, status: str) -> None:
        conn.execute("INSERT OR REPLACE INTO s VALUES (?, ?)", (sid, status))

    async def step(sid: str) -> None:
        save(sid, "running")
        await asyncio.sleep(0)
        save(sid, "completed")

    t0 = time.perf_counter()
    await step("root")
    fan = [asyncio.create_task(step(f"f{i}")) for i in range(FAN)]

    async def chain() -> None:
        for i in range(CHAIN):
            await step(f"c{i}")

    await asyncio.gather(*fan, chain())
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


TRIVIAL_APP = textwrap.dedent(
    """
    import json, sys
    import uvicorn
    BODY = json.dumps({"id": "chatcmpl-x", "object": "chat.completion", "created": 0,
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": "Echo: hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}}).encode()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": BODY})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
    """
)


async def blast(send_one: Any, requests: int, concurrency: int) -> float:
    """Requests per second for ``requests`` calls with ``concurrency`` in flight."""
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            await send_one()

    for _ in range(min(50, requests)):  # warm-up: open the connections
        await send_one()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - t0)


async def chat_rates(
    gw: LocalGateway, base_url: str, requests: int, conc: int, rounds: int
) -> dict[str, float]:
    """Best requests/s of each contender over ``rounds`` interleaved rounds (a shared machine
    is noisy; interleaving gives each the same chances)."""
    messages: Any = [{"role": "user", "content": "hello"}]
    body = {"model": "bench", "messages": messages}
    headers = {"Authorization": f"Bearer {gw.api_key}"}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    out: dict[str, float] = {}
    try:
        from budai import AsyncBudClient
    except ImportError:
        AsyncBudClient = None
    async with (
        httpx.AsyncClient(base_url=gw.url, headers=headers, limits=limits) as gc,
        httpx.AsyncClient(base_url=base_url, limits=limits) as bc,
    ):

        async def one() -> None:
            r = await gc.post("/chat/completions", json=body)
            assert r.status_code == 200, r.text

        async def base_one() -> None:
            r = await bc.post("/chat/completions", json=body)
            assert r.status_code == 200, r.text

        contenders: dict[str, Any] = {"gateway_httpx": one, "baseline_httpx": base_one}
        sdk = None
        if AsyncBudClient is not None:
            sdk = AsyncBudClient(api_key=gw.api_key, base_url=gw.url, max_retries=0)

            async def sdk_one() -> None:
                assert sdk is not None
                await sdk.chat.completions.create(model="bench", messages=messages)

            contenders["gateway_sdk"] = sdk_one
        try:
            for _ in range(rounds):
                for name, fn in contenders.items():
                    out[name] = max(out.get(name, 0.0), await blast(fn, requests, conc))
        finally:
            if sdk is not None:
                await sdk.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalGateway(
            speed=100,
            config={
                "max_pipeline_steps": 1000,
                "rate_limit": {"capacity": 1_000_000, "refill_per_second": 1_000_000},
            },
        ) as gw,
    ):
        server_s, wall_s = run_pipeline(gw, args.runs)
        base_s = min(asyncio.run(baseline_dag(str(Path(tmp) / "base.db"))) for _ in range(3))

        with gw.client() as c:
            model = c.post("/models", json={"name": "bench-m", "source": "cloud", "uri": "x"})
            clusters = {x["name"]: x["id"] for x in c.get("/clusters").json()["data"]}
            dep = c.post(
                "/deployments",
                json={
                    "model_id": model.json()["id"],
                    "cluster_id": clusters["local-cpu"],
                    "name": "bench",
                },
            ).json()
            while c.get(f"/deployments/{dep['id']}").json()["status"] != "active":
                time.sleep(0.05)
        port = free_port()
        trivial = subprocess.Popen([sys.executable, "-c", TRIVIAL_APP, str(port)])
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            for _ in range(200):
                try:
                    httpx.post(base_url + "/chat/completions", json={})
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            rates = asyncio.run(
                chat_rates(gw, base_url, args.requests, args.concurrency, args.rounds)
            )
        finally:
            trivial.terminate()
            trivial.wait(10)

    steps = FAN + CHAIN + 1
    rows = [
        Row(
            "pipeline 1,000 log steps: engine time",
            server_s,
            base_s,
            "s",
            "-",
            "asyncio + sqlite commit per step",
        ),
        Row("pipeline 1,000 log steps: client wall time", wall_s, None, "s", "-"),
        Row(
            "pipeline per-step overhead",
            server_s / steps * 1000,
            base_s / steps * 1000,
            "ms",
            "< 5 ms",
            "asyncio + sqlite commit per step",
        ),
        Row(
            "chat completions/s (built-in, raw httpx)",
            rates["gateway_httpx"],
            rates["baseline_httpx"],
            "req/s",
            "-",
            "trivial uvicorn endpoint",
        ),
    ]
    if "gateway_sdk" in rates:
        rows.append(
            Row(
                "chat completions/s (built-in, AsyncBudClient)",
                rates["gateway_sdk"],
                rates["baseline_httpx"],
                "req/s",
                "-",
                "trivial uvicorn endpoint",
            )
        )
    report("local gateway", rows)
    print(
        f"(concurrency {args.concurrency}, {args.requests} requests x {args.rounds} rounds, "
        f"best of each; {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
