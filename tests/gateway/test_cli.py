"""``budai-gateway serve`` on its own: defaults, key handling, config file, :memory: database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from budai_gateway.testing import free_port


@contextmanager
def serve(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = cwd / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "budai_gateway", "serve", "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_alone_prints_a_working_admin_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BUD_API_KEY"}
    with serve([], env, tmp_path) as (url, log):
        text = log.read_text()
        key = text.split("admin API key: ")[1].split()[0]
        r = httpx.get(url + "/clusters", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        names = {c["name"] for c in r.json()["data"]}
        assert names == {"local-cpu", "local-gpu"}
    assert (tmp_path / "budai-gateway.db").exists()  # default database in the working folder


def test_key_from_environment_is_never_printed(tmp_path: Path) -> None:
    secret = "bud_env_secret_value_123"
    env = {**os.environ, "BUD_API_KEY": secret}
    with serve(["--db", ":memory:"], env, tmp_path) as (url, log):
        r = httpx.get(url + "/models", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200
        r = httpx.post(
            url + "/models",
            headers={"Authorization": f"Bearer {secret}"},
            json={"name": "m", "source": "cloud", "uri": "x"},
        )
        assert r.status_code == 201
    assert secret not in log.read_text()


def test_config_file_keys_scopes_and_clusters(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        "api_keys:\n"
        "  - {key: admin-k, scope: admin}\n"
        "  - {key: read-k, scope: read}\n"
        "clusters:\n"
        "  - {name: edge, provider: azure, region: westeurope, node_count: 1,\n"
        "     node: {cpu: 4, memory_gb: 8, gpu: 1, gpu_type: L4}}\n"
        "rate_limit: {capacity: 2, refill_per_second: 0.1}\n",
        encoding="utf-8",
    )
    with serve(
        ["--config", str(cfg), "--db", str(tmp_path / "x.db")], dict(os.environ), tmp_path
    ) as (
        url,
        _,
    ):
        r = httpx.get(url + "/clusters", headers={"Authorization": "Bearer read-k"})
        assert [c["name"] for c in r.json()["data"]] == ["edge"]
        assert r.headers["x-ratelimit-limit"] == "2"
        r = httpx.post(url + "/models", headers={"Authorization": "Bearer read-k"}, json={})
        assert r.status_code == 403
        r = httpx.get(url + "/clusters", headers={"Authorization": "Bearer read-k"})
        assert r.status_code == 429  # the read key's bucket (2) is spent
        r = httpx.get(url + "/clusters", headers={"Authorization": "Bearer admin-k"})
        assert r.status_code == 200  # buckets are per key
