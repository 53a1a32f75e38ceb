"""SQLite persistence for the gateway: JSON documents per kind, execution steps, idempotency keys.

One connection in WAL mode shared by the event loop. Every write commits at once, so whatever
the API acknowledged survives ``kill -9`` (WAL with ``synchronous=NORMAL`` loses nothing on a
process crash; only a power loss could drop the last transactions).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from budai_gateway.tenancy import DEFAULT_PROJECT, SCOPED_KINDS, current_project

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    internal TEXT NOT NULL DEFAULT '{}',
    project TEXT
);
CREATE INDEX IF NOT EXISTS objects_kind ON objects(kind, seq);
-- Lookups by name (the operator's "find before create") stay O(log n) with many objects; the
-- expression must match the queries' json_extract(data, '$.name') exactly to be used.
CREATE INDEX IF NOT EXISTS objects_name ON objects(kind, json_extract(data, '$.name'));
CREATE TABLE IF NOT EXISTS steps (
    execution_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (execution_id, step_id)
);
CREATE TABLE IF NOT EXISTS idempotency (
    key_hash TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (key_hash, idem_key)
);
CREATE TABLE IF NOT EXISTS kv (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

Doc = dict[str, Any]
# Set by the middleware for a request with an Idempotency-Key: [key_hash, idem_key, fingerprint,
# used]. The first object the request inserts is committed together with a reservation of the
# key, so a retry after a crash finds the object instead of making a second one.
IDEMPOTENCY: ContextVar[list[Any] | None] = ContextVar("budai_idempotency", default=None)
RESERVED = 0  # idempotency.status of a reservation (object made, response not stored yet)


def _private_file(path: str) -> None:
    """Create the database 0600 (it holds key hashes and replayed bodies); tighten old ones."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    for extra in ("", "-wal", "-shm", "-journal"):
        q = Path(str(p) + extra)
        if q.exists():
            q.chmod(0o600)


def _scope(kind: str) -> list[Any]:
    """The parameters of the ``AND (? IS NULL OR project = ?)`` every object query ends with:
    with a project bound, only its rows match (shared kinds and unscoped callers bind none)."""
    project = current_project.get() if kind in SCOPED_KINDS else None
    return [project, project]


