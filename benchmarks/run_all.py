"""Run every benchmarks/bench_*.py and print one table of all their figures (`make bench`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, format_table

# BUDAI_BENCH_QUICK=1 (used by the README test) runs each script at a small size: the figures
# are then only a smoke check that the benchmark works, not numbers to quote.
QUICK_ARGS = {
    "bench_sdk.py": ["--imports", "3", "--calls", "200", "--rounds", "1"],
    "bench_gateway.py": ["--runs", "1", "--requests", "200"],
    "bench_hostile.py": ["--seconds", "3", "--requests", "200", "--runs", "1"],
    "bench_operator.py": ["--count", "30", "--big", "60", "--scales", "3", "--idle", "5"],
    "bench_connections.py": ["--count", "20", "--connections", "2", "--idle", "5"],
}


def main() -> int:
    quick = os.environ.get("BUDAI_BENCH_QUICK") == "1"
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.jsonl"
        out.touch()
        for script in scripts:
            print(f"running {script.name} ...", flush=True)
            env = {**os.environ, "BUDAI_BENCH_JSON": str(out)}
            extra = QUICK_ARGS.get(script.name, []) if quick else []
            cmd = [sys.executable, str(script), *extra]
            if subprocess.run(cmd, env=env, check=False).returncode:
                failed.append(script.name)
        rows = []
        for line in out.read_text().splitlines():
            data = json.loads(line)
            data.pop("bench")
            rows.append(Row(**data))
    print("\n== all benchmarks ==")
    print(format_table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
