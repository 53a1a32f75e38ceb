"""``budai pipelines`` and ``budai executions``.

``executions run --wait`` (and ``executions watch``) follow an execution step by step: a live
table on a terminal, one line per step change otherwise (CI logs). They exit 1 when the
execution does not complete.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from budai.dsl import Pipeline as DslPipeline
from budai.dsl import PipelineValidationError
from budai.exceptions import ConflictError
from budai.types import Execution

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
from ._loader import LoadedPipeline, load_pipeline_file
from ._render import (
    STATUS_STYLES,
    Columns,
    dump,
    err_console,
    number,
    out_console,
    print_object,
    print_objects,
    to_data,
)
from ._resolve import pipeline_id, resolve_pipeline

__all__ = ["executions", "pipelines"]

PIPELINE_COLUMNS: Columns = [
    ("ID", "id"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("STEPS", lambda d: len((d.get("definition") or {}).get("steps") or [])),
    ("DESCRIPTION", "description"),
    ("UPDATED", "updated_at"),
]
EXECUTION_COLUMNS = [
    ("ID", "id"),
    ("PIPELINE", "pipeline_id"),
    ("STATUS", "status"),
    ("STARTED", "started_at"),
    ("DURATION", "duration_seconds"),
    ("ERROR", "error"),
]
STEP_MARKS = {"completed": "✓", "failed": "✗", "skipped": "-", "pending": "·", "running": "…"}

file_option = click.option(
    "-f",
    "--file",
    "file",
    required=True,
    metavar="FILE",
    help="Pipeline file: .yaml/.yml/.json, or .py defining a DSL Pipeline (see `budai pipelines "
    "create --help`).",
)


def _checked(loaded: LoadedPipeline) -> Any:
    """The file's definition, or exit 1 listing every problem the DSL found."""
    try:
        return loaded.definition()
    except PipelineValidationError as exc:
        fail(str(exc), problems=exc.problems)




# -- pipelines ---------------------------------------------------------------------------------


@click.group()
def pipelines() -> None:
    """Create, inspect, validate and delete pipelines."""


@pipelines.command("list")
@click.option("--name")
@click.option("--status", type=click.Choice(["active", "paused", "archived"]))
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@output_option
@pass_state
def pipelines_list(state: State, name: str | None, status: Any, limit: int) -> None:
    """List pipelines."""
    page = state.client.pipelines.list(name=name, status=status, limit=min(limit, 100))
    print_objects(page, PIPELINE_COLUMNS, state.output, "pipelines", limit=limit)


@pipelines.command("get")
@click.argument("pipeline")
@output_option
@pass_state
def pipelines_get(state: State, pipeline: str) -> None:
    """Show a pipeline (by id or name); -o yaml prints its whole definition."""
    found = resolve_pipeline(state, pipeline)
    print_object(found, state.output)
    if state.output == "table":
        _print_definition_table(found.definition)


def _print_definition_table(definition: Mapping[str, Any]) -> None:
    table = Table(show_edge=False, header_style="bold")
    for header in ("STEP", "ACTION", "DEPENDS ON", "CONDITION", "RETRY"):
        table.add_column(header, overflow="fold")
    for step in definition.get("steps") or []:
        retry = step.get("retry") or {}
        table.add_row(
            step.get("id"),
            step.get("action"),
            ", ".join(step.get("depends_on") or []) or "-",
            step.get("condition") or "-",
            f"{retry.get('max_attempts')}x" if retry else "-",
        )
    out_console().print(table)


@pipelines.command("create")
@file_option
@click.option("--name", help="Pipeline name (default: from the file, else the file's name).")
@click.option("--description", help="Description (default: from the file).")
@output_option
@pass_state
def pipelines_create(state: State, file: str, name: str | None, description: str | None) -> None:
    """Create a pipeline from a file.

    FILE is YAML/JSON holding either `steps: [...]` or `{name, description, definition:
    {steps: [...]}}`, or a Python file that builds a budai.dsl Pipeline: the CLI runs it and
    takes the module-level variable `pipeline`, else the only Pipeline at module level; with
    several, name one as `-f file.py:variable`. The definition is checked locally first, and
    every problem is listed.
    """
    loaded = load_pipeline_file(file)
    definition = _checked(loaded)
    final_name = name or loaded.name or loaded.pipeline.name
    created = state.client.pipelines.create(
        name=final_name, description=description or loaded.description, definition=definition
    )
    print_object(created, state.output)


@pipelines.command("apply")
@file_option
@click.option("--name", help="Pipeline name (default: from the file, else the file's name).")
@click.option("--description", help="Description (default: from the file).")
@output_option
@pass_state
def pipelines_apply(state: State, file: str, name: str | None, description: str | None) -> None:
    """Create the pipeline, or update the one with the same name (for files kept in Git)."""
    loaded = load_pipeline_file(file)
    definition = _checked(loaded)
    final_name = name or loaded.name or loaded.pipeline.name
    final_description = description or loaded.description
    try:
        result = state.client.pipelines.create(
            name=final_name, description=final_description, definition=definition
        )
    except ConflictError as exc:
        if exc.code != "already_exists" or not exc.existing_id:
            raise
        result = state.client.pipelines.update(
            exc.existing_id, description=final_description, definition=definition
        )
    print_object(result, state.output)


