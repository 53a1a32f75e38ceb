"""The sync resource classes are generated from their async twins (hack/unasync.py): the
generated part must be what the generator makes of the async source today (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sync_twins_are_generated_from_the_async_source() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "unasync.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_the_rules_turn_async_into_sync() -> None:
    sys.path.insert(0, str(ROOT / "hack"))
    try:
        import unasync
    finally:
        sys.path.pop(0)
    src = (
        "class AsyncThings(AsyncAPIResource):\n"
        "    async def get(self) -> AsyncPaginator[Thing]:\n"
        "        await _async_sleep(1)\n"
        "        return self._client._paginator('/t', _t, {})\n"
    )
    assert unasync.unasync(src) == (
        "class Things(SyncAPIResource):\n"
        "    def get(self) -> SyncPage[Thing]:\n"
        "        time.sleep(1)\n"
        "        return self._client._request_page('/t', _t, {})\n"
    )
