"""Memory contents in the same SQLite file as the events.

Every connection that writes the table has ``secure_delete`` on, so SQLite overwrites a
deleted row's bytes (and the pages it frees) with zeros instead of leaving them in free
space; an erasure then checkpoints the write-ahead log into the file and truncates it, so
the log file no longer holds the row either (a reader in the middle of a transaction at
that moment keeps the log from being truncated: its old frames are overwritten as the log
is reused). What the file system did with blocks before
(copies, journaling, SSD wear levelling) is beyond the database: a cipher
(``CIPHER_KEY``) covers that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.infrastructure.stores.memory_contents import TABLE, BodySealer

BATCH = 500  # ids per query: well under SQLite's limit on parameters


class SQLiteMemoryContents:
    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = BodySealer(cipher)
        with datastore.transaction(commit=True) as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(version_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, body BLOB NOT NULL)"
            )

    def seal(self, store_id: UUID, contents: Mapping[str, str]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete = ON")
            c.executemany(
                f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?)",
                [(version, store_id.hex, self.sealer.seal(text)) for version, text in contents.items()],
            )

    def get(self, version_ids: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(version_ids))
        found: dict[str, str] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(wanted), BATCH):
                batch = wanted[start : start + BATCH]
                c.execute(
                    f"SELECT version_id, body FROM {TABLE} WHERE version_id IN ({', '.join('?' * len(batch))})",
                    batch,
                )
                found.update((row[0], self.sealer.open(bytes(row[1]))) for row in c.fetchall())
        return found

    def erase(self, version_ids: Iterable[str]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete = ON")
            c.executemany(f"DELETE FROM {TABLE} WHERE version_id = ?", [(v,) for v in version_ids])
        with self.datastore.get_connection(commit=True) as connection:
            connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