@pipelines.command("update")
@click.argument("pipeline")
@click.option("-f", "--file", "file", metavar="FILE", help="New definition (as for create).")
@click.option("--name", help="New name.")
@click.option("--description", help="New description.")
@click.option("--status", type=click.Choice(["active", "paused", "archived"]))
@output_option
@pass_state
def pipelines_update(
    state: State,
    pipeline: str,
    file: str | None,
    name: str | None,
    description: str | None,
    status: Any,
) -> None:
    """Change a pipeline's definition, name, description or status."""
    definition = _checked(load_pipeline_file(file)) if file else None
    if definition is None and name is None and description is None and status is None:
        raise click.UsageError("nothing to change: give -f, --name, --description or --status")
    target = resolve_pipeline(state, pipeline)
    updated = state.client.pipelines.update(
        target.id, name=name, description=description, definition=definition, status=status
    )
    print_object(updated, state.output)


@pipelines.command("delete")
@click.argument("pipeline")
@yes_option
@output_option
@pass_state
def pipelines_delete(state: State, pipeline: str, yes: bool) -> None:
    """Delete a pipeline (by id or name)."""
    target = pipeline_id(state, pipeline)
    confirm_delete(f"pipeline {pipeline}" + ("" if pipeline == target else f" ({target})"), yes)
    state.client.pipelines.delete(target)
    emit(state, {"id": target, "deleted": True}, f"deleted {target}")


@pipelines.command("validate")
@file_option
@click.option("--server", is_flag=True, help="Also ask the gateway (needs an API key).")
@output_option
@pass_state
def pipelines_validate(state: State, file: str, server: bool) -> None:
    """Check a pipeline file without creating it; exit 1 listing every problem.

    Locally: the graph (ids, dependencies, cycles, conditions on upstream steps), the action
    catalogue (unknown actions, misspelt, missing or mistyped params) and the template
    grammar. --server also asks the gateway.
    """
    loaded = load_pipeline_file(file)
    definition = _checked(loaded)
    if server:
        result = state.client.pipelines.validate(definition)
        if not result.valid:
            problems = [f"{e.param}: {e.message}" if e.param else e.message for e in result.errors]
            lines = "\n".join(f"  - {p}" for p in problems)
            fail(f"the gateway found {len(problems)} problem(s):\n{lines}", problems=problems)
    steps = len(definition["steps"])
    emit(state, {"valid": True, "steps": steps}, f"valid: {steps} steps")


@pipelines.command("graph")
@click.argument("pipeline", required=False)
@click.option("-f", "--file", "file", metavar="FILE", help="Draw a pipeline file instead.")
@output_option
@pass_state
def pipelines_graph(state: State, pipeline: str | None, file: str | None) -> None:
    """Print a pipeline's graph as a Mermaid flowchart."""
    if file:
        builder = load_pipeline_file(file).pipeline
    elif pipeline:
        found = resolve_pipeline(state, pipeline)
        builder = DslPipeline.from_definition(found.definition, name=found.name)
    else:
        raise click.UsageError("give a PIPELINE or -f FILE")
    mermaid = builder.to_mermaid()
    if state.output == "table":
        click.echo(mermaid, nl=False)
    else:
        emit(state, {"name": builder.name, "mermaid": mermaid}, mermaid)


# -- executions --------------------------------------------------------------------------------


@click.group()
def executions() -> None:
    """Run pipelines and follow, inspect or cancel their executions."""


@executions.command("list")
@click.option("--pipeline", help="Only executions of this pipeline (id or name).")
@click.option(
    "--status", type=click.Choice(["pending", "running", "completed", "failed", "cancelled"])
)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@output_option
@pass_state
def executions_list(state: State, pipeline: str | None, status: Any, limit: int) -> None:
    """List executions, newest first."""
    pipeline_id = resolve_pipeline(state, pipeline).id if pipeline else None
    page = state.client.executions.list(
        pipeline_id=pipeline_id, status=status, limit=min(limit, 100)
    )
    print_objects(page, EXECUTION_COLUMNS, state.output, "executions", limit=limit)


@executions.command("get")
@click.argument("execution_id")
@output_option
@pass_state
def executions_get(state: State, execution_id: str) -> None:
    """Show an execution and the state of each step."""
    execution = state.client.executions.get(execution_id)
    print_object(execution, state.output)
    if state.output == "table":
        out_console().print(_steps_table(execution, list(execution.steps), live=False))


