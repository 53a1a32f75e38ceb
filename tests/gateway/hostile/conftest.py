"""Fixtures of the hostile-input suite: one gateway with small, known limits, an attacker's
HTTP listener on loopback, and a watch that samples ``/health`` while a probe runs.

Every probe asserts the exact refusal, that ``/health`` kept answering within 100 ms (best of
each burst of three back-to-back samples, so one scheduler hiccup on a shared machine is not a
failure but a blocked event loop is), and, for refusals, that the API state did not change.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from budai_gateway.testing import LocalGateway, free_port

UPSTREAM_KEY = "upstream-key-from-the-config-file"
HEALTH_BOUND = 0.100  # seconds: the requirement


class Attacker:
    """A threaded HTTP server that plays whatever the probe needs; it records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stop = threading.Event()
        attacker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> bytes:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                attacker.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                    }
                )
                return body

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if "Content-Length" not in (headers or {}):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _hang(self) -> None:
                attacker.stop.wait(30)

            def do_POST(self) -> None:
                body = self._record()
                if self.path.endswith("/chat/completions"):
                    req = json.loads(body or b"{}")
                    if "fail" in json.dumps(req.get("messages")):
                        self._send(500, b'{"error": "SECRET-ECHO internal detail of the target"}')
                        return
                    if "huge" in json.dumps(req.get("messages")):
                        self._send(200, b'{"choices": [], "pad": "' + b"x" * 300_000 + b'"}')
                        return
                    answer = {
                        "id": "up",
                        "object": "chat.completion",
                        "created": 1,
                        "model": req.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "hi"},
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    self._send(
                        200, json.dumps(answer).encode(), {"Content-Type": "application/json"}
                    )
                    return
                self._send(404, b"{}")

            def do_GET(self) -> None:
                self._record()
                port = attacker.port
                if self.path == "/file.bin":
                    self._send(200, b"f" * 1000)
                elif self.path == "/huge-length":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**13))
                    self.end_headers()
                    self.wfile.write(b"x" * 10)
                    self._hang()
                elif self.path == "/stall":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    self._hang()
                elif self.path == "/bomb.bin":
                    self._send(200, attacker.bomb, {"Content-Encoding": "gzip"})
                elif self.path == "/redirect-same":
                    self._send(302, b"", {"Location": "/file.bin"})
                elif self.path == "/redirect-other":
                    self._send(302, b"", {"Location": f"http://localhost:{port}/file.bin"})
                else:
                    self._send(404, b"")

        self.bomb = gzip.compress(b"\0" * 20_000_000)  # ~20 KB on the wire, 20 MB inflated
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class HealthWatch:
    """Samples ``GET /health`` in bursts of three while a probe runs."""

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url
        self.bursts: list[list[float]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as c:
            while not self._stop.is_set():
                burst = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    try:
                        r = c.get(self.root_url + "/health")
                        if r.status_code != 200:
                            self.failures.append(f"/health answered {r.status_code}")
                    except httpx.HTTPError as exc:
                        self.failures.append(f"/health failed: {exc!r}")
                    burst.append(time.perf_counter() - t0)
                self.bursts.append(burst)
                self._stop.wait(0.02)

    def _wait_bursts(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.bursts) < n and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.005)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        self._wait_bursts(1)  # sampling is under way before the probe starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._wait_bursts(len(self.bursts) + 1)  # and one more burst once it is done
        self._stop.set()
        self._thread.join(10)
        if exc[0] is None:
            self.check()

    def worst(self) -> float:
        """The slowest burst's best sample (seconds)."""
        return max(min(b) for b in self.bursts)

    def check(self) -> None:
        assert not self.failures, self.failures[:3]
        assert len(self.bursts) >= 2, "the probe ended before /health was sampled"
        assert self.worst() < HEALTH_BOUND, (
            f"/health took {self.worst() * 1000:.0f} ms (best of a burst of 3) while the probe ran"
        )


