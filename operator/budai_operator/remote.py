"""The operator's side of the gateway: one `AsyncBudClient` behind a token bucket and metrics,
plus caches that let one list call per resource refresh many objects. It knows no custom
resource kind: each kind's adapter (`budai_operator.kinds`) names the gateway resource it uses.

Called by `budai_operator.runtime` and the kind adapters. Remote objects are handed on as plain
snake_case dicts (what the pure decisions in `budai_operator.reconcile` take).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from budai import AsyncBudClient
from budai.exceptions import BudAPIError, NotFoundError

from .metrics import GATEWAY_REQUESTS, RATE_LIMIT_WAIT, endpoint_of
from .ratelimit import TokenBucket
from .reconcile.errors import Failure
from .settings import OperatorSettings

log = logging.getLogger(__name__)

Remote = dict[str, Any]


def to_dict(obj: Any) -> Remote:
    """An SDK object as JSON-compatible snake_case data."""
    if isinstance(obj, Mapping):
        return dict(obj)
    dumped: Remote = obj.model_dump(mode="json")
    return dumped


def to_failure(err: BudAPIError) -> Failure:
    """The parts of an SDK error that decisions need (the API key is never among them)."""
    retry_after = getattr(err, "retry_after", None)
    return Failure(
        status_code=err.status_code,
        message=err.message,
        type=err.type,
        code=err.code,
        param=err.param,
        retry_after=float(retry_after) if retry_after else None,
        request_id=err.request_id,
    )


class ActionFailed(Exception):
    """A gateway call failed: what it was doing and the failure, for the error plan."""

    def __init__(self, failure: Failure, doing: str, creating: bool = False) -> None:
        super().__init__(doing)
        self.failure = failure
        self.doing = doing
        self.creating = creating


async def call(doing: str, coro: Awaitable[Any]) -> Any:
    """Await one gateway call; an SDK error becomes `ActionFailed` naming `doing`."""
    try:
        return await coro
    except BudAPIError as err:
        raise ActionFailed(to_failure(err), doing) from None


@dataclass
class _Entry:
    obj: Remote | None
    at: float


def _fingerprint(obj: Remote | None) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


class RemoteCache:
    """Remote objects of one gateway resource by id, with the time they were read.

    `observe(id, max_age)` answers from the cache when fresh enough; when several objects miss
    at once it refreshes the whole resource with one paginated list instead of one GET each.
    """

    LIST_THRESHOLD = 4
    MISS_WINDOW = 2.0

    def __init__(
        self,
        resource: str,
        get: Callable[[str], Awaitable[Any]],
        lister: Callable[[], AsyncIterator[Any]] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resource = resource
        self._get = get
        self._lister = lister
        self._clock = clock
        self.entries: dict[str, _Entry] = {}
        self._misses: deque[float] = deque()
        self._refresh: asyncio.Task[list[str]] | None = None
        self.last_list_at = -math.inf
        self.last_list_size = 0

    def put(self, obj: Remote) -> None:
        """Record an object just returned by a write (the freshest view there is)."""
        self.entries[str(obj["id"])] = _Entry(obj, self._clock())

    def forget(self, remote_id: str) -> None:
        """Drop an id (after deletion)."""
        self.entries.pop(remote_id, None)

    async def observe(self, remote_id: str, max_age: float) -> Remote | None:
        """The remote object (None when it does not exist), at most `max_age` seconds old."""
        asked = self._clock()
        entry = self.entries.get(remote_id)
        if entry is not None and asked - entry.at <= max_age:
            return entry.obj
        if self._refresh is not None and not self._refresh.done():
            await asyncio.shield(self._refresh)
            entry = self.entries.get(remote_id)
            # Fresh enough if read no earlier than `max_age` before this call asked.
            if entry is not None and entry.at >= asked - max_age:
                return entry.obj
        self._misses.append(asked)
        while self._misses and asked - self._misses[0] > self.MISS_WINDOW:
            self._misses.popleft()
        if self._lister is not None and len(self._misses) >= self.LIST_THRESHOLD:
            self._misses.clear()
            await self.refresh()
            entry = self.entries.get(remote_id)
            if entry is not None and entry.at >= asked - max_age and entry.obj is not None:
                return entry.obj
        try:
            obj = to_dict(await self._get(remote_id))
        except NotFoundError:
            self.entries[remote_id] = _Entry(None, self._clock())
            return None
        self.put(obj)
        return obj

    async def refresh(self) -> list[str]:
        """List the whole resource once (coalescing concurrent callers); returns the ids whose
        remote object changed since the cache last saw it."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._list(), name=f"refresh {self.resource}")
        return await asyncio.shield(self._refresh)

    async def _list(self) -> list[str]:
        if self._lister is None:
            return []
        started = self._clock()
        seen: dict[str, Remote] = {}
        async for item in self._lister():
            obj = to_dict(item)
            seen[str(obj["id"])] = obj
        changed = []
        for remote_id, obj in seen.items():
            old = self.entries.get(remote_id)
            if old is None or _fingerprint(old.obj) != _fingerprint(obj):
                changed.append(remote_id)
            # A write that landed while the list was paging is newer than the list.
            if old is None or old.at <= started:
                self.entries[remote_id] = _Entry(obj, started)
        for remote_id, old in list(self.entries.items()):
            if remote_id not in seen and old.at <= started and old.obj is not None:
                # Gone from the listing: let the next observe confirm with a GET.
                del self.entries[remote_id]
                changed.append(remote_id)
        self.last_list_at = started
        self.last_list_size = len(seen)
        return changed


