"""Gateway settings: API keys, clusters, rate limits and timings, from defaults or a YAML file.

The CLI builds a :class:`Settings`; ``create_app`` takes it. Every simulated duration is divided
by ``speed`` at the moment it is used, so ``--speed 20`` makes a 2 s rollout take 0.1 s.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from budai_gateway.egress import HostRule


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


class Upstream(BaseModel):
    """An OpenAI-compatible server that models may forward to, by ``name``.

    Model metadata names an upstream (``metadata.upstream``); it never chooses the URL, an
    environment variable or a file. The key comes from ``api_key_env`` or ``api_key_file`` of
    this entry (the operator's config), never from a request.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    url: str = Field(pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    api_key_env: str | None = None
    api_key_file: str | None = None
    # Loopback and link-local targets (a vLLM or Ollama on this machine) need an explicit yes;
    # without it a DNS name that resolves there is refused at request time.
    allow_loopback: bool = False
    allow_link_local: bool = False
    timeout_seconds: float = Field(default=120.0, gt=0)


class Egress(BaseModel):
    """Where connections chosen by tenant input may go: ``http_request`` steps and ``url``
    model sources (see :mod:`budai_gateway.egress`). Upstreams carry their own flags.

    Every address a name resolves to is judged, on every connection (redirects too); a refusal
    names the setting that would allow it. ``deny_hosts`` wins over ``allow_hosts``, which wins
    over the address classes.
    """

    model_config = ConfigDict(extra="forbid")
    allow_loopback: bool = False  # 127.0.0.0/8, ::1 and 0.0.0.0/:: (this machine's services)
    allow_link_local: bool = False  # 169.254.0.0/16, fe80::/10 (cloud metadata lives here)
    allow_private: bool = True  # 10/8, 172.16/12, 192.168/16, fc00::/7 and other non-global
    allow_gateway: bool = False  # this gateway's own port (its API, unauthenticated loops)
    # Names (exact), addresses or CIDR networks, optionally with :port ("[::1]:8080").
    allow_hosts: list[str] = Field(default_factory=list)
    deny_hosts: list[str] = Field(default_factory=list)

    @field_validator("allow_hosts", "deny_hosts")
    @classmethod
    def _parse_hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            HostRule.parse(entry)  # a bad entry fails at start, not at the first request
        return value


class AuthFailureLimit(BaseModel):
    """Token bucket per client address for failed authentication (401s)."""

    model_config = ConfigDict(extra="forbid")
    capacity: int = Field(default=100, ge=1)
    refill_per_second: float = Field(default=10.0, gt=0)


class Limits(BaseModel):
    """Budgets that keep one request, template or run from taking the gateway down.

    Every cap has a default that normal use never reaches; the error a cap causes names the
    setting (``limits.<name>``) so it can be raised in the config.
    """

    model_config = ConfigDict(extra="forbid")
    # Templates and conditions (run in a worker process, never on the event loop).
    template_budgets: bool = True  # False only for benchmarks (the unbudgeted baseline)
    template_time_seconds: float = Field(default=2.0, gt=0)
    template_memory_mb: int = Field(default=512, ge=64)
    template_max_int_digits: int = Field(default=4300, ge=10)
    template_max_string_bytes: int = Field(default=1_000_000, ge=100)
    template_max_loop_iterations: int = Field(default=100_000, ge=1)
    template_max_output_bytes: int = Field(default=1_000_000, ge=100)
    max_expression_depth: int = Field(default=64, ge=4)
    max_expression_bytes: int = Field(default=65_536, ge=64)
    # Runs.
    max_step_output_bytes: int = Field(default=1_048_576, ge=256)
    max_execution_output_bytes: int = Field(default=8_388_608, ge=1024)
    max_log_message_bytes: int = Field(default=8192, ge=64)
    max_stored_executions: int = Field(default=10_000, ge=1)
    max_active_executions: int = Field(default=100, ge=1)
    max_step_restarts: int = Field(default=3, ge=0)
    # Models.
    local_roots: list[str] | None = None  # None: the Hugging Face cache and <data>/models
    local_measure_seconds: float = Field(default=10.0, gt=0)
    download_max_bytes: int = Field(default=50_000_000_000, ge=1)
    download_stall_seconds: float = Field(default=30.0, gt=0)
    download_allowed_hosts: list[str] = Field(default_factory=list)  # redirect targets
    download_max_redirects: int = Field(default=5, ge=0)
    # Chat.
    chat_max_n: int = Field(default=8, ge=1)
    chat_max_prompt_bytes: int = Field(default=262_144, ge=16)
    chat_max_tokens: int = Field(default=4096, ge=1)
    chat_max_reply_bytes: int = Field(default=1_048_576, ge=1024)
    upstream_max_response_bytes: int = Field(default=16_777_216, ge=1024)
    # Requests and connections.
    max_json_depth: int = Field(default=64, ge=2)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    max_half_open_connections: int = Field(default=64, ge=1)
    max_connections: int = Field(default=1024, ge=8)
    auth_failures: AuthFailureLimit = Field(default_factory=AuthFailureLimit)


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
    upstreams: list[Upstream] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    egress: Egress = Field(default_factory=Egress)

    @field_validator("upstreams")
    @classmethod
    def _unique_upstreams(cls, value: list[Upstream]) -> list[Upstream]:
        names = [u.name for u in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"upstream names must be unique; repeated: {', '.join(dupes)}")
        return value

    def upstream(self, name: str) -> Upstream | None:
        return next((u for u in self.upstreams if u.name == name), None)

    def hf_cache_roots(self) -> list[Path]:
        import os

        roots = []
        if self.hf_cache_dir:
            roots.append(Path(self.hf_cache_dir))
        if os.environ.get("HF_HUB_CACHE"):
            roots.append(Path(os.environ["HF_HUB_CACHE"]))
        if os.environ.get("HF_HOME"):
            roots.append(Path(os.environ["HF_HOME"]) / "hub")
        roots.append(Path.home() / ".cache" / "huggingface" / "hub")
        return roots

    def local_roots(self, data_dir: Path) -> list[Path]:
        """Where ``local`` model sources may point (resolved, symlinks followed)."""
        if self.limits.local_roots is not None:
            raw = [Path(p).expanduser() for p in self.limits.local_roots]
        else:
            raw = [*self.hf_cache_roots(), data_dir / "models"]
        return [p.resolve() for p in raw]

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
