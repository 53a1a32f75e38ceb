"""The gateway under hostile input: ``/health`` latency while attacks run, and what the
budgets cost.

1. ``/health`` p50/p99/max sampled while a battery of hostile probes runs against one gateway
   (the attacks of issue 14: huge powers and strings in templates, loop bombs, a slow
   template, wide streamed chats, a 300-connection half-open flood, slowloris, failed
   authentication, a large ``local`` tree, a gzip bomb and a stalled download). Baseline: the
   same sampling on the same gateway with nothing else running, in the same run.
2. Throughput with budgets on (the defaults) against a gateway with them off
   (``limits.template_budgets: false`` and chat limits raised out of reach): chat completions
   per second, and a 200-step pipeline whose steps render templates, once with plain lookups
   (evaluated in-process) and once with loops (evaluated with budgets: an in-process slice, then
   the worker processes).

    python benchmarks/bench_hostile.py [--seconds N] [--requests N] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.server
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, report

from budai_gateway.testing import LocalGateway

OPEN_LIMITS = {
    "template_budgets": False,
    "chat_max_n": 1000,
    "chat_max_tokens": 10**9,
    "chat_max_prompt_bytes": 10**9,
    "chat_max_reply_bytes": 10**12,
}
FAST = {"rate_limit": {"capacity": 1_000_000, "refill_per_second": 1_000_000}}


class Sampler:
    """GET /health back to back on one keep-alive connection; latencies in seconds."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.samples: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as c:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    if c.get(self.root + "/health").status_code != 200:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1
                self.samples.append(time.perf_counter() - t0)
                self._stop.wait(0.005)

    def __enter__(self) -> Sampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(15)

    def pct(self, p: float) -> float:
        s = sorted(self.samples)
        return s[min(len(s) - 1, int(p * len(s)))] * 1000


def attacker_server(tmp: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    bomb = gzip.compress(b"\0" * 20_000_000)
    stop = threading.Event()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/bomb":
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(bomb)))
                self.end_headers()
                self.wfile.write(bomb)
            else:
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self.wfile.write(b"x")
                self.wfile.flush()
                stop.wait(20)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def make_deployment(c: httpx.Client, name: str) -> None:
    m = c.post("/models", json={"name": name + "-m", "source": "cloud", "uri": "x"}).json()
    cid = {x["name"]: x["id"] for x in c.get("/clusters").json()["data"]}["local-cpu"]
    d = c.post("/deployments", json={"model_id": m["id"], "cluster_id": cid, "name": name})
    while c.get(f"/deployments/{d.json()['id']}").json()["status"] != "active":
        time.sleep(0.05)


def run_execution(c: httpx.Client, steps: list[dict[str, Any]], params: Any) -> dict[str, Any]:
    p = c.post(
        "/pipelines", json={"name": f"p{time.monotonic_ns()}", "definition": {"steps": steps}}
    ).json()
    e = c.post("/executions", json={"pipeline_id": p["id"], "params": params}).json()
    while True:
        cur: dict[str, Any] = c.get(f"/executions/{e['id']}").json()
        if cur["status"] in ("completed", "failed", "cancelled"):
            return cur
        time.sleep(0.02)


def attacks(gw: LocalGateway, attacker: str, seconds: float, only: str | None = None) -> int:
    """Run the hostile probes in threads for ``seconds``; the number of probes sent."""
    deadline = time.monotonic() + seconds
    count = [0]

    def templates() -> None:
        bombs = [
            "{{ 10**(10**8) }}",
            "{{ 'a' * 50000000 }}",
            "{% for a in params.s * 1000 %}{% for b in params.s * 1000 %}{% endfor %}{% endfor %}",
            "{% for a in params.s * 45000 %}{{ params.t | wordcount }}{% endfor %}",
        ]
        with gw.client() as c:
            while time.monotonic() < deadline:
                for b in bombs:
                    run_execution(
                        c,
                        [{"id": "t", "action": "transform", "params": {"value": b}}],
                        {"s": "ab", "t": "w " * 20000},
                    )
                    count[0] += 1

    def chat() -> None:
        body = {
            "model": "hostile",
            "n": 8,
            "stream": True,
            "messages": [{"role": "user", "content": "word " * 50_000}],
        }
        with gw.client(gw.read_key) as c:
            while time.monotonic() < deadline:
                with c.stream("POST", "/chat/completions", json=body) as s:
                    for _ in s.iter_bytes():
                        pass
                count[0] += 1

    def connections() -> None:
        while time.monotonic() < deadline:
            socks = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(300)]
            slow = socket.create_connection(("127.0.0.1", gw.port))
            for ch in b"GET /health HTTP/1.1\r\n":
                try:
                    slow.sendall(bytes([ch]))
                except OSError:
                    break
                time.sleep(0.05)
            for s in [*socks, slow]:
                s.close()
            count[0] += 301

    def auth_and_models() -> None:
        with httpx.Client(base_url=gw.url, timeout=10) as anon, gw.client() as c:
            i = 0
            while time.monotonic() < deadline:
                anon.get("/models", headers={"Authorization": "Bearer guess"})
                for source, uri in [
                    ("local", "/usr"),
                    ("local", "/etc/shadow"),
                    ("url", attacker + "/bomb"),
                    ("url", attacker + "/stall"),
                ]:
                    i += 1
                    c.post("/models", json={"name": f"h{i}", "source": source, "uri": uri})
                count[0] += 5
                time.sleep(0.1)

    kinds = {
        "templates": templates,
        "chat": chat,
        "connections": connections,
        "auth_and_models": auth_and_models,
    }
    threads = [
        threading.Thread(target=f, daemon=True) for k, f in kinds.items() if only in (None, k)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    return count[0]


def chat_rate(gw: LocalGateway, requests: int, conc: int = 16) -> float:
    async def go() -> float:
        body = {"model": "tp", "messages": [{"role": "user", "content": "hello"}]}
        headers = {"Authorization": f"Bearer {gw.api_key}"}
        lim = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
        async with httpx.AsyncClient(base_url=gw.url, headers=headers, limits=lim) as c:
            queue = iter(range(requests))

            async def worker() -> None:
                for _ in queue:
                    r = await c.post("/chat/completions", json=body)
                    assert r.status_code == 200, r.text

            for _ in range(50):
                await c.post("/chat/completions", json=body)
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conc)))
            return requests / (time.perf_counter() - t0)

    return asyncio.run(go())


