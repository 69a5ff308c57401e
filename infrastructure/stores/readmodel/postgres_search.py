"""The search index in the PostgreSQL database of the events: a table of rows whose text
has a ``tsvector`` column and a GIN index over it.

The words are split as SQLite's FTS5 splits them (every run of letters and digits, the
rest separating), not by PostgreSQL's own parser, which keeps ``/tmp/x.txt`` or
``a-b`` whole: the ``simple`` configuration over the text with everything else replaced
by spaces. So a query finds the same rows in either store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.application.search import Filters, IndexedText, SearchIndexView
from agentjournal.infrastructure.stores.readmodel import SESSION_TABLES, Tables, sortable
from agentjournal.infrastructure.stores.readmodel.postgres import SchemaTables

SEARCH_TABLES = Tables("search_v1", "search_v1_position")
COLUMNS = ("session_id", "version", "part", "kind", "tool", "failed", "at", "text")
WORDS_OF_TEXT = "to_tsvector('simple', regexp_replace(text, '[^[:alnum:]]+', ' ', 'g'))"


def prefix_query(words: Sequence[str]) -> str:
    """A ``to_tsquery`` holding every word as a prefix. Words are letters and digits
    only (see :func:`~agentjournal.application.search.words`), so none is an operator."""
    return " & ".join(f"{w}:*" for w in words)


class PostgresSearchIndex(SearchIndexView):
    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.holds_text = cipher is None
        self._tables = SchemaTables(datastore, SEARCH_TABLES, COLUMNS)
        self._tables.create(
            (
                "CREATE TABLE {rows} ("
                "id bigserial PRIMARY KEY, session_id text NOT NULL, version bigint NOT NULL, "
                "part integer NOT NULL, kind text NOT NULL, tool text NOT NULL, failed boolean NOT NULL, "
                "at text NOT NULL, text text NOT NULL, "
                f"words tsvector GENERATED ALWAYS AS ({WORDS_OF_TEXT}) STORED, "
                "UNIQUE (session_id, version, part))",
                "CREATE INDEX ON {rows} (tool, session_id)",
                "CREATE INDEX ON {rows} (session_id) WHERE failed",
                "CREATE INDEX ON {rows} USING gin (words)",
            )
        )
        schema = sql.Identifier(datastore.schema)
        self.rows = self._tables.rows
        self.summaries = sql.SQL("{}.{}").format(schema, sql.Identifier(SESSION_TABLES.rows))

    def hits(self, words: Sequence[str], filters: Filters, limit: int, offset: int) -> list[IndexedText]:
        where, params = ["NOT s.deleted"], []
        if words:
            where.append("r.words @@ to_tsquery('simple', %s)")
            params.append(prefix_query(words))
        if filters.tool:
            where.append("r.tool = %s")
            params.append(filters.tool)
        if filters.failed:
            where.append("r.failed")
        self._session_conditions(filters, where, params)
        query = sql.SQL(
            "SELECT r.session_id, r.version, r.part, r.kind, r.tool, r.failed, r.at, r.text "
            "FROM {} r JOIN {} s ON s.id = r.session_id WHERE " + " AND ".join(where) +
            " ORDER BY r.id DESC LIMIT %s OFFSET %s"
        ).format(self.rows, self.summaries)  # fmt: skip
        with self.datastore.transaction(commit=False) as c:
            c.execute(query, [*params, limit, offset])
            return [_row(r) for r in c.fetchall()]

    def session_ids(self, filters: Filters, limit: int, offset: int) -> list[UUID]:
        where, params = ["NOT s.deleted"], []
        if filters.tool:
            where.append("EXISTS (SELECT 1 FROM {rows} r WHERE r.tool = %s AND r.session_id = s.id)")
            params.append(filters.tool)
        if filters.failed:
            where.append(
                "(s.status = 'error' OR EXISTS (SELECT 1 FROM {rows} r WHERE r.session_id = s.id AND r.failed))"
            )
        self._session_conditions(filters, where, params)
        query = sql.SQL(
            "SELECT s.id FROM {summaries} s WHERE " + " AND ".join(where) +
            " ORDER BY s.updated_at DESC, s.id LIMIT %s OFFSET %s"
        ).format(rows=self.rows, summaries=self.summaries)  # fmt: skip
        with self.datastore.transaction(commit=False) as c:
            c.execute(query, [*params, limit, offset])
            return [UUID(r["id"]) for r in c.fetchall()]

    @staticmethod
    def _session_conditions(filters: Filters, where: list[str], params: list[Any]) -> None:
        if filters.model:
            where.append("s.model = %s")
            params.append(filters.model)
        if filters.status:
            where.append("s.status = %s")
            params.append(filters.status.value)

    def tools(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("SELECT DISTINCT tool FROM {} WHERE tool != '' ORDER BY tool").format(self.rows)
            )
            return [r["tool"] for r in c.fetchall()]

    def models(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL(
                    "SELECT DISTINCT model FROM {} WHERE NOT deleted AND model != '' ORDER BY model"
                ).format(self.summaries)
            )
            return [r["model"] for r in c.fetchall()]

    def position(self) -> int:
        return self._tables.position()

    def commit(self, rows: Sequence[IndexedText], previous: int, position: int) -> bool:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                sql.SQL(
                    "UPDATE {} SET notification_id = %s WHERE notification_id = %s RETURNING notification_id"
                ).format(self._tables.position_table),
                (position, previous),
            )
            if c.fetchone() is None:
                return False
            c.executemany(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    self.rows,
                    sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
                    sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
                ),
                [
                    (str(r.session_id), r.version, r.part, r.kind, r.tool, r.failed, sortable(r.at), r.text)
                    for r in rows
                ],
            )
            return True


def _row(r: Any) -> IndexedText:
    return IndexedText(
        UUID(r["session_id"]), r["version"], r["part"], r["kind"], r["tool"], r["failed"],
        datetime.fromisoformat(r["at"]), r["text"],
    )  # fmt: skip