@executions.command("run")
@click.argument("pipeline")
@click.option(
    "-p",
    "--param",
    "param_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Execution parameter (repeatable); JSON values (3, true) keep their type.",
)
@click.option("--wait", is_flag=True, help="Follow the execution live; exit 1 unless it completes.")
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds to --wait before giving up (the execution keeps running).",
)
@output_option
@pass_state
def executions_run(
    state: State, pipeline: str, param_pairs: tuple[str, ...], wait: bool, timeout: float
) -> None:
    """Start PIPELINE (an id or a name) with the given parameters."""
    params = parse_pairs(param_pairs, "--param")
    target = resolve_pipeline(state, pipeline)
    execution = state.client.executions.create(target.id, params or None)
    if not wait:
        print_object(execution, state.output)
        return
    order = [s["id"] for s in target.definition.get("steps", [])]
    _follow(state, execution, order, timeout)


# The generic verb of every other group, for symmetry.
executions.add_command(executions_run, "create")


@executions.command("watch")
@click.argument("execution_id")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@output_option
@pass_state
def executions_watch(state: State, execution_id: str, timeout: float) -> None:
    """Follow a running execution live; exit 1 unless it completes."""
    execution = state.client.executions.get(execution_id)
    try:
        order = [
            s["id"] for s in state.client.pipelines.get(execution.pipeline_id).definition["steps"]
        ]
    except Exception:  # the pipeline may be gone; the execution still has its steps
        order = list(execution.steps)
    _follow(state, execution, order, timeout)


@executions.command("cancel")
@click.argument("execution_id")
@output_option
@pass_state
def executions_cancel(state: State, execution_id: str) -> None:
    """Cancel an execution (running steps finish, nothing new starts)."""
    print_object(state.client.executions.cancel(execution_id), state.output)


def _follow(state: State, execution: Execution, order: list[str], timeout: float) -> None:
    """Wait for ``execution`` showing its steps, print the result, exit 1 unless completed."""
    try:
        final = _wait_showing(state, execution, order, timeout)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped following; {execution.id} keeps running "
            f"(budai executions watch {execution.id}, or budai executions cancel {execution.id})",
            err=True,
        )
        raise SystemExit(130) from None
    if state.output == "table":
        out_console().print(_steps_table(final, order, live=False))
        out_console().print(
            Text.assemble(
                f"{final.id} ",
                (final.status, STATUS_STYLES.get(final.status, "")),
                f" in {number(final.duration_seconds or 0.0, 'duration_seconds')}",
            )
        )
    else:
        print(dump(to_data(final), state.output))
    if final.status != "completed":
        fail(f"execution {final.id} {final.status}: {final.error or 'no error message'}")


def _wait_showing(
    state: State, execution: Execution, order: list[str], timeout: float
) -> Execution:
    """Wait for the end of ``execution``: a live table on a terminal, else a line per change."""
    console = err_console()
    if console.is_terminal:
        with Live(_live_view(execution, order), console=console, refresh_per_second=8) as live:
            final = state.client.executions.wait(
                execution.id,
                timeout=timeout,
                on_update=lambda e: live.update(_live_view(e, order)),
            )
    else:
        seen: dict[str, str] = {}

        def log_changes(e: Execution) -> None:
            steps = _steps_data(e)
            for sid in order + [s for s in steps if s not in order]:
                step = steps.get(sid)
                if step is None or seen.get(sid) == step.get("status"):
                    continue
                seen[sid] = step.get("status", "")
                detail = f" ({step['error']})" if step.get("error") else ""
                print(f"{e.id} {sid}: {seen[sid]}{detail}", file=sys.stderr, flush=True)

        final = state.client.executions.wait(execution.id, timeout=timeout, on_update=log_changes)
    return final


def _live_view(execution: Execution, order: list[str]) -> RenderableType:
    header = Text.assemble(
        ("execution ", "bold"),
        execution.id,
        "  ",
        (execution.status, STATUS_STYLES.get(execution.status, "")),
    )
    return Group(header, _steps_table(execution, order, live=True))


def _steps_data(execution: Execution) -> dict[str, dict[str, Any]]:
    # Steps as plain data: the SDK leaves them as dicts when an output is not an object.
    return {sid: to_data(step) for sid, step in execution.steps.items()}


def _steps_table(execution: Execution, order: list[str], *, live: bool) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for header in ("", "STEP", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"):
        table.add_column(header, overflow="fold")
    steps = _steps_data(execution)
    for sid in order + [s for s in steps if s not in order]:
        step = steps.get(sid) or {}
        status = step.get("status") or "pending"
        style = STATUS_STYLES.get(status, "")
        mark: RenderableType = Text(STEP_MARKS.get(status, "?"), style=style)
        if live and status == "running":
            mark = Spinner("dots", style=style)
        error = step.get("error")
        detail = ""
        if error:
            detail = str(error)
        elif step.get("output") is not None:
            detail = json.dumps(step["output"], ensure_ascii=False)
            detail = detail if len(detail) <= 80 else detail[:77] + "..."
        duration = step.get("duration_seconds")
        table.add_row(
            mark,
            sid,
            Text(status, style=style),
            str(step.get("attempts") or "-"),
            number(duration, "duration_seconds") if duration else "-",
            Text(detail, style="red" if error else "dim"),
        )
    return table
