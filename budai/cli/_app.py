"""The root ``budai`` command group: configuration, the shared client, and error handling.

Configuration comes from flags (``--api-key``, ``--base-url``), then ``BUD_API_KEY`` /
``BUD_BASE_URL``. Exit codes: 0 success, 1 the API (or the operation) failed, 2 usage error.
An API error prints one line to stderr with the status, code and request id (under ``-o json``
a JSON object ``{"error": {...}}`` instead); the API key is never printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from budai import BudClient
from budai.exceptions import BudAPIError

__all__ = [
    "State",
    "confirm_delete",
    "emit",
    "fail",
    "output_option",
    "parse_pairs",
    "pass_state",
    "root",
]

F = TypeVar("F", bound=Callable[..., Any])
OUTPUT_FORMATS = ("table", "json", "yaml")


class State:
    """What every command needs: the resolved configuration and a lazily built client."""

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float, output: str):
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        self.output = output
        self._client: BudClient | None = None

    @property
    def client(self) -> BudClient:
        """The client, built on first use so ``--help`` works without a key."""
        if self._client is None:
            if not self.api_key:
                raise click.UsageError("no API key: pass --api-key or set BUD_API_KEY")
            try:
                self._client = BudClient(
                    api_key=self.api_key, base_url=self.base_url, timeout=self.timeout
                )
            except ValueError as exc:  # a malformed base URL
                raise click.UsageError(str(exc)) from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def scrub(self, text: str) -> str:
        """``text`` with the API key masked, for anything echoed back to the user."""
        return text.replace(self.api_key, "***") if self.api_key else text


pass_state = click.make_pass_decorator(State)


def _error_out(state: State | None, message: str, **details: Any) -> None:
    """One error on stderr: a line, or ``{"error": {...}}`` under ``-o json``/``yaml``."""
    if state is not None:
        message = state.scrub(message)
    if state is not None and state.output in ("json", "yaml"):
        body = {"message": message, **{k: v for k, v in details.items() if v is not None}}
        # One line, the last on stderr, so a script finds it after any progress output.
        click.echo(json.dumps({"error": body}, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {message}", err=True)


def fail(message: str, **details: Any) -> NoReturn:
    """Print ``error: message`` to stderr and exit 1 (the operation failed)."""
    state = click.get_current_context().find_object(State)
    _error_out(state, message, type="operation_failed", **details)
    raise SystemExit(1)


def emit(state: State, data: Any, text: str) -> None:
    """A result that is a sentence on a terminal: ``text`` as a table would be, else ``data``
    as JSON/YAML."""
    if state.output == "table":
        click.echo(text)
    else:
        from ._render import dump

        print(dump(data, state.output))


def confirm_delete(what: str, yes: bool) -> None:
    """Ask before deleting (``--yes`` skips it); anything but yes changes nothing, exit 1."""
    if yes:
        return
    try:
        sure = click.confirm(f"Delete {what}?", default=False, err=True)
    except click.Abort:  # no terminal and nothing on stdin
        sure = False
    if not sure:
        fail(f"not deleted: {what} (pass --yes to delete without asking)")


def yes_option(func: F) -> F:
    """``-y/--yes``: delete without asking."""
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")(func)


def output_option(func: F) -> F:
    """``-o/--output table|json|yaml`` on a command (it overrides the group's option)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        state = ctx.find_object(State)
        if value is not None and state is not None:
            state.output = value

    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUT_FORMATS),
        default=None,
        expose_value=False,
        callback=remember,
        help="Output format (default: table).",
    )(func)


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, Any]:
    """``("n=3", "env=prod")`` -> ``{"n": 3, "env": "prod"}``: a value that parses as JSON is
    taken as JSON (numbers, booleans, lists), anything else as a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=what)
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


class _Root(click.Group):
    """Turns SDK errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BudAPIError as exc:
            _error_out(
                ctx.find_object(State),
                str(exc),
                type=exc.type,
                status_code=exc.status_code or None,
                code=exc.code,
                param=exc.param,
                request_id=exc.request_id or None,
            )
            raise SystemExit(1) from None
        except click.exceptions.Exit:
            raise
        except click.ClickException as exc:
            state = ctx.find_object(State)
            if state is None or state.output == "table":
                raise
            _error_out(state, exc.format_message(), type="usage_error")
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise SystemExit(130) from None
        finally:
            state = ctx.find_object(State)
            if state is not None:
                state.close()


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--api-key",
    envvar="BUD_API_KEY",
    show_envvar=True,
    help="API key (default: $BUD_API_KEY). Prefer the variable: flags show up in `ps`.",
)
@click.option(
    "--base-url",
    envvar="BUD_BASE_URL",
    show_envvar=True,
    help="Gateway URL, e.g. http://127.0.0.1:8000/v1 (default: $BUD_BASE_URL, then the cloud).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per request.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUT_FORMATS),
    default="table",
    show_default=True,
    help="Output format for every command.",
)
@click.version_option(package_name="budai", prog_name="budai")
@click.pass_context
def root(
    ctx: click.Context, api_key: str | None, base_url: str | None, timeout: float, output: str
) -> None:
    """Manage models, deployments, clusters, pipelines and executions on a Bud gateway."""
    ctx.obj = State(api_key or None, base_url or os.environ.get("BUD_BASE_URL"), timeout, output)
