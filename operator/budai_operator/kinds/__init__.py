"""One module per custom resource kind: what the runtime needs to reconcile it (models, plural,
references, remote resource, decisions, writes). `registry.REGISTRY` lists them."""

from .base import ConnectionKindDef, KindAdapter, KindRegistry, Ref, Turn

__all__ = ["ConnectionKindDef", "KindAdapter", "KindRegistry", "Ref", "Turn"]
