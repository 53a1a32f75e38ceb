"""mypy catches wrong parameter names and types in the typed action helpers (a real mypy run)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
from budai.dsl import Pipeline, Retry

with Pipeline("typed", retry=Retry(max_attempts=2)) as p:
    fetch = p.http_request("fetch", url=p.param("url"), method="POST", expected_status=[200])
    body = p.transform("body", value=fetch.output["body"])
    p.deployment_scale("scale", deployment_id=body.output["id"], replicas=3, wait=False)
    p.wait("w", seconds=p.param("delay"), condition=fetch.output["status_code"] == 200)
    p.model_add("m", name="m", source="hugging_face", uri="org/model")
    p.chat_completion("c", model="m", messages=[{"role": "user", "content": "hi"}])
    fetch >> [body] >> p.log("done", message="ok", level="info")
definition = p.build()
first_id: str = definition["steps"][0]["id"]
"""

# Every line marked `# E` must carry a mypy error; no other line may.
BAD = """\
from budai.dsl import Pipeline, Retry

p = Pipeline("typed")
p.http_request("fetch", urll="http://x")  # E
p.http_request("fetch", url="http://x", method="FETCH")  # E
p.wait("w", seconds="5")  # E
p.deployment_scale("s", deployment_id="dep_1", replicas="3")  # E
p.deployment_scale("s", deployment_id="dep_1")  # E
p.model_add("m", name="m", source="ftp", uri="x")  # E
p.log("l", message="x", level="loud")  # E
p.cluster_health("h", cluster_id=42)  # E
p.log("l", message="x", retry=3)  # E
p.deployment_create("d", model_id="m", cluster_id="c", resources={"cpus": "1"})  # E
Retry(max_attempts="3")  # E
"""


def test_mypy_accepts_good_and_rejects_bad_helper_calls(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    bad = tmp_path / "bad.py"
    good.write_text(GOOD)
    bad.write_text(BAD)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--show-error-codes", str(good), str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    errors: dict[str, set[int]] = {"good.py": set(), "bad.py": set()}
    for line in result.stdout.splitlines():
        match = re.match(r".*?(good\.py|bad\.py):(\d+): error:", line)
        if match:
            errors[match.group(1)].add(int(match.group(2)))
    assert errors["good.py"] == set(), result.stdout
    expected = {i for i, text in enumerate(BAD.splitlines(), 1) if text.endswith("# E")}
    assert errors["bad.py"] == expected, result.stdout
    assert result.returncode == 1
    assert textwrap.dedent(result.stderr).strip() == ""
