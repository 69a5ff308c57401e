"""The SQLite event store, with pages sized for its rows.

A store's rows are events of a few hundred bytes and snapshot chunks of some kilobytes.
In SQLite's default 4 KiB pages the events' table leaves about an eighth of its pages
unused; in 8 KiB pages, a fortieth (``scripts/bench`` measures the file's growth). So a
new store file gets 8 KiB pages. SQLite takes a page size only while a database is empty,
and a WAL database keeps the one it has, so the size is set, and WAL mode with it, before
eventsourcing's first connection to a file that is not there yet or still empty: an
existing store keeps its pages, and two processes creating one store at once agree.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from eventsourcing import sqlite
from eventsourcing.utils import Environment

from agentjournal.infrastructure.stores.leases.sqlite import LeasingSQLiteApplicationRecorder
from agentjournal.infrastructure.stores.log_rows import SQLiteLogRows

PAGE_SIZE = 8192


class SQLiteConnectionPool(sqlite.SQLiteConnectionPool):
    """eventsourcing's pool of SQLite connections, making new database files with
    ``PAGE_SIZE`` pages."""

    def _create_connection(self) -> sqlite.SQLiteConnection:
        if not self.is_sqlite_memory_mode and _is_new_file(self.db_name):
            with contextlib.closing(sqlite3.connect(self.db_name, timeout=self.lock_timeout or 5)) as db:
                db.execute(f"PRAGMA page_size={PAGE_SIZE}")
                db.execute("PRAGMA journal_mode=WAL")  # writes the first page, with that size
        return super()._create_connection()


def _is_new_file(db_name: str) -> bool:
    """A plain path (not a ``file:`` URI) to a file that is absent or empty."""
    if db_name.startswith("file:"):
        return False
    try:
        return os.path.getsize(db_name) == 0
    except FileNotFoundError:
        return True


class SQLiteEventsRecorder(SQLiteLogRows, LeasingSQLiteApplicationRecorder):
    """The events' recorder: eventsourcing's, applying a save's lease change with its
    events, and reading a log's rows in ranges (:mod:`~.log_rows`)."""


class SQLiteFactory(sqlite.SQLiteFactory):
    """eventsourcing's SQLite factory, whose pool makes new files with ``PAGE_SIZE`` pages,
    and whose events' recorder applies a save's lease change with its events and reads a
    log's rows in ranges."""

    application_recorder_class = SQLiteEventsRecorder

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        # eventsourcing makes its pool inside its own __init__, before any connection: the
        # pool above differs only in how it makes a new file, so it takes over that instance.
        self.datastore.pool.__class__ = SQLiteConnectionPool
