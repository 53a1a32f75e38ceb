"""`BudConnection` and `ClusterBudConnection`: which gateway, and which API key (so which project),
the Bud resources of a namespace use.

A resource names one with `spec.connectionRef`; without it, the namespace's `BudConnection`
named `default` is used, else the `ClusterBudConnection` named `default` if its
`namespaceSelector` selects the namespace. A namespaced connection reads its Secret from its own
namespace; a cluster connection from the operator's namespace.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ._base import (
    AGE_COLUMN,
    CONNECTION_REF_IMMUTABLE,
    NAME_PATTERN,
    CommonStatus,
    ConnectionKind,
    ConnectionRef,
    CRDInfo,
    CRModel,
    KindDef,
    PrinterColumn,
)


class SecretKeyRef(CRModel):
    """A key of a Secret holding the gateway API key."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    """Secret name (in the connection's namespace; the operator's namespace for a
    ClusterBudConnection)."""

    key: str = Field(default="apiKey", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key in the Secret's data."""


class LabelSelectorRequirement(CRModel):
    """One requirement of a label selector."""

    key: str = Field(min_length=1, max_length=317)
    """The label key."""

    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn, Exists or DoesNotExist."""

    values: list[str] | None = Field(default=None, max_length=64)
    """Values for In and NotIn."""


class LabelSelector(CRModel):
    """A Kubernetes label selector; `{}` selects every namespace."""

    match_labels: dict[str, str] | None = None
    """Labels a namespace must carry."""

    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=32)
    """Requirements a namespace's labels must meet."""


class BudConnectionSpec(CRModel):
    """A gateway and the API key to use it with (the key decides the project)."""

    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    """Base URL of the gateway, for example https://gateway.bud.studio/v1."""

    secret_ref: SecretKeyRef
    """The Secret (in this namespace) holding the API key."""


class ClusterBudConnectionSpec(BudConnectionSpec):
    """A gateway connection namespaces may share, chosen by label."""

    namespace_selector: LabelSelector | None = None
    """Namespaces whose resources may use this connection; `{}` selects all, absent none."""


class BudConnectionStatus(CommonStatus):
    """Whether the key works, which project it resolves to, and who uses the connection."""

    project: str | None = None
    """The gateway project of the API key."""

    scopes: list[str] | None = None
    """The key's scopes."""

    users: int | None = Field(default=None, ge=0)
    """How many Bud resources use this connection."""

    used_by: list[str] | None = Field(default=None, max_length=20)
    """Some of the resources using it (kind/namespace/name); deletion waits until none do."""


__all__ = [
    "BUD_CONNECTION",
    "CLUSTER_BUD_CONNECTION",
    "CONNECTION_REF_IMMUTABLE",
    "BudConnectionSpec",
    "BudConnectionStatus",
    "ClusterBudConnectionSpec",
    "ConnectionKind",
    "ConnectionRef",
    "LabelSelector",
    "LabelSelectorRequirement",
    "SecretKeyRef",
]


def _columns() -> tuple[PrinterColumn, ...]:
    return (
        PrinterColumn(
            "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Key works"
        ),
        PrinterColumn("Project", ".status.project", description="Gateway project of the key"),
        PrinterColumn("Users", ".status.users", "integer", "Resources using it"),
        PrinterColumn("URL", ".spec.url", description="Gateway URL", priority=1),
        AGE_COLUMN,
    )


BUD_CONNECTION = KindDef(
    spec=BudConnectionSpec,
    status=BudConnectionStatus,
    crd=CRDInfo(
        kind="BudConnection",
        plural="budconnections",
        short_names=("bcon",),
        description="A Bud gateway and the API key (a Secret in this namespace) that the Bud "
        "resources of this namespace use.",
        printer_columns=_columns(),
        categories=("bud-connections",),
    ),
)

CLUSTER_BUD_CONNECTION = KindDef(
    spec=ClusterBudConnectionSpec,
    status=BudConnectionStatus,
    crd=CRDInfo(
        kind="ClusterBudConnection",
        plural="clusterbudconnections",
        short_names=("cbcon",),
        description="A Bud gateway and API key (a Secret in the operator's namespace) that the "
        "namespaces chosen by namespaceSelector may use.",
        printer_columns=_columns(),
        categories=("bud-connections",),
        scope="Cluster",
    ),
)
