"""Leases in the SQLite file of the events.

Every process on one SQLite file runs on one machine, so expiries are by this machine's
clock (:func:`time.time`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Cipher, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from agentjournal.application.leases import Lease, LeaseChange
from agentjournal.infrastructure.stores.leases import TABLE

CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
    "token INTEGER NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID"
)
GRANT = (
    f"INSERT INTO {TABLE} (name, holder, token, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
    "DO UPDATE SET holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at"
)
RELEASE = f"UPDATE {TABLE} SET expires_at = 0 WHERE name = ?"
RENEW = f"UPDATE {TABLE} SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ? RETURNING name"


def apply_change(cursor: SQLiteCursor, change: LeaseChange) -> None:
    """Grant or release a lease in the transaction ``cursor`` belongs to."""
    if change.releases:
        cursor.execute(RELEASE, (change.name,))
    else:
        cursor.execute(GRANT, (change.name, change.holder, change.token, time.time() + change.seconds))


class SQLiteLeases:
    """:class:`~agentjournal.application.leases.Leases` in the events' SQLite file."""

    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        with datastore.transaction(commit=True) as c:
            c.execute(CREATE)

    def renew(self, held: Sequence[Lease], seconds: float) -> list[Lease]:
        renewed = []
        with self.datastore.transaction(commit=True) as c:
            now = time.time()
            for lease in held:
                c.execute(RENEW, (now + seconds, lease.name, lease.token, now))
                if c.fetchone() is not None:
                    renewed.append(Lease(lease.name, lease.holder, lease.token, now + seconds))
        return renewed

    def find(self, names: Sequence[str]) -> dict[str, Lease]:
        found: dict[str, Lease] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                c.execute(
                    f"SELECT name, holder, token, expires_at FROM {TABLE} "
                    f"WHERE name IN ({', '.join('?' * len(chunk))})",
                    tuple(chunk),
                )
                for row in c.fetchall():
                    found[row[0]] = Lease(row[0], row[1], int(row[2]), float(row[3]))
        return found

    def now(self) -> float:
        return time.time()


class LeasingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder of the events, which also applies a save's
    ``lease`` change (a :class:`LeaseChange`) in the transaction of its events."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        change: LeaseChange | None = kwargs.get("lease")
        if change is not None:
            apply_change(c, change)
        return super()._insert_events(c, stored_events, **kwargs)
