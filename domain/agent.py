"""The ``Agent`` aggregate: a named, versioned definition that sessions are created from.

An agent's versions are its history. Creating it records version 1 of its
definition; each update that changes something records the next version, and an
update that changes nothing records nothing (so the version stays, as the cloud
API's does). Archiving records when; an archived agent keeps its versions,
readable, and takes no more updates. Nothing here does I/O, and nothing checks
what a definition asks for (that is the application's catalog); the aggregate
keeps the rules of its history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate, as_recorded, changed_fields
from agentjournal.domain.errors import AgentArchivedError, StaleVersion


class AgentDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """One version of an agent, as the client gave it (secrets redacted).

    ``model`` is a model id or an object with an ``id`` and options (``speed``,
    ``effort``, ...), kept in the form it was sent. ``tools``, ``mcp_servers`` and
    ``skills`` are the entries of the cloud API's shapes (``agent_toolset_20260401``,
    ``custom`` and ``mcp_toolset`` tools; ``url`` servers; ``anthropic`` and ``custom``
    skills), kept whole so a later version of this engine can read more of them.
    New fields get defaults, so older events still decode.
    """

    name: str
    model: str | dict[str, Any]
    system: str | None = None
    description: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    mcp_servers: tuple[dict[str, Any], ...] = ()
    skills: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, str] = {}

    @property
    def model_id(self) -> str:
        """The model's id, whichever form ``model`` was given in."""
        return self.model if isinstance(self.model, str) else str(self.model.get("id", ""))


class AgentVersion(msgspec.Struct, frozen=True):
    """A definition and the number and time it was recorded with."""

    number: int
    definition: AgentDefinition
    recorded_at: datetime


class Agent(ChainedAggregate):
    """An agent definition and every version of it."""

    archived_at: datetime | None = None
    """When the agent was archived: its versions stay readable; it takes no updates."""

    class Event(ChainedAggregate.Event):
        """Every event of an agent carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class AgentCreated(Created):
        definition: AgentDefinition

    def __init__(self, definition: AgentDefinition) -> None:
        self.versions: list[AgentVersion] = [AgentVersion(1, definition, self.created_on)]

    @classmethod
    def create(cls, definition: AgentDefinition) -> Agent:
        """A new agent whose version 1 is ``definition``."""
        return cls._create_chained(cls.AgentCreated, GENESIS, definition=as_recorded(definition))

    # -- queries ----------------------------------------------------------------

    @property
    def current(self) -> AgentVersion:
        return self.versions[-1]

    @property
    def definition(self) -> AgentDefinition:
        return self.current.definition

    def version_of(self, number: int) -> AgentVersion | None:
        """Version ``number`` of the definition (1 is the first), if there is one."""
        return self.versions[number - 1] if 1 <= number <= len(self.versions) else None

    # -- commands ---------------------------------------------------------------

    def update(self, definition: AgentDefinition, expected_version: int | None = None) -> bool:
        """Record ``definition`` as the next version, unless it is the current one.

        ``expected_version`` is the version the caller last saw: when given, an update
        made from any other version is refused (:class:`StaleVersion`), so two clients
        editing the same agent cannot overwrite each other unseen. Returns whether a
        new version was recorded."""
        if self.archived_at is not None:
            raise AgentArchivedError(self.id)
        if expected_version is not None and expected_version != self.current.number:
            raise StaleVersion(self.id, expected_version, self.current.number)
        definition = as_recorded(definition)
        changed = changed_fields(definition, self.definition)
        if not changed:
            return False
        self.trigger_event(
            self.AgentUpdated, number=self.current.number + 1, definition=definition, changes=changed
        )
        return True

    def archive(self) -> None:
        """Close the agent to updates and new sessions; archiving twice records nothing."""
        if self.archived_at is None:
            self.trigger_event(self.AgentArchived)

    # -- events -----------------------------------------------------------------

    class AgentUpdated(Event):
        """Version ``number`` of the definition, with the names of the fields that changed."""

        number: int
        definition: AgentDefinition
        changes: tuple[str, ...]

        def apply(self, agent: Agent) -> None:
            agent.versions.append(AgentVersion(self.number, self.definition, self.timestamp))

    class AgentArchived(Event):
        def apply(self, agent: Agent) -> None:
            agent.archived_at = self.timestamp
