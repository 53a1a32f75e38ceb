"""Names or ids: every command that takes an object accepts either.

An argument that looks like an id (``model_...``, ``dep_...``, ``cluster_...``, ``pipe_...``)
is used as one; anything else is looked up by its exact name, and a name that more than one
object carries is refused with their ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from budai.types import Cluster, Deployment, Model, Pipeline

from ._app import State, fail

__all__ = [
    "cluster_id",
    "deployment_id",
    "model_id",
    "pipeline_id",
    "resolve_cluster",
    "resolve_deployment",
    "resolve_model",
    "resolve_pipeline",
]

T = TypeVar("T")

PREFIXES = {"model": "model_", "deployment": "dep_", "cluster": "cluster_", "pipeline": "pipe_"}


def _by_name(kind: str, ref: str, listing: Callable[[str], Iterable[T]]) -> T:
    matches = [o for o in listing(ref) if getattr(o, "name", None) == ref]
    if not matches:
        fail(f"no {kind} with the id or name {ref!r}", param=kind)
    if len(matches) > 1:
        ids = ", ".join(str(getattr(o, "id", "?")) for o in matches)
        fail(f"several {kind}s are named {ref!r} ({ids}); give an id", param=kind)
    return matches[0]


def _id(state: State, kind: str, ref: str) -> str:
    if ref.startswith(PREFIXES[kind]):
        return ref
    listing: dict[str, Callable[[str], Iterable[Any]]] = {
        "model": lambda n: state.client.models.list(name=n),
        "deployment": lambda n: state.client.deployments.list(name=n),
        "cluster": lambda n: state.client.clusters.list(name=n),
        "pipeline": lambda n: state.client.pipelines.list(name=n),
    }
    return str(_by_name(kind, ref, listing[kind]).id)


def model_id(state: State, ref: str) -> str:
    return _id(state, "model", ref)


def deployment_id(state: State, ref: str) -> str:
    return _id(state, "deployment", ref)


def cluster_id(state: State, ref: str) -> str:
    return _id(state, "cluster", ref)


def pipeline_id(state: State, ref: str) -> str:
    return _id(state, "pipeline", ref)


def resolve_model(state: State, ref: str) -> Model:
    return state.client.models.get(model_id(state, ref))


def resolve_deployment(state: State, ref: str) -> Deployment:
    return state.client.deployments.get(deployment_id(state, ref))


def resolve_cluster(state: State, ref: str) -> Cluster:
    return state.client.clusters.get(cluster_id(state, ref))


def resolve_pipeline(state: State, ref: str) -> Pipeline:
    return state.client.pipelines.get(pipeline_id(state, ref))
