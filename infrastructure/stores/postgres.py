"""The PostgreSQL event store, opened without the work an existing store does not need.

eventsourcing's PostgreSQL factory runs its DDL every time a store is opened: a
``CREATE TYPE`` (which fails, in its own transaction, when the type exists), then
``CREATE TABLE IF NOT EXISTS``, ``CREATE UNIQUE INDEX IF NOT EXISTS`` and ``CREATE OR
REPLACE FUNCTION``, and again for the snapshots table. Each is a round trip; the last
rewrites the function's catalog row every time, and ``CREATE INDEX`` locks its table
even when the index is there. The read models and the blob store then check their own
tables, each in its own transaction.

Here, one query lists what the store's schema holds (:func:`schema_objects`), once per
open store, and each recorder, read model and the blob store runs its DDL only when
something of its own is missing from that list: a new store, or a table a newer
version added. The DDL itself is eventsourcing's (or the read model's), unchanged, so
a store opened here is the store eventsourcing would make, and two processes creating
the same store at once race exactly as before (``SessionService.store_races``).

:class:`PostgresFactory` is eventsourcing's factory with these recorders; the service
uses it in place of eventsourcing's when ``PERSISTENCE_MODULE`` is
``eventsourcing.postgres``.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any
from uuid import UUID

from eventsourcing import postgres
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import Environment
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier

from agentjournal.application.leases import LeaseChange
from agentjournal.infrastructure.stores.leases.postgres import apply_change
from agentjournal.infrastructure.stores.log_rows import ranged
from agentjournal.infrastructure.stores.mapper import Row
from agentjournal.infrastructure.stores.postgres_schema import schema_objects


class LazyTypesDatastore(PostgresDatastore):
    """eventsourcing's datastore, which fetches its composite types' definitions from the
    server when a write first needs them, rather than as each recorder is made.

    The types (one row of ``stored_events``, as the insert statement unnests it) are only
    used to write; fetching them is a catalog query that costs a new connection a few
    milliseconds, which a process that only reads (a resume, a listing) need not pay."""

    def register_type_adapters(self) -> None:
        """Deferred: see :meth:`fetch_type_adapters`."""

    def fetch_type_adapters(self) -> None:
        """Fetch and register the types not fetched yet (eventsourcing's own registration)."""
        super().register_type_adapters()


class CreatesWhenMissing(postgres.PostgresRecorder):
    """A recorder that runs eventsourcing's DDL only when one of its objects is missing.

    With ``POSTGRES_ENABLE_DB_FUNCTIONS`` the insert function is called, and its body holds
    settings (the lock timeout) that ``CREATE OR REPLACE`` brings up to date at every open,
    so then the DDL always runs, as in eventsourcing."""

    def objects(self) -> Set[str]:
        """The names of the tables, indexes, types and functions its DDL creates."""
        raise NotImplementedError

    def create_table(self) -> None:
        if self.datastore.enable_db_functions or not self.objects() <= schema_objects(self.datastore):
            super().create_table()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if isinstance(self.datastore, LazyTypesDatastore):
            self.datastore.fetch_type_adapters()  # before the write takes its connection
        return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]


class PostgresAggregateRecorder(CreatesWhenMissing, postgres.PostgresAggregateRecorder):
    """The snapshots' recorder."""

    def objects(self) -> Set[str]:
        return {self.events_table_name, self.stored_event_type_name}


class PostgresLogRows:
    """The PostgreSQL events' recorder's ranged read of rows, as tuples (the recorder's
    connections make a dict per row)."""

    datastore: Any
    events_table_name: str

    def select_rows(
        self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        tail, bounds = ranged("%s", gt, lte, limit)
        statement = SQL(
            "SELECT originator_version, topic, state FROM {schema}.{table} WHERE originator_id = %s"
        )
        query = statement.format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query + SQL(tail), [originator_id, *bounds], prepare=True)
            return [(version, topic, bytes(state)) for version, topic, state in curs.fetchall()]


class PostgresApplicationRecorder(PostgresLogRows, CreatesWhenMissing, postgres.PostgresApplicationRecorder):
    """The events' recorder, with the notification log. A save's ``lease`` change (a
    :class:`~agentjournal.application.leases.LeaseChange`) is applied in the transaction of
    its events, as eventsourcing applies a process application's tracking record. It also
    reads a log's rows in ranges (:mod:`~.log_rows`)."""

    def objects(self) -> Set[str]:
        return {
            self.events_table_name,
            self.stored_event_type_name,
            self.notification_id_index_name,
            self.pg_function_name_insert_events,
        }

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        change: LeaseChange | None = kwargs.get("lease")
        if change is None or not self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        # eventsourcing's insert function takes the events alone: the lease gets its own
        # transaction, granted before the turn's start is recorded and released after its end
        # (a lease on a session that is not running is harmless; a running turn without one
        # would look orphaned).
        if not change.releases:
            self._change_lease(change)
        ids = super().insert_events(stored_events, **kwargs)
        if change.releases:
            self._change_lease(change)
        return ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        change: LeaseChange | None = kwargs.get("lease")
        if change is not None:
            apply_change(curs, self.datastore.schema, change)
        super()._insert_events(curs, stored_events, **kwargs)

    def _change_lease(self, change: LeaseChange) -> None:
        with self.datastore.transaction(commit=True) as curs:
            apply_change(curs, self.datastore.schema, change)


class PostgresFactory(postgres.PostgresFactory):
    """eventsourcing's PostgreSQL factory, whose recorders skip their DDL on a store that
    has their tables. Its settings are eventsourcing's (``POSTGRES_*``, ``CREATE_TABLE``)."""

    aggregate_recorder_class = PostgresAggregateRecorder
    application_recorder_class = PostgresApplicationRecorder

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        # eventsourcing makes its datastore inside its own __init__: the lazy one differs
        # only in when it fetches the types, so it takes over the instance it made.
        self.datastore.__class__ = LazyTypesDatastore
