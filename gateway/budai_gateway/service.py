"""The gateway's state machine: every REST operation and every lifecycle step, on top of the store.

Routes, pipeline actions and the ``/_local/`` controls all call these methods, so an action such
as ``deployment_create`` changes exactly the state the REST API serves. Lifecycles (downloads,
rollouts, teardown, executions) are advanced by :meth:`Gateway.tick`, which derives the next step
from what is persisted, so they carry on after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import shutil
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from budai_gateway import __version__
from budai_gateway.capacity import Node, Placement, Request, format_cpu
from budai_gateway.config import ClusterSpec, Settings
from budai_gateway.errors import APIError, not_found
from budai_gateway.progress import DownloadProgress, progress_fields
from budai_gateway.store import Doc, Store
from budai_gateway.tenancy import acting_for

log = logging.getLogger("budai_gateway")

_MEASURER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budai-measure")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$")
RESERVING = ("deploying", "active", "scaling")
TERMINAL_EXEC = ("completed", "failed", "cancelled")
LIST_FILTERS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "model": {
        "name": None,
        "status": ("downloading", "available", "error", "deleting"),
        "source": ("hugging_face", "url", "local", "cloud"),
    },
    "cluster": {
        "name": None,
        "status": ("provisioning", "active", "degraded", "maintenance", "failed"),
        "provider": ("aws", "azure", "onpremise"),
    },
    "deployment": {
        "name": None,
        "model_id": None,
        "cluster_id": None,
        "status": ("pending", "deploying", "active", "scaling", "failed", "stopped"),
    },
    "pipeline": {"name": None, "status": ("active", "paused", "archived")},
    "execution": {
        "pipeline_id": None,
        "status": ("pending", "running", "completed", "failed", "cancelled"),
    },
}


def iso(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def measure_local(uri: str, roots: list[Path], deadline: float) -> tuple[int | None, str | None]:
    """(size, error) of a ``local`` source. Runs in a worker thread.

    A path outside the roots is refused with the same message whether or not it exists, so
    the API is no existence or size oracle. Symlinks are followed only while they stay inside
    the roots (the Hugging Face cache links snapshots to blobs), and the walk stops at the
    deadline.
    """
    refused = (
        f"local path '{uri}' is not under an allowed root (limits.local_roots); nothing was read"
    )
    with contextlib.suppress(OSError, AttributeError):  # a walk yields to the event loop
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    raw = Path(uri.removeprefix("file://")).expanduser()
    if not raw.is_absolute():
        return None, refused
    try:
        resolved = raw.resolve()
    except (OSError, RuntimeError):
        return None, refused
    if not _under(resolved, roots):
        return None, refused
    try:
        if resolved.is_file():
            return resolved.stat().st_size, None
        if not resolved.is_dir():
            return None, f"path not found: {uri}"
        total = 0
        for dirpath, _dirs, files in os.walk(resolved):
            if time.monotonic() > deadline:
                return None, f"measuring {uri} took too long (limits.local_measure_seconds)"
            for name in files:
                target = Path(dirpath, name).resolve()
                if _under(target, roots) and target.is_file():
                    total += target.stat().st_size
        return total, None
    except OSError as exc:
        return None, f"cannot read {uri}: {exc.strerror or type(exc).__name__}"


SCALING_HISTORY = 10
"""Autoscaler decisions kept per deployment (newest last)."""


class Gateway:
    """All state operations. One instance per app; methods run on the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.data_dir = settings.resolved_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.speed = settings.speed
        self.downloads: dict[str, asyncio.Task[None]] = {}
        self.runners: dict[str, asyncio.Task[None]] = {}
        self.request_log: dict[str, deque[float]] = {}
        # Load set through /_local/deployments/{id}/load, added to the measured request rate.
        self.synthetic_load: dict[str, float] = {}
        self.last_autoscale = 0.0
        self.wakeup = asyncio.Event()
        self.http: httpx.AsyncClient | None = None
        self._sandbox: Any = None
        if self.store.kv_get("seeded") is None:
            self.seed()

    def sandbox(self) -> Any:
        """The template worker pool (started on first use)."""
        if self._sandbox is None:
            from budai_gateway.sandbox import Budgets, SandboxPool

            lim = self.settings.limits
            self._sandbox = SandboxPool(
                Budgets(
                    time_seconds=lim.template_time_seconds,
                    memory_mb=lim.template_memory_mb,
                    max_int_digits=lim.template_max_int_digits,
                    max_string_bytes=lim.template_max_string_bytes,
                    max_loop_iterations=lim.template_max_loop_iterations,
                    max_output_bytes=lim.template_max_output_bytes,
                )
            )
        return self._sandbox

    # -- helpers -------------------------------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        return seconds / self.speed

    def seed(self) -> None:
        for spec in self.settings.clusters:
            self._create_cluster(spec)
        self.store.kv_set("seeded", True)

    def _create_cluster(self, spec: ClusterSpec) -> Doc:
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
        self.store.insert("cluster", doc, {"nodes": nodes, "status_override": None})
        return doc

    def list_page(
        self, kind: str, query: dict[str, str], limit: int, after: str | None
    ) -> dict[str, Any]:
        allowed = LIST_FILTERS[kind]
        filters: dict[str, Any] = {}
        for name, value in query.items():
            if name in ("limit", "after"):
                continue
            if name not in allowed:
                raise APIError(
                    400,
                    "unknown_filter",
                    f"Unknown filter '{name}'; this list accepts: "
                    + ", ".join(["limit", "after", *allowed]),
                    name,
                )
            choices = allowed[name]
            if choices is not None and value not in choices:
                raise APIError(
                    400,
                    "invalid_filter",
                    f"Invalid value for filter '{name}'; expected one of: " + ", ".join(choices),
                    name,
                )
            filters[name] = value
        # Executions are looked at by "what ran last": newest first, as the CLI and SDK say.
        result = self.store.page(kind, filters, after, limit, newest_first=kind == "execution")
        if result is None:
            raise APIError(400, "invalid_cursor", f"Unknown cursor '{after}'.", "after")
        docs, has_more = result
        if kind == "execution":
            docs = [self._execution_view(d) for d in docs]
        elif kind == "pipeline":
            docs = [self.pipeline_view(d) for d in docs]
        return {
            "object": "list",
            "data": docs,
            "has_more": has_more,
            "next_cursor": docs[-1]["id"] if has_more and docs else None,
        }

    def _get(self, kind: str, obj_id: str, param: str) -> Doc:
        doc = self.store.get(kind, obj_id)
        if doc is None:
            raise not_found(kind, obj_id, param)
        return doc

    def _name_taken(self, kind: str, name: str, exclude: str | None = None) -> None:
        for doc in self.store.find(kind, "name", name):
            if doc["id"] != exclude:
                # `param` names the field at fault; where the other object is goes in Location.
                raise APIError(
                    409,
                    "already_exists",
                    f"A {kind} named '{name}' already exists ({doc['id']}).",
                    "name",
                    headers={"Location": f"/v1/{kind}s/{doc['id']}"},
                )

    def health(self) -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # -- models --------------------------------------------------------------------------------

    def check_model_metadata(self, metadata: dict[str, Any] | None) -> None:
        """Metadata names a configured upstream; it never chooses a URL, a variable or a file."""
        meta = metadata or {}
        for banned in ("upstream_url", "upstream_api_key_env", "upstream_api_key_file"):
            if banned in meta:
                raise APIError(
                    422,
                    "invalid_value",
                    f"metadata.{banned} is not accepted: name an upstream of the gateway's "
                    "config with metadata.upstream",
                    f"metadata.{banned}",
                )
        name = meta.get("upstream")
        if name is not None and (not isinstance(name, str) or self.settings.upstream(name) is None):
            known = ", ".join(u.name for u in self.settings.upstreams) or "none configured"
            raise APIError(
                422,
                "unknown_upstream",
                f"metadata.upstream names no upstream of the gateway's config ({known})",
                "metadata.upstream",
            )

    async def measure_local(self, uri: str) -> tuple[int | None, str | None]:
        """Measure a ``local`` source off the event loop, within limits.local_measure_seconds."""
        budget = self.settings.limits.local_measure_seconds
        roots = self.settings.local_roots(self.data_dir)
        deadline = time.monotonic() + budget
        loop = asyncio.get_running_loop()
        try:
            # One measuring thread: a flood of large trees queues (and times out) there
            # instead of starving the event loop of the GIL.
            return await asyncio.wait_for(
                loop.run_in_executor(_MEASURER, measure_local, uri, roots, deadline), budget + 1
            )
        except TimeoutError:
            return None, f"measuring {uri} took too long (limits.local_measure_seconds)"

    def create_model(
        self, body: dict[str, Any], measured: tuple[int | None, str | None] | None = None
    ) -> Doc:
        self.check_model_metadata(body.get("metadata"))
        self._name_taken("model", body["name"])
        now = time.time()
        doc: Doc = {
            "object": "model",
            "id": new_id("model"),
            "name": body["name"],
            "source": body["source"],
            "uri": body["uri"],
            "size_bytes": None,
            "status": "downloading",
            "metadata": dict(body.get("metadata") or {}),
            "progress_percent": 0.0,
            "downloaded_bytes": 0,
            "bytes_per_second": None,
            "eta_seconds": None,
            "error": None,
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        internal: Doc = {"last_tick": now, "done_bytes": 0}
        source = body["source"]
        if source == "cloud":
            self._finish_model(doc, None)
        elif source == "local":
            size, error = measured if measured is not None else (None, "path was not measured")
            if error is None:
                self._finish_model(doc, size)
            else:
                self._fail_model(doc, error)
        elif source == "hugging_face":
            cached = self._hf_cache(body["uri"])
            if cached is not None:
                doc["metadata"].setdefault("resolved_from", "local_cache")
                doc["metadata"].setdefault("local_path", str(cached))
                self._finish_model(doc, dir_size(cached))
            else:
                size = int(
                    doc["metadata"].get(
                        "simulated_size_bytes", self.settings.timings.simulated_model_size_bytes
                    )
                )
                doc["size_bytes"] = size
                doc["metadata"]["simulated_download"] = True
                doc["metadata"]["simulated_rate_bytes_per_second"] = (
                    self.settings.timings.simulated_download_bytes_per_second
                )
        self.store.insert("model", doc, internal)
        if doc["status"] == "downloading":
            self.wakeup.set()
        return doc

    def _hf_cache(self, repo: str) -> Path | None:
        roots = self.settings.hf_cache_roots()
        folder = "models--" + repo.strip("/").replace("/", "--")
        for root in roots:
            snaps = root / folder / "snapshots"
            if snaps.is_dir():
                found = sorted(p for p in snaps.iterdir() if p.is_dir())
                if found:
                    return found[-1]
        return None

    @staticmethod
    def _finish_model(doc: Doc, size: int | None) -> None:
        doc["status"] = "available"
        doc["size_bytes"] = size
        doc["downloaded_bytes"] = size
        doc["bytes_per_second"] = doc["eta_seconds"] = None
        doc["progress_percent"] = None
        doc["error"] = None
        doc["updated_at"] = iso()

    @staticmethod
    def _fail_model(doc: Doc, message: str) -> None:
        doc["status"] = "error"
        doc["bytes_per_second"] = doc["eta_seconds"] = None
        doc["progress_percent"] = None
        doc["error"] = message
        doc["updated_at"] = iso()

    def get_model(self, model_id: str) -> Doc:
        return self._get("model", model_id, "model_id")

    def update_model(self, model_id: str, body: dict[str, Any]) -> Doc:
        doc = self.get_model(model_id)
        if body.get("name") is not None:
            self._name_taken("model", body["name"], exclude=model_id)
            doc["name"] = body["name"]
        if body.get("metadata") is not None:
            self.check_model_metadata(body["metadata"])
            doc["metadata"] = {**doc["metadata"], **body["metadata"]}
        doc["updated_at"] = iso()
        self.store.put("model", doc)
        return doc

    def delete_model(self, model_id: str) -> Doc:
        doc = self.get_model(model_id)
        users = [
            d
            for d in self.store.find("deployment", "model_id", model_id)
            if not self._deleting(d["id"])
        ]
        if users:
            raise APIError(
                409,
                "model_in_use",
                f"Model '{model_id}' is used by deployment '{users[0]['id']}'; delete it first.",
                "model_id",
            )
        if doc["status"] != "deleting":
            internal = self.store.get_internal(model_id)
            internal["delete_at"] = time.time() + self.scaled(
                self.settings.timings.model_delete_seconds
            )
            doc["status"] = "deleting"
            doc["progress_percent"] = None
            doc["updated_at"] = iso()
            self.store.put("model", doc, internal)
            task = self.downloads.pop(model_id, None)
            if task:
                task.cancel()
            self.wakeup.set()
        return doc

    async def _download(self, model_id: str) -> None:
        """Download a ``url`` model for real into the data folder, saving progress as it goes."""
        doc = self.store.get("model", model_id)
        if doc is None:
            return
        target_dir = self.data_dir / "models" / model_id
        target_dir.mkdir(parents=True, exist_ok=True)
        name = doc["uri"].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if not _SAFE_NAME.match(name):
            name = "model.bin"  # the URL's last segment is not a safe file name
        target = target_dir / name
        assert self.http is not None
        lim = self.settings.limits
        cap = lim.download_max_bytes
        try:
            url = httpx.URL(doc["uri"])
            if url.scheme not in ("http", "https") or not url.host:
                raise RuntimeError(
                    f"download refused: only http and https URLs are downloaded, not '{doc['uri']}'"
                )
            allowed = {url.host.lower(), *(h.lower() for h in lim.download_allowed_hosts)}
            stall = httpx.Timeout(lim.download_stall_seconds)
            # Raw bytes only: a gzip bomb lands on disk at its wire size, not inflated.
            headers = {"accept-encoding": "identity"}
            for _ in range(lim.download_max_redirects + 1):
                request = self.http.build_request("GET", url, headers=headers, timeout=stall)
                resp = await self.http.send(request, stream=True, follow_redirects=False)
                if not resp.is_redirect:
                    break
                await resp.aclose()
                nxt = url.join(resp.headers.get("location", ""))
                if nxt.scheme not in ("http", "https") or (nxt.host or "").lower() not in allowed:
                    raise RuntimeError(
                        f"download refused: redirect to '{nxt.host}' is not an allowed host "
                        "(limits.download_allowed_hosts)"
                    )
                url = nxt
            else:
                raise RuntimeError(
                    f"download refused: more than {lim.download_max_redirects} redirects "
                    "(limits.download_max_redirects)"
                )
            try:
                if resp.status_code >= 400:
                    raise RuntimeError(
                        f"download failed: HTTP {resp.status_code} from {doc['uri']}"
                    )
                total = int(resp.headers.get("content-length") or 0) or None
                if total is not None and total > cap:
                    raise RuntimeError(
                        f"download refused: {total:,} bytes announced, over the {cap:,}-byte "
                        "cap (limits.download_max_bytes)"
                    )
                done = 0
                progress = DownloadProgress(total)
                last_save = time.monotonic()
                with target.open("wb") as fh:
                    async for chunk in resp.aiter_raw():
                        done += len(chunk)
                        if done > cap:
                            raise RuntimeError(
                                f"download stopped: over the {cap:,}-byte cap "
                                "(limits.download_max_bytes)"
                            )
                        fh.write(chunk)
                        progress.update(done)
                        if time.monotonic() - last_save > 0.2:
                            last_save = time.monotonic()
                            cur = self.store.get("model", model_id)
                            if cur is None or cur["status"] != "downloading":
                                return
                            cur.update(progress.fields())
                            self.store.put("model", cur)
            finally:
                await resp.aclose()
            cur = self.store.get("model", model_id)
            if cur is not None and cur["status"] == "downloading":
                cur["metadata"]["local_path"] = str(target)
                self._finish_model(cur, done)
                self.store.put("model", cur)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            target.unlink(missing_ok=True)
            cur = self.store.get("model", model_id)
            if cur is not None and cur["status"] == "downloading":
                if isinstance(exc, RuntimeError):
                    msg = str(exc)
                elif isinstance(exc, httpx.TimeoutException):
                    msg = (
                        f"download failed: no data for {lim.download_stall_seconds:g} s "
                        "(limits.download_stall_seconds)"
                    )
                else:
                    msg = f"download failed: {type(exc).__name__}: {exc}"[:500]
                self._fail_model(cur, msg)
                self.store.put("model", cur)
        finally:
            self.downloads.pop(model_id, None)

    def _tick_models(self, now: float) -> bool:
        busy = False
        for doc, internal in self.store.all_with_internal("model"):
            status = doc["status"]
            busy = busy or status in ("deleting", "downloading")
            if status == "deleting":
                if now >= internal.get("delete_at", 0):
                    self.store.delete("model", doc["id"])
                    shutil.rmtree(self.data_dir / "models" / doc["id"], ignore_errors=True)
            elif status == "downloading":
                if doc["source"] == "url":
                    if doc["id"] not in self.downloads:
                        self.downloads[doc["id"]] = asyncio.create_task(self._download(doc["id"]))
                else:
                    rate = self.settings.timings.simulated_download_bytes_per_second
                    elapsed = min(max(now - internal.get("last_tick", now), 0.0), 1.0)
                    size = int(doc["size_bytes"] or 0)
                    done = int(internal.get("done_bytes", 0) + elapsed * rate * self.speed)
                    internal["done_bytes"] = done
                    internal["last_tick"] = now
                    if done >= size:
                        self._finish_model(doc, size)
                    else:
                        doc.update(progress_fields(done, size, rate * self.speed))
                    self.store.put("model", doc, internal)
        return busy

    # -- clusters ------------------------------------------------------------------------------

    def get_cluster(self, cluster_id: str, param: str = "cluster_id") -> Doc:
        return self._get("cluster", cluster_id, param)

    def placement(self, cluster_id: str) -> tuple[Placement, dict[str, int]]:
        """Place every reserving deployment of a cluster, oldest first.

        Clusters are capacity shared by every project, so this counts all projects' deployments
        (only sums leave this method, never another project's ids).
        """
        internal = self.store.get_internal(cluster_id)
        nodes = [Node.from_doc(n) for n in internal.get("nodes", [])]
        plc = Placement(nodes)
        placed: dict[str, int] = {}
        with acting_for(None):
            deps = self.store.find("deployment", "cluster_id", cluster_id)
        for dep in deps:
            if dep["status"] in RESERVING:
                want = dep["replicas"]
                placed[dep["id"]] = plc.place(
                    dep["id"], Request.from_resources(dep["resources"]), want
                )
        return plc, placed

    def cluster_health(self, cluster_id: str) -> Doc:
        doc = self.get_cluster(cluster_id)
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

    def _refresh_cluster_status(self, cluster_id: str) -> None:
        doc = self.store.get("cluster", cluster_id)
        if doc is None:
            return
        internal = self.store.get_internal(cluster_id)
        override = internal.get("status_override")
        if override:
            status = override
        else:
            health = self.cluster_health(cluster_id)["status"]
            status = {"healthy": "active", "degraded": "degraded", "unhealthy": "failed"}[health]
            if health == "degraded" and all(n.get("ready", True) for n in internal["nodes"]):
                status = "active"  # busy but whole: load alone does not degrade the cluster
        node_count = len(internal.get("nodes", []))
        if doc["status"] != status or doc["node_count"] != node_count:
            doc["status"] = status
            doc["node_count"] = node_count
            doc["updated_at"] = iso()
            self.store.put("cluster", doc)

    def local_update_cluster(self, cluster_id: str, body: dict[str, Any]) -> Doc:
        """Out-of-band cluster change: node readiness, node list, status override."""
        doc = self.get_cluster(cluster_id)
        internal = self.store.get_internal(cluster_id)
        nodes: list[Doc] = internal["nodes"]
        if "nodes" in body and body["nodes"] is not None:
            nodes = []
            for i, n in enumerate(body["nodes"]):
                nodes.append(
                    {
                        "name": n.get("name", f"{doc['name']}-node-{i}"),
                        "cpu": float(n.get("cpu", 8)),
                        "memory_gb": float(n.get("memory_gb", 32)),
                        "gpu": int(n.get("gpu", 0)),
                        "gpu_type": n.get("gpu_type"),
                        "ready": bool(n.get("ready", True)),
                    }
                )
        if body.get("ready_nodes") is not None:
            k = int(body["ready_nodes"])
            for i, n in enumerate(nodes):
                n["ready"] = i < k
        internal["nodes"] = nodes
        if "status" in body:
            internal["status_override"] = body["status"]
        self.store.put_internal(cluster_id, internal)
        self._refresh_cluster_status(cluster_id)
        self._tick_cluster_deployments(cluster_id)
        self.wakeup.set()
        return {**self.get_cluster(cluster_id), "nodes": nodes}

    # -- deployments ---------------------------------------------------------------------------

    def create_deployment(self, body: dict[str, Any]) -> Doc:
        model = self.store.get("model", body["model_id"])
        if model is None:
            raise not_found("model", body["model_id"], "model_id")
        if model["status"] == "deleting":
            raise APIError(409, "model_deleting", "Model is being deleted.", "model_id")
        self.get_cluster(body["cluster_id"])
        name = body.get("name") or f"{model['name'].lower().replace('/', '-')}"
        name = "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower()).strip("-")[:63]
        if not body.get("name"):
            name = f"{name or 'deployment'}-{secrets.token_hex(3)}"
        self._name_taken("deployment", name)
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
        self.store.insert("deployment", doc, {})
        self.wakeup.set()
        return doc

    def get_deployment(self, dep_id: str) -> Doc:
        return self._get("deployment", dep_id, "deployment_id")

    def _deleting(self, dep_id: str) -> bool:
        return bool(self.store.get_internal(dep_id).get("delete_at"))

    def update_deployment(self, dep_id: str, body: dict[str, Any]) -> Doc:
        doc = self.get_deployment(dep_id)
        if self._deleting(dep_id):
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
        self._set_replicas(doc, new_replicas, force=resources_changed)
        doc["updated_at"] = iso()
        self.store.put("deployment", doc)
        self.wakeup.set()
        return doc

    def _set_replicas(self, doc: Doc, replicas: int, force: bool = False) -> None:
        if replicas == doc["replicas"] and not force:
            return
        doc["replicas"] = replicas
        if doc["status"] in ("active", "scaling", "deploying"):
            internal = self.store.get_internal(doc["id"])
            internal["phase_until"] = time.time() + self.scaled(self.settings.timings.scale_seconds)
            self.store.put_internal(doc["id"], internal)
            if doc["status"] != "deploying":
                doc["status"] = "scaling"

    def stop_deployment(self, dep_id: str) -> Doc:
        doc = self.get_deployment(dep_id)
        if self._deleting(dep_id):
            raise APIError(
                409, "deployment_deleting", "Deployment is being deleted.", "deployment_id"
            )
        doc["status"] = "stopped"
        doc["ready_replicas"] = 0
        doc["endpoint_url"] = None
        doc["error"] = None
        doc["updated_at"] = iso()
        self.store.put("deployment", doc)
        self._refresh_cluster_status(doc["cluster_id"])
        self.wakeup.set()
        return doc

    def start_deployment(self, dep_id: str) -> Doc:
        doc = self.get_deployment(dep_id)
        if self._deleting(dep_id):
            raise APIError(
                409, "deployment_deleting", "Deployment is being deleted.", "deployment_id"
            )
        if doc["status"] in ("stopped", "failed"):
            doc["status"] = "pending"
            doc["error"] = None
            doc["updated_at"] = iso()
            self.store.put("deployment", doc)
            self._tick_deployment(doc, self.store.get_internal(dep_id), time.time())
            self.wakeup.set()
        return self.get_deployment(dep_id)

    def delete_deployment(self, dep_id: str) -> Doc:
        doc = self.get_deployment(dep_id)
        internal = self.store.get_internal(dep_id)
        if not internal.get("delete_at"):
            internal["delete_at"] = time.time() + self.scaled(
                self.settings.timings.teardown_seconds
            )
            doc["status"] = "stopped"
            doc["ready_replicas"] = 0
            doc["endpoint_url"] = None
            doc["updated_at"] = iso()
            self.store.put("deployment", doc, internal)
            self.wakeup.set()
        return doc

    def local_update_deployment(self, dep_id: str, body: dict[str, Any]) -> Doc:
        """Out-of-band change (drift): write fields as a cluster operator would."""
        doc = self.get_deployment(dep_id)
        for key in ("status", "replicas", "ready_replicas", "error", "endpoint_url"):
            if key in body:
                doc[key] = body[key]
        doc["updated_at"] = iso()
        internal = self.store.get_internal(dep_id)
        internal["drifted"] = True
        self.store.put("deployment", doc, internal)
        self.wakeup.set()
        return doc

    def _tick_deployment(self, doc: Doc, internal: Doc, now: float) -> None:
        status = doc["status"]
        changed = False
        if internal.get("delete_at"):
            if now >= internal["delete_at"]:
                self.store.delete("deployment", doc["id"])
                self.request_log.pop(doc["id"], None)
                self.synthetic_load.pop(doc["id"], None)
                self._refresh_cluster_status(doc["cluster_id"])
            return
        model = self.store.get("model", doc["model_id"])
        if status in ("pending", "deploying", "active", "scaling") and (
            model is None or model["status"] == "error"
        ):
            why = "model not found" if model is None else f"model failed: {model['error']}"
            doc.update(status="failed", ready_replicas=0, endpoint_url=None, error=why)
            changed = True
        elif status == "pending":
            if model is None or model["status"] != "available":
                # Waiting for a download is progress, not an error: leave `error` empty.
                if doc["error"] is not None:
                    doc["error"] = None
                    changed = True
            else:
                plc, _ = self.placement(doc["cluster_id"])
                req = Request.from_resources(doc["resources"])
                n_placed = plc.place(doc["id"], req, doc["replicas"])
                if n_placed < doc["replicas"]:
                    # Recompute on a fresh placement: place() consumed part of the room.
                    fresh, _ = self.placement(doc["cluster_id"])
                    msg = fresh.shortage(req, doc["replicas"])
                    if doc["error"] != msg:
                        doc["error"] = msg
                        changed = True
                else:
                    doc.update(status="deploying", error=None)
                    internal["phase_until"] = now + self.scaled(
                        self.settings.timings.deploy_seconds
                    )
                    self.store.put_internal(doc["id"], internal)
                    changed = True
        elif status in ("deploying", "scaling"):
            if status == "scaling":
                plc, placed = self.placement(doc["cluster_id"])
                if placed.get(doc["id"], 0) < doc["replicas"]:
                    msg = plc.shortage(Request.from_resources(doc["resources"]), 1)
                    if doc["error"] != msg:
                        doc["error"] = msg
                        changed = True
                    if changed:
                        doc["updated_at"] = iso()
                        self.store.put("deployment", doc)
                    return
            if now >= internal.get("phase_until", 0):
                doc.update(
                    status="active",
                    ready_replicas=doc["replicas"],
                    endpoint_url=self.settings.public_url.rstrip("/") + "/v1",
                    error=None,
                )
                changed = True
        if changed:
            doc["updated_at"] = iso()
            self.store.put("deployment", doc)
            self._refresh_cluster_status(doc["cluster_id"])

    def _tick_cluster_deployments(self, cluster_id: str) -> None:
        """After node loss, active deployments report only the replicas that still fit."""
        _, placed = self.placement(cluster_id)
        with acting_for(None):
            deps = self.store.find("deployment", "cluster_id", cluster_id)
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
                self.store.put("deployment", dep)

    def record_request(self, dep_id: str) -> None:
        q = self.request_log.setdefault(dep_id, deque())
        q.append(time.monotonic())

    def request_rate(self, dep_id: str) -> float:
        window = self.scaled(self.settings.timings.autoscale_window_seconds)
        synthetic = self.synthetic_load.get(dep_id, 0.0)
        q = self.request_log.get(dep_id)
        if not q:
            return synthetic
        cutoff = time.monotonic() - window
        while q and q[0] < cutoff:
            q.popleft()
        # Requests are real events, so the rate is per real second; only the window is scaled.
        return len(q) / window + synthetic

    def _autoscale(self, now: float) -> None:
        interval = self.scaled(self.settings.timings.autoscale_interval_seconds)
        if now - self.last_autoscale < interval:
            return
        self.last_autoscale = now
        per_replica = self.settings.timings.requests_per_replica_per_second
        for dep in self.store.all("deployment"):
            auto = dep["auto_scaling"]
            if not auto["enabled"] or dep["status"] != "active":
                continue
            rate = self.request_rate(dep["id"])
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
                self._set_replicas(dep, desired)
                dep["updated_at"] = iso()
                self.store.put("deployment", dep)

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

    def local_set_load(self, dep_id: str, requests_per_second: float) -> Doc:
        """Out-of-band load for the autoscaler (tests, demos): added to the measured rate."""
        self.get_deployment(dep_id)
        if requests_per_second > 0:
            self.synthetic_load[dep_id] = requests_per_second
        else:
            self.synthetic_load.pop(dep_id, None)
        self.wakeup.set()
        return {
            "deployment_id": dep_id,
            "synthetic_requests_per_second": requests_per_second,
            "requests_per_second": self.request_rate(dep_id),
        }

    # -- scheduler -----------------------------------------------------------------------------

    def tick(self) -> bool:
        """Advance every lifecycle one step; True while something is in flight."""
        now = time.time()
        busy = self._tick_models(now)
        for doc, internal in self.store.all_with_internal("deployment"):
            if doc["status"] in ("pending", "deploying", "scaling", "active") or internal.get(
                "delete_at"
            ):
                self._tick_deployment(doc, internal, now)
            if (
                doc["status"] in ("pending", "deploying", "scaling")
                or internal.get("delete_at")
                or (doc["auto_scaling"]["enabled"] and doc["status"] == "active")
            ):
                busy = True
        for cluster in self.store.all("cluster"):
            self._tick_cluster_deployments(cluster["id"])
            self._refresh_cluster_status(cluster["id"])
        self._autoscale(now)
        from budai_gateway.engine import ensure_runners

        ensure_runners(self)
        return busy

    async def run_scheduler(self) -> None:
        """Tick fast while lifecycles are in flight, slowly when idle; every state change
        sets ``wakeup`` so nothing waits for the slow tick."""
        tick = self.settings.timings.tick_seconds
        idle_tick = max(tick, 0.5)
        last_expire = 0.0
        while True:
            busy = True
            try:
                busy = self.tick()
                if time.time() - last_expire > 300:
                    last_expire = time.time()
                    self.store.idem_expire(self.settings.idempotency_ttl_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=tick if busy else idle_tick)
            self.wakeup.clear()

    async def settle(self, kind: str, obj_id: str, until: set[str], limit: float) -> Doc | None:
        """Wait until an object reaches one of ``until`` statuses (None once it is gone)."""
        deadline = time.monotonic() + limit
        while True:
            doc = self.store.get(kind, obj_id)
            # A deployment being torn down is not "settled" whatever its status says.
            tearing_down = doc is not None and kind == "deployment" and self._deleting(obj_id)
            if doc is None or (doc["status"] in until and not tearing_down):
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} {obj_id} did not settle within {limit:g}s")
            await asyncio.sleep(min(0.02, self.settings.timings.tick_seconds))

    def reset(self) -> None:
        for task in [*self.downloads.values(), *self.runners.values()]:
            task.cancel()
        self.downloads.clear()
        self.runners.clear()
        self.request_log.clear()
        self.synthetic_load.clear()
        self.store.clear()
        shutil.rmtree(self.data_dir / "models", ignore_errors=True)
        self.seed()

    # -- pipelines and executions --------------------------------------------------------------

    def create_pipeline(self, body: dict[str, Any]) -> Doc:
        self._name_taken("pipeline", body["name"])
        now = iso()
        doc = {
            "object": "pipeline",
            "id": new_id("pipe"),
            "name": body["name"],
            "description": body.get("description"),
            "definition": body["definition"],
            "status": "active",
            "metadata": dict(body.get("metadata") or {}),
            "created_at": now,
            "updated_at": now,
        }
        self.store.insert("pipeline", doc)
        return doc

    def get_pipeline(self, pipe_id: str) -> Doc:
        return self._get("pipeline", pipe_id, "pipeline_id")

    def pipeline_view(self, doc: Doc) -> Doc:
        """The pipeline as the API shows it: with a summary of its newest execution."""
        last = self.store.latest("execution", "pipeline_id", doc["id"])
        summary = None
        if last is not None:
            summary = {
                "id": last["id"],
                "status": last["status"],
                "started_at": last.get("started_at"),
                "completed_at": last.get("completed_at"),
            }
        return {**doc, "last_execution": summary}

    def update_pipeline(self, pipe_id: str, body: dict[str, Any]) -> Doc:
        doc = self.get_pipeline(pipe_id)
        if body.get("name") is not None:
            self._name_taken("pipeline", body["name"], exclude=pipe_id)
        for key in ("name", "description", "definition", "status"):
            if body.get(key) is not None:
                doc[key] = body[key]
        if body.get("metadata") is not None:
            doc["metadata"] = {**(doc.get("metadata") or {}), **body["metadata"]}
        doc["updated_at"] = iso()
        self.store.put("pipeline", doc)
        return doc

    def delete_pipeline(self, pipe_id: str) -> Doc:
        self.get_pipeline(pipe_id)
        self.store.delete("pipeline", pipe_id)
        return {"id": pipe_id, "object": "pipeline", "deleted": True}

    def _execution_view(self, doc: Doc) -> Doc:
        steps = self.store.steps(doc["id"])
        doc = dict(doc)
        doc["steps"] = {s["id"]: s for s in steps}
        doc["outputs"] = {s["id"]: s["output"] for s in steps if s["status"] == "completed"}
        return doc

    def get_execution(self, exec_id: str) -> Doc:
        return self._execution_view(self._get("execution", exec_id, "execution_id"))

    def create_execution(self, body: dict[str, Any]) -> Doc:
        pipe = self.get_pipeline(body["pipeline_id"])
        if pipe["status"] != "active":
            raise APIError(
                409,
                "pipeline_not_active",
                f"Pipeline '{pipe['id']}' is {pipe['status']}; only active pipelines run.",
                "pipeline_id",
            )
        lim = self.settings.limits
        if len(self.runners) >= lim.max_active_executions:
            raise APIError(
                429,
                "too_many_executions",
                f"{len(self.runners)} executions are running, the limit is "
                f"{lim.max_active_executions} (limits.max_active_executions); retry later.",
                None,
                {"retry-after": "1"},
            )
        self._prune_executions(lim.max_stored_executions - 1)
        now = iso()
        doc: Doc = {
            "object": "execution",
            "id": new_id("exec"),
            "pipeline_id": pipe["id"],
            "status": "pending",
            "params": dict(body.get("params") or {}),
            "metadata": dict(body.get("metadata") or {}),
            "started_at": None,
            "completed_at": None,
            "duration_seconds": None,
            "error": None,
            "created_at": now,
        }
        steps = [
            {
                "id": s["id"],
                "action": s["action"],
                "status": "pending",
                "output": None,
                "error": None,
                "attempts": 0,
                "started_at": None,
                "completed_at": None,
                "duration_seconds": None,
            }
            for s in pipe["definition"]["steps"]
        ]
        self.store.insert("execution", doc, {"definition": pipe["definition"]}, steps)
        from budai_gateway.engine import start_runner

        start_runner(self, doc["id"])
        return self._execution_view(doc)

    def _prune_executions(self, keep: int) -> None:
        """Drop the oldest finished executions beyond ``keep`` (limits.max_stored_executions)."""
        excess = self.store.count("execution") - keep
        if excess <= 0:
            return
        for exec_id in self.store.oldest_finished_executions(excess, TERMINAL_EXEC):
            self.store.delete("execution", exec_id)

    async def cancel_execution(self, exec_id: str) -> Doc:
        doc = self._get("execution", exec_id, "execution_id")
        if doc["status"] in TERMINAL_EXEC:
            raise APIError(
                409,
                "execution_finished",
                f"Execution '{exec_id}' is already {doc['status']}.",
                "execution_id",
            )
        internal = self.store.get_internal(exec_id)
        internal["cancel_requested"] = True
        self.store.put_internal(exec_id, internal)
        from budai_gateway.engine import request_cancel

        request_cancel(self, exec_id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cur = self._get("execution", exec_id, "execution_id")
            if cur["status"] in TERMINAL_EXEC:
                break
            await asyncio.sleep(0.01)
        return self.get_execution(exec_id)
