"""Typed operator settings, from flags and environment (parsed by `budai_operator.cli`).

The API key is held in a `SecretStr`: it never shows in a repr, a log line or a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

DEFAULT_GATEWAY_URL = "https://gateway.bud.studio/v1"


class SettingsError(ValueError):
    """The operator cannot start with this configuration."""


@dataclass(frozen=True)
class OperatorSettings:
    """Everything `budai-operator run` can be told."""

    gateway_url: str = DEFAULT_GATEWAY_URL
    api_key: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)
    api_key_file: str | None = None
    """Where the key was read from (a mounted Secret): re-read while running, so a fixed Secret
    takes effect without a restart."""
    namespaces: tuple[str, ...] = ()
    """Namespaces (kopf globs allowed) to watch; empty means every namespace."""
    log_format: str = "json"
    verbose: bool = False
    in_flight_interval: float = 10.0
    stable_interval: float = 300.0
    refresh_interval: float = 30.0
    """Period of the list-based refresh of each kind (one list call per kind and page)."""
    cluster_interval: float = 15.0
    """Period of the cluster health refresh (one call per cluster in use)."""
    rate_limit: float = 10.0
    burst: int = 100
    metrics_port: int = 8080
    health_port: int = 8081
    peering: str | None = "bud-operator"
    """kopf peering name (one active instance); None runs standalone."""
    priority: int = 0
    workers: int = 64
    """Reconciles that may run at once (a fixed pool of workers; each object at most once)."""
    request_timeout: float = 30.0
    max_retries: int = 2
    operator_namespace: str = "default"
    """Where ClusterBudConnection Secrets live (the operator's own namespace)."""
    default_connection_secret: str | None = None
    """When set, the operator keeps a ClusterBudConnection `default` for `gateway_url` and this
    Secret (in `operator_namespace`): what the chart uses to carry today's single-key values."""
    default_connection_secret_key: str = "api-key"  # noqa: S105 (a key name, not a secret)
    default_connection_selector: str = "{}"
    """JSON label selector of that connection's namespaces (`{}`: every namespace)."""
    connections_only: bool = False
    """No key of its own: every resource uses a BudConnection / ClusterBudConnection (the chart
    runs so). Otherwise the operator's key serves while no ClusterBudConnection default exists."""

    def __post_init__(self) -> None:
        if not self.api_key.get_secret_value() and not self.connections_only:
            raise SettingsError(
                "no gateway API key: set BUD_API_KEY, or BUD_API_KEY_FILE / --api-key-file "
                "to a file (a mounted Secret), or run with --connections-only"
            )
        if self.api_key.get_secret_value() and not self.gateway_url.startswith(
            ("http://", "https://")
        ):
            raise SettingsError(f"gateway URL must be http(s)://...: {self.gateway_url!r}")
        if self.rate_limit <= 0 or self.burst < 1:
            raise SettingsError("rate limit must be > 0 and burst >= 1")
        if self.default_connection_secret is not None:
            import json

            try:
                selector = json.loads(self.default_connection_selector)
            except ValueError as err:
                raise SettingsError(f"--default-connection-selector is not JSON: {err}") from None
            if not isinstance(selector, dict):
                raise SettingsError("--default-connection-selector must be a JSON object")
        if self.workers < 1:
            raise SettingsError(f"workers must be >= 1, not {self.workers}")


def read_api_key(key_file: str | None, env: dict[str, str] | None = None) -> SecretStr:
    """The API key from a file (a mounted Secret) or `BUD_API_KEY`; the file wins."""
    env = dict(os.environ) if env is None else env
    path = key_file or env.get("BUD_API_KEY_FILE")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise SettingsError(f"cannot read the API key file {path}: {err.strerror}") from None
        if not text:
            raise SettingsError(f"the API key file {path} is empty")
        return SecretStr(text)
    return SecretStr(env.get("BUD_API_KEY", "").strip())
