"""``budai-gateway serve``: run the local gateway with uvicorn."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from budai_gateway.config import ApiKey, generate_key, load_config


@click.group()
def main() -> None:
    """The local Bud gateway."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--db", "db", default=None, help="SQLite file (':memory:' allowed).")
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="An admin key (repeatable). 'read:KEY' adds a read-only key, 'local:KEY' an admin key"
    " that may also use the /_local/ controls.",
)
@click.option("--config", "config_file", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", default=None, type=float, help="Divide every simulated duration by this.")
@click.option("--log-level", default="info", show_default=True)
def serve(
    host: str,
    port: int,
    db: str | None,
    api_keys: tuple[str, ...],
    config_file: str | None,
    speed: float | None,
    log_level: str,
) -> None:
    """Serve the Bud REST API on HOST:PORT."""
    import uvicorn

    from budai_gateway.app import create_app
    from budai_gateway.server import GuardedH11Protocol

    settings = load_config(config_file, {"db_path": db, "speed": speed})
    keys = list(settings.api_keys)
    for i, raw in enumerate(api_keys):
        scope, _, value = (
            raw.partition(":")
            if raw.startswith(("read:", "admin:", "local:"))
            else ("admin", "", raw)
        )
        keys.append(
            ApiKey(
                key=value,
                scope="read" if scope == "read" else "local" if scope == "local" else "admin",
                name=f"cli-{i}",
            )
        )
    if not keys:
        env_key = os.environ.get("BUD_API_KEY")
        if env_key:
            keys.append(ApiKey(key=env_key, scope="admin", name="env"))
            click.echo("budai-gateway: using the admin key from BUD_API_KEY", err=True)
        else:
            generated = _generated_key(settings.db_path)
            keys.append(ApiKey(key=generated, scope="admin", name="generated"))
    settings.api_keys = keys
    host_for_url = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    settings.public_url = f"http://{host_for_url}:{port}"
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    click.echo(
        f"budai-gateway: serving http://{host_for_url}:{port}/v1 (db {settings.db_path})", err=True
    )
    lim = settings.limits
    GuardedH11Protocol.header_timeout = lim.header_timeout_seconds
    GuardedH11Protocol.max_half_open = lim.max_half_open_connections
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        http=GuardedH11Protocol,
        timeout_keep_alive=5,
        limit_concurrency=lim.max_connections,
    )
    sys.exit(0)


def _generated_key(db_path: str) -> str:
    """The admin key of a gateway started without keys: kept next to the database (0600) so a
    restart with the same ``--db`` keeps it; printed only when it is first made."""
    if db_path == ":memory:":
        key = generate_key()
        click.echo(f"budai-gateway: admin API key: {key}", err=True)
        return key
    path = Path(db_path + ".key").expanduser()
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            path.chmod(0o600)
            click.echo(f"budai-gateway: using the admin key saved in {path}", err=True)
            return key
    key = generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    click.echo(f"budai-gateway: admin API key: {key} (saved in {path})", err=True)
    return key
