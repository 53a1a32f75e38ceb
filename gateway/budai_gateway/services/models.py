"""Models: registry entries and their lifecycle (downloading -> available | error; deleting)."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

from budai.types.model import ModelStatus
from budai_gateway.errors import APIError
from budai_gateway.progress import progress_fields
from budai_gateway.services import model_sources as sources
from budai_gateway.services.common import ensure_name_free, get_or_404, page
from budai_gateway.services.state import State, iso, new_id
from budai_gateway.store import Doc

IN_FLIGHT: tuple[ModelStatus, ...] = ("downloading", "deleting")


class Models:
    def __init__(self, state: State) -> None:
        self.state = state
        self.downloads: dict[str, asyncio.Task[None]] = {}

    def list(self, filters: dict[str, Any], limit: int, after: str | None) -> dict[str, Any]:
        return page(self.state.store, "model", filters, limit, after)

    def get(self, model_id: str) -> Doc:
        return get_or_404(self.state.store, "model", model_id, "model_id")

    def check_metadata(self, metadata: dict[str, Any] | None) -> None:
        """Metadata names a configured upstream; it never chooses a URL, a variable or a file."""
        settings = self.state.settings
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
        if name is not None and (not isinstance(name, str) or settings.upstream(name) is None):
            known = ", ".join(u.name for u in settings.upstreams) or "none configured"
            raise APIError(
                422,
                "unknown_upstream",
                f"metadata.upstream names no upstream of the gateway's config ({known})",
                "metadata.upstream",
            )

    async def add(self, body: dict[str, Any]) -> Doc:
        """Check, measure a ``local`` source (off the event loop), then create."""
        self.check_metadata(body.get("metadata"))
        if body["source"] == "url":
            # An address literal is judged now; a name when the download connects.
            why = self.state.egress_policy.literal_refusal(str(body["uri"]))
            if why is not None:
                raise APIError(422, "egress_refused", why, "uri")
        local = body["source"] == "local"
        measured = await sources.measure(self.state, str(body["uri"])) if local else None
        return self.create(body, measured)

    def create(
        self, body: dict[str, Any], measured: tuple[int | None, str | None] | None = None
    ) -> Doc:
        self.check_metadata(body.get("metadata"))
        ensure_name_free(self.state.store, "model", body["name"])
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
        self._resolve_source(doc, measured)
        self.state.store.insert("model", doc, {"last_tick": now, "done_bytes": 0})
        if doc["status"] == "downloading":
            self.state.wakeup.set()
        return doc

    def _resolve_source(self, doc: Doc, measured: tuple[int | None, str | None] | None) -> None:
        """Finish what needs no download now; mark what the scheduler downloads (or simulates)."""
        timings = self.state.settings.timings
        source = doc["source"]
        if source == "cloud":
            sources.finish(doc, None)
        elif source == "local":
            size, error = measured if measured is not None else (None, "path was not measured")
            if error is None:
                sources.finish(doc, size)
            else:
                sources.fail(doc, error)
        elif source == "hugging_face":
            cached = sources.hf_cache(self.state, doc["uri"])
            if cached is not None:
                doc["metadata"].setdefault("resolved_from", "local_cache")
                doc["metadata"].setdefault("local_path", str(cached))
                sources.finish(doc, sources.dir_size(cached))
            else:
                size = int(
                    doc["metadata"].get("simulated_size_bytes", timings.simulated_model_size_bytes)
                )
                doc["size_bytes"] = size
                doc["metadata"]["simulated_download"] = True
                doc["metadata"]["simulated_rate_bytes_per_second"] = (
                    timings.simulated_download_bytes_per_second
                )

    def update(self, model_id: str, body: dict[str, Any]) -> Doc:
        doc = self.get(model_id)
        if body.get("name") is not None:
            ensure_name_free(self.state.store, "model", body["name"], exclude=model_id)
            doc["name"] = body["name"]
        if body.get("metadata") is not None:
            self.check_metadata(body["metadata"])
            doc["metadata"] = {**doc["metadata"], **body["metadata"]}
        doc["updated_at"] = iso()
        self.state.store.put("model", doc)
        return doc

    def delete(self, model_id: str) -> Doc:
        state = self.state
        doc = self.get(model_id)
        users = [
            d
            for d in state.store.find("deployment", "model_id", model_id)
            if not state.teardown_scheduled(d["id"])
        ]
        if users:
            raise APIError(
                409,
                "model_in_use",
                f"Model '{model_id}' is used by deployment '{users[0]['id']}'; delete it first.",
                "model_id",
            )
        if doc["status"] != "deleting":
            internal = state.store.get_internal(model_id)
            internal["delete_at"] = time.time() + state.scaled(
                state.settings.timings.model_delete_seconds
            )
            doc["status"] = "deleting"
            doc["progress_percent"] = None
            doc["updated_at"] = iso()
            state.store.put("model", doc, internal)
            task = self.downloads.pop(model_id, None)
            if task:
                task.cancel()
            state.wakeup.set()
        return doc

    async def _download(self, model_id: str) -> None:
        try:
            await sources.download(self.state, model_id)
        finally:
            self.downloads.pop(model_id, None)

    def tick(self, now: float) -> bool:
        """One scheduler step for every model; True while one is in flight."""
        state = self.state
        busy = False
        for doc, internal in state.store.all_with_internal("model"):
            status = doc["status"]
            busy = busy or status in IN_FLIGHT
            if status == "deleting":
                if now >= internal.get("delete_at", 0):
                    state.store.delete("model", doc["id"])
                    shutil.rmtree(state.data_dir / "models" / doc["id"], ignore_errors=True)
            elif status == "downloading":
                if doc["source"] == "url":
                    if doc["id"] not in self.downloads:
                        self.downloads[doc["id"]] = asyncio.create_task(self._download(doc["id"]))
                else:
                    self._simulate(doc, internal, now)
        return busy

    def _simulate(self, doc: Doc, internal: Doc, now: float) -> None:
        """A simulated download advances at the configured rate times the speed factor."""
        rate = self.state.settings.timings.simulated_download_bytes_per_second
        speed = self.state.speed
        elapsed = min(max(now - internal.get("last_tick", now), 0.0), 1.0)
        size = int(doc["size_bytes"] or 0)
        done = int(internal.get("done_bytes", 0) + elapsed * rate * speed)
        internal["done_bytes"] = done
        internal["last_tick"] = now
        if done >= size:
            sources.finish(doc, size)
        else:
            doc.update(progress_fields(done, size, rate * speed))
        self.state.store.put("model", doc, internal)

    def cancel_downloads(self) -> None:
        for task in self.downloads.values():
            task.cancel()
        self.downloads.clear()