class GatewayLink:
    """Everything the operator sends to the Bud gateway goes through here."""

    PAGE = 100

    def __init__(self, settings: OperatorSettings, label: str = "operator") -> None:
        self.settings = settings
        self.label = label
        """The connection this gateway client serves, as metrics name it."""
        # One bucket per connection: one noisy team cannot starve the others.
        self.bucket = TokenBucket(settings.rate_limit, settings.burst)
        self.last_success = 0.0
        self.last_failure: str | None = None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout, connect=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )
        self._key = settings.api_key
        self.client = self._make_client()
        self._caches: dict[str, RemoteCache] = {}
        self.clusters: dict[str, tuple[Remote | None, Remote | None, float]] = {}
        self._actions: tuple[frozenset[str], float] | None = None
        self._cluster_names: dict[str, tuple[str | None, float]] = {}

    def _make_client(self) -> AsyncBudClient:
        # Shares `self._http` (and so its rate limit and metrics hooks); it does not own it.
        return AsyncBudClient(
            api_key=self._key.get_secret_value(),
            base_url=self.settings.gateway_url,
            max_retries=self.settings.max_retries,
            timeout=self.settings.request_timeout,
            http_client=self._http,
        )

    def set_key(self, key: str) -> bool:
        """Use another API key (a rotated Secret); True when it changed."""
        if not key or key == self._key.get_secret_value():
            return False
        self._key = SecretStr(key)
        self.client = self._make_client()
        self._actions = None
        return True

    def reload_key(self) -> bool:
        """Re-read the API key file (a mounted Secret, which kubelet updates in place); True when
        the key changed and the client now uses the new one. An unreadable or empty file keeps
        the current key. The key itself is never logged."""
        path = self.settings.api_key_file
        if not path:
            return False
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            log.warning("cannot re-read the API key file %s: %s", path, err.strerror)
            return False
        if not self.set_key(text):
            return False
        log.info("the API key file %s changed: using the new key", path)
        return True

    async def _all(self, list_fn: Callable[..., Any]) -> AsyncIterator[Any]:
        async for item in list_fn(limit=self.PAGE):
            yield item

    async def _on_request(self, request: httpx.Request) -> None:
        waited = await self.bucket.acquire()
        RATE_LIMIT_WAIT.observe(waited)

    async def _on_response(self, response: httpx.Response) -> None:
        request = response.request
        GATEWAY_REQUESTS.labels(
            endpoint_of(request.url.path), request.method, str(response.status_code), self.label
        ).inc()
        if response.status_code < 500:
            self.last_success = time.monotonic()

    def cache(self, api: str, listed: bool = True) -> RemoteCache:
        """The cache of one gateway resource (`api` names the client's attribute: "models");
        `listed=False` for resources polled by id only (executions pile up as history)."""
        found = self._caches.get(api)
        if found is None:
            # Through `self.client` at call time: a reloaded key replaces the client.
            found = RemoteCache(
                api,
                lambda i: getattr(self.client, api).get(i),
                (lambda: self._all(getattr(self.client, api).list)) if listed else None,
            )
            self._caches[api] = found
        return found

    async def find_by_name(self, api: str, name: str) -> Remote | None:
        """The remote object with this name, if any (one filtered list call)."""
        page = await getattr(self.client, api).list(name=name, limit=5)
        for item in page.data:
            obj = to_dict(item)
            if obj.get("name") == name:
                self.cache(api).put(obj)
                return obj
        return None

    async def cluster(self, cluster_id: str, max_age: float) -> tuple[Remote | None, Remote | None]:
        """A cluster and its health, shared by every deployment on it."""
        now = time.monotonic()
        cached = self.clusters.get(cluster_id)
        if cached is not None and now - cached[2] <= max_age:
            return cached[0], cached[1]
        try:
            cluster = to_dict(await self.client.clusters.get(cluster_id))
            health: Remote | None = to_dict(await self.client.clusters.health(cluster_id))
        except NotFoundError:
            cluster, health = None, None
        self.clusters[cluster_id] = (cluster, health, now)
        return cluster, health

    async def cluster_id_for(self, name: str) -> str | None:
        """The id of the cluster with this name (cached a minute); None when there is none."""
        now = time.monotonic()
        cached = self._cluster_names.get(name)
        if cached is not None and now - cached[1] <= 60:
            return cached[0]
        page = await self.client.clusters.list(name=name, limit=5)
        found = next((to_dict(c)["id"] for c in page.data if to_dict(c).get("name") == name), None)
        self._cluster_names[name] = (found, now)
        return str(found) if found else None

    async def known_actions(self) -> frozenset[str] | None:
        """The action catalogue's names (cached ten minutes); None when it cannot be read."""
        now = time.monotonic()
        if self._actions is not None and now - self._actions[1] < 600:
            return self._actions[0]
        try:
            catalogue = await self.client.pipelines.actions()
        except BudAPIError as err:
            log.warning("cannot read the action catalogue: %s", err)
            return None
        names = frozenset(
            str(a.get("name") or a.get("id")) for a in catalogue if isinstance(a, Mapping)
        )
        self._actions = (names, now)
        return names

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.close()
        await self._http.aclose()
