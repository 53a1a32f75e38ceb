"""Deployments: placement on a cluster, rollout, scaling, stop, start and teardown. Each step is
derived from what is persisted, so a restarted gateway carries on. The autoscaler
(:mod:`.autoscaler`) scales through :meth:`Deployments.set_replicas`."""

from __future__ import annotations

import secrets
import time
from typing import Any

from budai.types.deployment import DeploymentStatus
from budai_gateway.capacity import Request
from budai_gateway.errors import APIError, not_found
from budai_gateway.services.clusters import Clusters
from budai_gateway.services.common import ensure_name_free, get_or_404, page
from budai_gateway.services.state import State, iso, new_id
from budai_gateway.store import Doc

TICKED: tuple[DeploymentStatus, ...] = ("pending", "deploying", "scaling", "active")
IN_FLIGHT: tuple[DeploymentStatus, ...] = ("pending", "deploying", "scaling")


class Deployments:
    def __init__(self, state: State, clusters: Clusters) -> None:
        self.state = state
        self.clusters = clusters

    def list(self, filters: dict[str, Any], limit: int, after: str | None) -> dict[str, Any]:
        return page(self.state.store, "deployment", filters, limit, after)

    def create(self, body: dict[str, Any]) -> Doc:
        model = self.state.store.get("model", body["model_id"])
        if model is None:
            raise not_found("model", body["model_id"], "model_id")
        if model["status"] == "deleting":
            raise APIError(409, "model_deleting", "Model is being deleted.", "model_id")
        self.clusters.get(body["cluster_id"])
        name = body.get("name") or f"{model['name'].lower().replace('/', '-')}"
        name = "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower()).strip("-")[:63]
        if not body.get("name"):
            name = f"{name or 'deployment'}-{secrets.token_hex(3)}"
        ensure_name_free(self.state.store, "deployment", name)
        scaling = dict(body.get("auto_scaling") or {})
        auto = {
            "enabled": bool(scaling.get("enabled", False)),
            "min_replicas": int(scaling.get("min_replicas", 1)),
            "max_replicas": int(scaling.get("max_replicas", max(1, body.get("replicas", 1)))),
            "target_cpu": int(scaling.get("target_cpu", 80)),
            "target_memory": int(scaling.get("target_memory", 80)),
        }
        replicas = int(body.get("replicas", 1))
        if auto["enabled"]:
            replicas = min(max(replicas, auto["min_replicas"]), auto["max_replicas"])
        res = dict(body.get("resources") or {})
        resources = {
            "cpu": str(res.get("cpu", "1")),
            "memory": str(res.get("memory", "2Gi")),
            "gpu": int(res.get("gpu", 0)),
            "gpu_type": res.get("gpu_type"),
        }
        now = iso()
        doc: Doc = {
            "object": "deployment",
            "id": new_id("dep"),
            "name": name,
            "model_id": model["id"],
            "cluster_id": body["cluster_id"],
            "status": "pending",
            "replicas": replicas,
            "ready_replicas": 0,
            "endpoint_url": None,
            "auto_scaling": auto,
            "resources": resources,
            "error": None,
            "metadata": dict(body.get("metadata") or {}),
            "created_at": now,
            "updated_at": now,
        }
        self.state.store.insert("deployment", doc, {})
        self.state.wakeup.set()
        return doc

    def get(self, dep_id: str) -> Doc:
        return get_or_404(self.state.store, "deployment", dep_id, "deployment_id")

    def update(self, dep_id: str, body: dict[str, Any]) -> Doc:
        doc = self.get(dep_id)
        if self.state.teardown_scheduled(dep_id):
            raise APIError(
                409, "deployment_deleting", "Deployment is being deleted.", "deployment_id"
            )
        auto = doc["auto_scaling"]
        if body.get("auto_scaling") is not None:
            auto = {**auto, **body["auto_scaling"]}
            if auto["min_replicas"] > auto["max_replicas"]:
                raise APIError(
                    422,
                    "invalid_auto_scaling",
                    "min_replicas must not exceed max_replicas",
                    "auto_scaling.min_replicas",
                )
        if body.get("replicas") is not None and auto["enabled"]:
            raise APIError(
                409,
                "autoscaling_enabled",
                "Auto-scaling owns replicas for this deployment; disable it to set replicas.",
                "replicas",
            )
        doc["auto_scaling"] = auto
        new_replicas = doc["replicas"]
        if body.get("replicas") is not None:
            new_replicas = int(body["replicas"])
        if auto["enabled"]:
            new_replicas = min(max(new_replicas, auto["min_replicas"]), auto["max_replicas"])
        resources_changed = False
        if body.get("resources") is not None:
            new_res = {**doc["resources"], **body["resources"]}
            resources_changed = new_res != doc["resources"]
            doc["resources"] = new_res
        if body.get("metadata") is not None:
            doc["metadata"] = {**(doc.get("metadata") or {}), **body["metadata"]}
        self.set_replicas(doc, new_replicas, force=resources_changed)
        doc["updated_at"] = iso()
        self.state.store.put("deployment", doc)
        self.state.wakeup.set()
        return doc

    def set_replicas(self, doc: Doc, replicas: int, force: bool = False) -> None:
        if replicas == doc["replicas"] and not force:
            return
        doc["replicas"] = replicas
        if doc["status"] in ("active", "scaling", "deploying"):
            internal = self.state.store.get_internal(doc["id"])
            internal["phase_until"] = time.time() + self.state.scaled(
                self.state.settings.timings.scale_seconds
            )
            self.state.store.put_internal(doc["id"], internal)
            if doc["status"] != "deploying":
                doc["status"] = "scaling"

    def stop(self, dep_id: str) -> Doc:
        doc = self.get(dep_id)
        if self.state.teardown_scheduled(dep_id):
            raise APIError(
                409, "deployment_deleting", "Deployment is being deleted.", "deployment_id"
            )
        doc["status"] = "stopped"
        doc["ready_replicas"] = 0
        doc["endpoint_url"] = None
        doc["error"] = None
        doc["updated_at"] = iso()
        self.state.store.put("deployment", doc)
        self.clusters.refresh_status(doc["cluster_id"])
        self.state.wakeup.set()
        return doc

    def start(self, dep_id: str) -> Doc:
        doc = self.get(dep_id)
        if self.state.teardown_scheduled(dep_id):
            raise APIError(
                409, "deployment_deleting", "Deployment is being deleted.", "deployment_id"
            )
        if doc["status"] in ("stopped", "failed"):
            doc["status"] = "pending"
            doc["error"] = None
            doc["updated_at"] = iso()
            self.state.store.put("deployment", doc)
            self._tick_one(doc, self.state.store.get_internal(dep_id), time.time())
            self.state.wakeup.set()
        return self.get(dep_id)

    def delete(self, dep_id: str) -> Doc:
        doc = self.get(dep_id)
        internal = self.state.store.get_internal(dep_id)
        if not internal.get("delete_at"):
            internal["delete_at"] = time.time() + self.state.scaled(
                self.state.settings.timings.teardown_seconds
            )
            doc["status"] = "stopped"
            doc["ready_replicas"] = 0
            doc["endpoint_url"] = None
            doc["updated_at"] = iso()
            self.state.store.put("deployment", doc, internal)
            self.state.wakeup.set()
        return doc

    def local_update(self, dep_id: str, body: dict[str, Any]) -> Doc:
        """Out-of-band change (drift): write fields as a cluster operator would."""
        doc = self.get(dep_id)
        for key in ("status", "replicas", "ready_replicas", "error", "endpoint_url"):
            if key in body:
                doc[key] = body[key]
        doc["updated_at"] = iso()
        internal = self.state.store.get_internal(dep_id)
        internal["drifted"] = True
        self.state.store.put("deployment", doc, internal)
        self.state.wakeup.set()
        return doc

    def _tick_one(self, doc: Doc, internal: Doc, now: float) -> None:
        status = doc["status"]
        if internal.get("delete_at"):
            if now >= internal["delete_at"]:
                self.state.store.delete("deployment", doc["id"])
                self.state.traffic.forget(doc["id"])
                self.clusters.refresh_status(doc["cluster_id"])
            return
        model = self.state.store.get("model", doc["model_id"])
        changed = False
        if status in TICKED and (model is None or model["status"] == "error"):
            why = "model not found" if model is None else f"model failed: {model['error']}"
            doc.update(status="failed", ready_replicas=0, endpoint_url=None, error=why)
            changed = True
        elif status == "pending":
            if model is None or model["status"] != "available":
                # Waiting for a download is progress, not an error: leave `error` empty.
                changed = self._set_error(doc, None)
            else:
                changed = self._place(doc, internal, now)
        elif status == "scaling" and self._short_of_room(doc):
            return  # the shortage is saved; the rollout waits for room
        elif status in ("deploying", "scaling") and now >= internal.get("phase_until", 0):
            doc.update(
                status="active",
                ready_replicas=doc["replicas"],
                endpoint_url=self.state.settings.public_url.rstrip("/") + "/v1",
                error=None,
            )
            changed = True
        if changed:
            doc["updated_at"] = iso()
            self.state.store.put("deployment", doc)
            self.clusters.refresh_status(doc["cluster_id"])

    @staticmethod
    def _set_error(doc: Doc, message: str | None) -> bool:
        if doc["error"] == message:
            return False
        doc["error"] = message
        return True

    def _place(self, doc: Doc, internal: Doc, now: float) -> bool:
        """A pending deployment whose model is available starts deploying once it fits."""
        plc, _ = self.clusters.placement(doc["cluster_id"])
        req = Request.from_resources(doc["resources"])
        if plc.place(doc["id"], req, doc["replicas"]) < doc["replicas"]:
            # Recompute on a fresh placement: place() consumed part of the room.
            fresh, _ = self.clusters.placement(doc["cluster_id"])
            return self._set_error(doc, fresh.shortage(req, doc["replicas"]))
        doc.update(status="deploying", error=None)
        internal["phase_until"] = now + self.state.scaled(
            self.state.settings.timings.deploy_seconds
        )
        self.state.store.put_internal(doc["id"], internal)
        return True

    def _short_of_room(self, doc: Doc) -> bool:
        """A scale-up that does not fit: say why on the deployment (saved) and wait."""
        plc, placed = self.clusters.placement(doc["cluster_id"])
        if placed.get(doc["id"], 0) >= doc["replicas"]:
            return False
        if self._set_error(doc, plc.shortage(Request.from_resources(doc["resources"]), 1)):
            doc["updated_at"] = iso()
            self.state.store.put("deployment", doc)
        return True

    def tick(self, now: float) -> bool:
        """One scheduler step for every deployment; True while one is in flight."""
        busy = False
        for doc, internal in self.state.store.all_with_internal("deployment"):
            tearing_down = bool(internal.get("delete_at"))
            if doc["status"] in TICKED or tearing_down:
                self._tick_one(doc, internal, now)
            if (
                doc["status"] in IN_FLIGHT
                or tearing_down
                or (doc["auto_scaling"]["enabled"] and doc["status"] == "active")
            ):
                busy = True
        return busy