HOSTILE_LIMITS: dict[str, Any] = {
    "template_time_seconds": 1.0,
    "template_max_string_bytes": 200_000,
    "max_step_output_bytes": 100_000,
    "max_execution_output_bytes": 250_000,
    "max_active_executions": 5,
    "max_stored_executions": 20,
    "max_step_restarts": 1,
    "local_measure_seconds": 1.0,
    "download_max_bytes": 10_000_000,
    "download_stall_seconds": 1.0,
    "chat_max_n": 4,
    "chat_max_tokens": 512,
    "chat_max_prompt_bytes": 100_000,
    "chat_max_reply_bytes": 65_536,
    "upstream_max_response_bytes": 100_000,
    "header_timeout_seconds": 1.0,
    "body_timeout_seconds": 1.0,
    "max_half_open_connections": 32,
    "max_json_depth": 32,
    "auth_failures": {"capacity": 20, "refill_per_second": 5},
}


@pytest.fixture(scope="session")
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    yield a
    a.close()


@pytest.fixture(scope="session")
def hostile_gateway(
    attacker: Attacker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalGateway]:
    tmp = tmp_path_factory.mktemp("hostile")
    key_file = tmp / "upstream.key"
    key_file.write_text(UPSTREAM_KEY)
    port = free_port()
    here = f"http://127.0.0.1:{port}/v1"
    config = {
        "upstreams": [
            # The one the operator meant: the attacker's listener stands in for a real server.
            {
                "name": "target",
                "url": attacker.url + "/v1",
                "api_key_file": str(key_file),
                "allow_loopback": True,
            },
            # A name that resolves to loopback, without the explicit yes.
            {"name": "sneaky", "url": f"http://localhost:{attacker.port}/v1"},
            # The gateway itself, even with loopback allowed.
            {"name": "itself", "url": here, "allow_loopback": True},
        ],
        "limits": {**HOSTILE_LIMITS, "local_roots": [str(tmp / "models"), "/usr"]},
        # The attacker's listener stands in for the internet, so it is on loopback: allowed
        # here explicitly (test_egress.py checks the default refuses it).
        "egress": {"allow_loopback": True},
    }
    with LocalGateway(speed=20, port=port, config=config) as gw:
        gw.local_root = tmp / "models"  # type: ignore[attr-defined]
        yield gw


@pytest.fixture
def hgw(hostile_gateway: LocalGateway) -> LocalGateway:
    hostile_gateway.reset()
    hostile_gateway.clear_faults()
    return hostile_gateway


@pytest.fixture
def admin(hgw: LocalGateway) -> Iterator[httpx.Client]:
    with hgw.client() as c:
        yield c


@pytest.fixture
def reader(hgw: LocalGateway) -> Iterator[httpx.Client]:
    with hgw.client(hgw.read_key) as c:
        yield c


def watch(gw: LocalGateway) -> HealthWatch:
    return HealthWatch(gw.root_url)


def snapshot(c: httpx.Client) -> dict[str, Any]:
    """Everything the API serves, to show a refused request changed nothing."""
    out: dict[str, Any] = {}
    for kind in ("models", "deployments", "pipelines", "executions", "clusters"):
        r = c.get(f"/{kind}", params={"limit": 100})
        assert r.status_code == 200, r.text
        out[kind] = [
            {k: v for k, v in d.items() if k not in ("updated_at",)} for d in r.json()["data"]
        ]
    return out


def wait_done(c: httpx.Client, path: str, statuses: set[str], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = c.get(path).json()
        if doc.get("status") in statuses:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {statuses}: {doc}")


def run_pipeline(
    c: httpx.Client,
    steps: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    timeout: float = 20,
) -> dict[str, Any]:
    """Create a pipeline, run it, and return the finished execution."""
    r = c.post(
        "/pipelines", json={"name": f"p-{time.monotonic_ns()}", "definition": {"steps": steps}}
    )
    assert r.status_code == 201, r.text
    e = c.post("/executions", json={"pipeline_id": r.json()["id"], "params": params or {}})
    assert e.status_code == 201, e.text
    result: dict[str, Any] = wait_done(
        c, f"/executions/{e.json()['id']}", {"completed", "failed", "cancelled"}, timeout
    )
    return result


def local_root(gw: LocalGateway) -> Path:
    root: Path = gw.local_root  # type: ignore[attr-defined]
    root.mkdir(parents=True, exist_ok=True)
    return root
