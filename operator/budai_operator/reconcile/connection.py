"""Which connection a resource uses, and how a connection's own status reads: pure functions.

Resolution follows Crossplane v2's ProviderConfig / ClusterProviderConfig: an explicit
`spec.connectionRef` wins; without one the namespace's `BudConnection` named `default`, else the
`ClusterBudConnection` named `default` if its `namespaceSelector` selects the namespace. A
namespaced connection is usable only from its own namespace, a cluster one only from the
namespaces it selects, so a tenant cannot borrow another tenant's key by naming it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import BudConnectionStatus
from . import conditions as c
from .errors import Failure

DEFAULT = "default"
BUD_CONNECTION = "BudConnection"
CLUSTER_BUD_CONNECTION = "ClusterBudConnection"

ConnKey = tuple[str, str, str]
"""(kind, namespace, name); namespace is "" for a ClusterBudConnection."""


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector (camelCase, as stored) matches `labels`.

    An absent selector selects nothing; `{}` selects everything.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op = req.get("key"), req.get("operator")
        values: Sequence[str] = req.get("values") or []
        has = key in labels
        if op == "In" and not (has and labels[key] in values):
            return False
        if op == "NotIn" and has and labels[key] in values:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


@dataclass(frozen=True)
class Resolution:
    """The connection to use (`key`), or why there is none (`message`, for `NoConnection`)."""

    key: ConnKey | None
    message: str = ""


def resolve(
    namespace: str,
    ref: Mapping[str, Any] | None,
    namespace_labels: Mapping[str, str],
    namespaced: Collection[tuple[str, str]],
    cluster: Mapping[str, Mapping[str, Any] | None],
) -> Resolution:
    """The connection of a resource in `namespace`.

    `ref` is `spec.connectionRef` (camelCase) or None; `namespaced` the (namespace, name) of every
    BudConnection; `cluster` every ClusterBudConnection's name -> its `namespaceSelector`.
    """
    if ref:
        kind = str(ref.get("kind") or BUD_CONNECTION)
        name = str(ref.get("name"))
        if kind == BUD_CONNECTION:
            if (namespace, name) in namespaced:
                return Resolution((BUD_CONNECTION, namespace, name))
            return Resolution(
                None,
                f"spec.connectionRef names BudConnection {name}, which does not exist in "
                f"namespace {namespace}; create it (a gateway URL and a Secret with the API key "
                f"in this namespace)",
            )
        if name not in cluster:
            return Resolution(
                None,
                f"spec.connectionRef names ClusterBudConnection {name}, which does not exist; "
                f"ask the platform team for one, or create a BudConnection in {namespace}",
            )
        if not selects(cluster[name], namespace_labels):
            return Resolution(
                None,
                f"ClusterBudConnection {name} does not select namespace {namespace} (its "
                f"namespaceSelector); ask the platform team, or create a BudConnection here",
            )
        return Resolution((CLUSTER_BUD_CONNECTION, "", name))
    if (namespace, DEFAULT) in namespaced:
        return Resolution((BUD_CONNECTION, namespace, DEFAULT))
    if DEFAULT in cluster and selects(cluster[DEFAULT], namespace_labels):
        return Resolution((CLUSTER_BUD_CONNECTION, "", DEFAULT))
    return Resolution(
        None,
        f"no connection for namespace {namespace}: create a BudConnection named default in "
        f"{namespace} (a gateway URL and a Secret with the API key), or set spec.connectionRef; "
        f"the ClusterBudConnection default "
        + ("does not select this namespace" if DEFAULT in cluster else "does not exist"),
    )


def describe(key: ConnKey) -> str:
    """How a connection is named in messages, metrics labels and `status.connection`."""
    kind, namespace, name = key
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def parse(text: str) -> ConnKey | None:
    """The key `describe` wrote, or None for anything else."""
    parts = text.split("/")
    if len(parts) == 3 and parts[0] == BUD_CONNECTION:
        return (parts[0], parts[1], parts[2])
    if len(parts) == 2 and parts[0] != BUD_CONNECTION:
        return (parts[0], "", parts[1])
    return None


def keep_pinned(
    pinned: str | None, has_remote: bool, resolved: Resolution, allowed: Collection[ConnKey]
) -> Resolution:
    """A resource whose remote object exists stays on the connection it was created through.

    Defaults can change under a resource (a namespace gains its own `BudConnection default`);
    following them would look for the object in another project and create it again there. So
    once `status.connection` is written the resource keeps it while that connection is still
    one it may use (`allowed`: the connections it may resolve to now, by reference or by
    selector); otherwise it resolves afresh.
    """
    key = parse(pinned) if pinned and has_remote else None
    if key is None or key == resolved.key:
        return resolved
    if key in allowed:
        return Resolution(key)
    return resolved


@dataclass(frozen=True)
class ConnectionHealth:
    """The outcome of the one authenticated check of a connection."""

    ok: bool
    reason: str
    message: str
    project: str | None = None
    scopes: tuple[str, ...] = ()


def key_works(who: Mapping[str, Any]) -> ConnectionHealth:
    """A whoami that succeeded: the project and scopes the key resolves to."""
    return ConnectionHealth(
        True,
        "Connected",
        "the API key works",
        str(who.get("project") or ""),
        tuple(str(x) for x in who.get("scopes") or ()),
    )


def key_failed(failure: Failure) -> ConnectionHealth:
    """A whoami that failed: the gateway rejected the key, or could not be asked."""
    reason = "Unauthorized" if failure.status_code in (401, 403) else "Unreachable"
    return ConnectionHealth(False, reason, f"whoami failed: {failure.describe()}")


def no_key(problem: str | None) -> ConnectionHealth:
    """No usable key: its Secret is missing or unreadable (`problem`), or not read yet."""
    return ConnectionHealth(False, "SecretNotFound", problem or "API key not read yet")


def missing_secret(namespace: str, name: object, key: object) -> str:
    """Why a connection has no key when its Secret (or the key in it) is not there."""
    return (
        f"Secret {namespace}/{name} with key {key or 'apiKey'} "
        f"does not exist (or the operator may not read it)"
    )


def in_use(health: ConnectionHealth, users: Sequence[str]) -> ConnectionHealth:
    """A deleted connection that resources still use: its deletion waits (the finalizer)."""
    return ConnectionHealth(
        False,
        "InUse",
        f"deletion waits: {len(users)} resources use this connection (status.usedBy)",
        health.project,
        health.scopes,
    )


def connection_status(
    previous: Mapping[str, Any],
    health: ConnectionHealth,
    users: Sequence[str],
    generation: int,
    now: Any,
    used_by_limit: int = 20,
) -> dict[str, Any]:
    """The full status of a connection: Ready (or Stalled with the check's reason), the project
    its key resolves to, and who uses it."""
    status = BudConnectionStatus.carried({k: v for k, v in previous.items() if k != "kopf"})
    status.updated(
        BudConnectionStatus(
            observed_generation=generation,
            users=len(users),
            used_by=sorted(users)[:used_by_limit],
        )
    )
    if health.project is not None:
        status.updated(BudConnectionStatus(project=health.project, scopes=list(health.scopes)))
    updates = (
        [
            c.cond(c.READY, True, health.reason, health.message),
            c.cond(c.STALLED, False, health.reason),
        ]
        if health.ok
        else [
            c.cond(c.READY, False, health.reason, health.message),
            c.cond(c.STALLED, True, health.reason, health.message),
        ]
    )
    status.conditions = c.merged(status.conditions, updates, generation=generation, now=now)
    return status.to_wire()
