"""Where a model's bytes come from: measuring a ``local`` path, the Hugging Face cache, and the
real download of a ``url`` model. No lifecycle here; :mod:`.models` decides what to do next."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from budai_gateway.config import Limits
from budai_gateway.egress import EgressRefused
from budai_gateway.progress import DownloadProgress
from budai_gateway.services.state import State, iso
from budai_gateway.store import Doc

_MEASURER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budai-measure")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$")


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def measure_local(uri: str, roots: list[Path], deadline: float) -> tuple[int | None, str | None]:
    """(size, error) of a ``local`` source. Runs in a worker thread.

    A path outside the roots is refused with the same message whether or not it exists, so
    the API is no existence or size oracle. Symlinks are followed only while they stay inside
    the roots (the Hugging Face cache links snapshots to blobs), and the walk stops at the
    deadline.
    """
    refused = (
        f"local path '{uri}' is not under an allowed root (limits.local_roots); nothing was read"
    )
    with contextlib.suppress(OSError, AttributeError):  # a walk yields to the event loop
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    raw = Path(uri.removeprefix("file://")).expanduser()
    if not raw.is_absolute():
        return None, refused
    try:
        resolved = raw.resolve()
    except (OSError, RuntimeError):
        return None, refused
    if not _under(resolved, roots):
        return None, refused
    try:
        if resolved.is_file():
            return resolved.stat().st_size, None
        if not resolved.is_dir():
            return None, f"path not found: {uri}"
        total = 0
        for dirpath, _dirs, files in os.walk(resolved):
            if time.monotonic() > deadline:
                return None, f"measuring {uri} took too long (limits.local_measure_seconds)"
            for name in files:
                target = Path(dirpath, name).resolve()
                if _under(target, roots) and target.is_file():
                    total += target.stat().st_size
        return total, None
    except OSError as exc:
        return None, f"cannot read {uri}: {exc.strerror or type(exc).__name__}"


async def measure(state: State, uri: str) -> tuple[int | None, str | None]:
    """Measure a ``local`` source off the event loop, within limits.local_measure_seconds."""
    budget = state.settings.limits.local_measure_seconds
    roots = state.settings.local_roots(state.data_dir)
    deadline = time.monotonic() + budget
    loop = asyncio.get_running_loop()
    try:
        # One measuring thread: a flood of large trees queues (and times out) there
        # instead of starving the event loop of the GIL.
        return await asyncio.wait_for(
            loop.run_in_executor(_MEASURER, measure_local, uri, roots, deadline), budget + 1
        )
    except TimeoutError:
        return None, f"measuring {uri} took too long (limits.local_measure_seconds)"


def hf_cache(state: State, repo: str) -> Path | None:
    """The newest snapshot of ``repo`` in a Hugging Face cache the gateway may read."""
    folder = "models--" + repo.strip("/").replace("/", "--")
    for root in state.settings.hf_cache_roots():
        snaps = root / folder / "snapshots"
        if snaps.is_dir():
            found = sorted(p for p in snaps.iterdir() if p.is_dir())
            if found:
                return found[-1]
    return None


def finish(doc: Doc, size: int | None) -> None:
    doc["status"] = "available"
    doc["size_bytes"] = size
    doc["downloaded_bytes"] = size
    doc["bytes_per_second"] = doc["eta_seconds"] = None
    doc["progress_percent"] = None
    doc["error"] = None
    doc["updated_at"] = iso()


def fail(doc: Doc, message: str) -> None:
    doc["status"] = "error"
    doc["bytes_per_second"] = doc["eta_seconds"] = None
    doc["progress_percent"] = None
    doc["error"] = message
    doc["updated_at"] = iso()


async def _open(client: httpx.AsyncClient, uri: str, lim: Limits) -> httpx.Response:
    """The streamed response for ``uri``, following only redirects to allowed hosts."""
    url = httpx.URL(uri)
    if url.scheme not in ("http", "https") or not url.host:
        raise RuntimeError(
            f"download refused: only http and https URLs are downloaded, not '{uri}'"
        )
    allowed = {url.host.lower(), *(h.lower() for h in lim.download_allowed_hosts)}
    stall = httpx.Timeout(lim.download_stall_seconds)
    # Raw bytes only: a gzip bomb lands on disk at its wire size, not inflated.
    headers = {"accept-encoding": "identity"}
    for _ in range(lim.download_max_redirects + 1):
        request = client.build_request("GET", url, headers=headers, timeout=stall)
        resp = await client.send(request, stream=True, follow_redirects=False)
        if not resp.is_redirect:
            return resp
        await resp.aclose()
        nxt = url.join(resp.headers.get("location", ""))
        if nxt.scheme not in ("http", "https") or (nxt.host or "").lower() not in allowed:
            raise RuntimeError(
                f"download refused: redirect to '{nxt.host}' is not an allowed host "
                "(limits.download_allowed_hosts)"
            )
        url = nxt
    raise RuntimeError(
        f"download refused: more than {lim.download_max_redirects} redirects "
        "(limits.download_max_redirects)"
    )


async def _save(state: State, doc: Doc, resp: httpx.Response, target: Path) -> int | None:
    """Write the body to ``target`` within the cap, saving progress; the byte count, or None
    when the model stopped downloading meanwhile (deleted)."""
    model_id, cap = doc["id"], state.settings.limits.download_max_bytes
    if resp.status_code >= 400:
        raise RuntimeError(f"download failed: HTTP {resp.status_code} from {doc['uri']}")
    total = int(resp.headers.get("content-length") or 0) or None
    if total is not None and total > cap:
        raise RuntimeError(
            f"download refused: {total:,} bytes announced, over the {cap:,}-byte "
            "cap (limits.download_max_bytes)"
        )
    done = 0
    progress = DownloadProgress(total)
    last_save = time.monotonic()
    with target.open("wb") as fh:
        async for chunk in resp.aiter_raw():
            done += len(chunk)
            if done > cap:
                raise RuntimeError(
                    f"download stopped: over the {cap:,}-byte cap (limits.download_max_bytes)"
                )
            fh.write(chunk)
            progress.update(done)
            if time.monotonic() - last_save > 0.2:
                last_save = time.monotonic()
                cur = state.store.get("model", model_id)
                if cur is None or cur["status"] != "downloading":
                    return None
                cur.update(progress.fields())
                state.store.put("model", cur)
    return done


def _failure(exc: Exception, lim: Limits) -> str:
    if isinstance(exc, RuntimeError | EgressRefused):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return (
            f"download failed: no data for {lim.download_stall_seconds:g} s "
            "(limits.download_stall_seconds)"
        )
    return f"download failed: {type(exc).__name__}: {exc}"[:500]


async def download(state: State, model_id: str) -> None:
    """Download a ``url`` model for real into the data folder, saving progress as it goes."""
    doc = state.store.get("model", model_id)
    if doc is None:
        return
    target_dir = state.data_dir / "models" / model_id
    target_dir.mkdir(parents=True, exist_ok=True)
    name = doc["uri"].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not _SAFE_NAME.match(name):
        name = "model.bin"  # the URL's last segment is not a safe file name
    target = target_dir / name
    lim = state.settings.limits
    try:
        resp = await _open(state.egress_client(), doc["uri"], lim)
        try:
            done = await _save(state, doc, resp, target)
        finally:
            await resp.aclose()
        if done is None:
            return
        cur = state.store.get("model", model_id)
        if cur is not None and cur["status"] == "downloading":
            cur["metadata"]["local_path"] = str(target)
            finish(cur, done)
            state.store.put("model", cur)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        target.unlink(missing_ok=True)
        cur = state.store.get("model", model_id)
        if cur is not None and cur["status"] == "downloading":
            fail(cur, _failure(exc, lim))
            state.store.put("model", cur)
