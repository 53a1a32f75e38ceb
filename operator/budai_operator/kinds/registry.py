"""The kinds the operator serves: add a kind here (one line) after writing its module.

Everything per kind is derived from this list: the kopf handlers, the runtime's loops, the CRDs
and the admission policy (`crdgen`), the chart's RBAC resource lists (`crdgen` writes
`charts/bud-operator/templates/_kinds.tpl`).
"""

from __future__ import annotations

from .base import KindRegistry
from .connection import CLUSTER_CONNECTION, NAMESPACED_CONNECTION
from .deployment import DEPLOYMENT
from .execution import EXECUTION
from .model import MODEL
from .pipeline import PIPELINE

REGISTRY = KindRegistry(
    managed=(MODEL, DEPLOYMENT, PIPELINE, EXECUTION),
    connections=(NAMESPACED_CONNECTION, CLUSTER_CONNECTION),
)
