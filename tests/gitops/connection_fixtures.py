"""The Argo CD fixtures of the connection kinds, made by the operator's own decisions.

Each fixture is a connection at one moment of its life: its status is what
``reconcile.connection.connection_status`` writes for the health the connection loop builds
(``key_works``, ``key_failed`` on the SDK error a whoami raises, ``no_key``, ``in_use``), from the
status before it. ``tests/gitops/test_argocd_health.py`` checks the committed files are exactly
these; after changing a decision, rewrite them with ``python -m tests.gitops.connection_fixtures``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from budai.exceptions import APIConnectionError, AuthenticationError
from budai_operator.kinds.registry import REGISTRY
from budai_operator.reconcile.connection import (
    ConnectionHealth,
    connection_status,
    in_use,
    key_failed,
    key_works,
    missing_secret,
    no_key,
)
from budai_operator.reconcile.polling import FINALIZER
from budai_operator.remote import to_failure
from tests.gitops.lua_health import HEALTH_DIR

CREATED = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
WHO = {"project": "team-a", "scopes": ["models:write", "deployments:write"]}
UNAUTHORIZED = AuthenticationError("Invalid API key", status_code=401, request_id="req_7f3a")
REFUSED = APIConnectionError("connection refused")


def _kind(scope: str) -> str:
    """The registered connection kind of a scope (the registry, not a hard-coded name)."""
    for kind, entry in REGISTRY.connections.items():
        if entry.definition.crd.scope == scope:
            return kind
    raise LookupError(scope)


NAMESPACED, CLUSTER = _kind("Namespaced"), _kind("Cluster")


def _at(minutes: int) -> datetime:
    return CREATED + timedelta(minutes=minutes)


def _object(kind: str, generation: int, **meta: Any) -> dict[str, Any]:
    """A connection without status, as `kubectl apply` leaves it."""
    cluster = kind == CLUSTER
    metadata: dict[str, Any] = {"name": "default"}
    if not cluster:
        metadata["namespace"] = "team-a"
    metadata |= {
        "generation": generation,
        "uid": "9c2e41d0-5b7a-4e8f-a1c3-7d6b0e2f4a18",
        "creationTimestamp": "2026-11-27T10:00:00Z",
        **meta,
    }
    spec: dict[str, Any] = {
        "url": "https://gateway.bud.studio/v1",
        "secretRef": {"name": "bud-key", "key": "apiKey"},
    }
    if cluster:
        spec["namespaceSelector"] = {"matchLabels": {"bud.studio/tenant": "true"}}
    return {"apiVersion": "bud.studio/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def _users(kind: str) -> list[str]:
    if kind == CLUSTER:
        return ["BudModel/team-b/llama", "BudDeployment/team-c/chat", "BudModel/team-c/llama"]
    return ["BudModel/team-a/llama", "BudDeployment/team-a/chat"]


def _status(
    previous: dict[str, Any],
    health: ConnectionHealth,
    users: Sequence[str],
    generation: int,
    minutes: int,
) -> dict[str, Any]:
    return connection_status(previous, health, users, generation, _at(minutes))


def _ready(kind: str) -> dict[str, Any]:
    """The first check: the key works."""
    return _status({}, key_works(WHO), _users(kind), 1, 1)


Recipe = Callable[[str], dict[str, Any]]


def _with(obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "status": status}


def _secret_namespace(kind: str) -> str:
    # A ClusterBudConnection reads its Secret from the operator's namespace.
    return "bud-system" if kind == CLUSTER else "team-a"


RECIPES: dict[str, Recipe] = {
    "healthy": lambda k: _with(_object(k, 1, finalizers=[FINALIZER]), _ready(k)),
    # Applied, not seen by the operator yet: no status, no finalizer.
    "new": lambda k: _object(k, 1),
    # The URL was edited (generation 2) while the operator was down.
    "generation-not-observed": lambda k: _with(_object(k, 2, finalizers=[FINALIZER]), _ready(k)),
    # The key was revoked: the next whoami is rejected.
    "unauthorized": lambda k: _with(
        _object(k, 1, finalizers=[FINALIZER]),
        _status(_ready(k), key_failed(to_failure(UNAUTHORIZED)), _users(k), 1, 6),
    ),
    "unreachable": lambda k: _with(
        _object(k, 1, finalizers=[FINALIZER]),
        _status(_ready(k), key_failed(to_failure(REFUSED)), _users(k), 1, 6),
    ),
    # The Secret named by spec.secretRef is not there (never was).
    "secret-not-found": lambda k: _with(
        _object(k, 1, finalizers=[FINALIZER]),
        _status({}, no_key(missing_secret(_secret_namespace(k), "bud-key", "apiKey")), [], 1, 1),
    ),
    # Deleted while resources use it: the finalizer holds it, the status says who.
    "deleting-in-use": lambda k: _with(
        _object(k, 1, finalizers=[FINALIZER], deletionTimestamp="2026-11-27T10:30:00Z"),
        _status(_ready(k), in_use(key_works(WHO), _users(k)), _users(k), 1, 30),
    ),
    # Deleted, nobody uses it: only the operator's release of the finalizer is left.
    "deleting-unused": lambda k: _with(
        _object(k, 1, finalizers=[FINALIZER], deletionTimestamp="2026-11-27T10:30:00Z"),
        _status(_ready(k), key_works(WHO), [], 1, 30),
    ),
    # The operator does not read bud.studio/paused on a connection: it stays what it is.
    "paused-annotation": lambda k: _with(
        _object(k, 1, finalizers=[FINALIZER], annotations={"bud.studio/paused": "true"}),
        _ready(k),
    ),
}


def fixtures() -> dict[str, dict[str, Any]]:
    """Every connection fixture, by its path under ``gitops/argocd/health``."""
    return {
        f"bud.studio_{kind}/testdata/{name}.yaml": recipe(kind)
        for kind in (NAMESPACED, CLUSTER)
        for name, recipe in RECIPES.items()
    }


def render(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def main() -> None:
    for rel, obj in fixtures().items():
        path = HEALTH_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(obj))


if __name__ == "__main__":
    main()
