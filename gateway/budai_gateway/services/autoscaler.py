"""The autoscaler: replicas follow the request rate (measured, plus a synthetic load set through
``/_local/``), each decision kept on the deployment with its reason."""

from __future__ import annotations

import logging
import math

from budai_gateway.services.deployments import Deployments
from budai_gateway.services.state import State, iso
from budai_gateway.store import Doc

log = logging.getLogger("budai_gateway")

SCALING_HISTORY = 10
"""Autoscaler decisions kept per deployment (newest last)."""


class Autoscaler:
    def __init__(self, state: State, deployments: Deployments) -> None:
        self.state = state
        self.deployments = deployments
        self.last_run = 0.0

    def tick(self, now: float) -> None:
        """Every autoscale interval: set each auto-scaled active deployment's replicas."""
        interval = self.state.scaled(self.state.settings.timings.autoscale_interval_seconds)
        if now - self.last_run < interval:
            return
        self.last_run = now
        per_replica = self.state.settings.timings.requests_per_replica_per_second
        for dep in self.state.store.all("deployment"):
            auto = dep["auto_scaling"]
            if not auto["enabled"] or dep["status"] != "active":
                continue
            rate = self.rate(dep["id"])
            target = per_replica * auto["target_cpu"] / 100.0
            desired = math.ceil(rate / target) if rate > 0 else 0
            desired = min(max(desired, auto["min_replicas"]), auto["max_replicas"])
            if desired != dep["replicas"]:
                log.info(
                    "autoscaler: %s %d -> %d (%.2f req/s)",
                    dep["id"],
                    dep["replicas"],
                    desired,
                    rate,
                )
                self._record_decision(dep, desired, rate, target)
                self.deployments.set_replicas(dep, desired)
                dep["updated_at"] = iso()
                self.state.store.put("deployment", dep)

    def _record_decision(self, dep: Doc, desired: int, rate: float, target: float) -> None:
        """Keep the autoscaler's last decisions on the deployment: why it scaled, and when."""
        direction = "up" if desired > dep["replicas"] else "down"
        decision = {
            "time": iso(),
            "from_replicas": dep["replicas"],
            "to_replicas": desired,
            "metric": "requests_per_second",
            "observed": round(rate, 3),
            "target": round(target, 3),
            "reason": (
                f"scaled {direction} from {dep['replicas']} to {desired}: {rate:.2f} req/s "
                f"observed, target {target:.2f} req/s per replica (target_cpu "
                f"{dep['auto_scaling']['target_cpu']}%)"
            ),
        }
        history = [*dep.get("scaling_decisions", []), decision]
        dep["scaling_decisions"] = history[-SCALING_HISTORY:]

    def set_load(self, dep_id: str, requests_per_second: float) -> Doc:
        """Out-of-band load for the autoscaler (tests, demos): added to the measured rate."""
        self.deployments.get(dep_id)
        if requests_per_second > 0:
            self.state.traffic.synthetic[dep_id] = requests_per_second
        else:
            self.state.traffic.synthetic.pop(dep_id, None)
        self.state.wakeup.set()
        return {
            "deployment_id": dep_id,
            "synthetic_requests_per_second": requests_per_second,
            "requests_per_second": self.rate(dep_id),
        }

    def rate(self, dep_id: str) -> float:
        """Requests per second the autoscaler sees (measured plus synthetic)."""
        window = self.state.scaled(self.state.settings.timings.autoscale_window_seconds)
        return self.state.traffic.rate(dep_id, window)
