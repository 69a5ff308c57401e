"""The catalog's table in the PostgreSQL database of the events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Cipher
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from agentjournal.application.catalog_projection import CatalogRow, CatalogView
from agentjournal.infrastructure.stores.readmodel import Sealer
from agentjournal.infrastructure.stores.readmodel.catalog import (
    CATALOG_COLUMNS,
    CATALOG_TABLES,
    catalog_entry,
    catalog_filters,
    catalog_row,
)
from agentjournal.infrastructure.stores.readmodel.postgres import SchemaTables


class PostgresCatalog(CatalogView):
    def __init__(self, datastore: PostgresDatastore, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.sealer = Sealer(cipher)
        self._tables = SchemaTables(datastore, CATALOG_TABLES, CATALOG_COLUMNS)
        self._tables.create(
            (
                "CREATE TABLE {rows} (id text PRIMARY KEY, kind text NOT NULL, created_at text NOT NULL, "
                "archived_at text, deleted boolean NOT NULL, body text NOT NULL)",
                "CREATE INDEX ON {rows} (kind, created_at, id)",
            )
        )

    def get_many(self, ids: Iterable[UUID]) -> dict[UUID, CatalogRow]:
        keys = [str(i) for i in ids]
        if not keys:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.SQL("{} WHERE id = ANY(%s)").format(self._tables.select), (keys,))
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
            kind, "%s", include_archived=include_archived, created_gte=created_gte,
            created_lte=created_lte, after=after,
        )  # fmt: skip
        with self.datastore.transaction(commit=False) as c:
            # The filters name fixed columns only; every value is a parameter.
            c.execute(
                sql.SQL("{} {} LIMIT %s").format(self._tables.select, sql.SQL(filters)), [*params, limit]
            )
            return [catalog_entry(r, self.sealer) for r in c.fetchall()]

    def position(self) -> int:
        return self._tables.position()

    def commit(self, rows: Sequence[CatalogRow], previous: int, position: int) -> bool:
        return self._tables.commit([catalog_row(r, self.sealer) for r in rows], previous, position)
