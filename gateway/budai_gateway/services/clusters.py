"""Clusters: seeded from the config, their nodes and capacity, health and derived status.

Clusters are capacity shared by every project, so placement counts every project's deployments
(only sums leave this module, never another project's ids).
"""

from __future__ import annotations

from typing import Any

from budai.types.cluster import ClusterStatus
from budai.types.deployment import DeploymentStatus
from budai_gateway.capacity import Node, Placement, Request, format_cpu
from budai_gateway.config import ClusterSpec
from budai_gateway.services.common import get_or_404, page
from budai_gateway.services.state import State, iso, new_id
from budai_gateway.store import Doc
from budai_gateway.tenancy import acting_for

RESERVING: tuple[DeploymentStatus, ...] = ("deploying", "active", "scaling")
"""Deployment statuses that hold room on their cluster."""
_BY_HEALTH: dict[str, ClusterStatus] = {
    "healthy": "active",
    "degraded": "degraded",
    "unhealthy": "failed",
}


class Clusters:
    def __init__(self, state: State) -> None:
        self.state = state

    def seed(self) -> None:
        for spec in self.state.settings.clusters:
            self._create(spec)
        self.state.store.kv_set("seeded", True)

    def _create(self, spec: ClusterSpec) -> Doc:
        now = iso()
        doc = {
            "object": "cluster",
            "id": new_id("cluster"),
            "name": spec.name,
            "provider": spec.provider,
            "region": spec.region,
            "status": "active",
            "node_count": spec.node_count,
            "kubernetes_version": spec.kubernetes_version,
            "created_at": now,
            "updated_at": now,
        }
        nodes = [
            {
                "name": f"{spec.name}-node-{i}",
                "cpu": spec.node.cpu,
                "memory_gb": spec.node.memory_gb,
                "gpu": spec.node.gpu,
                "gpu_type": spec.node.gpu_type,
                "ready": True,
            }
            for i in range(spec.node_count)
        ]
        self.state.store.insert("cluster", doc, {"nodes": nodes, "status_override": None})
        return doc

    def list(self, filters: dict[str, Any], limit: int, after: str | None) -> dict[str, Any]:
        return page(self.state.store, "cluster", filters, limit, after)

    def get(self, cluster_id: str, param: str = "cluster_id") -> Doc:
        return get_or_404(self.state.store, "cluster", cluster_id, param)

    def placement(self, cluster_id: str) -> tuple[Placement, dict[str, int]]:
        """Place every reserving deployment of a cluster, oldest first."""
        store = self.state.store
        nodes = [Node.from_doc(n) for n in store.get_internal(cluster_id).get("nodes", [])]
        plc = Placement(nodes)
        placed: dict[str, int] = {}
        with acting_for(None):
            deps = store.find("deployment", "cluster_id", cluster_id)
        for dep in deps:
            if dep["status"] in RESERVING:
                req = Request.from_resources(dep["resources"])
                placed[dep["id"]] = plc.place(dep["id"], req, dep["replicas"])
        return plc, placed

    def health(self, cluster_id: str) -> Doc:
        doc = self.get(cluster_id)
        plc, _ = self.placement(cluster_id)
        nodes = plc.nodes
        ready = [n for n in nodes if n.ready]
        cpu, mem, gpu, _types = plc.free()
        types = sorted({n.gpu_type for n in ready if n.gpu_type and n.gpu - n.used_gpu > 0})
        if not ready:
            status = "unhealthy"
        else:
            total_cpu = sum(n.cpu for n in ready)
            total_mem = sum(n.memory_gb for n in ready)
            total_gpu = sum(n.gpu for n in ready)
            loaded = (
                (total_cpu and (total_cpu - cpu) / total_cpu > 0.9)
                or (total_mem and (total_mem - mem) / total_mem > 0.9)
                or (total_gpu and (total_gpu - gpu) / total_gpu > 0.9)
            )
            status = "degraded" if len(ready) < len(nodes) or loaded else "healthy"
        return {
            "object": "cluster.health",
            "cluster_id": doc["id"],
            "status": status,
            "node_count": len(nodes),
            "ready_node_count": len(ready),
            "available_resources": {
                "cpu": format_cpu(max(cpu, 0.0)),
                "memory_gb": round(max(mem, 0.0), 3),
                "gpu_count": max(gpu, 0),
                "gpu_types": types,
            },
        }

    def refresh_status(self, cluster_id: str) -> None:
        store = self.state.store
        doc = store.get("cluster", cluster_id)
        if doc is None:
            return
        internal = store.get_internal(cluster_id)
        override = internal.get("status_override")
        if override:
            status = override
        else:
            health = self.health(cluster_id)["status"]
            status = _BY_HEALTH[health]
            if health == "degraded" and all(n.get("ready", True) for n in internal["nodes"]):
                status = "active"  # busy but whole: load alone does not degrade the cluster
        node_count = len(internal.get("nodes", []))
        if doc["status"] != status or doc["node_count"] != node_count:
            doc["status"] = status
            doc["node_count"] = node_count
            doc["updated_at"] = iso()
            store.put("cluster", doc)

    def fit_deployments(self, cluster_id: str) -> None:
        """After node loss, active deployments report only the replicas that still fit."""
        store = self.state.store
        _, placed = self.placement(cluster_id)
        with acting_for(None):
            deps = store.find("deployment", "cluster_id", cluster_id)
        for dep in deps:
            if dep["status"] != "active":
                continue
            ready = min(placed.get(dep["id"], 0), dep["replicas"])
            err = None
            if ready < dep["replicas"]:
                err = f"only {ready} of {dep['replicas']} replicas fit on the cluster's ready nodes"
            if dep["ready_replicas"] != ready or dep["error"] != err:
                dep["ready_replicas"] = ready
                dep["error"] = err
                dep["updated_at"] = iso()
                store.put("deployment", dep)

    def tick(self) -> None:
        for cluster in self.state.store.all("cluster"):
            self.fit_deployments(cluster["id"])
            self.refresh_status(cluster["id"])

    def local_update(self, cluster_id: str, body: dict[str, Any]) -> Doc:
        """Out-of-band cluster change: node readiness, node list, status override."""
        store = self.state.store
        doc = self.get(cluster_id)
        internal = store.get_internal(cluster_id)
        nodes: list[Doc] = internal["nodes"]
        if "nodes" in body and body["nodes"] is not None:
            nodes = [
                {
                    "name": n.get("name", f"{doc['name']}-node-{i}"),
                    "cpu": float(n.get("cpu", 8)),
                    "memory_gb": float(n.get("memory_gb", 32)),
                    "gpu": int(n.get("gpu", 0)),
                    "gpu_type": n.get("gpu_type"),
                    "ready": bool(n.get("ready", True)),
                }
                for i, n in enumerate(body["nodes"])
            ]
        if body.get("ready_nodes") is not None:
            k = int(body["ready_nodes"])
            for i, n in enumerate(nodes):
                n["ready"] = i < k
        internal["nodes"] = nodes
        if "status" in body:
            internal["status_override"] = body["status"]
        store.put_internal(cluster_id, internal)
        self.refresh_status(cluster_id)
        self.fit_deployments(cluster_id)
        self.state.wakeup.set()
        return {**self.get(cluster_id), "nodes": nodes}
