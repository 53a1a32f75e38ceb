"""Why a model or deployment is (not) ready, in the gateway's own words.

One vocabulary of reasons, shared by the CLI (``budai ... --wait`` prints it when it gives up)
and the Bud operator (the reason and message of the ``Ready`` condition). The functions take the
objects as the API returns them (``obj.to_dict()`` or the raw JSON), and are pure.

=======================  ====================================================================
Reason                   Meaning (what to do)
=======================  ====================================================================
Available / Active       Usable (``Ready=True``).
Downloading              The model is downloading; the message has bytes, rate and ETA.
ModelError               The model failed (bad URI, disk full); fix the source.
WaitingForModel          The deployment waits for its model to finish downloading.
InsufficientCapacity     The cluster lacks room; the message names what is short
                         (``cpu: requested 500, free 19``): free capacity or lower the request.
Deploying / Scaling      Replicas are starting or changing.
ReplicasNotReady         Active, but no replica is ready (the message says why).
ClusterUnhealthy         The deployment's cluster has no ready nodes.
DeploymentFailed         The deployment failed (its model failed or vanished).
Stopped                  Stopped on purpose.
RemoteDeleting           The remote object is being deleted.
=======================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Readiness", "deployment_readiness", "format_bytes", "model_readiness"]

CAPACITY_PREFIX = "insufficient resources"


@dataclass(frozen=True)
class Readiness:
    """A verdict: ready or not, a CamelCase reason, and a sentence with the gateway's words.

    ``in_flight``: the gateway is still working on it (waiting helps). ``stalled``: it will not
    get better on its own (a human must act)."""

    ready: bool
    reason: str
    message: str
    in_flight: bool = False
    stalled: bool = False

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def format_bytes(n: float) -> str:
    """``1500000000`` -> ``1.5 GB`` (decimal units, as download sizes are quoted)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def download_summary(model: Mapping[str, Any]) -> str:
    """``42% (4.2 GB of 10.0 GB at 50.0 MB/s, about 1m56s left)`` from whatever is known
    (``(simulated, ...)`` when the gateway simulates the download)."""
    percent = model.get("progress_percent")
    done, size = model.get("downloaded_bytes"), model.get("size_bytes")
    rate, eta = model.get("bytes_per_second"), model.get("eta_seconds")
    head = f"{percent:.0f}%" if isinstance(percent, int | float) else ""
    parts = []
    if isinstance(done, int | float) and isinstance(size, int | float) and size:
        parts.append(f"{format_bytes(done)} of {format_bytes(size)}")
    elif isinstance(done, int | float):
        parts.append(f"{format_bytes(done)} so far")
    if isinstance(rate, int | float):
        parts.append(f"at {format_bytes(rate)}/s")
    text = " ".join(parts)
    if isinstance(eta, int | float):
        text += f", about {_duration(eta)} left"
    if (model.get("metadata") or {}).get("simulated_download"):
        text = "simulated" + (f", {text}" if text else "")
    return f"{head} ({text.strip()})" if head and text else head or text.strip()


def model_readiness(model: Mapping[str, Any]) -> Readiness:
    """The verdict for a model (``available`` is ready)."""
    state = model.get("status")
    if state == "available":
        return Readiness(True, "Available", "the model is available")
    if state == "downloading":
        summary = download_summary(model)
        return Readiness(
            False, "Downloading", "downloading" + (f" {summary}" if summary else ""), True
        )
    if state == "error":
        message = f"the gateway reports the model failed: {model.get('error') or 'unknown error'}"
        return Readiness(False, "ModelError", message, stalled=True)
    if state == "deleting":
        return Readiness(False, "RemoteDeleting", "the remote model is being deleted", True)
    return Readiness(False, "Unknown", f"the gateway reports state {state!r}", True)


def deployment_readiness(
    dep: Mapping[str, Any],
    health: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
) -> Readiness:
    """The verdict for a deployment; ``health`` is its cluster's health, ``model`` its model
    (both optional: they sharpen the reason when known)."""
    state = dep.get("status")
    error = dep.get("error") or ""
    ready = int(dep.get("ready_replicas") or 0)
    desired = dep.get("replicas")
    counts = f"{ready}/{desired} replicas ready"
    if state == "failed":
        return Readiness(
            False,
            "DeploymentFailed",
            f"the deployment failed: {error or 'no reason given'}",
            stalled=True,
        )
    if state == "stopped":
        return Readiness(False, "Stopped", "the deployment is stopped")
    if (health or {}).get("status") == "unhealthy":
        cluster = dep.get("cluster_id")
        nodes = (health or {}).get("ready_node_count")
        return Readiness(
            False,
            "ClusterUnhealthy",
            f"cluster {cluster} is unhealthy: the deployment cannot serve"
            + (f" ({nodes} ready nodes)" if nodes is not None else ""),
            True,
        )
    if error.startswith(CAPACITY_PREFIX) and state in ("pending", "scaling"):
        verb = "cannot place" if state == "pending" else "cannot scale to"
        return Readiness(
            False,
            "InsufficientCapacity",
            f"the gateway {verb} {desired} replicas ({counts}): {error}",
            True,
        )
    if state == "active" and ready >= 1:
        message = f"serving with {counts}"
        return Readiness(True, "Active", message + (f": {error}" if error else ""))
    if state == "active":
        return Readiness(
            False,
            "ReplicasNotReady",
            f"active but {counts}" + (f": {error}" if error else ""),
            True,
        )
    if state == "pending":
        model_state = (model or {}).get("status")
        if model_state == "downloading":
            summary = download_summary(model or {})
            return Readiness(
                False,
                "WaitingForModel",
                f"waiting for model {dep.get('model_id')} to download"
                + (f": {summary}" if summary else ""),
                True,
            )
        return Readiness(
            False, "Pending", f"pending: {error}" if error else "waiting to be placed", True
        )
    if state == "deploying":
        return Readiness(False, "Deploying", f"replicas are starting ({counts})", True)
    if state == "scaling":
        return Readiness(False, "Scaling", f"scaling to {desired} replicas ({counts})", True)
    return Readiness(False, "Unknown", f"the deployment is {state} ({counts})", True)
