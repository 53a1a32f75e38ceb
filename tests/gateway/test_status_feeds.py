"""What the gateway reports for status a person can plan with (issue 15): download progress
(bytes, rate, ETA) from a real HTTP server with a known size and rate, the autoscaler's last
decisions after a load change made through ``/_local/``, and a pipeline's newest execution.
Everything is read back through the SDK's types."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from budai import BudClient
from budai_gateway.testing import LocalGateway

from .conftest import wait_for

SIZE = 1_500_000
RATE = 300_000  # bytes per second the server sends: the download takes 5 s
CHUNK = RATE // 20


SENT: dict[str, float] = {}
"""What the server has sent so far: its start time and bytes (the rate it really achieved)."""


@pytest.fixture
def slow_server() -> Iterator[str]:
    """Serves SIZE bytes at RATE bytes per second, with a Content-Length."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(SIZE))
            self.end_headers()
            start, sent = time.monotonic(), 0
            SENT.update(start=start, sent=0)
            try:
                while sent < SIZE:
                    n = min(CHUNK, SIZE - sent)
                    self.wfile.write(b"w" * n)
                    sent += n
                    SENT["sent"] = sent
                    # Pace against the clock, so the average rate is RATE whatever the jitter.
                    time.sleep(max(0.0, start + sent / RATE - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/weights.bin"
    srv.shutdown()


@pytest.fixture
def bud(gw: LocalGateway) -> Iterator[BudClient]:
    with BudClient(api_key=gw.api_key, base_url=gw.url, max_retries=0) as client:
        yield client


def test_url_download_reports_bytes_rate_and_eta(bud: BudClient, slow_server: str) -> None:
    model = bud.models.create(name="slow", source="url", uri=slow_server)

    def midway() -> Any:
        m = bud.models.get(model.id)
        done = m.downloaded_bytes or 0
        # Past the first window (so the rate is measured) and well before the end.
        return m if m.status == "downloading" and SIZE * 0.35 <= done <= SIZE * 0.75 else None

    m = wait_for(midway, timeout=30, interval=0.1)
    # The rate the server really achieved (RATE unless the machine starved it).
    achieved = SENT["sent"] / (time.monotonic() - SENT["start"])
    assert achieved <= RATE * 1.05
    assert m.size_bytes == SIZE
    assert m.progress_percent == round(100.0 * (m.downloaded_bytes or 0) / SIZE, 1)
    assert m.bytes_per_second is not None and m.eta_seconds is not None
    # The gateway stores progress every 0.2 s, so what we read lags by up to that much.
    assert abs(m.bytes_per_second - achieved) <= 0.25 * achieved, (m.bytes_per_second, achieved)
    expected_eta = (SIZE - (m.downloaded_bytes or 0)) / achieved
    assert abs(m.eta_seconds - expected_eta) <= max(1.0, 0.3 * expected_eta), (
        m.eta_seconds,
        expected_eta,
    )
    done = wait_for(
        lambda: (x := bud.models.get(model.id)).status in ("available", "error") and x, 30
    )
    assert done.status == "available", done
    assert (done.downloaded_bytes, done.size_bytes) == (SIZE, SIZE)
    assert done.bytes_per_second is None and done.eta_seconds is None


def test_simulated_download_is_labelled_and_has_an_eta(bud: BudClient) -> None:
    model = bud.models.create(
        name="sim",
        source="hugging_face",
        uri="nobody/not-cached",
        metadata={"simulated_size_bytes": 10**15},
    )
    m = wait_for(lambda: (x := bud.models.get(model.id)).downloaded_bytes and x, 15)
    assert m.metadata["simulated_download"] is True
    assert m.bytes_per_second and m.eta_seconds and m.eta_seconds > 0
    assert m.eta_seconds == pytest.approx((10**15 - m.downloaded_bytes) / m.bytes_per_second, 0.01)


def test_autoscaler_decisions_after_a_load_change(bud: BudClient, gw: LocalGateway) -> None:
    model = bud.models.create(name="as", source="cloud", uri="s3://as")
    cpu = {c.name: c.id for c in bud.clusters.list()}["local-cpu"]
    dep = bud.deployments.create(
        model_id=model.id,
        cluster_id=cpu,
        resources={"cpu": "1", "memory": "1Gi"},
        auto_scaling={"enabled": True, "min_replicas": 1, "max_replicas": 4, "target_cpu": 50},
    )
    wait_for(lambda: bud.deployments.get(dep.id).status == "active", 30)
    # 5 req/s per replica at 100% cpu, so 2.5 at the 50% target: 9 req/s wants 4 replicas.
    gw.local("POST", f"/deployments/{dep.id}/load", {"requests_per_second": 9})
    up = wait_for(lambda: (d := bud.deployments.get(dep.id)).scaling_decisions and d, 30)
    first = up.scaling_decisions[-1]
    assert (first["from_replicas"], first["to_replicas"]) == (1, 4)
    assert first["metric"] == "requests_per_second"
    assert first["observed"] == pytest.approx(9.0, abs=0.5) and first["target"] == 2.5
    assert "scaled up from 1 to 4" in first["reason"]
    gw.local("POST", f"/deployments/{dep.id}/load", {"requests_per_second": 0})
    down = wait_for(
        lambda: len((d := bud.deployments.get(dep.id)).scaling_decisions) >= 2 and d, 30
    )
    last = down.scaling_decisions[-1]
    assert (last["from_replicas"], last["to_replicas"]) == (4, 1)
    assert last["time"] > first["time"]


def test_pipeline_reports_its_newest_execution(bud: BudClient) -> None:
    pipe = bud.pipelines.create(
        name="p-last", definition={"steps": [{"id": "a", "action": "log", "params": {}}]}
    )
    assert bud.pipelines.get(pipe.id).last_execution is None
    bud.executions.create(pipeline_id=pipe.id)
    second = bud.executions.create(pipeline_id=pipe.id)
    got = wait_for(
        lambda: (
            (p := bud.pipelines.get(pipe.id)).last_execution
            and p.last_execution["status"] == "completed"
            and p
        ),
        30,
    )
    assert got.last_execution["id"] == second.id
    assert got.last_execution["completed_at"] is not None
    listed = {p.id: p for p in bud.pipelines.list()}
    assert listed[pipe.id].last_execution["id"] == second.id


def test_hugging_face_cache_reports_real_bytes(tmp_path: Path) -> None:
    snap = tmp_path / "hub" / "models--acme--cached" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"\0" * 4321)
    with (
        LocalGateway(speed=20, env={"HF_HUB_CACHE": str(tmp_path / "hub")}) as gw,
        BudClient(api_key=gw.api_key, base_url=gw.url, max_retries=0) as bud,
    ):
        m = bud.models.create(name="cached", source="hugging_face", uri="acme/cached")
        assert m.status == "available"
        assert (m.downloaded_bytes, m.size_bytes) == (4321, 4321)
        assert m.bytes_per_second is None and m.eta_seconds is None
        assert "simulated_download" not in m.metadata
