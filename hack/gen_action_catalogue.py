"""Write budai/dsl/catalogue.json from the gateway's action catalogue (``dag.catalogue()``).

The SDK checks pipelines locally against this copy (it may not import the gateway);
tests/dsl/test_local_checks.py fails when the copy drifts.
Run: .venv/bin/python hack/gen_action_catalogue.py
"""

from __future__ import annotations

import json
from pathlib import Path

from budai_gateway import dag

OUT = Path(__file__).resolve().parent.parent / "budai" / "dsl" / "catalogue.json"


def render() -> str:
    return json.dumps(dag.catalogue(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
