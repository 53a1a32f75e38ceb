"""Shared output for benchmarks: one row per figure, printed as a table and optionally as JSON.

Every benchmark calls `report(title, rows)`. `benchmarks/run_all.py` sets BUDAI_BENCH_JSON to a
file path and gathers the rows of every script into one table.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass


@dataclass
class Row:
    figure: str
    project: float
    baseline: float | None
    unit: str
    goal: str
    baseline_name: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.project / self.baseline  # type: ignore[operator]


def format_table(rows: list[Row]) -> str:
    header = ("figure", "budai", "baseline", "ratio", "goal")
    body = []
    for r in rows:
        base = "-" if r.baseline is None else f"{r.baseline:.4g} {r.unit} ({r.baseline_name})"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        body.append((r.figure, f"{r.project:.4g} {r.unit}", base, ratio, r.goal))
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True))
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(title: str, rows: list[Row]) -> None:
    print(f"\n== {title} ==")
    print(format_table(rows))
    out = os.environ.get("BUDAI_BENCH_JSON")
    if out:
        with open(out, "a", encoding="utf-8") as fh:  # noqa: PTH123
            for r in rows:
                fh.write(json.dumps({"bench": title, **asdict(r)}) + "\n")
