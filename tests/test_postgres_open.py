"""Opening a PostgreSQL store: no DDL when its tables are there, every missing table made,
and one connection for a process that uses the store from one thread.

That no DDL runs is observed on the server: the test takes the schema's CREATE privilege
away from its own role (an owner may), after which PostgreSQL refuses every CREATE in it,
``IF NOT EXISTS`` and ``OR REPLACE`` included, while reads and writes go on.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from agentjournal.application import SessionService, StoreError
from agentjournal.application.catalog import Catalog
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.server.app import pooled
from tests.conftest import _postgres_conninfo

on_postgres = pytest.mark.parametrize(
    "store_env", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

OBJECTS = {
    "agentjournal_events", "agentjournal_events_notification_id_idx", "stored_event_uuid",
    "es_insert_events_uuid", "agentjournal_snapshots",
    "session_summaries_v5", "session_summaries_v5_position", "catalog_v1", "catalog_v1_position", "blobs_v1",
}  # fmt: skip
"""What a store's schema holds, by name: eventsourcing's tables, index, type and function,
and the read models' tables."""

CONFIG = SessionConfig(model="m", system="s", name="n", tools=())


def sql(store_env: dict[str, str], statement: str, *params: Any) -> list[Any]:
    with psycopg.connect(_postgres_conninfo(store_env), autocommit=True) as db:
        cursor = db.execute(statement, params)  # type: ignore[call-overload]
        return cursor.fetchall() if cursor.description else []


def schema_names(store_env: dict[str, str]) -> set[str]:
    """Tables, indexes, types and functions in the store's schema."""
    rows = sql(
        store_env,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
        " UNION SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
        store_env["POSTGRES_SCHEMA"],
        store_env["POSTGRES_SCHEMA"],
    )
    return {row[0] for row in rows}


def open_everything(store_env: dict[str, str]) -> tuple[SessionService, Catalog]:
    """The service and the catalog, as the server opens them: every table of the store."""
    service = SessionService(store_env)
    return service, Catalog(service)


def use(service: SessionService, catalog: Catalog) -> uuid.UUID:
    """Write and read through every table: events, summaries, the catalog, blobs."""
    session_id = service.create_session(CONFIG, title="t")
    assert service.get_session(session_id).title == "t"
    assert service.summary(session_id).title == "t"
    agent = catalog.create_agent({"name": "a", "model": "m"})
    assert agent.id in {a.id for a in catalog.list_agents().items}
    service.blobs.add([b"contents"])
    return session_id


@on_postgres
def test_a_new_store_gets_every_table(store_env):
    assert schema_names(store_env) == set()
    service, catalog = open_everything(store_env)
    use(service, catalog)
    service.close()
    assert OBJECTS <= schema_names(store_env)


@on_postgres
def test_opening_a_store_whose_tables_exist_runs_no_ddl(store_env, monkeypatch):
    service, catalog = open_everything(store_env)
    use(service, catalog)
    service.close()
    sql(store_env, f'REVOKE CREATE ON SCHEMA "{store_env["POSTGRES_SCHEMA"]}" FROM CURRENT_USER')

    service, catalog = open_everything(store_env)
    session_id = use(service, catalog)
    assert service.summary(session_id).title == "t"
    service.close()

    # eventsourcing's own factory runs its DDL at every open, and is refused here.
    monkeypatch.setattr("agentjournal.application.service.FACTORIES", {})
    with pytest.raises(StoreError, match="permission denied for schema"):
        SessionService(store_env)


@on_postgres
@pytest.mark.parametrize(
    "dropped",
    [("blobs_v1",), ("catalog_v1", "catalog_v1_position"), ("agentjournal_snapshots",)],
    ids=["blobs", "catalog", "snapshots"],
)
def test_a_store_missing_a_newer_table_gets_it(store_env, dropped):
    """A store written before a table existed (or that lost one) gets it at the next open;
    a read model's rows are rebuilt from the log."""
    service, catalog = open_everything(store_env)
    use(service, catalog)
    service.close()
    schema = store_env["POSTGRES_SCHEMA"]
    for table in dropped:
        sql(store_env, f'DROP TABLE "{schema}"."{table}"')
    assert not set(dropped) & schema_names(store_env)

    service, catalog = open_everything(store_env)
    assert OBJECTS <= schema_names(store_env)
    assert [a.definition.name for a in catalog.list_agents().items] == ["a"]
    use(service, catalog)
    service.close()


@on_postgres
def test_a_process_using_the_store_from_one_thread_opens_one_connection(store_env, monkeypatch):
    name = f"agentjournal-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PGAPPNAME", name)  # what libpq names this process's connections
    service, catalog = open_everything(store_env)
    use(service, catalog)
    monkeypatch.delenv("PGAPPNAME")
    connections = sql(store_env, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", name)
    service.close()
    assert connections == [(1,)]


def test_a_server_pool_grows_to_its_threads_unless_the_settings_size_it(monkeypatch):
    monkeypatch.delenv("POSTGRES_POOL_SIZE", raising=False)
    monkeypatch.delenv("POSTGRES_MAX_OVERFLOW", raising=False)
    assert pooled(None, 20) == {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "19"}
    assert pooled({"POSTGRES_MAX_OVERFLOW": "3"}, 20) == {
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "3",
    }
    monkeypatch.setenv("POSTGRES_POOL_SIZE", "4")
    assert pooled(None, 20) == {"POSTGRES_MAX_OVERFLOW": "19"}
    assert pooled("sessions.db", 20) == "sessions.db"


@on_postgres
def test_a_process_that_only_reads_does_not_fetch_the_write_types(store_env):
    """The composite type the insert statement unnests is looked up when the first write
    needs it: a resume or a listing opens one connection and reads."""
    writer = SessionService(store_env)
    session_id = writer.create_session(CONFIG, title="t")
    writer.close()
    reader = SessionService(store_env)
    assert reader.get_session(session_id).title == "t"
    assert reader.factory.datastore.psycopg_type_adapters == {}  # type: ignore[attr-defined]
    reader.set_title(session_id, "written")
    assert reader.factory.datastore.psycopg_type_adapters  # type: ignore[attr-defined]
    assert reader.get_session(session_id).title == "written"
    reader.close()
