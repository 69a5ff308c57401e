"""Memory contents in the PostgreSQL database (and schema) of the events.

An erased row is gone from the table at once, but PostgreSQL keeps a deleted row's bytes
in its page until ``VACUUM`` reuses the space (and in its write-ahead log until that is
recycled): no statement overwrites them. A store whose contents must leave the disk at
redaction runs with a cipher (``CIPHER_KEY``), whose bodies are unreadable without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.infrastructure.stores.memory_contents import TABLE, BodySealer
from agentjournal.infrastructure.stores.postgres import schema_objects


class PostgresMemoryContents:
    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = BodySealer(cipher)
        self.table = sql.SQL("{}.{}").format(sql.Identifier(datastore.schema), sql.Identifier(TABLE))
        if TABLE not in schema_objects(datastore):
            with datastore.transaction(commit=True) as c:
                # One process at a time: concurrent DDL can collide in PostgreSQL's catalog.
                c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentjournal.{TABLE}",))
                c.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} "
                        "(version_id text PRIMARY KEY, store_id text NOT NULL, body bytea NOT NULL)"
                    ).format(self.table)
                )

    def seal(self, store_id: UUID, contents: Mapping[str, str]) -> None:
        insert = sql.SQL(
            "INSERT INTO {} VALUES (%s, %s, %s) ON CONFLICT (version_id) DO UPDATE SET body = EXCLUDED.body"
        ).format(self.table)
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                insert,
                [(version, store_id.hex, self.sealer.seal(text)) for version, text in contents.items()],
            )

    def get(self, version_ids: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(version_ids))
        if not wanted:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("SELECT version_id, body FROM {} WHERE version_id = ANY(%s)").format(self.table),
                (wanted,),
            )
            return {row["version_id"]: self.sealer.open(bytes(row["body"])) for row in c.fetchall()}

    def erase(self, version_ids: Iterable[str]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                sql.SQL("DELETE FROM {} WHERE version_id = ANY(%s)").format(self.table), (list(version_ids),)
            )
