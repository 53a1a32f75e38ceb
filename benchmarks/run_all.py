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


def main() -> int:
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.jsonl"
        out.touch()
        for script in scripts:
            print(f"running {script.name} ...", flush=True)
            env = {**os.environ, "BUDAI_BENCH_JSON": str(out)}
            if subprocess.run([sys.executable, str(script)], env=env, check=False).returncode:
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
