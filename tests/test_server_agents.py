"""The Managed Agents API's agents and environments, driven by the official ``anthropic`` SDK
against a real server process (uvicorn, real sockets) on an SQLite store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import anthropic
import pytest
from anthropic.types.beta import (
    BetaEnvironmentArchivedError,
    BetaEnvironmentNotFoundError,
    BetaInvalidConfigTypeChangeError,
    BetaInvalidMetadataError,
)

from agentjournal.application import SessionService
from agentjournal.application.catalog import Catalog, session_config
from agentjournal.infrastructure.server.ids import parse_id
from tests.conftest import TEST_KEY
from tests.serving import WEATHER

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def client(api_server):  # type: ignore[no-untyped-def]
    return api_server.client()


def test_an_agent_is_created_retrieved_updated_versioned_and_archived(client):
    agent = client.beta.agents.create(
        name="reviewer",
        model="claude-haiku-4-5",
        system="Review the diff.",
        tools=[
            {"type": "agent_toolset_20260401",
             "configs": [{"name": "bash", "permission_policy": {"type": "always_ask"}}]},
            WEATHER,
        ],
        metadata={"team": "core"},
    )  # fmt: skip
    assert agent.id.startswith("agent_") and len(agent.id) == len("agent_") + 32
    assert (agent.type, agent.version, agent.name, agent.system) == (
        "agent",
        1,
        "reviewer",
        "Review the diff.",
    )
    assert agent.model.id == "claude-haiku-4-5" and agent.model.speed == "standard"
    toolset, custom = agent.tools
    configs = {c.name: c for c in toolset.configs}
    assert toolset.default_config.enabled and toolset.default_config.permission_policy.type == "always_allow"
    assert configs["bash"].enabled and configs["bash"].permission_policy.type == "always_ask"
    assert all(c.enabled for c in configs.values()) and list(configs)[:3] == ["bash", "read", "write"]
    assert (custom.type, custom.name, custom.input_schema.required) == ("custom", "get_weather", ["city"])
    assert agent.execution_identity.type == "service_account" and agent.archived_at is None
    assert isinstance(agent.created_at, datetime) and agent.metadata == {"team": "core"}

    assert client.beta.agents.retrieve(agent.id).model_dump() == agent.model_dump()
    updated = client.beta.agents.update(
        agent.id,
        version=1,
        model={"id": "claude-sonnet-4-5", "speed": "fast"},
        metadata={"team": None, "x": "y"},
    )
    assert updated.version == 2 and updated.model.id == "claude-sonnet-4-5" and updated.model.speed == "fast"
    assert updated.metadata == {"x": "y"} and updated.created_at == agent.created_at
    unchanged = client.beta.agents.update(agent.id, version=2, name="reviewer")
    assert unchanged.version == 2
    assert client.beta.agents.retrieve(agent.id, version=1).model.id == "claude-haiku-4-5"
    assert [v.version for v in client.beta.agents.versions.list(agent.id)] == [2, 1]
    assert [v.version for v in client.beta.agents.versions.list(agent.id, limit=1)] == [2, 1]  # every page

    archived = client.beta.agents.archive(agent.id)
    assert archived.archived_at is not None and archived.version == 2
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        client.beta.agents.update(agent.id, name="again")


def test_an_update_from_a_stale_version_is_a_conflict_the_sdk_does_not_retry(api_server):
    sent: list[object] = []  # the requests the SDK's HTTP client sends
    with anthropic.DefaultHttpxClient(event_hooks={"request": [sent.append]}) as http_client:
        client = api_server.client(http_client=http_client).with_options(max_retries=2)
        agent = client.beta.agents.create(name="a", model="claude-haiku-4-5")
        client.beta.agents.update(agent.id, version=1, name="first")
        before = len(sent)
        with pytest.raises(anthropic.ConflictError, match="is at version 2, not 1") as raised:
            client.beta.agents.update(agent.id, version=1, name="second")
        assert raised.value.type == "conflict_error"
        assert len(sent) == before + 1  # x-should-retry: false, so the SDK sends it once, not three times
        assert client.beta.agents.retrieve(agent.id).name == "first"


def test_agents_are_listed_newest_first_one_page_after_another(client):
    ids = [client.beta.agents.create(name=f"agent {n}", model="claude-haiku-4-5").id for n in range(5)]
    client.beta.agents.archive(ids[0])
    first = client.beta.agents.list(limit=2)
    assert [a.id for a in first.data] == [ids[4], ids[3]] and first.next_page
    assert [a.id for a in client.beta.agents.list(limit=2)] == ids[:0:-1]  # the SDK follows next_page
    assert [a.id for a in client.beta.agents.list(include_archived=True)] == ids[::-1]
    middle = client.beta.agents.retrieve(ids[2]).created_at
    window = client.beta.agents.list(created_at_gte=middle, created_at_lte=middle + timedelta(microseconds=1))
    assert [a.id for a in window] == [ids[2]]
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert client.beta.agents.list(created_at_gte=later).data == []


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"name": "a", "model": "m", "tools": [{"type": "custom", "name": "bash"}]},
         anthropic.BadRequestError, "tools[0]: custom tool 'bash' has the name of a built-in tool"),
        ({"name": "", "model": "m"}, anthropic.BadRequestError, "name: must not be empty"),
        ({"name": "a", "model": "m", "metadata": {f"k{n}": "v" for n in range(17)}},
         BetaInvalidMetadataError, "at most 16 keys"),
    ],
)  # fmt: skip
def test_a_bad_agent_is_a_400_naming_the_field(client, fields, error, message):
    with pytest.raises(error) as raised:
        client.beta.agents.create(**fields)
    assert message in raised.value.message


def test_unknown_ids_are_404s(client):
    environment = client.beta.environments.create(name="e")
    for missing in ("agent_" + "0" * 32, environment.id, "not-an-id"):
        with pytest.raises(anthropic.NotFoundError):
            client.beta.agents.retrieve(missing)
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5")
    with pytest.raises(anthropic.NotFoundError, match="no version 2"):
        client.beta.agents.retrieve(agent.id, version=2)
    with pytest.raises(BetaEnvironmentNotFoundError):
        client.beta.environments.retrieve("env_" + "0" * 32)


def test_secrets_in_a_definition_never_reach_the_log(client, store):
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5", system=f"The key is {TEST_KEY}.")
    assert TEST_KEY not in agent.system and "[redacted:" in agent.system
    assert TEST_KEY.encode() not in b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))


def test_an_environment_is_created_updated_archived_and_deleted(client):
    environment = client.beta.environments.create(
        name="data",
        config={
            "type": "cloud",
            "packages": {"pip": ["pandas==2.2"]},
            "networking": {"type": "unrestricted"},
        },
        metadata={"owner": "ada", "stage": "dev"},
    )
    assert environment.id.startswith("env_") and environment.type == "environment"
    assert environment.config.type == "cloud" and environment.config.packages.pip == ["pandas==2.2"]
    assert environment.config.packages.npm == [] and environment.config.networking.type == "unrestricted"
    assert environment.description is None and environment.archived_at is None

    updated = client.beta.environments.update(
        environment.id, description="for data work", metadata={"stage": None, "team": "core"},
        config={"type": "cloud", "networking": {"type": "limited", "allowed_hosts": ["pypi.org"],
                                                "allow_package_managers": True}},
    )  # fmt: skip
    assert updated.description == "for data work" and updated.metadata == {"owner": "ada", "team": "core"}
    assert updated.config.packages.pip == ["pandas==2.2"]  # left out of the update: kept
    assert updated.config.networking.type == "limited" and updated.config.networking.allowed_hosts == [
        "pypi.org"
    ]
    with pytest.raises(BetaInvalidConfigTypeChangeError):
        client.beta.environments.update(environment.id, config={"type": "self_hosted"})
    assert client.beta.environments.retrieve(environment.id).model_dump() == updated.model_dump()

    kept = client.beta.environments.create(name="kept")
    client.beta.environments.archive(environment.id)
    with pytest.raises(BetaEnvironmentArchivedError):
        client.beta.environments.update(environment.id, name="again")
    assert [e.id for e in client.beta.environments.list()] == [kept.id]
    assert [e.id for e in client.beta.environments.list(include_archived=True, limit=1)] == [
        kept.id,
        environment.id,
    ]

    deleted = client.beta.environments.delete(environment.id)
    assert (deleted.id, deleted.type) == (environment.id, "environment_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.environments.retrieve(environment.id)
    assert [e.id for e in client.beta.environments.list(include_archived=True)] == [kept.id]


def test_a_session_created_from_an_agent_shows_the_version_it_runs(client, store):
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5", system="first", tools=[WEATHER])
    client.beta.agents.update(agent.id, system="second")
    environment = client.beta.environments.create(name="e")
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        catalog = Catalog(service)
        pinned = catalog.get_agent(parse_id("agent_", agent.id), version=1)
        config = session_config(pinned, catalog.get_environment(parse_id("env_", environment.id)))
        session_id = "sesn_" + service.create_session(config).hex
    finally:
        service.close()
    session = client.beta.sessions.retrieve(session_id)
    assert (session.agent.id, session.agent.version, session.agent.system) == (agent.id, 1, "first")
    assert session.agent.tools[0].name == "get_weather" and session.environment_id == environment.id


def test_sessions_are_created_from_an_agent_and_an_environment_and_listed(client, model_server):
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5", system="first")
    client.beta.agents.update(agent.id, system="second")
    environment = client.beta.environments.create(name="e", config={"type": "cloud"})
    latest = client.beta.sessions.create(agent=agent.id, environment_id=environment.id, title="latest")
    assert (latest.agent.version, latest.agent.system, latest.status) == (2, "second", "idle")
    pinned = client.beta.sessions.create(
        agent={"type": "agent", "id": agent.id, "version": 1}, environment_id=environment.id,
        metadata={"ticket": "T-1"},
    )  # fmt: skip
    assert (pinned.agent.version, pinned.metadata, pinned.environment_id) == (
        1,
        {"ticket": "T-1"},
        environment.id,
    )
    other = client.beta.agents.create(name="other", model="claude-haiku-4-5")
    elsewhere = client.beta.sessions.create(agent=other.id, environment_id=environment.id)
    client.beta.sessions.archive(latest.id)

    assert [s.id for s in client.beta.sessions.list()] == [elsewhere.id, pinned.id]
    assert [s.id for s in client.beta.sessions.list(agent_id=agent.id, include_archived=True, limit=1)] == [
        pinned.id, latest.id,
    ]  # fmt: skip
    assert [s.id for s in client.beta.sessions.list(agent_id=agent.id, agent_version=1)] == [pinned.id]
    assert [s.id for s in client.beta.sessions.list(order="asc")] == [pinned.id, elsewhere.id]
    assert [s.id for s in client.beta.sessions.list(statuses=["terminated"])] == []
    assert [s.id for s in client.beta.sessions.list(statuses=["idle"])] == [elsewhere.id, pinned.id]
    listed = client.beta.sessions.list(agent_id=agent.id).data[0]
    retrieved = client.beta.sessions.retrieve(pinned.id)
    assert listed.model_dump(exclude={"stats"}) == retrieved.model_dump(exclude={"stats"})
    assert listed.stats.active_seconds == retrieved.stats.active_seconds == 0  # its duration runs on


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"agent": "agent_" + "0" * 32}, anthropic.NotFoundError, "no agent"),
        ({"environment_id": "env_" + "0" * 32}, BetaEnvironmentNotFoundError, "no environment"),
        ({"resources": [{"type": "memory_store", "memory_store_id": "memstore_1"}]}, anthropic.NotFoundError,
         "memory store 'memstore_1' was not found"),
    ],
)  # fmt: skip
def test_a_session_this_server_cannot_run_is_refused_before_anything_is_recorded(
    client, change, error, message
):
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5")
    config = change.pop("config", {"type": "cloud"})
    environment = client.beta.environments.create(name="e", config=config)
    with pytest.raises(error) as raised:
        client.beta.sessions.create(**{"agent": agent.id, "environment_id": environment.id, **change})
    assert message in raised.value.message
    assert client.beta.sessions.list().data == []
