"""Gateway settings: API keys, clusters, rate limits and timings, from defaults or a YAML file.

The CLI builds a :class:`Settings`; ``create_app`` takes it. Every simulated duration is divided
by ``speed`` at the moment it is used, so ``--speed 20`` makes a 2 s rollout take 0.1 s.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class ApiKey(BaseModel):
    """One API key: its project (the tenant its objects belong to) and what it may do.

    Scopes are ordered: ``read`` < ``admin`` (writes) < ``local`` (admin plus the ``/_local/``
    controls, which see every project; no key has it unless the config says so).
    """

    model_config = ConfigDict(extra="forbid")
    key: str = Field(repr=False)
    scope: Literal["read", "admin", "local"] = "admin"
    name: str = "key"
    project: str = Field(
        default="default", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )

    def scopes(self) -> list[str]:
        """Every scope this key holds, weakest first."""
        order = ["read", "admin", "local"]
        return order[: order.index(self.scope) + 1]


class NodeSpec(BaseModel):
    """Capacity of one node of a cluster."""

    model_config = ConfigDict(extra="forbid")
    cpu: float = 8
    memory_gb: float = 32
    gpu: int = 0
    gpu_type: str | None = None


class ClusterSpec(BaseModel):
    """A cluster seeded at start (and after a reset)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    provider: Literal["aws", "azure", "onpremise"] = "onpremise"
    region: str = "local"
    node_count: int = 2
    node: NodeSpec = Field(default_factory=NodeSpec)
    kubernetes_version: str = "1.31.0"


class RateLimit(BaseModel):
    """Token bucket per API key: ``capacity`` at once, refilled at ``refill_per_second``."""

    model_config = ConfigDict(extra="forbid")
    capacity: int = 1000
    refill_per_second: float = 500.0


class Timings(BaseModel):
    """Simulated durations in seconds at speed 1."""

    model_config = ConfigDict(extra="forbid")
    deploy_seconds: float = 3.0
    scale_seconds: float = 2.0
    teardown_seconds: float = 1.0
    model_delete_seconds: float = 0.5
    simulated_download_bytes_per_second: float = 200_000_000
    simulated_model_size_bytes: int = 1_000_000_000
    autoscale_interval_seconds: float = 10.0
    autoscale_window_seconds: float = 30.0
    requests_per_replica_per_second: float = 5.0
    tick_seconds: float = 0.05


def default_clusters() -> list[ClusterSpec]:
    return [
        ClusterSpec(
            name="local-cpu",
            provider="onpremise",
            region="local",
            node_count=3,
            node=NodeSpec(cpu=8, memory_gb=32),
        ),
        ClusterSpec(
            name="local-gpu",
            provider="aws",
            region="us-east-1",
            node_count=2,
            node=NodeSpec(cpu=32, memory_gb=128, gpu=4, gpu_type="A100"),
        ),
    ]


class Settings(BaseModel):
    """Everything the gateway needs to start."""

    model_config = ConfigDict(extra="forbid")
    db_path: str = "budai-gateway.db"
    data_dir: str | None = None
    api_keys: list[ApiKey] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=default_clusters)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    timings: Timings = Field(default_factory=Timings)
    speed: float = Field(default=1.0, gt=0)
    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 1_048_576
    max_pipeline_steps: int = 500
    idempotency_ttl_seconds: float = 86_400.0
    hf_cache_dir: str | None = None

    def resolved_data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir)
        if self.db_path == ":memory:":
            import tempfile

            return Path(tempfile.mkdtemp(prefix="budai-gateway-"))
        return Path(self.db_path + ".data")


def generate_key() -> str:
    return "bud_local_" + secrets.token_urlsafe(24)


def load_config(path: str | None, overrides: dict[str, Any]) -> Settings:
    """Merge a YAML config file with command-line overrides (``None`` values are ignored)."""
    data: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError("config file must hold a mapping")
        data.update(loaded)
        keys = data.get("api_keys")
        if isinstance(keys, list):
            data["api_keys"] = [{"key": k} if isinstance(k, str) else k for k in keys]
    for k, v in overrides.items():
        if v is not None:
            data[k] = v
    return Settings.model_validate(data)
