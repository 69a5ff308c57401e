"""The read models side by side: sessions, agents and environments share one notification
log, each projection folds its own events; session pages for the API; and summary tables
of an older schema rebuilt from the log, however many processes open the store at once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from agentjournal.application import SessionService, StoreError
from agentjournal.application.catalog import Catalog
from agentjournal.application.projection import SessionQuery
from agentjournal.domain import SessionConfig, Status
from tests.conftest import _postgres_conninfo
from tests.test_durability import spawn_python


def config(agent: str = "", version: int = 0, **changes: Any) -> SessionConfig:
    return SessionConfig(
        model="m", system="s", name="n", tools=(), agent_id=agent, agent_version=version, **changes
    )


def test_each_projection_folds_its_own_events_from_the_one_log(service):
    catalog = Catalog(service)
    first = service.create_session(config())
    agent = catalog.create_agent({"name": "a", "model": "m"})
    environment = catalog.create_environment({"name": "e"})
    second = service.create_session(config(str(agent.id), 1, environment_id=str(environment.id)))
    catalog.update_agent(agent.id, {"name": "b"})

    assert {s.id for s in service.list_summaries()} == {first, second}
    assert service.summary(second).environment_id == str(environment.id)
    assert [a.definition.name for a in catalog.list_agents().items] == ["b"]
    assert [e.id for e in catalog.list_environments().items] == [environment.id]
    total = service.recorder.max_notification_id()
    assert service.summaries.position() == total and catalog.view.position() == total


def test_a_foreign_event_is_still_a_clear_error_for_every_projection(store):
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
                   "state BLOB, PRIMARY KEY (originator_id, originator_version))")  # fmt: skip
        db.execute(
            "INSERT INTO stored_events VALUES ('6af517aa5f0e4467a882d600577f82a9', 1, 'uuid:UUID', x'80')"
        )
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    catalog = Catalog(service)
    for query in (service.list_summaries, catalog.list_agents):
        with pytest.raises(StoreError, match="not an agentjournal event .*'uuid:UUID'"):
            query()
    service.close()


def test_session_pages_filter_and_go_on_from_their_cursor(service):
    ids = [service.create_session(config("agent-a", 1 + n % 2)) for n in range(5)]
    other = service.create_session(config("agent-b", 1))
    archived = service.create_session(config("agent-a", 1))
    service.archive(archived)
    deleted = service.create_session(config("agent-a", 1))
    service.delete(deleted)
    session = service.get_session(ids[0])
    session.begin_turn("go", "w")
    service.save(session)

    def everything(query: SessionQuery) -> list[Any]:
        found, page = [], None
        while True:
            got = service.page_summaries(query, page)
            found += [s.id for s in got.items]
            if not (page := got.next_page):
                return found

    assert everything(SessionQuery(limit=2)) == [other, *ids[::-1]]
    assert everything(SessionQuery(limit=2, order="asc")) == [*ids, other]
    assert everything(SessionQuery(agent_id="agent-a", limit=3)) == ids[::-1]
    assert everything(SessionQuery(agent_id="agent-a", agent_version=2)) == [ids[3], ids[1]]
    assert everything(SessionQuery(agent_id="agent-a", include_archived=True)) == [archived, *ids[::-1]]
    assert everything(SessionQuery(statuses=(Status.RUNNING,))) == [ids[0]]
    assert everything(SessionQuery(statuses=(Status.IDLE, Status.TERMINATED))) == [other, *ids[:0:-1]]
    middle = service.summary(ids[2]).created_at
    assert everything(SessionQuery(created_gte=middle, created_lte=middle)) == [ids[2]]
    assert everything(SessionQuery(created_gt=middle, created_lt=middle + timedelta(days=1))) == [
        other, ids[4], ids[3],
    ]  # fmt: skip
    assert deleted not in {s.id for s in service.list_summaries()}
    assert service.summary(archived).archived_at is not None and service.summary(deleted).deleted


def test_a_session_page_does_not_shift_when_sessions_are_created_meanwhile(service):
    ids = [service.create_session(config()) for _ in range(4)]
    first = service.page_summaries(SessionQuery(limit=2))
    service.create_session(config())
    second = service.page_summaries(SessionQuery(limit=2), first.next_page)
    assert [s.id for s in [*first.items, *second.items]] == ids[::-1] and second.next_page is None


# -- an older schema --------------------------------------------------------------------------

OLD_SCHEMA = (
    "CREATE TABLE session_summaries (id text PRIMARY KEY, name text, model text, status text, title text, "
    "input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_creation_tokens bigint, "
    "message_count bigint, tool_call_count bigint, turn_count bigint, version bigint, created_at text, "
    "updated_at text, parent_id text, parent_version bigint, last_error text)",
    "CREATE INDEX session_summaries_updated ON session_summaries (updated_at)",
    "CREATE TABLE session_summaries_position (name text PRIMARY KEY, notification_id bigint NOT NULL)",
)
"""The summary tables as the first schema made them."""


def run_sql(store_env: dict[str, str], statements: Sequence[str]) -> list[Any]:
    """Run statements in the store's database (its schema, on PostgreSQL); the last one's rows."""
    rows: list[Any] = []
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        with sqlite3.connect(store_env["SQLITE_DBNAME"]) as db:
            for statement in statements:
                rows = db.execute(statement).fetchall()
        return rows
    with psycopg.connect(_postgres_conninfo(store_env), autocommit=True) as db:
        db.execute(f"SET search_path TO {store_env['POSTGRES_SCHEMA']}")
        for statement in statements:
            cursor = db.execute(statement)  # type: ignore[call-overload]
            rows = cursor.fetchall() if cursor.description else []
    return rows


def tables(store_env: dict[str, str]) -> set[str]:
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = f"SELECT tablename FROM pg_tables WHERE schemaname = '{store_env['POSTGRES_SCHEMA']}'"
    return {row[0] for row in run_sql(store_env, [query])}


def make_old(store_env: dict[str, str], open_service) -> tuple[Any, Any]:  # type: ignore[no-untyped-def]
    """A store whose events are today's and whose summary table is of the first schema, with
    a stale row and a position past every event: as the old code would have left it."""
    writer = open_service()
    kept = writer.create_session(config("agent-a", 3, metadata={"ticket": "T-1"}))
    archived = writer.create_session(config("agent-a", 3))
    writer.archive(archived)
    last = writer.recorder.max_notification_id()
    writer.close()
    run_sql(store_env, [
        "DROP TABLE session_summaries_v5", "DROP TABLE session_summaries_v5_position", *OLD_SCHEMA,
        f"INSERT INTO session_summaries_position VALUES ('summaries', {last})",
        f"INSERT INTO session_summaries VALUES ('{kept}', 'stale', 'm', 'idle', '', 0, 0, 0, 0, 0, 0, 0, 1, "
        "'2020-01-01T00:00:00+00:00', '2020-01-01T00:00:00+00:00', NULL, NULL, '')",
    ])  # fmt: skip
    return kept, archived


def test_a_summary_table_of_an_older_schema_is_rebuilt_from_the_log(store_env, open_service):
    kept, archived = make_old(store_env, open_service)
    service = open_service()
    assert "session_summaries" not in tables(store_env) and "session_summaries_v5" in tables(store_env)
    summary = service.summary(kept)
    assert (summary.name, summary.agent_id, summary.agent_version, summary.metadata) == (
        "n", "agent-a", 3, {"ticket": "T-1"},
    )  # fmt: skip
    assert service.summary(archived).archived_at is not None
    assert [s.id for s in service.page_summaries(SessionQuery(agent_id="agent-a")).items] == [kept]


REBUILD = """
import json, sys
from agentjournal.application import SessionService
from agentjournal.application.catalog import Catalog
service = SessionService(json.loads(sys.argv[1]))
Catalog(service).list_agents()
print(json.dumps([str(s.id) for s in service.list_summaries()]))
service.close()
"""


def test_processes_opening_an_older_store_together_rebuild_it_once(store_env, open_service):
    kept, archived = make_old(store_env, open_service)
    processes = [spawn_python(REBUILD, json.dumps(store_env)) for _ in range(6)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    assert all(set(json.loads(out)) == {str(kept), str(archived)} for out, _ in outputs)
    service = open_service()
    assert {s.id: s.version for s in service.list_summaries()} == {kept: 1, archived: 2}
    assert tables(store_env) >= {"session_summaries_v5", "catalog_v1"}
    assert "session_summaries" not in tables(store_env)
