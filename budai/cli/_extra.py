"""``budai actions`` (the gateway's action catalogue) and ``budai completion SHELL``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from click.shell_completion import get_completion_class

from ._app import State, fail, output_option, pass_state
from ._render import Columns, print_objects

__all__ = ["actions", "completion"]


def _params(action: Mapping[str, Any]) -> str:
    """``url*: string, method: GET|POST|..`` (``*`` marks a required param)."""
    schema = action.get("parameters") or {}
    required = set(schema.get("required") or [])
    parts = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = "|".join(map(str, spec["enum"])) if "enum" in spec else spec.get("type", "any")
        if isinstance(kind, list):
            kind = "|".join(kind)
        parts.append(f"{name}{'*' if name in required else ''}: {kind}")
    if schema.get("additionalProperties"):
        parts.append("...")
    return ", ".join(parts) or "-"


ACTION_COLUMNS: Columns = [
    ("ACTION", "name"),
    ("PARAMS (* required)", _params),
    ("DESCRIPTION", "description"),
]


@click.group()
def actions() -> None:
    """The actions pipeline steps can run, with their params."""


@actions.command("list")
@output_option
@pass_state
def actions_list(state: State) -> None:
    """List the gateway's actions and each one's params (-o json gives their JSON schema)."""
    print_objects(state.client.pipelines.actions(), ACTION_COLUMNS, state.output, "actions")


@actions.command("get")
@click.argument("name")
@output_option
@pass_state
def actions_get(state: State, name: str) -> None:
    """Show one action and its params."""
    found = [a for a in state.client.pipelines.actions() if a.get("name") == name]
    if not found:
        fail(f"no action named {name!r} (see `budai actions list`)", param="name")
    print_objects(found, ACTION_COLUMNS, state.output, "actions")


SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(budai completion bash)"   (or add it to ~/.bashrc)
    zsh:   eval "$(budai completion zsh)"    (or add it to ~/.zshrc)
    fish:  budai completion fish > ~/.config/fish/completions/budai.fish
    """
    cls = get_completion_class(shell)
    if cls is None:  # click knows all three; kept total for other click versions
        raise click.UsageError(f"no completion for {shell}")
    root = ctx.find_root().command
    click.echo(cls(root, {}, "budai", "_BUDAI_COMPLETE").source())
