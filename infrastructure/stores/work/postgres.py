"""Work items and worker keys in the PostgreSQL database (and schema) of the events.

Servers on several hosts share the store, so times are the database's clock; a claim is
a compare-and-set on the row's version, so no item is handed to two workers."""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.application.work_queue import WorkerKey, WorkItem
from agentjournal.infrastructure.stores.postgres_schema import schema_objects
from agentjournal.infrastructure.stores.work import ITEMS, KEYS, OPEN, encoded, item_of, key_of

NOW = "extract(epoch FROM clock_timestamp())::double precision"


class PostgresWorkRows:
    """:class:`~agentjournal.application.work_queue.WorkRows` in the events' PostgreSQL schema."""

    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        schema = sql.Identifier(datastore.schema)
        self.items = sql.SQL("{}.{}").format(schema, sql.Identifier(ITEMS))
        self.keys_table = sql.SQL("{}.{}").format(schema, sql.Identifier(KEYS))
        if not {ITEMS, KEYS} <= schema_objects(datastore):
            with datastore.transaction(commit=True) as c:
                # Concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalog.
                c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentjournal.{ITEMS}",))
                for statement in (
                    "CREATE TABLE IF NOT EXISTS {items} (id text PRIMARY KEY, environment_id text NOT NULL, "
                    "session_id text NOT NULL, state text NOT NULL, delivered_at double precision, "
                    "lease_expires_at double precision NOT NULL, version bigint NOT NULL, body text NOT NULL)",
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {{open}} ON {{items}} (session_id) WHERE state IN ({OPEN})",
                    "CREATE INDEX IF NOT EXISTS {by_environment} ON {items} (environment_id, state)",
                    "CREATE TABLE IF NOT EXISTS {keys} (id text PRIMARY KEY, environment_id text NOT NULL, "
                    "digest text NOT NULL UNIQUE, body text NOT NULL)",
                ):
                    c.execute(
                        sql.SQL(statement).format(
                            items=self.items, keys=self.keys_table,
                            open=sql.Identifier(f"{ITEMS}_open"),
                            by_environment=sql.Identifier(f"{ITEMS}_environment"),
                        )
                    )  # fmt: skip

    def _run(self, query: str, params: tuple[Any, ...], commit: bool = False) -> list[Any]:
        with self.datastore.transaction(commit=commit) as c:
            c.execute(sql.SQL(query).format(items=self.items, keys=self.keys_table), params)
            return c.fetchall() if c.description else [c.rowcount]

    def now(self) -> float:
        return float(self._run(f"SELECT {NOW} AS now", ())[0]["now"])

    def insert(self, item: WorkItem) -> bool:
        done = self._run(
            "INSERT INTO {items} (id, environment_id, session_id, state, delivered_at, lease_expires_at, version, "
            "body) VALUES (%s, %s, %s, %s, %s, %s, 1, %s) ON CONFLICT DO NOTHING",
            (item.id, item.environment_id, item.session_id, item.state, item.delivered_at,
             item.lease_expires_at, encoded(item)),
            commit=True,
        )  # fmt: skip
        return bool(done[0])

    def get(self, work_id: str) -> tuple[WorkItem, int] | None:
        rows = self._run("SELECT body, version FROM {items} WHERE id = %s", (work_id,))
        return (item_of(rows[0]["body"]), int(rows[0]["version"])) if rows else None

    def replace(self, item: WorkItem, version: int) -> bool:
        done = self._run(
            "UPDATE {items} SET state = %s, delivered_at = %s, lease_expires_at = %s, version = version + 1, "
            "body = %s WHERE id = %s AND version = %s",
            (item.state, item.delivered_at, item.lease_expires_at, encoded(item), item.id, version),
            commit=True,
        )
        return bool(done[0])

    def claimable(self, environment_id: str, now: float, delivered_before: float, limit: int
                  ) -> list[tuple[WorkItem, int]]:  # fmt: skip
        rows = self._run(
            "SELECT body, version FROM {items} WHERE environment_id = %s AND ("
            "(state = 'queued' AND (delivered_at IS NULL OR delivered_at <= %s)) OR "
            "(state IN ('starting', 'active') AND lease_expires_at <= %s)) ORDER BY id LIMIT %s",
            (environment_id, delivered_before, now, limit),
        )
        return [(item_of(row["body"]), int(row["version"])) for row in rows]

    def open_item(self, session_id: str) -> tuple[WorkItem, int] | None:
        rows = self._run(
            f"SELECT body, version FROM {{items}} WHERE session_id = %s AND state IN ({OPEN})", (session_id,)
        )
        return (item_of(rows[0]["body"]), int(rows[0]["version"])) if rows else None

    def latest(self, session_id: str) -> WorkItem | None:
        rows = self._run(
            "SELECT body FROM {items} WHERE session_id = %s ORDER BY id DESC LIMIT 1", (session_id,)
        )
        return item_of(rows[0]["body"]) if rows else None

    def page(self, environment_id: str, after: str | None, limit: int) -> list[WorkItem]:
        rows = self._run(
            "SELECT body FROM {items} WHERE environment_id = %s AND id > %s ORDER BY id LIMIT %s",
            (environment_id, after or "", limit),
        )
        return [item_of(row["body"]) for row in rows]

    def unserved(self, now: float) -> list[tuple[WorkItem, int]]:
        rows = self._run(
            f"SELECT body, version FROM {{items}} WHERE state IN ({OPEN}) AND lease_expires_at <= %s ORDER BY id",
            (now,),
        )
        return [(item_of(row["body"]), int(row["version"])) for row in rows]

    def counts(self, environment_id: str) -> tuple[int, int, float | None]:
        row = self._run(
            "SELECT count(*) FILTER (WHERE state = 'queued') AS queued, "
            "count(*) FILTER (WHERE state IN ('starting', 'active', 'stopping')) AS pending, "
            "min(id) FILTER (WHERE state = 'queued') AS oldest FROM {items} WHERE environment_id = %s",
            (environment_id,),
        )[0]
        oldest = self.get(row["oldest"]) if row["oldest"] else None
        return int(row["queued"]), int(row["pending"]), oldest[0].created_at if oldest else None

    def add_key(self, key: WorkerKey) -> None:
        self._run(
            "INSERT INTO {keys} (id, environment_id, digest, body) VALUES (%s, %s, %s, %s)",
            (key.id, key.environment_id, key.digest, encoded(key)),
            commit=True,
        )

    def key_with_digest(self, digest: str) -> WorkerKey | None:
        rows = self._run("SELECT body FROM {keys} WHERE digest = %s", (digest,))
        return key_of(rows[0]["body"]) if rows else None

    def keys(self, environment_id: str) -> list[WorkerKey]:
        rows = self._run("SELECT body FROM {keys} WHERE environment_id = %s", (environment_id,))
        return sorted((key_of(row["body"]) for row in rows), key=lambda k: k.created_at)

    def revoke_key(self, key_id: str, at: float) -> WorkerKey | None:
        rows = self._run("SELECT body FROM {keys} WHERE id = %s", (key_id,))
        if not rows:
            return None
        key = key_of(rows[0]["body"])
        if key.revoked_at is None:
            key = msgspec.structs.replace(key, revoked_at=at)
            self._run("UPDATE {keys} SET body = %s WHERE id = %s", (encoded(key), key_id), commit=True)
        return key
