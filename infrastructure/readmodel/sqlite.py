"""The session summary table in the same SQLite file as the events."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.application.projection import SessionSummary, SessionSummaryView
from agentjournal.domain import Status
from agentjournal.infrastructure.readmodel import COLUMNS, Sealer, from_row, to_row

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM session_summaries"  # noqa: S608 - fixed names


class SQLiteSessionSummaries(SessionSummaryView):
    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = Sealer(cipher)
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS session_summaries ("
                "id TEXT PRIMARY KEY, name TEXT, model TEXT, status TEXT, title TEXT, "
                "input_tokens INTEGER, output_tokens INTEGER, cache_read_tokens INTEGER, "
                "cache_creation_tokens INTEGER, message_count INTEGER, tool_call_count INTEGER, "
                "turn_count INTEGER, version INTEGER, created_at TEXT, updated_at TEXT, "
                "parent_id TEXT, parent_version INTEGER, last_error TEXT)"
            )
            c.execute(
                "CREATE INDEX IF NOT EXISTS session_summaries_updated ON session_summaries (updated_at)"
            )
            c.execute(
                "CREATE TABLE IF NOT EXISTS session_summaries_position ("
                "name TEXT PRIMARY KEY, notification_id INTEGER NOT NULL)"
            )
            c.execute("INSERT OR IGNORE INTO session_summaries_position VALUES ('summaries', 0)")

    def get_many(self, session_ids: Iterable[UUID]) -> dict[UUID, SessionSummary]:
        ids = [str(i) for i in session_ids]
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"{_SELECT} WHERE id IN ({marks})", ids)
            return {s.id: s for s in (from_row(r, self.sealer) for r in c.fetchall())}

    def list(
        self, *, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        where, params = ("WHERE status = ?", [status.value]) if status else ("", [])
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"{_SELECT} {where} ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
            return [from_row(r, self.sealer) for r in c.fetchall()]

    def ids_starting_with(self, prefix: str, limit: int = 2) -> builtins.list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT id FROM session_summaries WHERE id LIKE ? LIMIT ?", (f"{prefix}%", limit))
            return [UUID(row[0]) for row in c.fetchall()]

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT notification_id FROM session_summaries_position")
            return int(c.fetchone()[0])

    def commit(self, summaries: Sequence[SessionSummary], previous: int, position: int) -> bool:
        with self.datastore.transaction(commit=True) as c:
            # The compare-and-set comes first so this transaction takes the write
            # lock at once and a racing projector sees no half-done work.
            c.execute(
                "UPDATE session_summaries_position SET notification_id = ? "
                "WHERE notification_id = ? RETURNING notification_id",
                (position, previous),
            )
            if c.fetchone() is None:
                return False
            c.executemany(
                f"INSERT OR REPLACE INTO session_summaries VALUES ({', '.join('?' * len(COLUMNS))})",
                [to_row(s, self.sealer) for s in summaries],
            )
            return True
