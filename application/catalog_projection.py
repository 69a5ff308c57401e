"""The catalog read model: one row per agent, environment and uploaded file, for listings.

Listing agents, environments or files reads these rows, newest first, instead of loading
every aggregate; looking one up loads the aggregate itself. :class:`CatalogProjector`
folds agent and environment events into the rows (reading the log exactly once,
as every projection does: see :mod:`agentjournal.application.projector`). An event
whose row cannot be stored is set aside: the row keeps what it had, and the
agent's or environment's own log, which lookups read, still holds the event.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from agentjournal.application.projector import ProjectionView, Projector
from agentjournal.domain import Agent, AgentDefinition, Environment, EnvironmentDefinition, Vault
from agentjournal.domain.memory import MemoryStore
from agentjournal.domain.stored_file import FileContents, StoredFile

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Mapper


class AgentView(msgspec.Struct, frozen=True, kw_only=True):
    """An agent as one of its versions: what a lookup or a listing returns."""

    id: UUID
    version: int
    """The definition's version (1, 2, ...), not the number of events."""
    definition: AgentDefinition
    created_at: datetime
    updated_at: datetime
    """When this version was recorded, or the agent archived after it."""
    archived_at: datetime | None = None


class EnvironmentView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    definition: EnvironmentDefinition
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    deleted: bool = False


class FileView(msgspec.Struct, frozen=True, kw_only=True):
    """An uploaded file: its metadata and where its contents are stored."""

    id: UUID
    contents: FileContents
    created_at: datetime
    deleted: bool = False
    archived_at: datetime | None = None
    """Files are never archived; the field lets every catalog row be filtered alike."""


class VaultView(msgspec.Struct, frozen=True, kw_only=True):
    """A vault as listings show it: its name and labels, never its credentials."""

    id: UUID
    display_name: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    deleted: bool = False


class MemoryStoreView(msgspec.Struct, frozen=True, kw_only=True):
    """A memory store as listings show it: its name, description and labels, never its
    memories (changes to them do not move ``updated_at``, as the cloud documents)."""

    id: UUID
    name: str
    description: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    deleted: bool = False


CatalogRow = AgentView | EnvironmentView | FileView | VaultView | MemoryStoreView


class CatalogView(ProjectionView[CatalogRow]):
    """Where catalog rows are kept: one implementation per event store."""

    @abc.abstractmethod
    def get_many(self, ids: Iterable[UUID]) -> dict[UUID, CatalogRow]: ...

    @abc.abstractmethod
    def page(
        self,
        kind: str,
        *,
        limit: int,
        include_archived: bool = False,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        after: tuple[datetime, UUID] | None = None,
    ) -> list[CatalogRow]:
        """Up to ``limit`` rows of ``kind`` ("agent", "environment" or "file"), newest first,
        never deleted ones, archived ones only when asked; ``after`` is the (created_at,
        id) of the last row of the previous page."""


