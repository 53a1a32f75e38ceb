"""What every resource service does the same way: fetch or 404, unique names, list pages, waiting
for a status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from budai_gateway.errors import APIError, not_found
from budai_gateway.services.state import State
from budai_gateway.store import Doc, Store


def get_or_404(store: Store, kind: str, obj_id: str, param: str) -> Doc:
    doc = store.get(kind, obj_id)
    if doc is None:
        raise not_found(kind, obj_id, param)
    return doc


def ensure_name_free(store: Store, kind: str, name: str, exclude: str | None = None) -> None:
    for doc in store.find(kind, "name", name):
        if doc["id"] != exclude:
            # `param` names the field at fault; where the other object is goes in Location.
            raise APIError(
                409,
                "already_exists",
                f"A {kind} named '{name}' already exists ({doc['id']}).",
                "name",
                headers={"Location": f"/v1/{kind}s/{doc['id']}"},
            )


def page(
    store: Store,
    kind: str,
    filters: dict[str, Any],
    limit: int,
    after: str | None,
    *,
    newest_first: bool = False,
    view: Callable[[Doc], Doc] | None = None,
) -> dict[str, Any]:
    """A list page. ``filters`` are already validated (the routers' list queries)."""
    result = store.page(kind, filters, after, limit, newest_first=newest_first)
    if result is None:
        raise APIError(400, "invalid_cursor", f"Unknown cursor '{after}'.", "after")
    docs, has_more = result
    if view is not None:
        docs = [view(d) for d in docs]
    return {
        "object": "list",
        "data": docs,
        "has_more": has_more,
        "next_cursor": docs[-1]["id"] if has_more and docs else None,
    }


async def settle(state: State, kind: str, obj_id: str, until: set[str], limit: float) -> Doc | None:
    """Wait until an object reaches one of ``until`` statuses (None once it is gone)."""
    deadline = time.monotonic() + limit
    while True:
        doc = state.store.get(kind, obj_id)
        # A deployment being torn down is not "settled" whatever its status says.
        tearing_down = doc is not None and kind == "deployment" and state.teardown_scheduled(obj_id)
        if doc is None or (doc["status"] in until and not tearing_down):
            return doc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{kind} {obj_id} did not settle within {limit:g}s")
        await asyncio.sleep(min(0.02, state.settings.timings.tick_seconds))
