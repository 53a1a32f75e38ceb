"""Pipelines: stored, checked definitions and the summary of their newest execution."""

from __future__ import annotations

from typing import Any

from budai_gateway import dag
from budai_gateway.errors import APIError
from budai_gateway.schemas import Definition
from budai_gateway.services.common import ensure_name_free, get_or_404, page
from budai_gateway.services.state import State, iso, new_id
from budai_gateway.store import Doc


class Pipelines:
    def __init__(self, state: State) -> None:
        self.state = state

    def check(self, definition: Definition) -> dict[str, Any]:
        """The definition as stored, or a 422 naming every problem and where it is."""
        problems = dag.semantic_problems(definition, self.state.settings.max_pipeline_steps)
        if problems:
            param, message = problems[0]
            if len(problems) > 1:
                message = f"{len(problems)} problems: " + "; ".join(
                    f"{p}: {m}" if p else m for p, m in problems
                )
            raise APIError(422, "invalid_definition", message, param)
        return definition.model_dump(mode="json", exclude_none=True)

    def validate(self, definition: Any) -> dict[str, Any]:
        """``POST /pipelines/validate``: every problem, without storing anything."""
        _, problems = dag.validate_definition(definition, self.state.settings.max_pipeline_steps)
        return {"valid": not problems, "errors": [{"param": p, "message": m} for p, m in problems]}

    def view(self, doc: Doc) -> Doc:
        """The pipeline as the API shows it: with a summary of its newest execution."""
        last = self.state.store.latest("execution", "pipeline_id", doc["id"])
        summary = None
        if last is not None:
            summary = {
                "id": last["id"],
                "status": last["status"],
                "started_at": last.get("started_at"),
                "completed_at": last.get("completed_at"),
            }
        return {**doc, "last_execution": summary}

    def list(self, filters: dict[str, Any], limit: int, after: str | None) -> dict[str, Any]:
        return page(self.state.store, "pipeline", filters, limit, after, view=self.view)

    def get(self, pipe_id: str) -> Doc:
        """The stored pipeline (``view`` adds what the API shows)."""
        return get_or_404(self.state.store, "pipeline", pipe_id, "pipeline_id")

    def create(self, body: dict[str, Any]) -> Doc:
        ensure_name_free(self.state.store, "pipeline", body["name"])
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
        self.state.store.insert("pipeline", doc)
        return doc

    def update(self, pipe_id: str, body: dict[str, Any]) -> Doc:
        doc = self.get(pipe_id)
        if body.get("name") is not None:
            ensure_name_free(self.state.store, "pipeline", body["name"], exclude=pipe_id)
        for key in ("name", "description", "definition", "status"):
            if body.get(key) is not None:
                doc[key] = body[key]
        if body.get("metadata") is not None:
            doc["metadata"] = {**(doc.get("metadata") or {}), **body["metadata"]}
        doc["updated_at"] = iso()
        self.state.store.put("pipeline", doc)
        return doc

    def delete(self, pipe_id: str) -> Doc:
        self.get(pipe_id)
        self.state.store.delete("pipeline", pipe_id)
        return {"id": pipe_id, "object": "pipeline", "deleted": True}
