"""The blob store's table in the PostgreSQL database (and schema) of the events."""

from __future__ import annotations

from collections.abc import Iterable

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.application.errors import BlobMissing
from agentjournal.infrastructure.stores.blobs import TABLE, BlobSealer, by_digest
from agentjournal.infrastructure.stores.postgres import schema_objects


class PostgresBlobStore:
    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = BlobSealer(cipher)
        self.table = sql.SQL("{}.{}").format(sql.Identifier(datastore.schema), sql.Identifier(TABLE))
        if TABLE not in schema_objects(datastore):
            self._create()

    def _create(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
            # catalog: one process at a time creates it.
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentjournal.{TABLE}",))
            c.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (hash text PRIMARY KEY, size bigint NOT NULL, body bytea NOT NULL)"
                ).format(self.table)
            )

    def add(self, contents: Iterable[bytes]) -> int:
        blobs = by_digest(contents)
        known = self.stored(blobs)  # once: asked per content, a mount of n files made n² lookups
        new = {d: data for d, data in blobs.items() if d not in known}
        if not new:
            return 0
        added = 0
        insert = sql.SQL(
            "INSERT INTO {} VALUES (%s, %s, %s) ON CONFLICT (hash) DO NOTHING RETURNING size"
        ).format(self.table)
        with self.datastore.transaction(commit=True) as c:
            for digest, data in new.items():
                c.execute(insert, (digest, len(data), self.sealer.seal(data)))
                added += len(data) if c.fetchone() is not None else 0
        return added

    def get(self, digest: str) -> bytes:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("SELECT body FROM {} WHERE hash = %s").format(self.table), (digest,))
            row = c.fetchone()
        if row is None:
            raise BlobMissing(digest)
        return self.sealer.open(digest, bytes(row["body"]))

    def stored(self, digests: Iterable[str]) -> set[str]:
        wanted = list(set(digests))
        if not wanted:
            return set()
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("SELECT hash FROM {} WHERE hash = ANY(%s)").format(self.table), (wanted,))
            return {row["hash"] for row in c.fetchall()}
