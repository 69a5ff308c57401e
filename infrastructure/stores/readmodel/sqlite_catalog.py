"""The catalog's table in the same SQLite file as the events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.sqlite import SQLiteDatastore

from agentjournal.application.catalog_projection import CatalogRow, CatalogView
from agentjournal.infrastructure.stores.readmodel import Sealer
from agentjournal.infrastructure.stores.readmodel.catalog import (
    CATALOG_COLUMNS,
    CATALOG_TABLES,
    catalog_entry,
    catalog_filters,
    catalog_row,
)
from agentjournal.infrastructure.stores.readmodel.sqlite import commit_rows, create_tables, read_position


class SQLiteCatalog(CatalogView):
    tables = CATALOG_TABLES

    def __init__(self, datastore: SQLiteDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = Sealer(cipher)
        self._select = f"SELECT {', '.join(CATALOG_COLUMNS)} FROM {self.tables.rows}"
        create_tables(
            datastore,
            self.tables,
            (
                "CREATE TABLE IF NOT EXISTS {rows} (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                "created_at TEXT NOT NULL, archived_at TEXT, deleted INTEGER NOT NULL, body TEXT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS {rows}_created ON {rows} (kind, created_at, id)",
            ),
        )

    def get_many(self, ids: Iterable[UUID]) -> dict[UUID, CatalogRow]:
        keys = [str(i) for i in ids]
        if not keys:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"{self._select} WHERE id IN ({', '.join('?' * len(keys))})", keys)
            return {e.id: e for e in (catalog_entry(r, self.sealer) for r in c.fetchall())}

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
        filters, params = catalog_filters(
            kind, "?", include_archived=include_archived, created_gte=created_gte,
            created_lte=created_lte, after=after,
        )  # fmt: skip
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"{self._select} {filters} LIMIT ?", [*params, limit])
            return [catalog_entry(r, self.sealer) for r in c.fetchall()]

    def position(self) -> int:
        return read_position(self.datastore, self.tables)

    def commit(self, rows: Sequence[CatalogRow], previous: int, position: int) -> bool:
        values = [catalog_row(r, self.sealer) for r in rows]
        return commit_rows(self.datastore, self.tables, len(CATALOG_COLUMNS), values, previous, position)
