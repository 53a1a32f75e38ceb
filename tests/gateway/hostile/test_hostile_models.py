"""Model sources: ``local`` only under the configured roots, ``url`` downloads bounded."""

from __future__ import annotations

from pathlib import Path

import httpx

from budai_gateway.testing import LocalGateway
from tests.gateway.hostile.conftest import Attacker, local_root, wait_done, watch


def _model(c: httpx.Client, name: str, source: str, uri: str) -> dict[str, object]:
    r = c.post("/models", json={"name": name, "source": source, "uri": uri})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def _refusal(uri: str) -> str:
    return f"local path '{uri}' is not under an allowed root (limits.local_roots); nothing was read"


def test_local_paths_outside_the_roots_are_no_oracle(
    hgw: LocalGateway, admin: httpx.Client
) -> None:
    root = local_root(hgw)
    (root / "link").unlink(missing_ok=True)
    (root / "link").symlink_to("/etc/passwd")
    (root / "weights.bin").write_bytes(b"w" * 321)
    with watch(hgw):
        cases = [
            "/etc/shadow",
            "/etc/passwd",
            "/etc/does-not-exist",
            "relative/path",
            str(root / ".." / ".." / "etc" / "passwd"),
            str(root / "link"),
            "file:///etc/hostname",
        ]
        for i, uri in enumerate(cases):
            m = _model(admin, f"probe{i}", "local", uri)
            assert (m["status"], m["size_bytes"], m["error"]) == ("error", None, _refusal(uri))
        inside = _model(admin, "inside", "local", str(root / "weights.bin"))
        assert (inside["status"], inside["size_bytes"]) == ("available", 321)
        gone = _model(admin, "gone", "local", str(root / "nope"))
        assert gone["error"] == f"path not found: {root / 'nope'}"


def test_measuring_a_large_tree_does_not_block(hgw: LocalGateway, admin: httpx.Client) -> None:
    # /usr is a configured root of the hostile gateway: a big tree, measured in a thread.
    with watch(hgw):
        m = _model(admin, "usr", "local", "/usr")
    assert m["status"] in ("available", "error"), m
    if m["status"] == "error":
        assert m["error"] == "measuring /usr took too long (limits.local_measure_seconds)"


def test_url_downloads_are_bounded(
    hgw: LocalGateway, admin: httpx.Client, attacker: Attacker
) -> None:
    url = attacker.url
    expected = {
        "ftp://example.com/w.bin": "download refused: only http and https URLs are downloaded, "
        "not 'ftp://example.com/w.bin'",
        "file:///etc/passwd": "download refused: only http and https URLs are downloaded, "
        "not 'file:///etc/passwd'",
        f"{url}/huge-length": "download refused: 10,000,000,000,000 bytes announced, over the "
        "10,000,000-byte cap (limits.download_max_bytes)",
        f"{url}/stall": "download failed: no data for 1 s (limits.download_stall_seconds)",
        f"{url}/redirect-other": "download refused: redirect to 'localhost' is not an allowed "
        "host (limits.download_allowed_hosts)",
    }
    with watch(hgw):
        made = {uri: _model(admin, f"dl{i}", "url", uri) for i, uri in enumerate(expected)}
        for uri, m in made.items():
            done = wait_done(admin, f"/models/{m['id']}", {"available", "error"}, timeout=15)
            assert (done["status"], done["error"]) == ("error", expected[uri]), done
        same = _model(admin, "same-host", "url", f"{url}/redirect-same")
        done = wait_done(admin, f"/models/{same['id']}", {"available", "error"})
        assert (done["status"], done["size_bytes"]) == ("available", 1000), done
        bomb = _model(admin, "bomb", "url", f"{url}/bomb.bin")
        done = wait_done(admin, f"/models/{bomb['id']}", {"available", "error"})
    # Stored as sent: the gzip bomb's wire bytes, not 20 MB of zeros.
    assert done["status"] == "available" and done["size_bytes"] == len(attacker.bomb)
    path = str(done["metadata"]["local_path"])
    assert Path(path).stat().st_size == len(attacker.bomb)


def test_a_download_that_trickles_forever_ends(
    hgw: LocalGateway, admin: httpx.Client, attacker: Attacker
) -> None:
    m = _model(admin, "trickle", "url", f"{attacker.url}/stall")
    done = wait_done(admin, f"/models/{m['id']}", {"available", "error"}, timeout=15)
    assert done["status"] == "error"
    assert done["error"] == "download failed: no data for 1 s (limits.download_stall_seconds)"
