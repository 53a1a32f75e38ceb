"""How the CLI prints API objects: a rich table by default, or JSON / YAML for scripts.

Results go to stdout; progress displays and errors go to stderr, so ``budai ... -o json | jq``
always sees clean JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "Columns",
    "err_console",
    "limited",
    "number",
    "out_console",
    "print_object",
    "print_objects",
    "to_data",
]

Columns = Sequence[tuple[str, "str | Callable[[Mapping[str, Any]], Any]"]]
"""(header, field) pairs; a field is a dotted path (``auto_scaling.enabled``) or a function of
the object's data."""

STATUS_STYLES: dict[str, str] = {
    "active": "green",
    "available": "green",
    "completed": "green",
    "healthy": "green",
    "running": "yellow",
    "downloading": "yellow",
    "deploying": "yellow",
    "scaling": "yellow",
    "pending": "dim",
    "provisioning": "yellow",
    "skipped": "dim",
    "paused": "dim",
    "degraded": "yellow",
    "maintenance": "yellow",
    "stopped": "dim",
    "archived": "dim",
    "failed": "red",
    "error": "red",
    "unhealthy": "red",
    "cancelled": "red",
    "deleting": "red",
}


def _console(stream: Any) -> Console:
    # Off a terminal, rich would wrap at 80 columns and cut ids short; scripts want whole lines.
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(file=stream, width=None if is_tty else 200, soft_wrap=not is_tty)


def out_console() -> Console:
    """A console on the current stdout (looked up each time so test runners can swap it)."""
    return _console(sys.stdout)


def err_console() -> Console:
    """A console on the current stderr."""
    return _console(sys.stderr)


def to_data(obj: Any) -> Any:
    """JSON-compatible data for a model, a list of models or plain data."""
    if isinstance(obj, BaseModel):
        # warnings=False: an object the SDK kept unvalidated still dumps without noise.
        return obj.model_dump(mode="json", warnings=False)
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def dump(data: Any, fmt: str) -> str:
    """``data`` as JSON or YAML text."""
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False)


def _field(data: Mapping[str, Any], path: str | Callable[[Mapping[str, Any]], Any]) -> Any:
    if callable(path):
        return path(data)
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def number(value: float | int, field: str = "") -> str:
    """Every number the CLI prints, one way: sizes in binary units, percentages and seconds
    with fixed decimals, other floats with two, integers with thousands separators."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if field == "size_bytes" or field.endswith("_bytes"):
        return human_bytes(int(value))
    if field.endswith("_percent"):
        return f"{value:.1f}%"
    if field.endswith("_seconds") or field == "elapsed":
        return f"{value:.2f}s"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def timestamp(text: str) -> str:
    """``2026-12-01T22:20:13.123456Z`` -> ``2026-12-01 22:20:13Z`` (UTC, to the second)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return when.strftime("%Y-%m-%d %H:%M:%SZ") if when.utcoffset() is not None else text


def cell(value: Any, field: str = "") -> Text:
    """One table cell: statuses coloured, empty values dimmed, structures as compact JSON,
    numbers and timestamps in one format."""
    if value is None or value == "":
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, ensure_ascii=False))
    if isinstance(value, int | float):
        return Text(number(value, field))
    text = str(value)
    if field.endswith("status") and text in STATUS_STYLES:
        return Text(text, style=STATUS_STYLES[text])
    if field.endswith("_at"):
        return Text(timestamp(text))
    return Text(text)


def limited(items: Iterable[Any], limit: int) -> tuple[list[Any], bool]:
    """The first ``limit`` items, and whether there were more (a page that already holds
    enough answers from its ``has_more`` without fetching the next one)."""
    data = getattr(items, "data", None)
    if isinstance(data, list) and len(data) >= limit:
        return data[:limit], len(data) > limit or bool(getattr(items, "has_more", False))
    out: list[Any] = []
    for item in items:
        if len(out) == limit:
            return out, True
        out.append(item)
    return out, False


def human_bytes(size: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"


def print_objects(
    items: Iterable[Any], columns: Columns, fmt: str, title: str = "", limit: int | None = None
) -> None:
    """Print a list of objects as a table (``columns``) or as JSON / YAML (every field). With
    ``limit``, at most that many, and a note on stderr when more exist."""
    cut = False
    if limit is not None:
        items, cut = limited(items, limit)
    rows = [to_data(item) for item in items]
    if cut:
        err_console().print(
            f"showing the first {limit} {title or 'items'}; more exist (raise --limit)",
            style="dim",
        )
    if fmt != "table":
        print(dump(rows, fmt))
        return
    table = Table(title=title or None, show_edge=False, header_style="bold")
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(cell(_field(row, f), f if isinstance(f, str) else "") for _, f in columns))
    console = out_console()
    if not rows:
        console.print(f"no {title or 'items'}", style="dim")
        return
    console.print(table)


def print_object(obj: Any, fmt: str) -> None:
    """Print one object: a two-column field table, or JSON / YAML."""
    data = to_data(obj)
    if fmt != "table":
        print(dump(data, fmt))
        return
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in data.items():
        if key == "definition" and isinstance(value, Mapping):
            steps = value.get("steps") or []
            table.add_row(key, Text(f"{len(steps)} steps (use -o yaml to see them)"))
        elif key == "steps" and isinstance(value, Mapping):
            continue  # an execution's steps get their own table
        else:
            table.add_row(key, cell(value, key))
    out_console().print(table)
