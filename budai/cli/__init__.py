"""The ``budai`` command line (click + rich); installed as the ``budai`` script.

Only this package imports click, rich and PyYAML (the ``cli`` extra); ``import budai`` does not.
"""

from __future__ import annotations

from ._app import root
from ._chat import chat
from ._pipelines import executions, pipelines
from ._resources import clusters, deployments, models
from ._whoami import whoami

__all__ = ["cli", "main"]

root.add_command(models)
root.add_command(deployments)
root.add_command(clusters)
root.add_command(pipelines)
root.add_command(executions)
root.add_command(chat)
root.add_command(whoami)

cli = root
"""The click group, for embedding or ``click.testing.CliRunner``."""


def main() -> None:
    """Entry point of the ``budai`` script."""
    root(prog_name="budai")
