"""Leases in the PostgreSQL database (and schema) of the events.

Servers on several hosts share one PostgreSQL store, so every expiry is measured by the
database's clock (``clock_timestamp()``), never by a host's."""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, sql
from psycopg.rows import DictRow

from agentjournal.application.leases import Lease, LeaseChange
from agentjournal.infrastructure.stores.leases import TABLE
from agentjournal.infrastructure.stores.postgres_schema import schema_objects

NOW = sql.SQL("extract(epoch FROM clock_timestamp())::double precision")


def table_in(schema: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))


def apply_change(cursor: Cursor[DictRow], schema: str, change: LeaseChange) -> None:
    """Grant or release a lease in the transaction ``cursor`` belongs to."""
    table = table_in(schema)
    if change.releases:
        cursor.execute(sql.SQL("UPDATE {} SET expires_at = 0 WHERE name = %s").format(table), (change.name,))
        return
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (name, holder, token, expires_at) VALUES (%s, %s, %s, {} + %s) "
            "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, "
            "expires_at = EXCLUDED.expires_at"
        ).format(table, NOW),
        (change.name, change.holder, change.token, change.seconds),
    )


class PostgresLeases:
    """:class:`~agentjournal.application.leases.Leases` in the events' PostgreSQL schema."""

    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.table = table_in(datastore.schema)
        if TABLE not in schema_objects(datastore):
            with datastore.transaction(commit=True) as c:
                # Concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalog.
                c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentjournal.{TABLE}",))
                c.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, holder text NOT NULL, "
                        "token bigint NOT NULL, expires_at double precision NOT NULL)"
                    ).format(self.table)
                )

    def renew(self, held: Sequence[Lease], seconds: float) -> list[Lease]:
        if not held:
            return []
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                sql.SQL(
                    "UPDATE {table} AS l SET expires_at = {now} + %s "
                    "FROM unnest(%s::text[], %s::bigint[]) AS h(name, token) "
                    "WHERE l.name = h.name AND l.token = h.token AND l.expires_at > {now} "
                    "RETURNING l.name, l.holder, l.token, l.expires_at"
                ).format(table=self.table, now=NOW),
                (seconds, [lease.name for lease in held], [lease.token for lease in held]),
            )
            return [_lease(row) for row in c.fetchall()]

    def find(self, names: Sequence[str]) -> dict[str, Lease]:
        if not names:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                sql.SQL("SELECT name, holder, token, expires_at FROM {} WHERE name = ANY(%s)").format(
                    self.table
                ),
                (list(names),),
            )
            return {row["name"]: _lease(row) for row in c.fetchall()}

    def now(self) -> float:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("SELECT {} AS now").format(NOW))
            row = c.fetchone()
            assert row is not None
            return float(row["now"])


def _lease(row: DictRow) -> Lease:
    return Lease(row["name"], row["holder"], int(row["token"]), float(row["expires_at"]))
