"""``LocalGateway``: start a real gateway process on a free loopback port, for tests and demos.

    with LocalGateway(speed=20) as gw:
        httpx.get(gw.url + "/models", headers={"Authorization": f"Bearer {gw.api_key}"})

The process runs ``python -m budai_gateway serve`` with a temporary database, an admin key that
also holds the ``local`` scope (for the ``/_local/`` controls) and a read-only key, both in the
``default`` project (``config={"api_keys": [...]}`` adds keys of other projects); ``kill()``
sends SIGKILL and ``restart()`` brings it back on the same port and database, which is how
durability is tested.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalGateway:
    """A gateway subprocess. Attributes: ``url`` (…/v1), ``root_url``, ``api_key`` (admin),
    ``read_key``, ``db_path``, ``process``."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        port: int | None = None,
        db_path: str | None = None,
        extra_args: list[str] | None = None,
        config: dict[str, Any] | None = None,
        startup_timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self._tmp = tempfile.mkdtemp(prefix="budai-gw-")
        self.db_path = db_path or str(Path(self._tmp) / "gateway.db")
        self.port = port or free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.url = self.root_url + "/v1"
        self.api_key = "bud_test_admin_" + secrets.token_hex(12)
        self.read_key = "bud_test_read_" + secrets.token_hex(12)
        self.speed = speed
        self.extra_args = list(extra_args or [])
        self.config = dict(config or {})
        self.startup_timeout = startup_timeout
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self._tmp) / "gateway.log"
        self._client = httpx.Client(timeout=30)

    @property
    def models_dir(self) -> Path:
        """A folder ``local`` model sources may point into (one of the default local roots)."""
        data = self.config.get("data_dir") or self.db_path + ".data"
        return Path(data) / "models"

    def __repr__(self) -> str:
        return f"LocalGateway(url={self.url!r}, db_path={self.db_path!r})"

    # -- process -------------------------------------------------------------------------------

    def start(self) -> LocalGateway:
        # Keys go in a private config file, not argv, so they never show in a process list.
        config_path = Path(self._tmp) / "gateway.yaml"
        config = {
            **self.config,
            "api_keys": [
                # The harness key drives the /_local/ controls, so it holds the 'local' scope.
                {"key": self.api_key, "scope": "local", "name": "admin"},
                {"key": self.read_key, "scope": "read", "name": "read"},
                *self.config.get("api_keys", []),
            ],
        }
        config_path.touch(mode=0o600)
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        cmd = [
            sys.executable, "-m", "budai_gateway", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--db", self.db_path,
            "--config", str(config_path), "--speed", str(self.speed), "--log-level", "warning",
            *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, **(self.env or {})}
        env.pop("BUD_API_KEY", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gateway exited with {self.process.returncode}:\n{self.logs()[-4000:]}"
                )
            try:
                if self._client.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, like a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> LocalGateway:
        self.kill()
        self.stop()
        for _ in range(100):  # the port may linger briefly after a kill
            try:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def close(self) -> None:
        self.stop()
        self._client.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- controls ------------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def local(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        """Call a ``/_local/`` control with the admin key; raises on a non-2xx answer."""
        if not path.startswith("/_local"):
            path = "/_local/" + path.lstrip("/")
        resp = self._client.request(method, self.root_url + path, json=json, headers=self.headers)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text}")
        result: dict[str, Any] = resp.json()
        return result

    def reset(self) -> None:
        self.local("POST", "/reset")

    def add_fault(
        self,
        path: str = "*",
        method: str = "*",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        latency: float | None = None,
        drop: bool = False,
        drop_after: bool = False,
        count: int | None = None,
        probability: float | None = None,
    ) -> dict[str, Any]:
        """Add a fault rule; exactly one of status/drop/drop_after (latency may come alone)."""
        action = (
            "drop" if drop else "drop_after" if drop_after else "status" if status else "latency"
        )
        body: dict[str, Any] = {"method": method, "path": path, "action": action}
        if status is not None:
            body["status"] = status
        if retry_after is not None:
            body["retry_after"] = retry_after
        if latency is not None:
            body["latency_seconds"] = latency
        if count is not None:
            body["count"] = count
        if probability is not None:
            body["probability"] = probability
        return self.local("POST", "/faults", body)

    def clear_faults(self) -> None:
        self.local("DELETE", "/faults")

    def set_speed(self, factor: float) -> None:
        self.local("POST", "/speed", {"factor": factor})

    def client(self, key: str | None = None) -> httpx.Client:
        """A raw httpx client on ``url`` with a key (admin by default)."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key or self.api_key}"},
            timeout=30,
        )
