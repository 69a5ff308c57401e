"""What a PostgreSQL store's schema holds, asked once per open store (see
:mod:`agentjournal.infrastructure.stores.postgres`)."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from eventsourcing.postgres import PostgresDatastore

_SCHEMA_OBJECTS = (
    "SELECT c.relname AS name FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s"
    " UNION ALL"
    " SELECT p.proname FROM pg_catalog.pg_proc p"
    " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(schema)s"
)
"""Names of the tables, indexes, sequences, composite types (``pg_class``) and functions
(``pg_proc``) in one schema, matched by its exact name as eventsourcing quotes it."""

_found: WeakKeyDictionary[PostgresDatastore, frozenset[str]] = WeakKeyDictionary()


def schema_objects(datastore: PostgresDatastore) -> frozenset[str]:
    """What the datastore's schema held when this was first asked for that datastore:
    one query per open store, however many parts of it ask. A name missing here may
    have been created since by another process, so whoever finds its own missing runs
    DDL that tolerates that (``IF NOT EXISTS``, or a check under a lock)."""
    found = _found.get(datastore)
    if found is None:
        with datastore.transaction(commit=False) as c:
            c.execute(_SCHEMA_OBJECTS, {"schema": datastore.schema})
            found = frozenset(row["name"] for row in c.fetchall())
        _found[datastore] = found
    return found