class Store:
    """Thread-safe access to the gateway database (documents are plain JSON dicts)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:" and not path.startswith("file:"):
            _private_file(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(objects)")}
        if "project" not in columns:
            # A database written before projects existed: everything in it is 'default'.
            self._conn.execute("ALTER TABLE objects ADD COLUMN project TEXT")
            self._conn.execute(
                "UPDATE objects SET project = ? WHERE kind != 'cluster'", (DEFAULT_PROJECT,)
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write (BEGIN IMMEDIATE ... COMMIT)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- objects -------------------------------------------------------------------------------

    def insert(
        self, kind: str, doc: Doc, internal: Doc | None = None, steps: Sequence[Doc] = ()
    ) -> None:
        """Insert a document (an execution with its steps), in one transaction, into the
        current project (shared kinds belong to none)."""
        project = None
        if kind in SCOPED_KINDS:
            project = current_project.get() or DEFAULT_PROJECT
        with self.transaction() as c:
            c.execute(
                "INSERT INTO objects(id, kind, data, internal, project) VALUES (?, ?, ?, ?, ?)",
                (doc["id"], kind, json.dumps(doc), json.dumps(internal or {}), project),
            )
            idem = IDEMPOTENCY.get()
            if idem is not None and not idem[3]:
                idem[3] = True
                c.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (idem[0], idem[1], idem[2], RESERVED,
                     json.dumps({"object_id": doc["id"]}), b"", time.time()),
                )  # fmt: skip
            if steps:
                c.executemany(
                    "INSERT INTO steps(execution_id, step_id, position, data) VALUES (?, ?, ?, ?)",
                    [(doc["id"], st["id"], i, json.dumps(st)) for i, st in enumerate(steps)],
                )

    def get(self, kind: str, obj_id: str) -> Doc | None:
        args = _scope(kind)
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM objects WHERE id = ? AND kind = ? AND (? IS NULL OR project = ?)",
                (obj_id, kind, *args),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def project_of(self, obj_id: str) -> str | None:
        """The project an object belongs to (unscoped: for the engine and the scheduler)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT project FROM objects WHERE id = ?", (obj_id,)
            ).fetchone()
        return None if row is None else row[0]

    def get_any(self, obj_id: str) -> tuple[str, Doc] | None:
        """An object of any kind by id, within the current project (shared kinds always)."""
        project = current_project.get()
        with self._lock:
            row = self._conn.execute(
                "SELECT kind, data FROM objects WHERE id = ?"
                " AND (? IS NULL OR project IS NULL OR project = ?)",
                (obj_id, project, project),
            ).fetchone()
        return None if row is None else (str(row[0]), dict(json.loads(row[1])))

    def get_internal(self, obj_id: str) -> Doc:
        with self._lock:
            row = self._conn.execute(
                "SELECT internal FROM objects WHERE id = ?", (obj_id,)
            ).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def put(self, kind: str, doc: Doc, internal: Doc | None = None) -> None:
        """Replace an existing document (and its internal state when given)."""
        args = _scope(kind)
        with self.transaction() as c:
            if internal is None:
                c.execute(
                    "UPDATE objects SET data = ? WHERE id = ? AND kind = ?"
                    " AND (? IS NULL OR project = ?)",
                    (json.dumps(doc), doc["id"], kind, *args),
                )
            else:
                c.execute(
                    "UPDATE objects SET data = ?, internal = ? WHERE id = ? AND kind = ?"
                    " AND (? IS NULL OR project = ?)",
                    (json.dumps(doc), json.dumps(internal), doc["id"], kind, *args),
                )

    def put_internal(self, obj_id: str, internal: Doc) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE objects SET internal = ? WHERE id = ?", (json.dumps(internal), obj_id)
            )

    def delete(self, kind: str, obj_id: str) -> None:
        args = _scope(kind)
        with self.transaction() as c:
            cur = c.execute(
                "DELETE FROM objects WHERE id = ? AND kind = ? AND (? IS NULL OR project = ?)",
                (obj_id, kind, *args),
            )
            if kind == "execution" and cur.rowcount:
                c.execute("DELETE FROM steps WHERE execution_id = ?", (obj_id,))

    def all(self, kind: str) -> list[Doc]:
        args = _scope(kind)
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM objects WHERE kind = ?"
                " AND (? IS NULL OR project = ?) ORDER BY seq",
                (kind, *args),
            ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def all_with_internal(self, kind: str) -> list[tuple[Doc, Doc]]:
        args = _scope(kind)
        with self._lock:
            rows = self._conn.execute(
                "SELECT data, internal FROM objects WHERE kind = ?"
                " AND (? IS NULL OR project = ?) ORDER BY seq",
                (kind, *args),
            ).fetchall()
        return [(dict(json.loads(r[0])), dict(json.loads(r[1]))) for r in rows]

    def find(self, kind: str, field: str, value: Any) -> list[Doc]:
        args = _scope(kind)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT data FROM objects WHERE kind = ? AND json_extract(data, '$.{field}') = ?"  # noqa: S608
                " AND (? IS NULL OR project = ?) ORDER BY seq",
                (kind, value, *args),
            ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def latest(self, kind: str, field: str, value: Any) -> Doc | None:
        """The newest object of ``kind`` whose ``field`` equals ``value`` (creation order)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT data FROM objects WHERE kind = ? AND json_extract(data, '$.{field}') = ?"  # noqa: S608
                " ORDER BY seq DESC LIMIT 1",
                (kind, value),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def page(
        self,
        kind: str,
        filters: dict[str, Any],
        after: str | None,
        limit: int,
        *,
        newest_first: bool = False,
    ) -> tuple[list[Doc], bool] | None:
        """A page in creation order (or newest first); ``None`` when the ``after`` cursor is
        unknown."""
        scope_args = _scope(kind)
        sql = "SELECT data FROM objects WHERE kind = ? AND (? IS NULL OR project = ?)"
        args: list[Any] = [kind, *scope_args]
        with self._lock:
            if after is not None:
                # A cursor of another project is as unknown as one that never existed.
                row = self._conn.execute(
                    "SELECT seq FROM objects WHERE id = ? AND kind = ?"
                    " AND (? IS NULL OR project = ?)",
                    (after, kind, *scope_args),
                ).fetchone()
                if row is None:
                    return None
                sql += " AND seq < ?" if newest_first else " AND seq > ?"
                args.append(row[0])
            for name, value in filters.items():
                # Field names come from a fixed allow-list per collection, never from the client.
                sql += f" AND json_extract(data, '$.{name}') = ?"
                args.append(value)
            sql += " ORDER BY seq DESC LIMIT ?" if newest_first else " ORDER BY seq LIMIT ?"
            args.append(limit + 1)
            rows = self._conn.execute(sql, args).fetchall()
        docs = [dict(json.loads(r[0])) for r in rows]
        return docs[:limit], len(docs) > limit

    def count(self, kind: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COUNT(*) FROM objects WHERE kind = ?", (kind,))
            return int(row.fetchone()[0])

    def oldest_finished_executions(self, n: int, finished: Sequence[str]) -> list[str]:
        marks = ",".join("?" * len(finished))
        with self._lock:
            sql = (
                "SELECT id FROM objects WHERE kind = 'execution'"  # noqa: S608 (marks are '?')
                f" AND json_extract(data, '$.status') IN ({marks}) ORDER BY seq LIMIT ?"
            )
            rows = self._conn.execute(sql, (*finished, n)).fetchall()
        return [str(r[0]) for r in rows]

    def clear(self) -> None:
        with self.transaction() as c:
            for table in ("objects", "steps", "idempotency", "kv"):
                c.execute(f"DELETE FROM {table}")  # noqa: S608

    # -- execution steps -----------------------------------------------------------------------

    def insert_steps(self, execution_id: str, steps: Sequence[Doc]) -> None:
        with self.transaction() as c:
            c.executemany(
                "INSERT INTO steps(execution_id, step_id, position, data) VALUES (?, ?, ?, ?)",
                [(execution_id, s["id"], i, json.dumps(s)) for i, s in enumerate(steps)],
            )

    def put_step(self, execution_id: str, step: Doc) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE steps SET data = ? WHERE execution_id = ? AND step_id = ?",
                (json.dumps(step), execution_id, step["id"]),
            )

    def put_steps(self, execution_id: str, steps: Sequence[Doc]) -> None:
        with self.transaction() as c:
            c.executemany(
                "UPDATE steps SET data = ? WHERE execution_id = ? AND step_id = ?",
                [(json.dumps(s), execution_id, s["id"]) for s in steps],
            )

    def steps(self, execution_id: str) -> list[Doc]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM steps WHERE execution_id = ? ORDER BY position", (execution_id,)
            ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    # -- idempotency ---------------------------------------------------------------------------

    def idem_get(
        self, key_hash: str, idem_key: str, ttl: float
    ) -> tuple[str, int, Doc, bytes] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT fingerprint, status, headers, body, created FROM idempotency"
                " WHERE key_hash = ? AND idem_key = ?",
                (key_hash, idem_key),
            ).fetchone()
        if row is None or row[4] < time.time() - ttl:
            return None
        return str(row[0]), int(row[1]), dict(json.loads(row[2])), bytes(row[3])

    def idem_put(
        self, key_hash: str, idem_key: str, fingerprint: str, status: int, headers: Doc, body: bytes
    ) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_hash, idem_key, fingerprint, status, json.dumps(headers), body, time.time()),
            )

    def idem_expire(self, ttl: float) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM idempotency WHERE created < ?", (time.time() - ttl,))

    # -- small values --------------------------------------------------------------------------

    def kv_get(self, name: str) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def kv_set(self, name: str, value: Any) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (name, json.dumps(value)))
