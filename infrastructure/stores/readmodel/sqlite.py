"""The read model tables in the same SQLite file as the events."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.application.projection import SessionQuery, SessionSummary, SessionSummaryView
from agentjournal.domain import Status
from agentjournal.infrastructure.stores.readmodel import (
    COLUMNS,
    SESSION_TABLES,
    Sealer,
    Tables,
    from_row,
    session_filters,
    to_row,
)


def create_tables(datastore: SQLiteDatastore, tables: Tables, ddl: Sequence[str]) -> None:
    """Create a read model's tables (``ddl``, naming them ``{rows}``) and its position row
    if they are missing, and drop its obsolete tables; all in one transaction."""
    with datastore.transaction(commit=True) as c:
        for name in tables.obsolete:
            c.execute(f"DROP TABLE IF EXISTS {name}")
        for statement in ddl:
            c.execute(statement.format(rows=tables.rows))
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {tables.position} (name TEXT PRIMARY KEY, notification_id INTEGER NOT NULL)"
        )
        c.execute(f"INSERT OR IGNORE INTO {tables.position} VALUES ('position', 0)")


def read_position(datastore: SQLiteDatastore, tables: Tables) -> int:
    with datastore.transaction(commit=False) as c:
        c.execute(f"SELECT notification_id FROM {tables.position}")
        return int(c.fetchone()[0])


def commit_rows(
    datastore: SQLiteDatastore,
    tables: Tables,
    width: int,
    rows: list[tuple[Any, ...]],
    previous: int,
    position: int,
) -> bool:
    with datastore.transaction(commit=True) as c:
        # The compare-and-set comes first so this transaction takes the write
        # lock at once and a racing projector sees no half-done work.
        c.execute(
            f"UPDATE {tables.position} SET notification_id = ? WHERE notification_id = ? RETURNING notification_id",
            (position, previous),
        )
        if c.fetchone() is None:
            return False
        c.executemany(f"INSERT OR REPLACE INTO {tables.rows} VALUES ({', '.join('?' * width)})", rows)
        return True


class SQLiteSessionSummaries(SessionSummaryView):
    tables = SESSION_TABLES

    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = Sealer(cipher)
        self._select = f"SELECT {', '.join(COLUMNS)} FROM {self.tables.rows}"
        create_tables(
            datastore,
            self.tables,
            (
                "CREATE TABLE IF NOT EXISTS {rows} ("
                "id TEXT PRIMARY KEY, name TEXT, model TEXT, status TEXT, title TEXT, "
                "input_tokens INTEGER, output_tokens INTEGER, cache_read_tokens INTEGER, "
                "cache_creation_tokens INTEGER, message_count INTEGER, tool_call_count INTEGER, "
                "turn_count INTEGER, version INTEGER, created_at TEXT, updated_at TEXT, "
                "parent_id TEXT, parent_version INTEGER, last_error TEXT, agent_id TEXT, "
                "agent_version INTEGER, environment_id TEXT, metadata TEXT, archived_at TEXT, "
                "deleted INTEGER NOT NULL, compute TEXT, active_seconds REAL NOT NULL, running_since TEXT, "
                "ended_at TEXT, cost_usd REAL NOT NULL, unpriced_calls INTEGER NOT NULL, "
                "model_ms REAL NOT NULL, worker_calls TEXT NOT NULL, memory_stores TEXT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS {rows}_updated ON {rows} (updated_at)",
                "CREATE INDEX IF NOT EXISTS {rows}_created ON {rows} (created_at, id)",
                "CREATE INDEX IF NOT EXISTS {rows}_agent ON {rows} (agent_id, created_at)",
            ),
        )

    def get_many(self, session_ids: Iterable[UUID]) -> dict[UUID, SessionSummary]:
        ids = [str(i) for i in session_ids]
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"{self._select} WHERE id IN ({marks})", ids)
            return {s.id: s for s in (from_row(r, self.sealer) for r in c.fetchall())}

    def list(
        self, *, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        where, params = ("AND status = ?", [status.value]) if status else ("", [])
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"{self._select} WHERE NOT deleted {where} ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
            return [from_row(r, self.sealer) for r in c.fetchall()]

    def page(self, query: SessionQuery) -> builtins.list[SessionSummary]:
        filters, params = session_filters(query, "?")
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"{self._select} {filters} LIMIT ?", [*params, query.limit])
            return [from_row(r, self.sealer) for r in c.fetchall()]

    def ids_starting_with(self, prefix: str, limit: int = 2) -> builtins.list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT id FROM {self.tables.rows} WHERE id LIKE ? AND NOT deleted LIMIT ?",
                (f"{prefix}%", limit),
            )
            return [UUID(row[0]) for row in c.fetchall()]

    def position(self) -> int:
        return read_position(self.datastore, self.tables)

    def commit(self, summaries: Sequence[SessionSummary], previous: int, position: int) -> bool:
        rows = [to_row(s, self.sealer) for s in summaries]
        return commit_rows(self.datastore, self.tables, len(COLUMNS), rows, previous, position)
