"""The catalog's rows as every store keeps them: one per agent, environment and file, its
definition a JSON body (sealed like the summaries' text), with the columns a listing
filters and orders by beside it. Apart from the session summaries' tables, so that a
process that only reads or resumes sessions does not import the ``Agent`` and
``Environment`` aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from agentjournal.application.catalog_projection import (
    AgentView,
    CatalogRow,
    EnvironmentView,
    FileView,
    MemoryStoreView,
    VaultView,
)
from agentjournal.infrastructure.stores.readmodel import Sealer, Tables, sortable

CATALOG_TABLES = Tables("catalog_v1", "catalog_v1_position")

CATALOG_COLUMNS = ("id", "kind", "created_at", "archived_at", "deleted", "body")

KINDS: dict[str, type[CatalogRow]] = {
    "agent": AgentView, "environment": EnvironmentView, "file": FileView, "vault": VaultView,
    "memory_store": MemoryStoreView,
}  # fmt: skip


def catalog_filters(
    kind: str,
    mark: str,
    *,
    include_archived: bool,
    created_gte: datetime | None,
    created_lte: datetime | None,
    after: tuple[datetime, UUID] | None,
) -> tuple[str, list[Any]]:
    """The WHERE and ORDER BY of a page of agents, environments or files, newest first."""
    where, params = ["kind = ?", "NOT deleted"], [kind]
    if not include_archived:
        where.append("archived_at IS NULL")
    if created_gte is not None:
        where.append("created_at >= ?")
        params.append(sortable(created_gte))
    if created_lte is not None:
        where.append("created_at <= ?")
        params.append(sortable(created_lte))
    if after is not None:
        where.append("(created_at, id) < (?, ?)")
        params += [sortable(after[0]), str(after[1])]
    text = f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC"
    return text.replace("?", mark), params


def catalog_row(entry: CatalogRow, sealer: Sealer) -> tuple[Any, ...]:
    kind = next(name for name, cls in KINDS.items() if isinstance(entry, cls))
    deleted = isinstance(entry, EnvironmentView | FileView | VaultView | MemoryStoreView) and entry.deleted
    archived_at = sortable(entry.archived_at) if entry.archived_at else None
    body = sealer.seal(msgspec.json.encode(entry).decode())
    return (str(entry.id), kind, sortable(entry.created_at), archived_at, deleted, body)


def catalog_entry(row: Any, sealer: Sealer) -> CatalogRow:
    return msgspec.json.decode(sealer.open(row["body"]), type=KINDS[row["kind"]])
