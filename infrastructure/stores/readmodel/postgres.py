"""The read model tables in the PostgreSQL database of the events."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.application.projection import SessionQuery, SessionSummary, SessionSummaryView
from agentjournal.domain import Status
from agentjournal.infrastructure.stores.postgres import schema_objects
from agentjournal.infrastructure.stores.readmodel import (
    COLUMNS,
    SESSION_TABLES,
    Sealer,
    Tables,
    from_row,
    session_filters,
    to_row,
)


class SchemaTables:
    """A read model's tables in the datastore's schema, created once, and its position."""

    def __init__(self, datastore: PostgresDatastore, tables: Tables, columns: Sequence[str]) -> None:
        self.datastore = datastore
        self.tables = tables
        schema = sql.Identifier(datastore.schema)
        self.rows = sql.SQL("{}.{}").format(schema, sql.Identifier(tables.rows))
        self.position_table = sql.SQL("{}.{}").format(schema, sql.Identifier(tables.position))
        self.select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), self.rows
        )
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns[1:]
        )
        self.upsert = sql.SQL("INSERT INTO {} VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
            self.rows, sql.SQL(", ").join(sql.Placeholder() * len(columns)), updates
        )

    def create(self, ddl: Sequence[str]) -> None:
        """Create the tables once (``ddl``, naming them ``{rows}``), dropping those of earlier
        versions. ``CREATE INDEX IF NOT EXISTS`` locks its table even when the index exists,
        so the DDL runs only when the tables are missing, one process at a time, and never in
        a transaction that then waits on a projector's row lock. Whether they are missing is
        first read from what the store's schema held when it was opened (one query for every
        table), and checked again under the lock."""
        if self.tables.position in schema_objects(self.datastore):
            return
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentjournal.{self.tables.position}",))
            c.execute(
                "SELECT to_regclass(%s) AS found", (f'"{self.datastore.schema}"."{self.tables.position}"',)
            )
            row = c.fetchone()
            if row is not None and row["found"] is not None:
                return
            for name in self.tables.obsolete:
                c.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                        sql.Identifier(self.datastore.schema), sql.Identifier(name)
                    )
                )
            for statement in ddl:
                c.execute(sql.SQL(statement).format(rows=self.rows))
            c.execute(
                sql.SQL("CREATE TABLE {} (name text PRIMARY KEY, notification_id bigint NOT NULL)").format(
                    self.position_table
                )
            )
            c.execute(sql.SQL("INSERT INTO {} VALUES ('position', 0)").format(self.position_table))

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("SELECT notification_id FROM {}").format(self.position_table))
            row = c.fetchone()
            assert row is not None
            return int(row["notification_id"])

    def commit(self, rows: list[tuple[Any, ...]], previous: int, position: int) -> bool:
        with self.datastore.transaction(commit=True) as c:
            # The row lock taken by this compare-and-set makes racing projectors queue here.
            c.execute(
                sql.SQL(
                    "UPDATE {} SET notification_id = %s WHERE notification_id = %s RETURNING notification_id"
                ).format(self.position_table),
                (position, previous),
            )
            if c.fetchone() is None:
                return False
            c.executemany(self.upsert, rows)
            return True


class PostgresSessionSummaries(SessionSummaryView):
    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = Sealer(cipher)
        self._tables = SchemaTables(datastore, SESSION_TABLES, COLUMNS)
        self._tables.create(
            (
                "CREATE TABLE {rows} ("
                "id text PRIMARY KEY, name text, model text, status text, title text, "
                "input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, "
                "cache_creation_tokens bigint, message_count bigint, tool_call_count bigint, "
                "turn_count bigint, version bigint, created_at text, updated_at text, "
                "parent_id text, parent_version bigint, last_error text, agent_id text, "
                "agent_version bigint, environment_id text, metadata text, archived_at text, "
                "deleted boolean NOT NULL, compute text, active_seconds double precision NOT NULL, "
                "running_since text, ended_at text, cost_usd double precision NOT NULL, "
                "unpriced_calls bigint NOT NULL, model_ms double precision NOT NULL, worker_calls text NOT NULL, memory_stores text NOT NULL)",
                "CREATE INDEX ON {rows} (updated_at)",
                "CREATE INDEX ON {rows} (created_at, id)",
                "CREATE INDEX ON {rows} (agent_id, created_at)",
            )
        )

    def get_many(self, session_ids: Iterable[UUID]) -> dict[UUID, SessionSummary]:
        ids = [str(i) for i in session_ids]
        if not ids:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("{} WHERE id = ANY(%s)").format(self._tables.select), (ids,))
            return {s.id: s for s in (from_row(r, self.sealer) for r in c.fetchall())}

    def list(
        self, *, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        where = sql.SQL("AND status = %s") if status else sql.SQL("")
        params = [status.value] if status else []
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("{} WHERE NOT deleted {} ORDER BY updated_at DESC, id LIMIT %s OFFSET %s").format(
                    self._tables.select, where
                ),
                [*params, limit, offset],
            )
            return [from_row(r, self.sealer) for r in c.fetchall()]

    def page(self, query: SessionQuery) -> builtins.list[SessionSummary]:
        filters, params = session_filters(query, "%s")
        with self.datastore.transaction(commit=False) as c:
            # The filters name fixed columns only; every value is a parameter.
            c.execute(
                sql.SQL("{} {} LIMIT %s").format(self._tables.select, sql.SQL(filters)),
                [*params, query.limit],
            )
            return [from_row(r, self.sealer) for r in c.fetchall()]

    def ids_starting_with(self, prefix: str, limit: int = 2) -> builtins.list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("SELECT id FROM {} WHERE id LIKE %s AND NOT deleted LIMIT %s").format(
                    self._tables.rows
                ),
                (f"{prefix}%", limit),
            )
            return [UUID(row["id"]) for row in c.fetchall()]

    def position(self) -> int:
        return self._tables.position()

    def commit(self, summaries: Sequence[SessionSummary], previous: int, position: int) -> bool:
        return self._tables.commit([to_row(s, self.sealer) for s in summaries], previous, position)
