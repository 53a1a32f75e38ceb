"""``budai whoami``: the project and scopes of the API key in use (never the key itself)."""

from __future__ import annotations

import click

from ._app import State, output_option, pass_state
from ._render import print_object


@click.command()
@output_option
@pass_state
def whoami(state: State) -> None:
    """Show the project and scopes of the API key in use."""
    print_object(state.client.whoami(), state.output)