class CatalogProjector(Projector[CatalogRow]):
    """Folds agent, environment, stored file, vault and memory store events into a
    :class:`CatalogView`."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID], view: CatalogView) -> None:
        super().__init__(recorder, mapper, view)
        self.view: CatalogView = view

    def wants(self, event_class: type) -> bool:
        return issubclass(
            event_class, (Agent.Event, Environment.Event, StoredFile.Event, Vault.Event, MemoryStore.Event)
        )

    def fold(self, events: Sequence[Any]) -> list[CatalogRow]:
        rows = self.view.get_many({e.originator_id for e in events})
        for event in events:
            rows[event.originator_id] = evolve(event, rows.get(event.originator_id))
        return list(rows.values())

    def set_aside(self, event: Any, error: Exception) -> tuple[list[CatalogRow], str]:
        note = (
            f"event {event.originator_version} ({type(event).__name__}) could not be listed "
            f"({type(error).__name__}: {error}); listings show what came before it, lookups read the log"
        )
        return [], note


@functools.singledispatch
def evolve(event: Any, row: Any) -> CatalogRow:
    """The row after ``event``."""
    raise TypeError(f"no catalog row for {type(event).__qualname__}")


@evolve.register
def _(event: Agent.AgentCreated, row: None) -> CatalogRow:
    return AgentView(
        id=event.originator_id, version=1, definition=event.definition,
        created_at=event.timestamp, updated_at=event.timestamp,
    )  # fmt: skip


@evolve.register
def _(event: Agent.AgentUpdated, row: AgentView) -> CatalogRow:
    return msgspec.structs.replace(
        row, version=event.number, definition=event.definition, updated_at=event.timestamp
    )


@evolve.register
def _(event: Agent.AgentArchived, row: AgentView) -> CatalogRow:
    return msgspec.structs.replace(row, archived_at=event.timestamp, updated_at=event.timestamp)


@evolve.register
def _(event: Environment.EnvironmentCreated, row: None) -> CatalogRow:
    return EnvironmentView(
        id=event.originator_id, definition=event.definition,
        created_at=event.timestamp, updated_at=event.timestamp,
    )  # fmt: skip


@evolve.register
def _(event: Environment.EnvironmentUpdated, row: EnvironmentView) -> CatalogRow:
    return msgspec.structs.replace(row, definition=event.definition, updated_at=event.timestamp)


@evolve.register
def _(event: Environment.EnvironmentArchived, row: EnvironmentView) -> CatalogRow:
    return msgspec.structs.replace(row, archived_at=event.timestamp, updated_at=event.timestamp)


@evolve.register
def _(event: Environment.EnvironmentDeleted, row: EnvironmentView) -> CatalogRow:
    return msgspec.structs.replace(row, deleted=True, updated_at=event.timestamp)


@evolve.register
def _(event: StoredFile.FileUploaded, row: None) -> CatalogRow:
    return FileView(id=event.originator_id, contents=event.contents, created_at=event.timestamp)


@evolve.register
def _(event: StoredFile.FileDeleted, row: FileView) -> CatalogRow:
    return msgspec.structs.replace(row, deleted=True)


@evolve.register
def _(event: Vault.VaultCreated, row: None) -> CatalogRow:
    return VaultView(
        id=event.originator_id, display_name=event.display_name, metadata=dict(event.metadata),
        created_at=event.timestamp, updated_at=event.timestamp,
    )  # fmt: skip


@evolve.register
def _(event: Vault.VaultUpdated, row: VaultView) -> CatalogRow:
    return msgspec.structs.replace(
        row, display_name=event.display_name, metadata=dict(event.metadata), updated_at=event.timestamp
    )


@evolve.register
def _(event: Vault.VaultArchived, row: VaultView) -> CatalogRow:
    return msgspec.structs.replace(row, archived_at=event.timestamp, updated_at=event.timestamp)


@evolve.register
def _(event: Vault.VaultDeleted, row: VaultView) -> CatalogRow:
    return msgspec.structs.replace(row, deleted=True, updated_at=event.timestamp)


@evolve.register
def _(event: Vault.Event, row: VaultView) -> CatalogRow:
    """A credential changed: the vault's row shows when."""
    return msgspec.structs.replace(row, updated_at=event.timestamp)


@evolve.register
def _(event: MemoryStore.MemoryStoreCreated, row: None) -> CatalogRow:
    return MemoryStoreView(
        id=event.originator_id, name=event.name, description=event.description,
        metadata=dict(event.metadata), created_at=event.timestamp, updated_at=event.timestamp,
    )  # fmt: skip


@evolve.register
def _(event: MemoryStore.MemoryStoreUpdated, row: MemoryStoreView) -> CatalogRow:
    return msgspec.structs.replace(
        row, name=event.name, description=event.description, metadata=dict(event.metadata),
        updated_at=event.timestamp,
    )  # fmt: skip


@evolve.register
def _(event: MemoryStore.MemoryStoreArchived, row: MemoryStoreView) -> CatalogRow:
    return msgspec.structs.replace(row, archived_at=event.timestamp, updated_at=event.timestamp)


@evolve.register
def _(event: MemoryStore.MemoryStoreDeleted, row: MemoryStoreView) -> CatalogRow:
    return msgspec.structs.replace(row, deleted=True)


@evolve.register
def _(event: MemoryStore.Event, row: MemoryStoreView) -> CatalogRow:
    """A memory changed: the store's row stays as it was."""
    return row
