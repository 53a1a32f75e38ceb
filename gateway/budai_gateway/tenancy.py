"""Projects: which tenant a request acts for, read by the store to scope every object query.

The middleware sets :data:`current_project` from the API key; the store filters models,
deployments, pipelines and executions by it, so an id of another project behaves exactly like
an id that never existed on every path (routes, chat, pipeline actions). ``None`` means no
tenant: the scheduler, the ``/_local/`` controls and shared-capacity accounting see everything.
Clusters are shared capacity and never scoped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULT_PROJECT = "default"
SCOPED_KINDS = frozenset({"model", "deployment", "pipeline", "execution"})

current_project: ContextVar[str | None] = ContextVar("budai_project", default=None)


@contextmanager
def acting_for(project: str | None) -> Iterator[None]:
    """Run a block as ``project`` (``None``: unscoped, for shared state such as placement)."""
    token = current_project.set(project)
    try:
        yield
    finally:
        current_project.reset(token)
