"""Work items and worker keys in the events' SQLite file (one machine: its clock)."""

from __future__ import annotations

import time

import msgspec
from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.application.work_queue import WorkerKey, WorkItem
from agentjournal.infrastructure.stores.work import ITEMS, KEYS, OPEN, encoded, item_of, key_of

CREATE = (
    f"CREATE TABLE IF NOT EXISTS {ITEMS} (id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, "
    "session_id TEXT NOT NULL, state TEXT NOT NULL, delivered_at REAL, lease_expires_at REAL NOT NULL, "
    "version INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID",
    f"CREATE UNIQUE INDEX IF NOT EXISTS {ITEMS}_open ON {ITEMS} (session_id) WHERE state IN ({OPEN})",
    f"CREATE INDEX IF NOT EXISTS {ITEMS}_environment ON {ITEMS} (environment_id, state)",
    f"CREATE TABLE IF NOT EXISTS {KEYS} (id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, "
    "digest TEXT NOT NULL UNIQUE, body TEXT NOT NULL) WITHOUT ROWID",
)

COUNTS = (
    f"SELECT SUM(state = 'queued'), SUM(state IN ('starting', 'active', 'stopping')) FROM {ITEMS} "
    "WHERE environment_id = ?"
)
OLDEST_QUEUED = f"SELECT body FROM {ITEMS} WHERE environment_id = ? AND state = 'queued' ORDER BY id LIMIT 1"


class SQLiteWorkRows:
    """:class:`~agentjournal.application.work_queue.WorkRows` in the events' SQLite file."""

    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        with datastore.transaction(commit=True) as c:
            for statement in CREATE:
                c.execute(statement)

    def now(self) -> float:
        return time.time()

    def insert(self, item: WorkItem) -> bool:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {ITEMS} (id, environment_id, session_id, state, delivered_at, lease_expires_at, "
                "version, body) VALUES (?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING RETURNING id",
                (item.id, item.environment_id, item.session_id, item.state, item.delivered_at,
                 item.lease_expires_at, encoded(item)),
            )  # fmt: skip
            return c.fetchone() is not None

    def get(self, work_id: str) -> tuple[WorkItem, int] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT body, version FROM {ITEMS} WHERE id = ?", (work_id,))
            row = c.fetchone()
        return None if row is None else (item_of(row[0]), int(row[1]))

    def replace(self, item: WorkItem, version: int) -> bool:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {ITEMS} SET state = ?, delivered_at = ?, lease_expires_at = ?, version = version + 1, "
                "body = ? WHERE id = ? AND version = ? RETURNING id",
                (item.state, item.delivered_at, item.lease_expires_at, encoded(item), item.id, version),
            )
            return c.fetchone() is not None

    def claimable(self, environment_id: str, now: float, delivered_before: float, limit: int
                  ) -> list[tuple[WorkItem, int]]:  # fmt: skip
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT body, version FROM {ITEMS} WHERE environment_id = ? AND ("
                "(state = 'queued' AND (delivered_at IS NULL OR delivered_at <= ?)) OR "
                "(state IN ('starting', 'active') AND lease_expires_at <= ?)) ORDER BY id LIMIT ?",
                (environment_id, delivered_before, now, limit),
            )
            return [(item_of(row[0]), int(row[1])) for row in c.fetchall()]

    def open_item(self, session_id: str) -> tuple[WorkItem, int] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT body, version FROM {ITEMS} WHERE session_id = ? AND state IN ({OPEN})", (session_id,)
            )
            row = c.fetchone()
        return None if row is None else (item_of(row[0]), int(row[1]))

    def latest(self, session_id: str) -> WorkItem | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT body FROM {ITEMS} WHERE session_id = ? ORDER BY id DESC LIMIT 1", (session_id,)
            )
            row = c.fetchone()
        return None if row is None else item_of(row[0])

    def page(self, environment_id: str, after: str | None, limit: int) -> list[WorkItem]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT body FROM {ITEMS} WHERE environment_id = ? AND id > ? ORDER BY id LIMIT ?",
                (environment_id, after or "", limit),
            )
            return [item_of(row[0]) for row in c.fetchall()]

    def unserved(self, now: float) -> list[tuple[WorkItem, int]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT body, version FROM {ITEMS} WHERE state IN ({OPEN}) AND lease_expires_at <= ? ORDER BY id",
                (now,),
            )
            return [(item_of(row[0]), int(row[1])) for row in c.fetchall()]

    def counts(self, environment_id: str) -> tuple[int, int, float | None]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(COUNTS, (environment_id,))
            row = c.fetchone()
            c.execute(OLDEST_QUEUED, (environment_id,))
            oldest = c.fetchone()
        return int(row[0] or 0), int(row[1] or 0), item_of(oldest[0]).created_at if oldest else None

    def add_key(self, key: WorkerKey) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {KEYS} (id, environment_id, digest, body) VALUES (?, ?, ?, ?)",
                (key.id, key.environment_id, key.digest, encoded(key)),
            )

    def key_with_digest(self, digest: str) -> WorkerKey | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT body FROM {KEYS} WHERE digest = ?", (digest,))
            row = c.fetchone()
        return None if row is None else key_of(row[0])

    def keys(self, environment_id: str) -> list[WorkerKey]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT body FROM {KEYS} WHERE environment_id = ?", (environment_id,))
            return sorted((key_of(row[0]) for row in c.fetchall()), key=lambda k: k.created_at)

    def revoke_key(self, key_id: str, at: float) -> WorkerKey | None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SELECT body FROM {KEYS} WHERE id = ?", (key_id,))
            row = c.fetchone()
            if row is None:
                return None
            key = key_of(row[0])
            if key.revoked_at is None:
                key = msgspec.structs.replace(key, revoked_at=at)
                c.execute(f"UPDATE {KEYS} SET body = ? WHERE id = ?", (encoded(key), key_id))
            return key
