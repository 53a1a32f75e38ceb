"""Shared pieces of the custom resource models: the camelCase base class, common spec fields,
conditions and the CRD metadata each kind declares for `budai_operator.crdgen`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "bud.studio"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes object names are DNS subdomains; remote names follow the same shape so that the
# default `<namespace>-<name>` always fits.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9._]{0,251}[a-z0-9])?$"


class CRModel(BaseModel):
    """Base for every part of a custom resource: camelCase on the wire, docs from docstrings."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """Dump as the camelCase JSON the API server stores, leaving out unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(CRModel):
    """Base for every part of a status: the decisions build status through these models, so an
    unknown field (a hand-typed key, a typo) fails at once instead of reaching the API server,
    which would silently prune it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def carried(cls, previous: Mapping[str, Any]) -> Self:
        """The previous status, as the starting point of the next one.

        What no longer fits the model (a field an older operator wrote, a value out of bounds,
        a hand-edited condition) is left out, so it is cleared by the next write instead of
        failing every reconcile; a bad entry of a list drops only that entry.
        """
        data: dict[str, Any] = dict(previous)
        while True:
            try:
                return cls.model_validate(data)
            except ValidationError as err:
                if not _drop_invalid(data, err):
                    raise

    def updated(self, fields: Self) -> Self:
        """This status with every field `fields` was built with set from it (in place); a field
        given as None is cleared, one not given is kept."""
        for name in fields.model_fields_set:
            setattr(self, name, getattr(fields, name))
        return self


def _drop_invalid(data: dict[str, Any], err: ValidationError) -> bool:
    """Remove what `err` complains about from `data`; False when nothing could be removed."""
    dropped = False
    items: dict[str, set[int]] = {}
    for error in err.errors():
        loc = error["loc"]
        if not loc or not isinstance(loc[0], str) or loc[0] not in data:
            continue
        key = loc[0]
        if len(loc) > 1 and isinstance(loc[1], int) and isinstance(data[key], list):
            items.setdefault(key, set()).add(loc[1])
        else:
            data.pop(key)
            dropped = True
    for key, bad in items.items():
        if key in data:
            data[key] = [item for i, item in enumerate(data[key]) if i not in bad]
            dropped = True
    return dropped


class DeletionPolicy(StrEnum):
    """What happens to the remote object when the custom resource is deleted."""

    DELETE = "Delete"
    ORPHAN = "Orphan"


class ObjectRef(CRModel):
    """A reference to another custom resource in the same namespace."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    """Name of the referenced resource, in the same namespace."""


class ConnectionKind(StrEnum):
    """The kind of connection a resource refers to."""

    BUD_CONNECTION = "BudConnection"
    CLUSTER_BUD_CONNECTION = "ClusterBudConnection"


class ConnectionRef(CRModel):
    """Which connection (gateway URL and API key) a resource uses."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    kind: ConnectionKind = ConnectionKind.BUD_CONNECTION
    """BudConnection (in this namespace) or ClusterBudConnection."""

    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    """Name of the connection."""


CONNECTION_REF_IMMUTABLE: JsonDict = {
    "rule": "has(self.connectionRef) == has(oldSelf.connectionRef)"
    " && (!has(self.connectionRef) || self.connectionRef == oldSelf.connectionRef)",
    "message": "connectionRef is immutable: the remote object lives behind that connection",
    "fieldPath": ".connectionRef",
}


class ManagedSpec(CRModel):
    """Spec fields every managed kind shares."""

    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """Delete removes the remote object when this resource is deleted; Orphan leaves it in place."""

    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Id of an existing remote object to adopt instead of creating one. Immutable."""

    name: str | None = Field(default=None, min_length=1, max_length=253, pattern=NAME_PATTERN)
    """Remote object name; defaults to `<namespace>-<metadata.name>`."""

    connection_ref: ConnectionRef | None = None
    """The connection (gateway and API key) to use; default: this namespace's BudConnection
    `default`, else the ClusterBudConnection `default` if it selects this namespace. Immutable."""


EXTERNAL_ID_IMMUTABLE: JsonDict = {
    "rule": "has(self.externalId) == has(oldSelf.externalId)"
    " && (!has(self.externalId) || self.externalId == oldSelf.externalId)",
    "message": "externalId is immutable: create a new resource to manage another remote object",
    "fieldPath": ".externalId",
}
NAME_IMMUTABLE: JsonDict = {
    "rule": "has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)",
    "message": "name is immutable: it names the remote object this resource manages",
    "fieldPath": ".name",
}


class Condition(StatusModel):
    """The state of one aspect of the resource, shaped like metav1.Condition."""

    type: str = Field(max_length=316, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """Condition type: Ready, Reconciling, Stalled, Synced or a kind-specific one."""

    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""

    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Stable CamelCase reason for the last transition."""

    message: str = Field(default="", max_length=32768)
    """Human-readable details."""

    last_transition_time: str
    """When the status last changed (RFC 3339); idle reconciles leave it untouched."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed from."""


class CommonStatus(StatusModel):
    """Status fields every kind shares."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the operator last reconciled."""

    # None, not an empty list, by default: a status that never had conditions stays without.
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Reconciling, Stalled, Synced and kind-specific conditions."""

    id: str | None = None
    """Id of the remote object in the Bud gateway."""

    connection: str | None = None
    """The connection the remote object lives behind (kind/namespace/name); the resource keeps
    it while it may still use it, even if the namespace's default changes."""

    last_sync_time: str | None = None
    """When the operator last reached the gateway successfully (RFC 3339)."""

    last_handled_reconcile_at: str | None = None
    """The last value of the bud.studio/reconcile-requested-at annotation that was handled."""


class CarriedStatus(CommonStatus):
    """A status whose kind the caller does not name (the plans every kind shares, called by the
    runtime): the common fields typed, the kind's own fields carried as they were, since those
    plans write none of them."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CRDInfo:
    """What crdgen needs besides the schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    printer_columns: tuple[PrinterColumn, ...]
    scale: bool = False
    categories: tuple[str, ...] = ("bud",)
    extra: dict[str, Any] = field(default_factory=dict)
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"


READY_COLUMN = PrinterColumn(
    "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready condition"
)
REASON_COLUMN = PrinterColumn(
    "Reason",
    '.status.conditions[?(@.type=="Ready")].reason',
    description="Why the resource is (not) ready",
    priority=1,
)
STATE_COLUMN = PrinterColumn("State", ".status.state", description="State reported by the gateway")
AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", type="date")
ID_COLUMN = PrinterColumn("ID", ".status.id", description="Remote id", priority=1)


@dataclass(frozen=True)
class KindDef:
    """One custom resource kind: its spec and status models and CRD metadata."""

    spec: type[CRModel]
    status: type[CommonStatus]
    crd: CRDInfo