def pipeline_rate(gw: LocalGateway, template: str, n: int = 200) -> float:
    """Steps per second of an ``n``-step chain whose steps render ``template``."""
    steps = [
        {
            "id": f"s{i}",
            "action": "transform",
            "params": {"value": template},
            "depends_on": [f"s{i - 1}"] if i else [],
        }
        for i in range(n)
    ]
    with gw.client() as c:
        ex = run_execution(c, steps, {"xs": list(range(20)), "name": "bench"})
    assert ex["status"] == "completed", ex["error"]
    return n / float(ex["duration_seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=None, help="run one kind of attack (to find a slow one)")
    ap.add_argument("--no-throughput", action="store_true")
    args = ap.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        srv, attacker = attacker_server(Path(tmp))
        # The attacker's server is on loopback: url downloads reach it only with the opt-in.
        config = {**FAST, "limits": {"local_roots": ["/usr"]}, "egress": {"allow_loopback": True}}
        with LocalGateway(speed=20, config=config) as gw:
            with gw.client() as c:
                make_deployment(c, "hostile")
            with Sampler(gw.root_url) as idle:
                time.sleep(min(args.seconds, 5))
            with Sampler(gw.root_url) as attacked:
                probes = attacks(gw, attacker, args.seconds, args.only)
            log_lines = len(gw.logs().splitlines())
        srv.shutdown()
        rows += [
            Row(
                "/health p50 under attack",
                attacked.pct(0.50),
                idle.pct(0.50),
                "ms",
                "-",
                "idle, same gateway",
            ),
            Row(
                "/health p99 under attack",
                attacked.pct(0.99),
                idle.pct(0.99),
                "ms",
                "< 100 ms",
                "idle, same gateway",
            ),
            Row(
                "/health max under attack",
                max(attacked.samples) * 1000,
                max(idle.samples) * 1000,
                "ms",
                "-",
                "idle, same gateway",
            ),
        ]
        print(
            f"({probes} hostile probes in {args.seconds:g} s; {len(attacked.samples)} /health "
            f"samples, {attacked.errors} failed; gateway log {log_lines} lines)"
        )

        if args.no_throughput:
            report("local gateway under hostile input", rows)
            return
        simple = "{{ params.name }}-{{ params.xs | length }}"
        looped = "{% for x in params.xs %}{{ x * 2 }},{% endfor %}"
        rates: dict[str, dict[str, float]] = {"on": {}, "off": {}}
        with (
            LocalGateway(speed=100, config=FAST) as on,
            LocalGateway(speed=100, config={**FAST, "limits": OPEN_LIMITS}) as off,
        ):
            for g in (on, off):
                with g.client() as c:
                    make_deployment(c, "tp")
                pipeline_rate(g, looped, 20)  # warm-up (starts the template workers)
            for _ in range(args.runs):  # interleaved rounds, best of each
                for name, g in (("on", on), ("off", off)):
                    r = rates[name]
                    r["chat"] = max(r.get("chat", 0.0), chat_rate(g, args.requests))
                    r["simple"] = max(r.get("simple", 0.0), pipeline_rate(g, simple))
                    r["looped"] = max(r.get("looped", 0.0), pipeline_rate(g, looped))
        for key, label, unit in [
            ("chat", "chat completions/s with budgets", "req/s"),
            ("simple", "pipeline steps/s, lookup templates, with budgets", "steps/s"),
            ("looped", "pipeline steps/s, loop templates (budgeted), with budgets", "steps/s"),
        ]:
            rows.append(
                Row(label, rates["on"][key], rates["off"][key], unit, "within 10 %", "budgets off")
            )
    report("local gateway under hostile input", rows)
    print(f"({os.cpu_count()} cores; throughput best of {args.runs} interleaved rounds)")


if __name__ == "__main__":
    main()
