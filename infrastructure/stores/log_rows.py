"""A session's log read in ranges as the store's own rows, decoded without eventsourcing's
per-row objects.

eventsourcing's ``select_events`` makes a :class:`~eventsourcing.persistence.StoredEvent`
per row, and on SQLite a :class:`~uuid.UUID` per row from the row's text id, though every
row of a ranged read is of the one session the caller named. Listing a long session's API
events reads thousands of rows a page, and that construction was a sixth of a page's time.
So the events' recorders also answer :meth:`LogRows.select_rows`: the version, topic and
state of each row, nothing else (as tuples), and :class:`RangedLog` decodes a read's rows
at once with the store's own mapper (:meth:`~.mapper.TypedMapper.from_rows`), through its
cipher, compressor and transcoder exactly as a read through eventsourcing: a row that any
of them refuses raises, it is never skipped or served half-decoded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore

from agentjournal.infrastructure.stores.mapper import Row, TypedMapper


class LogRows(Protocol):
    """A recorder that reads a log's rows in ranges (oldest first)."""

    def select_rows(
        self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None, limit: int | None = None
    ) -> Sequence[Row]: ...


class SQLiteLogRows:
    """The SQLite events' recorder's ranged read of rows (the table's primary key is
    (originator_id, originator_version), so a range is an index scan)."""

    datastore: Any
    events_table_name: str

    def select_rows(
        self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        tail, bounds = ranged("?", gt, lte, limit)
        statement = (
            f"SELECT originator_version, topic, state FROM {self.events_table_name} WHERE originator_id=?"
        )
        with self.datastore.transaction(commit=False) as c:
            cursor: sqlite3.Cursor = c.sqlite_cursor
            cursor.row_factory = None  # tuples: the connection's sqlite3.Row costs more a row
            cursor.execute(statement + tail, [originator_id.hex, *bounds])
            rows: Sequence[Row] = cursor.fetchall()
            return rows


def ranged(mark: str, gt: int | None, lte: int | None, limit: int | None) -> tuple[str, list[int]]:
    """The end of a ranged read's statement (after its session's condition) and its
    parameters: versions above ``gt`` and up to ``lte``, oldest first, at most ``limit``;
    ``mark`` is the driver's placeholder."""
    tail, bounds = "", list[int]()
    if gt is not None:
        tail, bounds = f"{tail} AND originator_version>{mark}", [*bounds, gt]
    if lte is not None:
        tail, bounds = f"{tail} AND originator_version<={mark}", [*bounds, lte]
    tail += " ORDER BY originator_version ASC"
    if limit is not None:
        tail, bounds = f"{tail} LIMIT {mark}", [*bounds, limit]
    return tail, bounds


class RangedLog:
    """A log's events, oldest first, in ranges: :meth:`get` as eventsourcing's
    ``EventStore.get`` (forward only), decoded from :meth:`LogRows.select_rows`."""

    def __init__(self, mapper: TypedMapper, recorder: LogRows) -> None:
        self.mapper = mapper
        self.recorder = recorder

    def get(
        self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None, limit: int | None = None
    ) -> Iterator[DomainEventProtocol[UUID]]:
        rows = self.recorder.select_rows(originator_id, gt=gt, lte=lte, limit=limit)
        yield from self.mapper.from_rows(originator_id, rows)

    @classmethod
    def of(cls, events: EventStore[UUID]) -> RangedLog:
        """The ranged log of a store's events (its own mapper and recorder)."""
        if not isinstance(events.mapper, TypedMapper) or not hasattr(events.recorder, "select_rows"):
            msg = "a ranged log needs the store's typed mapper and a recorder that reads rows (SQLite, PostgreSQL)"
            raise TypeError(msg)
        return cls(events.mapper, cast(LogRows, events.recorder))
