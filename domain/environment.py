"""The ``Environment`` aggregate: where a session's tools run, and what is installed there.

An environment is a definition that sessions are created in: its packages, its
networking, a name and metadata. Updates replace the definition (an update that
changes nothing records nothing); archiving closes it to updates and new
sessions; deleting hides it for good. Deleting is an event like any other: the
log keeps the environment, as it keeps everything.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate, as_recorded, changed_fields
from agentjournal.domain.errors import EnvironmentArchivedError, EnvironmentDeletedError


class Packages(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="packages"):
    """Packages to install, per package manager, each name as its manager reads it
    (``pandas==2.2``)."""

    apt: tuple[str, ...] = ()
    cargo: tuple[str, ...] = ()
    gem: tuple[str, ...] = ()
    go: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()

    def wanted(self) -> dict[str, tuple[str, ...]]:
        """The managers with something to install, and what."""
        return {name: names for name in self.__struct_fields__ if (names := getattr(self, name))}


class UnrestrictedNetwork(msgspec.Struct, frozen=True, tag_field="type", tag="unrestricted"):
    """The sandbox may reach anything."""


class LimitedNetwork(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="limited"):
    """The sandbox may reach only ``allowed_hosts`` (and MCP servers and package
    registries when allowed)."""

    allowed_hosts: tuple[str, ...] = ()
    allow_mcp_servers: bool = False
    allow_package_managers: bool = False


Networking = UnrestrictedNetwork | LimitedNetwork


class CloudConfig(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="cloud"):
    """A sandbox this engine provides."""

    packages: Packages = Packages()
    networking: Networking = UnrestrictedNetwork()


class SelfHostedConfig(msgspec.Struct, frozen=True, tag_field="type", tag="self_hosted"):
    """A sandbox the client's own workers provide."""


EnvironmentConfig = CloudConfig | SelfHostedConfig


class EnvironmentDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """What an environment is (secrets redacted). New fields get defaults, so older
    events still decode."""

    name: str
    description: str | None = None
    config: EnvironmentConfig = CloudConfig()
    metadata: dict[str, str] = {}


class Environment(ChainedAggregate):
    """An environment definition, its updates, and whether it is archived or deleted."""

    archived_at: datetime | None = None
    """When the environment was archived: readable, closed to updates."""

    deleted: bool = False
    """Deleted by its owner: gone from listings and lookups, kept in the log."""

    class Event(ChainedAggregate.Event):
        """Every event of an environment carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class EnvironmentCreated(Created):
        definition: EnvironmentDefinition

    def __init__(self, definition: EnvironmentDefinition) -> None:
        self.definition = definition

    @classmethod
    def create(cls, definition: EnvironmentDefinition) -> Environment:
        return cls._create_chained(cls.EnvironmentCreated, GENESIS, definition=as_recorded(definition))

    # -- commands ---------------------------------------------------------------

    def update(self, definition: EnvironmentDefinition) -> bool:
        """Replace the definition, unless nothing changes. Returns whether it was recorded."""
        self._check_not_deleted()
        if self.archived_at is not None:
            raise EnvironmentArchivedError(self.id)
        definition = as_recorded(definition)
        changed = changed_fields(definition, self.definition)
        if not changed:
            return False
        self.trigger_event(self.EnvironmentUpdated, definition=definition, changes=changed)
        return True

    def archive(self) -> None:
        """Close the environment to updates and new sessions; archiving twice records nothing."""
        self._check_not_deleted()
        if self.archived_at is None:
            self.trigger_event(self.EnvironmentArchived)

    def delete(self) -> None:
        self._check_not_deleted()
        self.trigger_event(self.EnvironmentDeleted)

    def _check_not_deleted(self) -> None:
        if self.deleted:
            raise EnvironmentDeletedError(self.id)

    # -- events -----------------------------------------------------------------

    class EnvironmentUpdated(Event):
        """The new definition, with the names of the fields that changed."""

        definition: EnvironmentDefinition
        changes: tuple[str, ...]

        def apply(self, environment: Environment) -> None:
            environment.definition = self.definition

    class EnvironmentArchived(Event):
        def apply(self, environment: Environment) -> None:
            environment.archived_at = self.timestamp

    class EnvironmentDeleted(Event):
        def apply(self, environment: Environment) -> None:
            environment.deleted = True
