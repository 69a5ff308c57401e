"""The session summary table in the PostgreSQL database of the events."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.application.projection import SessionSummary, SessionSummaryView
from agentjournal.domain import Status
from agentjournal.infrastructure.readmodel import COLUMNS, Sealer, from_row, to_row


class PostgresSessionSummaries(SessionSummaryView):
    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = Sealer(cipher)
        schema = sql.Identifier(datastore.schema)
        self._table = sql.SQL("{}.session_summaries").format(schema)
        self._position = sql.SQL("{}.session_summaries_position").format(schema)
        self._select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), self._table
        )
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in COLUMNS[1:]
        )
        self._upsert = sql.SQL("INSERT INTO {} VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
            self._table, sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)), updates
        )
        self._create_tables()

    def _create_tables(self) -> None:
        """Create the tables once. ``CREATE INDEX IF NOT EXISTS`` locks its table even when
        the index exists, so the DDL runs only when the tables are missing, one process at a
        time, and never in a transaction that then waits on a projector's row lock."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT pg_advisory_xact_lock(hashtext('agentjournal.session_summaries'))")
            c.execute(
                "SELECT to_regclass(%s) AS found", (f'"{self.datastore.schema}".session_summaries_position',)
            )
            row = c.fetchone()
            if row is None or row["found"] is None:
                c.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        "id text PRIMARY KEY, name text, model text, status text, title text, "
                        "input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, "
                        "cache_creation_tokens bigint, message_count bigint, tool_call_count bigint, "
                        "turn_count bigint, version bigint, created_at text, updated_at text, "
                        "parent_id text, parent_version bigint, last_error text)"
                    ).format(self._table)
                )
                c.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS session_summaries_updated ON {} (updated_at)").format(
                        self._table
                    )
                )
                c.execute(
                    sql.SQL(
                        "CREATE TABLE {} (name text PRIMARY KEY, notification_id bigint NOT NULL)"
                    ).format(self._position)
                )
                c.execute(sql.SQL("INSERT INTO {} VALUES ('summaries', 0)").format(self._position))

    def get_many(self, session_ids: Iterable[UUID]) -> dict[UUID, SessionSummary]:
        ids = [str(i) for i in session_ids]
        if not ids:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("{} WHERE id = ANY(%s)").format(self._select), (ids,))
            return {s.id: s for s in (from_row(r, self.sealer) for r in c.fetchall())}

    def list(
        self, *, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        where = sql.SQL("WHERE status = %s") if status else sql.SQL("")
        params = [status.value] if status else []
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("{} {} ORDER BY updated_at DESC, id LIMIT %s OFFSET %s").format(self._select, where),
                [*params, limit, offset],
            )
            return [from_row(r, self.sealer) for r in c.fetchall()]

    def ids_starting_with(self, prefix: str, limit: int = 2) -> builtins.list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("SELECT id FROM {} WHERE id LIKE %s LIMIT %s").format(self._table),
                (f"{prefix}%", limit),
            )
            return [UUID(row["id"]) for row in c.fetchall()]

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("SELECT notification_id FROM {}").format(self._position))
            row = c.fetchone()
            assert row is not None
            return int(row["notification_id"])

    def commit(self, summaries: Sequence[SessionSummary], previous: int, position: int) -> bool:
        with self.datastore.transaction(commit=True) as c:
            # The row lock taken by this compare-and-set makes racing projectors queue here.
            c.execute(
                sql.SQL(
                    "UPDATE {} SET notification_id = %s WHERE notification_id = %s RETURNING notification_id"
                ).format(self._position),
                (position, previous),
            )
            if c.fetchone() is None:
                return False
            c.executemany(self._upsert, [to_row(s, self.sealer) for s in summaries])
            return True
