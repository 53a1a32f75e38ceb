"""`BudConnection` and `ClusterBudConnection`: which gateway and API key resources use. They have
no remote object; the connection loop (`budai_operator.connection_loop`) holds and writes them,
their decisions are `reconcile.connection`."""

from __future__ import annotations

from ..models import BUD_CONNECTION, CLUSTER_BUD_CONNECTION
from .base import ConnectionKindDef

NAMESPACED_CONNECTION = ConnectionKindDef(BUD_CONNECTION)
CLUSTER_CONNECTION = ConnectionKindDef(CLUSTER_BUD_CONNECTION)
