"""``budai models``, ``budai deployments`` and ``budai clusters``.

``--wait`` on create/scale/delete polls until the object settles, with a progress bar on stderr
(download percentage for models, ready replicas for deployments); a settle into ``error`` or
``failed`` exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn

from budai.exceptions import BudAPIError, NotFoundError
from budai.readiness import deployment_readiness, model_readiness
from budai.types import AutoScaling, Deployment, Model, Resources

from ._app import (
    State,
    confirm_delete,
    emit,
    fail,
    output_option,
    parse_pairs,
    pass_state,
    yes_option,
)
from ._render import err_console, print_object, print_objects
from ._resolve import cluster_id as to_cluster_id
from ._resolve import deployment_id as to_deployment_id
from ._resolve import model_id as to_model_id
from ._resolve import resolve_cluster, resolve_deployment, resolve_model

__all__ = ["clusters", "deployments", "models"]

MODEL_COLUMNS = [
    ("ID", "id"),
    ("NAME", "name"),
    ("SOURCE", "source"),
    ("STATUS", "status"),
    ("SIZE", "size_bytes"),
    ("PROGRESS", "progress_percent"),
    ("CREATED", "created_at"),
]
DEPLOYMENT_COLUMNS = [
    ("ID", "id"),
    ("NAME", "name"),
    ("MODEL", "model_id"),
    ("CLUSTER", "cluster_id"),
    ("STATUS", "status"),
    ("REPLICAS", "replicas"),
    ("READY", "ready_replicas"),
]
CLUSTER_COLUMNS = [
    ("ID", "id"),
    ("NAME", "name"),
    ("PROVIDER", "provider"),
    ("REGION", "region"),
    ("STATUS", "status"),
    ("NODES", "node_count"),
    ("KUBERNETES", "kubernetes_version"),
]

# The API pages at most 100 items at a time; iterating the page fetches the rest.
limit_option = click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="Show at most N."
)
timeout_option = click.option(
    "--wait-timeout", type=float, default=600.0, show_default=True, help="Seconds to --wait."
)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console(),
        transient=False,
    )


def poll(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout: float,
    on_update: Callable[[Any], None],
    what: str,
    why: Callable[[Any], str] | None = None,
) -> Any:
    """Call ``fetch`` with a growing interval until ``done(result)``; exit 1 on timeout, saying
    why the object is not there yet (``why(result)``: a reason and the gateway's words)."""
    deadline = time.monotonic() + timeout
    interval = 0.2
    while True:
        current = fetch()
        on_update(current)
        if done(current):
            return current
        if time.monotonic() > deadline:
            because = ""
            if why is not None:
                try:
                    because = f": {why(current)}"
                except BudAPIError:
                    because = ""
            fail(f"timed out after {timeout:g}s waiting for {what}{because}")
        time.sleep(interval)
        interval = min(interval * 1.5, 2.0)


# -- models ------------------------------------------------------------------------------------


@click.group()
def models() -> None:
    """Register, inspect and delete models."""


@models.command("list")
@click.option("--name")
@click.option("--status", type=click.Choice(["downloading", "available", "error", "deleting"]))
@click.option("--source", type=click.Choice(["hugging_face", "url", "local", "cloud"]))
@limit_option
@output_option
@pass_state
def models_list(state: State, name: str | None, status: Any, source: Any, limit: int) -> None:
    """List models."""
    page = state.client.models.list(name=name, status=status, source=source, limit=min(limit, 100))
    print_objects(page, MODEL_COLUMNS, state.output, "models", limit=limit)


@models.command("get")
@click.argument("model")
@output_option
@pass_state
def models_get(state: State, model: str) -> None:
    """Show one model (by id or name)."""
    print_object(resolve_model(state, model), state.output)


@models.command("create")
@click.option("--name", required=True, help="Model name (unique).")
@click.option(
    "--source", required=True, type=click.Choice(["hugging_face", "url", "local", "cloud"])
)
@click.option("--uri", required=True, help="Repository id, URL, path or bucket URI.")
@click.option(
    "--metadata",
    "metadata_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata entry (repeatable; JSON values allowed).",
)
@click.option("--wait", is_flag=True, help="Wait until the model is available (progress bar).")
@timeout_option
@output_option
@pass_state
def models_create(
    state: State,
    name: str,
    source: Any,
    uri: str,
    metadata_pairs: tuple[str, ...],
    wait: bool,
    wait_timeout: float,
) -> None:
    """Register a model; with --wait, show its download and exit 1 if it ends in error."""
    metadata = parse_pairs(metadata_pairs, "--metadata") or None
    model = state.client.models.create(name=name, source=source, uri=uri, metadata=metadata)
    if wait:
        model = wait_for_model(state, model, wait_timeout)
    print_object(model, state.output)
    if model.status == "error":
        fail(f"model {model.id} failed: {model.error or 'unknown error'}")


def wait_for_model(state: State, model: Model, timeout: float) -> Model:
    """Follow a model until it is ``available`` or in ``error``, with a download bar."""
    with _progress() as progress:
        task = progress.add_task(f"{model.name}", total=100, status=model.status)

        def update(m: Model) -> None:
            percent = 100.0 if m.status == "available" else (m.progress_percent or 0.0)
            progress.update(task, completed=percent, status=m.status)

        result: Model = poll(
            lambda: state.client.models.get(model.id),
            lambda m: m.status in ("available", "error"),
            timeout,
            update,
            f"model {model.id}",
            lambda m: str(model_readiness(m.to_dict())),
        )
    return result


@models.command("delete")
@click.argument("model")
@click.option("--wait", is_flag=True, help="Wait until the model is gone.")
@yes_option
@timeout_option
@output_option
@pass_state
def models_delete(state: State, model: str, wait: bool, yes: bool, wait_timeout: float) -> None:
    """Delete a model, by id or name (it must not be used by a deployment)."""
    model_id = to_model_id(state, model)
    confirm_delete(f"model {model}" + ("" if model == model_id else f" ({model_id})"), yes)
    deleting = state.client.models.delete(model_id)
    if wait:
        _wait_gone(lambda: state.client.models.get(model_id), wait_timeout, f"model {model_id}")
        emit(state, {"id": model_id, "deleted": True}, f"deleted {model_id}")
        return

    print_object(deleting, state.output)


def _wait_gone(fetch: Callable[[], Any], timeout: float, what: str) -> None:
    def gone() -> Any:
        try:
            return fetch()
        except NotFoundError:
            return None

    with err_console().status(f"waiting for {what} to go"):
        poll(
            gone,
            lambda obj: obj is None,
            timeout,
            lambda _obj: None,
            f"{what} to be deleted",
            lambda obj: f"it is still {getattr(obj, 'status', 'there')}",
        )


# -- deployments -------------------------------------------------------------------------------


@click.group()
def deployments() -> None:
    """Deploy models on clusters, scale, stop, start and delete deployments."""


@deployments.command("list")
@click.option("--name")
@click.option("--model", "model_ref", help="Only deployments of this model (id or name).")
@click.option("--cluster", "cluster_ref", help="Only deployments on this cluster (id or name).")
@click.option(
    "--status",
    type=click.Choice(["pending", "deploying", "active", "scaling", "failed", "stopped"]),
)
@limit_option
@output_option
@pass_state
def deployments_list(
    state: State,
    name: str | None,
    model_ref: str | None,
    cluster_ref: str | None,
    status: Any,
    limit: int,
) -> None:
    """List deployments."""
    model_id = to_model_id(state, model_ref) if model_ref else None
    cluster_id = to_cluster_id(state, cluster_ref) if cluster_ref else None
    page = state.client.deployments.list(
        name=name, model_id=model_id, cluster_id=cluster_id, status=status, limit=min(limit, 100)
    )
    print_objects(page, DEPLOYMENT_COLUMNS, state.output, "deployments", limit=limit)


@deployments.command("get")
@click.argument("deployment")
@output_option
@pass_state
def deployments_get(state: State, deployment: str) -> None:
    """Show one deployment (by id or name)."""
    print_object(resolve_deployment(state, deployment), state.output)


@deployments.command("create")
@click.option("--model", "model_ref", required=True, help="Model id or name.")
@click.option("--cluster", "cluster_ref", required=True, help="Cluster id or name.")
@click.option("--name")
@click.option("--replicas", type=click.IntRange(0))
@click.option("--cpu", help="CPU per replica (Kubernetes quantity, e.g. 2 or 500m).")
@click.option("--memory", help="Memory per replica (e.g. 8Gi).")
@click.option("--gpu", type=click.IntRange(0), help="GPUs per replica.")
@click.option("--gpu-type")
@click.option("--min-replicas", type=click.IntRange(0), help="Enable autoscaling from this.")
@click.option("--max-replicas", type=click.IntRange(1), help="Enable autoscaling up to this.")
@click.option("--wait", is_flag=True, help="Wait until the deployment is active.")
@timeout_option
@output_option
@pass_state
def deployments_create(
    state: State,
    model_ref: str,
    cluster_ref: str,
    name: str | None,
    replicas: int | None,
    cpu: str | None,
    memory: str | None,
    gpu: int | None,
    gpu_type: str | None,
    min_replicas: int | None,
    max_replicas: int | None,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Deploy a model on a cluster."""
    resources: Resources | None = None
    if cpu or memory or gpu is not None or gpu_type:
        if not (cpu and memory):
            raise click.UsageError("--cpu and --memory go together")
        resources = {"cpu": cpu, "memory": memory}
        if gpu is not None:
            resources["gpu"] = gpu
        if gpu_type:
            resources["gpu_type"] = gpu_type
    auto_scaling: AutoScaling | None = None
    if min_replicas is not None or max_replicas is not None:
        if min_replicas is None or max_replicas is None:
            raise click.UsageError("--min-replicas and --max-replicas go together")
        auto_scaling = {"enabled": True, "min_replicas": min_replicas, "max_replicas": max_replicas}
    dep = state.client.deployments.create(
        model_id=to_model_id(state, model_ref),
        cluster_id=to_cluster_id(state, cluster_ref),
        name=name,
        replicas=replicas,
        resources=resources,
        auto_scaling=auto_scaling,
    )
    if wait:
        dep = wait_for_deployment(state, dep, wait_timeout)
    print_object(dep, state.output)
    if dep.status == "failed":
        fail(f"deployment {dep.id} failed: {dep.error or 'unknown error'}")


def wait_for_deployment(state: State, dep: Deployment, timeout: float) -> Deployment:
    """Follow a deployment until it is ``active`` (or ``failed``/``stopped``), showing ready
    replicas against desired ones."""
    with _progress() as progress:
        task = progress.add_task(dep.name, total=max(dep.replicas, 1), status=dep.status)

        def update(d: Deployment) -> None:
            ready = getattr(d, "ready_replicas", None) or 0
            progress.update(task, total=max(d.replicas, 1), completed=ready, status=d.status)

        def settled(d: Deployment) -> bool:
            if d.status in ("failed", "stopped"):
                return True
            ready = getattr(d, "ready_replicas", None)
            return d.status == "active" and (ready is None or ready == d.replicas)

        def why(d: Deployment) -> str:
            health = state.client.clusters.health(d.cluster_id).to_dict()
            model = state.client.models.get(d.model_id).to_dict()
            return str(deployment_readiness(d.to_dict(), health, model))

        result: Deployment = poll(
            lambda: state.client.deployments.get(dep.id),
            settled,
            timeout,
            update,
            f"deployment {dep.id}",
            why,
        )
    return result


@deployments.command("scale")
@click.argument("deployment")
@click.argument("replicas", type=click.IntRange(0))
@click.option("--wait", is_flag=True, help="Wait until the deployment is active again.")
@timeout_option
@output_option
@pass_state
def deployments_scale(
    state: State, deployment: str, replicas: int, wait: bool, wait_timeout: float
) -> None:
    """Set a deployment's replica count (DEPLOYMENT is an id or a name)."""
    dep = state.client.deployments.scale(to_deployment_id(state, deployment), replicas)
    if wait:
        dep = wait_for_deployment(state, dep, wait_timeout)
    print_object(dep, state.output)
    if dep.status == "failed":
        fail(f"deployment {dep.id} failed: {dep.error or 'unknown error'}")


@deployments.command("stop")
@click.argument("deployment")
@output_option
@pass_state
def deployments_stop(state: State, deployment: str) -> None:
    """Stop serving a deployment, by id or name (its settings are kept)."""
    print_object(state.client.deployments.stop(to_deployment_id(state, deployment)), state.output)


@deployments.command("start")
@click.argument("deployment")
@output_option
@pass_state
def deployments_start(state: State, deployment: str) -> None:
    """Start a stopped deployment (by id or name)."""
    print_object(state.client.deployments.start(to_deployment_id(state, deployment)), state.output)


@deployments.command("delete")
@click.argument("deployment")
@click.option("--wait", is_flag=True, help="Wait until the deployment is gone.")
@yes_option
@timeout_option
@output_option
@pass_state
def deployments_delete(
    state: State, deployment: str, wait: bool, yes: bool, wait_timeout: float
) -> None:
    """Tear a deployment down (by id or name)."""
    deployment_id = to_deployment_id(state, deployment)
    shown = deployment if deployment == deployment_id else f"{deployment} ({deployment_id})"
    confirm_delete(f"deployment {shown}", yes)
    dep = state.client.deployments.delete(deployment_id)
    if wait:
        _wait_gone(
            lambda: state.client.deployments.get(deployment_id),
            wait_timeout,
            f"deployment {deployment_id}",
        )
        emit(state, {"id": deployment_id, "deleted": True}, f"deleted {deployment_id}")
        return
    print_object(dep, state.output)


# -- clusters ----------------------------------------------------------------------------------


@click.group()
def clusters() -> None:
    """Inspect clusters and their health."""


@clusters.command("list")
@click.option("--name")
@click.option(
    "--status",
    type=click.Choice(["provisioning", "active", "degraded", "maintenance", "failed"]),
)
@click.option("--provider", type=click.Choice(["aws", "azure", "onpremise"]))
@limit_option
@output_option
@pass_state
def clusters_list(state: State, name: str | None, status: Any, provider: Any, limit: int) -> None:
    """List clusters."""
    page = state.client.clusters.list(
        name=name, status=status, provider=provider, limit=min(limit, 100)
    )
    print_objects(page, CLUSTER_COLUMNS, state.output, "clusters", limit=limit)


@clusters.command("get")
@click.argument("cluster")
@output_option
@pass_state
def clusters_get(state: State, cluster: str) -> None:
    """Show one cluster (by id or name)."""
    print_object(resolve_cluster(state, cluster), state.output)


@clusters.command("health")
@click.argument("cluster")
@output_option
@pass_state
def clusters_health(state: State, cluster: str) -> None:
    """Show a cluster's health and free capacity (by id or name); exit 1 when unhealthy."""
    health = state.client.clusters.health(to_cluster_id(state, cluster))
    print_object(health, state.output)
    if health.status == "unhealthy":
        raise SystemExit(1)
