"""The Agent and Environment aggregates' rules, without any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from agentjournal.domain import (
    Agent,
    AgentArchivedError,
    AgentDefinition,
    CloudConfig,
    Environment,
    EnvironmentArchivedError,
    EnvironmentDefinition,
    EnvironmentDeletedError,
    Packages,
    StaleVersion,
)
from agentjournal.domain.chain import GENESIS, event_hash, event_type_name, payload_of

DEFINITION = AgentDefinition(
    name="reviewer",
    model={"id": "claude-sonnet-4-5", "speed": "fast"},
    system="Review the diff.",
    tools=({"type": "agent_toolset_20260401"},),
    metadata={"team": "core"},
)


def replay(events: list[Any]) -> Any:
    """Rebuild an aggregate from its events."""
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    return rebuilt


def assert_chained(events: list[Any]) -> None:
    """Each event hashes its own content and links to the one before, as a session's do."""
    previous = GENESIS
    for event in events:
        assert event.previous_hash == previous
        assert event.hash == event_hash(
            event_type_name(type(event)), event.originator_id, event.originator_version,
            event.timestamp, event.previous_hash, payload_of(event),
        )  # fmt: skip
        previous = event.hash


def test_an_agent_starts_at_version_1_and_each_real_change_is_the_next_version():
    agent = Agent.create(DEFINITION)
    assert agent.current.number == 1 and agent.definition == DEFINITION
    assert agent.update(DEFINITION, expected_version=1) is False  # nothing changed: nothing recorded
    assert agent.version == 1 and agent.current.number == 1
    renamed = AgentDefinition(**{**_fields(DEFINITION), "name": "strict reviewer"})
    assert agent.update(renamed, expected_version=1) is True
    assert agent.current.number == 2 and agent.definition.name == "strict reviewer"
    assert agent.version_of(1).definition == DEFINITION  # type: ignore[union-attr]
    assert agent.version_of(3) is None and agent.version_of(0) is None
    events = agent.collect_events()
    assert events[-1].changes == ("name",)  # type: ignore[attr-defined]
    assert_chained(events)
    assert replay(events).versions == agent.versions


def test_an_update_from_a_stale_version_is_refused_and_records_nothing():
    agent = Agent.create(DEFINITION)
    agent.update(AgentDefinition(name="second", model="m"), expected_version=1)
    with pytest.raises(StaleVersion, match="is at version 2, not 1") as raised:
        agent.update(AgentDefinition(name="third", model="m"), expected_version=1)
    assert (raised.value.given, raised.value.current) == (1, 2)
    assert agent.current.number == 2
    agent.update(AgentDefinition(name="third", model="m"))  # no version given: unconditional
    assert agent.current.number == 3


def test_an_agent_update_compares_like_with_like():
    """A tuple given where the log will keep a list is the same definition."""
    agent = Agent.create(AgentDefinition(name="a", model="m", tools=({"type": "custom", "names": ("x",)},)))
    assert (
        agent.update(AgentDefinition(name="a", model="m", tools=({"type": "custom", "names": ["x"]},)))
        is False
    )


def test_an_archived_agent_keeps_its_versions_and_takes_no_updates():
    agent = Agent.create(DEFINITION)
    agent.archive()
    agent.archive()  # once is enough
    assert agent.archived_at is not None and agent.version == 2
    with pytest.raises(AgentArchivedError):
        agent.update(AgentDefinition(name="later", model="m"))
    assert replay(agent.collect_events()).archived_at == agent.archived_at


def test_the_model_id_is_read_from_either_form():
    assert DEFINITION.model_id == "claude-sonnet-4-5"
    assert AgentDefinition(name="a", model="claude-haiku-4-5").model_id == "claude-haiku-4-5"


def test_an_environment_is_updated_archived_and_deleted_in_its_log():
    environment = Environment.create(EnvironmentDefinition(name="python"))
    assert environment.update(EnvironmentDefinition(name="python")) is False
    with_pandas = EnvironmentDefinition(name="python", config=CloudConfig(packages=Packages(pip=("pandas",))))
    assert environment.update(with_pandas) is True
    assert environment.definition.config == CloudConfig(packages=Packages(pip=("pandas",)))
    environment.archive()
    with pytest.raises(EnvironmentArchivedError):
        environment.update(EnvironmentDefinition(name="other"))
    environment.delete()
    assert environment.deleted
    for command in (environment.delete, environment.archive):
        with pytest.raises(EnvironmentDeletedError):
            command()
    events = environment.collect_events()
    assert [type(e).__name__ for e in events] == [
        "EnvironmentCreated", "EnvironmentUpdated", "EnvironmentArchived", "EnvironmentDeleted",
    ]  # fmt: skip
    assert_chained(events)
    rebuilt = replay(events)
    assert (rebuilt.definition, rebuilt.deleted) == (with_pandas, True)


def test_packages_name_only_the_managers_with_something_to_install():
    assert Packages(pip=("pandas",), npm=()).wanted() == {"pip": ("pandas",)}


def _fields(definition: AgentDefinition) -> dict[str, Any]:
    return {name: getattr(definition, name) for name in definition.__struct_fields__}
