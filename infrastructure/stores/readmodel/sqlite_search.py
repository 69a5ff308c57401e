"""The search index in the SQLite file of the events: a table of rows and an FTS5 table
of their text (an external-content index over the rows, so the text is kept once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.application.search import Filters, IndexedText, SearchIndexView
from agentjournal.infrastructure.stores.readmodel import SESSION_TABLES, Tables, sortable
from agentjournal.infrastructure.stores.readmodel.sqlite import create_tables, read_position

SEARCH_TABLES = Tables("search_v1", "search_v1_position")
SUMMARIES = SESSION_TABLES.rows


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 query holding every word as a prefix; each word is quoted, so none is
    read as an operator."""
    return " ".join(f'"{w}"*' for w in words)


def narrowing(filters: Filters, rows: str = "r") -> tuple[list[str], list[Any]]:
    """The conditions ``filters`` put on a search's rows (``rows`` their alias), and
    their parameters; the session's are on the summary table ``s``."""
    where, params = ["NOT s.deleted"], []
    if filters.tool:
        where.append(f"{rows}.tool = ?")
        params.append(filters.tool)
    if filters.failed:
        where.append(f"{rows}.failed")
    if filters.model:
        where.append("s.model = ?")
        params.append(filters.model)
    if filters.status:
        where.append("s.status = ?")
        params.append(filters.status.value)
    return where, params


class SQLiteSearchIndex(SearchIndexView):
    tables = SEARCH_TABLES

    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.holds_text = cipher is None
        create_tables(
            datastore,
            self.tables,
            (
                "CREATE TABLE IF NOT EXISTS {rows} ("
                "rowid INTEGER PRIMARY KEY, session_id TEXT NOT NULL, version INTEGER NOT NULL, "
                "part INTEGER NOT NULL, kind TEXT NOT NULL, tool TEXT NOT NULL, failed INTEGER NOT NULL, "
                "at TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (session_id, version, part))",
                "CREATE INDEX IF NOT EXISTS {rows}_tool ON {rows} (tool, session_id)",
                "CREATE INDEX IF NOT EXISTS {rows}_failed ON {rows} (session_id) WHERE failed",
                "CREATE VIRTUAL TABLE IF NOT EXISTS {rows}_text USING fts5("
                "text, content='{rows}', content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
            ),
        )

    def hits(self, words: Sequence[str], filters: Filters, limit: int, offset: int) -> list[IndexedText]:
        rows = self.tables.rows
        where, params = narrowing(filters)
        source, order = f"{rows} r", "r.rowid"
        if words:
            # Ordered by the FTS5 table's own rowid, which it yields in order: no sort of
            # every match before the first page (ordered by the row's, SQLite sorts them).
            source, order = f"{rows}_text f JOIN {rows} r ON r.rowid = f.rowid", "f.rowid"
            where.insert(0, f"{rows}_text MATCH ?")
            params.insert(0, match_expression(words))
        query = (
            f"SELECT r.session_id, r.version, r.part, r.kind, r.tool, r.failed, r.at, r.text "
            f"FROM {source} JOIN {SUMMARIES} s ON s.id = r.session_id "
            f"WHERE {' AND '.join(where)} ORDER BY {order} DESC LIMIT ? OFFSET ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(query, [*params, limit, offset])
            return [_row(r) for r in c.fetchall()]

    def session_ids(self, filters: Filters, limit: int, offset: int) -> list[UUID]:
        where, params = ["NOT s.deleted"], []
        if filters.tool:
            where.append(
                f"EXISTS (SELECT 1 FROM {self.tables.rows} r WHERE r.tool = ? AND r.session_id = s.id)"
            )
            params.append(filters.tool)
        if filters.failed:
            where.append(
                f"(s.status = 'error' OR EXISTS (SELECT 1 FROM {self.tables.rows} r WHERE r.session_id = s.id AND r.failed))"
            )
        if filters.model:
            where.append("s.model = ?")
            params.append(filters.model)
        if filters.status:
            where.append("s.status = ?")
            params.append(filters.status.value)
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT s.id FROM {SUMMARIES} s WHERE {' AND '.join(where)} "
                f"ORDER BY s.updated_at DESC, s.id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
            return [UUID(r[0]) for r in c.fetchall()]

    def tools(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT tool FROM {self.tables.rows} WHERE tool != '' ORDER BY tool")
            return [r[0] for r in c.fetchall()]

    def models(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT DISTINCT model FROM {SUMMARIES} WHERE NOT deleted AND model != '' ORDER BY model"
            )
            return [r[0] for r in c.fetchall()]

    def position(self) -> int:
        return read_position(self.datastore, self.tables)

    def commit(self, rows: Sequence[IndexedText], previous: int, position: int) -> bool:
        table = self.tables.rows
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self.tables.position} SET notification_id = ? WHERE notification_id = ? "
                "RETURNING notification_id",
                (position, previous),
            )
            if c.fetchone() is None:
                return False
            for r in rows:
                c.execute(
                    f"INSERT INTO {table} (session_id, version, part, kind, tool, failed, at, text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING rowid",
                    (str(r.session_id), r.version, r.part, r.kind, r.tool, r.failed, sortable(r.at), r.text),
                )
                rowid = c.fetchone()[0]
                if r.text:
                    c.execute(f"INSERT INTO {table}_text (rowid, text) VALUES (?, ?)", (rowid, r.text))
            return True


def _row(r: Any) -> IndexedText:
    return IndexedText(UUID(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), datetime.fromisoformat(r[6]), r[7])
