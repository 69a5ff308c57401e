"""The catalog of agents and environments over a real store (an SQLite file, a PostgreSQL
schema): versions, conflicts, archiving and deleting, pages, redaction, tamper evidence,
and the sessions made from a definition."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest
from eventsourcing.cipher import AESCipher

from agentjournal.application import ConfigError, ManagedConfig, SessionService, audit
from agentjournal.application.catalog import Catalog, session_config
from agentjournal.application.errors import (
    AgentNotFound,
    AgentVersionNotFound,
    ConfigTypeChange,
    EnvironmentNotFound,
    InvalidMetadata,
)
from agentjournal.application.redaction import Redactor
from agentjournal.domain import (
    AgentArchivedError,
    CustomTool,
    EnvironmentArchivedError,
    LimitedNetwork,
    ManagedSandboxRequired,
    Packages,
    SessionConfig,
    StaleVersion,
)

AGENT = {
    "name": "reviewer",
    "model": "claude-sonnet-4-5",
    "system": "Review the diff.",
    "tools": [{"type": "agent_toolset_20260401"}],
    "metadata": {"team": "core"},
}
CLOUD = {"type": "cloud", "networking": {"type": "unrestricted"}}


@pytest.fixture
def catalog(service: SessionService) -> Catalog:
    return Catalog(service)


def test_an_agent_keeps_every_version_and_an_update_that_changes_nothing_records_nothing(catalog):
    created = catalog.create_agent(AGENT)
    assert created.version == 1 and created.definition.name == "reviewer"
    assert catalog.update_agent(created.id, {"name": "reviewer"}, version=1).version == 1
    second = catalog.update_agent(
        created.id, {"system": "Review strictly.", "metadata": {"tier": "2"}}, version=1
    )
    assert second.version == 2 and second.definition.metadata == {"team": "core", "tier": "2"}
    third = catalog.update_agent(created.id, {"metadata": {"team": None}, "system": None})
    assert (
        third.version == 3 and third.definition.metadata == {"tier": "2"} and third.definition.system is None
    )

    assert catalog.get_agent(created.id).version == 3
    first = catalog.get_agent(created.id, version=1)
    assert first.definition.system == "Review the diff." and first.updated_at == created.updated_at
    assert [v.version for v in catalog.agent_versions(created.id).items] == [3, 2, 1]
    with pytest.raises(AgentVersionNotFound, match="versions are 1 to 3"):
        catalog.get_agent(created.id, version=4)
    events = catalog.service.audit_log(created.id)
    assert [e.type for e in events] == ["AgentCreated", "AgentUpdated", "AgentUpdated"]
    assert events[1].payload["changes"] == ["system", "metadata"]


def test_an_update_from_a_stale_version_is_a_conflict_and_changes_nothing(catalog):
    agent = catalog.create_agent(AGENT)
    catalog.update_agent(agent.id, {"name": "first writer"}, version=1)
    with pytest.raises(StaleVersion, match="is at version 2, not 1"):
        catalog.update_agent(agent.id, {"name": "second writer"}, version=1)
    assert catalog.get_agent(agent.id).definition.name == "first writer"


def test_racing_unconditional_updates_both_land_and_conditional_ones_conflict(catalog, open_service):
    """Processes updating one agent at once: without a version each update is applied to
    whatever the other left; with the same version only one of them is."""
    agent = catalog.create_agent(AGENT)
    others = [Catalog(open_service()) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda c: c[1].update_agent(agent.id, {"metadata": {f"k{c[0]}": "v"}}), enumerate(others)
            )
        )
    latest = catalog.get_agent(agent.id)
    assert latest.version == 5 and set(latest.definition.metadata) == {"team", "k0", "k1", "k2", "k3"}

    def conditional(c: tuple[int, Catalog]) -> str:
        try:
            c[1].update_agent(agent.id, {"name": f"writer {c[0]}"}, version=5)
            return "saved"
        except StaleVersion:
            return "stale"

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(conditional, enumerate(others))) == ["saved", "stale", "stale", "stale"]
    assert catalog.get_agent(agent.id).version == 6


def test_an_archived_agent_is_read_but_not_updated_nor_listed_unless_asked(catalog):
    kept, archived = catalog.create_agent(AGENT), catalog.create_agent({**AGENT, "name": "old"})
    result = catalog.archive_agent(archived.id)
    assert result.archived_at is not None and result.version == 1
    with pytest.raises(AgentArchivedError):
        catalog.update_agent(archived.id, {"name": "revived"})
    assert [a.id for a in catalog.list_agents().items] == [kept.id]
    assert [a.id for a in catalog.list_agents(include_archived=True).items] == [archived.id, kept.id]
    assert catalog.get_agent(archived.id).archived_at == result.archived_at


def test_listings_are_newest_first_one_page_after_another(catalog):
    ids = [catalog.create_agent({**AGENT, "name": f"agent {n}"}).id for n in range(7)]
    first = catalog.list_agents(limit=3)
    assert [a.id for a in first.items] == ids[:3:-1][:3] and first.next_page
    newer = catalog.create_agent({**AGENT, "name": "created while paging"})  # shifts nothing
    second = catalog.list_agents(limit=3, page=first.next_page)
    third = catalog.list_agents(limit=3, page=second.next_page)
    assert [a.id for a in [*first.items, *second.items, *third.items]] == ids[::-1]
    assert third.next_page is None
    assert catalog.list_agents(limit=1).items[0].id == newer.id
    middle = catalog.get_agent(ids[3]).created_at
    assert [a.id for a in catalog.list_agents(created_gte=middle, created_lte=middle).items] == [ids[3]]
    with pytest.raises(ConfigError, match="limit: 101 is not a whole number from 1 to 100"):
        catalog.list_agents(limit=101)
    with pytest.raises(ConfigError, match="page: 'nonsense' is not a cursor"):
        catalog.list_agents(page="nonsense")


def test_versions_come_a_page_at_a_time(catalog):
    agent = catalog.create_agent(AGENT)
    for n in range(2, 6):
        catalog.update_agent(agent.id, {"name": f"v{n}"})
    pages, page = [], None
    while True:
        got = catalog.agent_versions(agent.id, limit=2, page=page)
        pages.append([v.version for v in got.items])
        if not (page := got.next_page):
            break
    assert pages == [[5, 4], [3, 2], [1]]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"model": "m"}, ConfigError, "name: required"),
        ({"name": "a"}, ConfigError, "model: required"),
        ({**AGENT, "colour": "red"}, ConfigError, "colour: unknown field"),
        ({**AGENT, "name": "  "}, ConfigError, "name: must not be empty"),
        ({**AGENT, "model": 4}, ConfigError, "model: expected `str | object`, got `int`"),
        ({**AGENT, "model": {"id": "m", "speed": "warp"}}, ConfigError, "model.speed: 'warp'"),
        ({**AGENT, "tools": [{"type": "agent_toolset_20260401", "configs": [{"name": "search_web"}]}]},
         ConfigError, "tools[0].configs[0]: 'search_web' is not a tool of 'agent_toolset_20260401'"),
        ({**AGENT, "tools": [{"type": "custom", "name": "bash"}]}, ConfigError, "tools[0]: custom tool 'bash'"),
        ({**AGENT, "tools": ["bash"]}, ConfigError, "tools[0]: expected `object`, got `str`"),
        ({**AGENT, "tools": [{"type": "mcp_toolset", "mcp_server_name": "gh"}]},
         ConfigError, "mcp_servers does not define"),
        ({**AGENT, "mcp_servers": [{"type": "url", "name": "gh", "url": "https://mcp.example"}]},
         ConfigError, "not referenced by any mcp_toolset"),
        ({**AGENT, "skills": [{"type": "plugin", "skill_id": "x"}]}, ConfigError, "skills[0].type: 'plugin'"),
        ({**AGENT, "metadata": {"k": 1}}, ConfigError, "metadata[...]: expected `str`, got `int`"),
        ({**AGENT, "metadata": {f"k{n}": "v" for n in range(17)}}, InvalidMetadata, "at most 16 keys"),
        ({**AGENT, "metadata": {"k" * 65: "v"}}, InvalidMetadata, "1 to 64 characters"),
        ({**AGENT, "metadata": {"k": "v" * 513}}, InvalidMetadata, "at most 512 characters"),
        ({**AGENT, "multiagent": {"type": "coordinator", "agents": []}}, ConfigError, "multiagent: "),
        ({**AGENT, "execution_identity": {"type": "aws_role", "role_arn": "arn"}}, ConfigError, "only the default"),
    ],
)  # fmt: skip
def test_a_bad_agent_is_refused_naming_the_field(catalog, fields, error, message):
    with pytest.raises(error, match=re.escape(message)):
        catalog.create_agent(fields)
    assert catalog.list_agents().items == []


def test_what_the_cloud_accepts_is_kept_as_given(catalog):
    """An MCP toolset, its server and skills are kept, and read back as they were sent;
    a session cannot be made from skills yet."""
    fields = {
        **AGENT,
        "model": {"id": "claude-opus-4-5", "speed": "fast"},
        "tools": [{"type": "mcp_toolset", "mcp_server_name": "gh", "default_config": {"enabled": True}}],
        "mcp_servers": [{"type": "url", "name": "gh", "url": "https://mcp.example/gh"}],
        "skills": [{"type": "anthropic", "skill_id": "xlsx"}],
        "execution_identity": {"type": "service_account"},
        "multiagent": None,
    }
    agent = catalog.create_agent(fields)
    for name in ("model", "tools", "mcp_servers", "skills"):
        assert _plain(getattr(catalog.get_agent(agent.id).definition, name)) == fields[name]
    environment = catalog.create_environment({"name": "e"})
    with pytest.raises(ConfigError, match="agent skills: skills are not supported yet"):
        session_config(agent, environment)


def test_a_session_records_the_agents_mcp_servers_with_their_toolsets(catalog):
    agent = catalog.create_agent({
        **AGENT,
        "tools": [{"type": "mcp_toolset", "mcp_server_name": "gh",
                   "configs": [{"name": "merge", "enabled": False}]}],
        "mcp_servers": [{"type": "url", "name": "gh", "url": "https://mcp.example/gh"}],
    })  # fmt: skip
    (server,) = session_config(agent, catalog.create_environment({"name": "e"})).mcp_servers
    assert (server.name, server.url, server.permission) == ("gh", "https://mcp.example/gh", "always_ask")
    assert server.policy_of("merge") == (False, "always_ask") and server.policy_of("pr") == (
        True,
        "always_ask",
    )


def test_secrets_in_definitions_are_redacted_before_they_are_recorded(service):
    catalog = Catalog(service, Redactor({"api_key": "hunter2-hunter2"}))
    leaked = "sk-ant-api03-" + "a" * 40
    agent = catalog.create_agent({
        **AGENT,
        "system": f"Use key {leaked} and hunter2-hunter2.",
        "tools": [{"type": "custom", "name": "lookup", "description": f"auth {leaked}",
                   "input_schema": {"type": "object"}}],
        "metadata": {"token": leaked},
    })  # fmt: skip
    environment = catalog.create_environment({"name": "e", "description": f"uses {leaked}"})
    assert agent.definition.system == "Use key [redacted:anthropic-key] and [redacted:api_key]."
    assert agent.definition.tools[0]["description"] == "auth [redacted:anthropic-key]"
    for aggregate_id in (agent.id, environment.id):
        recorded = str(service.audit_log(aggregate_id))
        assert leaked not in recorded and "hunter2" not in recorded
    assert leaked not in str(catalog.list_agents()) + str(catalog.list_environments())


def test_an_environment_is_updated_the_cloud_way(catalog):
    created = catalog.create_environment({
        "name": "data", "description": "for data work", "metadata": {"a": "1", "b": "2"},
        "config": {"type": "cloud", "packages": {"pip": ["pandas"]},
                   "networking": {"type": "limited", "allowed_hosts": ["pypi.org"], "allow_package_managers": True}},
    })  # fmt: skip
    config = created.definition.config
    assert config.packages == Packages(pip=("pandas",))  # type: ignore[union-attr]
    updated = catalog.update_environment(created.id, {
        "config": {"type": "cloud", "networking": {"type": "limited", "allow_mcp_servers": True}},
        "metadata": {"a": None, "b": "", "c": "3"},
        "description": "",
    })  # fmt: skip
    config = updated.definition.config
    assert config.packages == Packages(pip=("pandas",))  # type: ignore[union-attr]  # left out: kept
    assert config.networking == LimitedNetwork(  # type: ignore[union-attr]
        allowed_hosts=("pypi.org",), allow_mcp_servers=True, allow_package_managers=True
    )
    assert updated.definition.metadata == {"c": "3"} and updated.definition.description == ""
    assert (
        catalog.update_environment(created.id, {"name": None, "config": None}) == updated
    )  # nothing changed
    assert [e.type for e in catalog.service.audit_log(created.id)] == [
        "EnvironmentCreated",
        "EnvironmentUpdated",
    ]
    with pytest.raises(ConfigTypeChange, match="cannot change after creation"):
        catalog.update_environment(created.id, {"config": {"type": "self_hosted"}})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "name: required"),
        ({"name": "e", "config": {"type": "vm"}}, "config.type: 'vm'"),
        ({"name": "e", "config": {"type": "cloud", "packages": {"pip": "pandas"}}},
         "config.packages.pip: expected `array`, got `str`"),
        ({"name": "e", "config": {"type": "cloud", "packages": {"brew": ["wget"]}}}, "config.packages.brew: unknown"),
        ({"name": "e", "config": {"type": "cloud", "packages": {"pip": ["--index-url=x"]}}}, "holds a non-name"),
        ({"name": "e", "config": {"type": "cloud", "networking": {"type": "none"}}}, "config.networking.type: 'none'"),
        ({"name": "e", "config": {"type": "cloud", "packages": {"pip": ["x"]}, "networking": {"type": "limited"}}},
         "packages need networking.allow_package_managers"),
        ({"name": "e", "scope": "account"}, "scope: 'account' is not supported"),
    ],
)  # fmt: skip
def test_a_bad_environment_is_refused_naming_the_field(catalog, fields, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        catalog.create_environment(fields)


def test_archived_and_deleted_environments(catalog):
    archived, deleted, kept = (
        catalog.create_environment({"name": n}) for n in ("archived", "deleted", "kept")
    )
    catalog.archive_environment(archived.id)
    with pytest.raises(EnvironmentArchivedError, match="cannot be updated"):
        catalog.update_environment(archived.id, {"name": "again"})
    catalog.delete_environment(deleted.id)
    for lookup in (catalog.get_environment, catalog.delete_environment, catalog.archive_environment):
        with pytest.raises(EnvironmentNotFound):
            lookup(deleted.id)
    assert [e.id for e in catalog.list_environments().items] == [kept.id]
    assert [e.id for e in catalog.list_environments(include_archived=True).items] == [kept.id, archived.id]
    assert catalog.service.audit_log(deleted.id)[-1].type == "EnvironmentDeleted"  # the log keeps it


def test_ids_of_other_kinds_are_not_found(catalog):
    environment = catalog.create_environment({"name": "e"})
    session_id = catalog.service.create_session(SessionConfig(model="m", system="", name="n", tools=()))
    for wrong in (environment.id, session_id):
        with pytest.raises(AgentNotFound):
            catalog.get_agent(wrong)
    with pytest.raises(EnvironmentNotFound):
        catalog.get_environment(session_id)


# -- sessions from definitions ----------------------------------------------------------------


def test_a_session_config_comes_from_an_agent_version_and_an_environment(catalog):
    agent = catalog.create_agent({
        **AGENT,
        "tools": [
            {"type": "agent_toolset_20260401", "configs": [{"name": "bash", "permission_policy": {"type": "always_ask"}}]},
            {"type": "custom", "name": "weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        ],
    })  # fmt: skip
    plain = catalog.create_environment({"name": "plain", "config": CLOUD})
    config = session_config(agent, plain, ManagedConfig(max_turns=7))
    assert (config.model, config.system, config.name, config.compute) == (
        "claude-sonnet-4-5", "Review the diff.", "reviewer", "host",
    )  # fmt: skip
    assert config.tools == ("bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search")
    assert config.custom_tools == (
        CustomTool(
            "weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}}
        ),
    )
    assert config.confirm_tools == ("bash",) and config.max_turns == 7
    assert (config.agent_id, config.agent_version, config.environment_id) == (str(agent.id), 1, str(plain.id))
    session = catalog.service.get_session(catalog.service.create_session(config))
    assert session.config == config

    with_packages = catalog.create_environment(
        {"name": "data", "config": {**CLOUD, "packages": {"pip": ["pandas"]}}}
    )
    assert session_config(agent, with_packages).compute == "docker"
    with pytest.raises(ManagedSandboxRequired, match="need a sandbox"):
        session_config(agent, with_packages, compute="host")
    assert session_config(agent, with_packages, ManagedConfig(host_packages_ok=True), "host").packages == {
        "pip": ("pandas",)
    }


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"name": "e", "config": {"type": "cloud", "packages": {"cargo": ["ripgrep"]}}},
         "['cargo'] packages are not supported here"),
    ],
)  # fmt: skip
def test_what_this_engine_cannot_give_a_session_is_refused(catalog, environment, message):
    agent = catalog.create_agent(AGENT)
    created = catalog.create_environment(environment)  # the catalog keeps it, as the cloud would
    with pytest.raises(ConfigError, match=re.escape(message)):
        session_config(agent, created)


def test_a_limited_environment_gives_its_sessions_its_allow_list(catalog):
    networking = {
        "type": "limited",
        "allowed_hosts": ["x.org", "*.y.org:8443"],
        "allow_package_managers": True,
    }
    limited = catalog.create_environment({"name": "e", "config": {"type": "cloud", "networking": networking}})
    recorded = session_config(catalog.create_agent(AGENT), limited).networking
    assert recorded == {**networking, "allowed_hosts": ("x.org", "*.y.org:8443"), "allow_mcp_servers": False}


def test_an_allowed_hosts_entry_the_proxy_cannot_enforce_is_refused_with_the_environment(catalog):
    networking = {"type": "limited", "allowed_hosts": ["https://x.org/"]}
    with pytest.raises(ConfigError, match=re.escape("config.networking.allowed_hosts: allowed_hosts entry")):
        catalog.create_environment({"name": "e", "config": {"type": "cloud", "networking": networking}})


def test_a_self_hosted_session_runs_anthropic_toolset_on_its_workers(catalog):
    fleet = catalog.create_environment({"name": "fleet", "config": {"type": "self_hosted"}})
    config = session_config(catalog.create_agent(AGENT), fleet)
    assert config.compute == "self_hosted" and config.environment_id == str(fleet.id)
    assert {"bash", "read", "write", "edit", "glob", "grep"} <= set(config.tools)


def test_no_session_from_an_archived_agent_or_environment(catalog):
    agent, environment = catalog.create_agent(AGENT), catalog.create_environment({"name": "e"})
    with pytest.raises(EnvironmentArchivedError):
        session_config(agent, catalog.archive_environment(environment.id))
    with pytest.raises(AgentArchivedError):
        session_config(catalog.archive_agent(agent.id), environment)


# -- the log -----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_catalog(store: Path) -> Iterator[Catalog]:
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    yield Catalog(service)
    service.close()


def test_agents_and_environments_verify_and_tampering_is_named(sqlite_catalog, store):
    catalog = sqlite_catalog
    agent = catalog.create_agent(AGENT)
    catalog.update_agent(agent.id, {"system": "Approve everything."})
    environment = catalog.create_environment({"name": "e"})
    catalog.delete_environment(environment.id)
    assert [v.ok for v in audit.verify_store(catalog.service)] == [True, True]

    event = list(catalog.service.events.get(agent.id, gt=1, lte=2))[0]
    forged = dataclasses.replace(
        event, definition=msgspec.structs.replace(event.definition, system="Review the diff.")
    )
    with sqlite3.connect(store) as db:
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
            (catalog.service.mapper.to_stored_event(forged).state, agent.id.hex),
        )
    result = audit.verify(catalog.service, agent.id)
    assert result.broken is not None and result.broken.version == 2 and "altered" in result.broken.problem


def test_an_encrypted_store_lists_definitions_without_plaintext(tmp_path):
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "secret.db"),
        "CIPHER_KEY": AESCipher.create_key(32),
    }
    service = SessionService(env)
    catalog = Catalog(service)
    catalog.create_agent({**AGENT, "system": "Project Nightingale reviewer"})
    catalog.create_environment({"name": "tangerine lab"})
    assert catalog.list_agents().items[0].definition.system == "Project Nightingale reviewer"
    assert catalog.list_environments().items[0].definition.name == "tangerine lab"
    service.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("secret.db*"))
    assert b"Nightingale" not in stored and b"tangerine" not in stored


def _plain(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))
