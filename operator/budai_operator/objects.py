"""The object registry: one `ObjectState` per custom resource the watch has shown, by uid and by
(kind, namespace, name), and the index of who refers to whom (a model's deployments, a
pipeline's executions), so that one object's change wakes its dependents without a scan.

It knows no kind by name: which spec field refers to which kind comes from the kind registry
(`budai_operator.kinds`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .reconcile import conditions as cnd
from .reconcile.connection import ConnKey
from .reconcile.errors import Failure
from .reconcile.polling import ANN_PAUSED, ANN_POLL_INTERVAL, ANN_RECONCILE_REQUESTED_AT
from .remote import GatewayLink

if TYPE_CHECKING:
    from .kinds.base import KindRegistry

STEERING = (ANN_PAUSED, ANN_POLL_INTERVAL, ANN_RECONCILE_REQUESTED_AT)

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name)."""


@dataclass
class ObjectState:
    """What the operator remembers about one custom resource between reconciles."""

    kind: str
    uid: str
    namespace: str
    name: str
    body: dict[str, Any]
    attempts: int = 0
    crashes: int = 0
    delete_attempts: int = 0
    delete_failure: Failure | None = None
    handled_generation: int | None = None
    handled_steering: tuple[str, ...] = ()
    remote_id: str | None = None
    ready: str = "Unknown"
    ref: ObjectKey | None = None
    """(kind, namespace, name) of the resource this one waits on, as indexed."""
    conn: ConnKey | None = None
    """The connection this resource resolved to at its last reconcile."""
    gw: GatewayLink = None  # type: ignore[assignment]
    """That connection's gateway client (set before any remote call)."""

    @property
    def steering(self) -> tuple[str, ...]:
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        return tuple(str(annotations.get(k, "")) for k in STEERING)

    @property
    def spec(self) -> Mapping[str, Any]:
        """The spec as stored (camelCase)."""
        spec: Mapping[str, Any] = self.body.get("spec") or {}
        return spec

    @property
    def status(self) -> Mapping[str, Any]:
        """The status as last seen or written (camelCase)."""
        status: Mapping[str, Any] = self.body.get("status") or {}
        return status

    def condition(self, type_: str) -> Mapping[str, Any]:
        """One condition of the status ({} when absent)."""
        found: Mapping[str, Any] = cnd.get(self.status.get("conditions"), type_) or {}
        return found

    def stalled_on(self, reason: str) -> bool:
        """Stalled=True with this reason."""
        stalled = self.condition(cnd.STALLED)
        return stalled.get("status") == "True" and stalled.get("reason") == reason


class Objects:
    """Every tracked custom resource, with the indexes the runtime wakes objects by."""

    def __init__(self, kinds: KindRegistry, wake: Callable[[str], None]) -> None:
        self.kinds = kinds
        self._wake = wake
        self.by_uid: dict[str, ObjectState] = {}
        self._by_name: dict[ObjectKey, str] = {}
        # (kind, namespace, name) -> uids of the resources referring to it: a status change of
        # one model wakes its deployments without a scan of every object.
        self._dependents: dict[ObjectKey, set[str]] = {}

    def __iter__(self) -> Iterator[ObjectState]:
        return iter(self.by_uid.values())

    def get(self, uid: str) -> ObjectState | None:
        return self.by_uid.get(uid)

    def find(self, kind: str, namespace: str, name: str) -> ObjectState | None:
        """A tracked resource by kind and name."""
        uid = self._by_name.get((kind, namespace, name))
        return self.by_uid.get(uid) if uid else None

    def forget(self, uid: str) -> None:
        """The watch said DELETED."""
        gone = self.by_uid.pop(uid, None)
        if gone is not None:
            self._by_name.pop((gone.kind, gone.namespace, gone.name), None)
            self._index_ref(gone, None)

    def clear(self) -> None:
        """Forget everything (on a pause: what we hold goes stale)."""
        self.by_uid.clear()
        self._by_name.clear()
        self._dependents.clear()

    def record(self, kind: str, body: dict[str, Any]) -> tuple[ObjectState, Mapping[str, Any]]:
        """Store the latest body of one object; returns it and its previous status."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        st = self.by_uid.get(uid)
        if st is None:
            st = ObjectState(kind, uid, str(meta.get("namespace")), str(meta.get("name")), body)
            self.by_uid[uid] = st
            self._by_name[(kind, st.namespace, st.name)] = uid
        old_status = st.status if st.body else {}
        st.body = body
        ref = self.kinds[kind].ref
        if ref is not None:
            ref_name = (st.spec.get(ref.field) or {}).get("name")
            self._index_ref(st, (ref.kind, st.namespace, str(ref_name)) if ref_name else None)
        st.ready = ready_of(st.status)
        return st, old_status

    def _index_ref(self, st: ObjectState, ref: ObjectKey | None) -> None:
        if ref == st.ref:
            return
        if st.ref is not None:
            uids = self._dependents.get(st.ref)
            if uids is not None:
                uids.discard(st.uid)
                if not uids:
                    del self._dependents[st.ref]
        if ref is not None:
            self._dependents.setdefault(ref, set()).add(st.uid)
        st.ref = ref

    def wake_dependents(
        self, st: ObjectState, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        """A new remote id or Ready of `st` wakes the resources referring to it (the index holds
        only the kinds others wait on)."""
        if old.get("id") == new.get("id") and ready_of(old) == ready_of(new):
            return
        for uid in self._dependents.get((st.kind, st.namespace, st.name), ()):
            self._wake(uid)

    def counts(self) -> dict[tuple[str, str], int]:
        """Objects by (kind, Ready status), for the metrics endpoint."""
        return dict(Counter((st.kind, st.ready) for st in self.by_uid.values()))


def ready_of(status: Mapping[str, Any]) -> str:
    """The Ready condition's status ("True", "False", "Unknown")."""
    return str((cnd.get(status.get("conditions"), cnd.READY) or {}).get("status", "Unknown"))


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without `managedFields`: nothing here reads them, and they are often the
    largest part of an object (kept for thousands of objects, they would dominate memory)."""
    out = dict(body)
    meta = out.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out
