"""The blob store's table in the same SQLite file as the events."""

from __future__ import annotations

from collections.abc import Iterable

from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.application.errors import BlobMissing
from agentjournal.infrastructure.stores.blobs import TABLE, BlobSealer, by_digest

BATCH = 500  # hashes per query: well under SQLite's limit on parameters


class SQLiteBlobStore:
    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = BlobSealer(cipher)
        with datastore.transaction(commit=True) as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(hash TEXT PRIMARY KEY, size INTEGER NOT NULL, body BLOB NOT NULL)"
            )

    def add(self, contents: Iterable[bytes]) -> int:
        blobs = by_digest(contents)
        known = self.stored(blobs)  # once: asked per content, a mount of n files made n² lookups
        new = {d: data for d, data in blobs.items() if d not in known}
        if not new:
            return 0
        added = 0
        with self.datastore.transaction(commit=True) as c:
            for digest, data in new.items():
                c.execute(
                    f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?) RETURNING size",
                    (digest, len(data), self.sealer.seal(data)),
                )
                added += len(data) if c.fetchone() is not None else 0
        return added

    def get(self, digest: str) -> bytes:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT body FROM {TABLE} WHERE hash = ?", (digest,))
            row = c.fetchone()
        if row is None:
            raise BlobMissing(digest)
        return self.sealer.open(digest, bytes(row[0]))

    def stored(self, digests: Iterable[str]) -> set[str]:
        wanted = list(set(digests))
        found: set[str] = set()
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(wanted), BATCH):
                batch = wanted[start : start + BATCH]
                c.execute(f"SELECT hash FROM {TABLE} WHERE hash IN ({', '.join('?' * len(batch))})", batch)
                found.update(row[0] for row in c.fetchall())
        return found
