"""Read model tables, one module per event store eventsourcing supports here, and one
per store for the catalog of agents and environments (``sqlite_catalog``,
``postgres_catalog``), which a process serving sessions only never imports.

**Versioned tables.** A read model's tables carry the version of their schema in
their names (``session_summaries_v4``). A process that finds no table of its
version creates it empty at position 0, so its projector rebuilds it from the
whole log (a projection can always be thrown away), and drops the tables of
earlier versions. Creating and dropping only ever go forward and are each
idempotent, so processes opening a store together cannot get in each other's way.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.persistence import Cipher

from agentjournal.application.projection import SessionQuery, SessionSummary
from agentjournal.application.tracing import Cost
from agentjournal.domain import Status, Usage


class Tables(NamedTuple):
    """The tables of one version of a read model, and those of its earlier versions."""

    rows: str
    position: str
    obsolete: tuple[str, ...] = ()


SESSION_TABLES = Tables(
    "session_summaries_v5",
    "session_summaries_v5_position",
    obsolete=(
        "session_summaries", "session_summaries_position",
        "session_summaries_v2", "session_summaries_v2_position",
        "session_summaries_v3", "session_summaries_v3_position",
        "session_summaries_v4", "session_summaries_v4_position",
    ),
)  # fmt: skip
"""Version 2 added the agent, environment, metadata, archived and deleted columns;
version 3 the compute the session's tools run on, the running time (``active_seconds``,
``running_since``, ``ended_at``), the cost (dollars, and the calls without a price) and the
model calls' time; version 4 the calls a self-hosted worker has yet to answer
(``worker_calls``, ids separated by spaces), so a session waiting for one lists as running; version 5 the memory stores attached now
(``memory_stores``, see :func:`memory_stores_column`), which the API's listing filters by."""

COLUMNS = (
    "id", "name", "model", "status", "title",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
    "message_count", "tool_call_count", "turn_count", "version",
    "created_at", "updated_at", "parent_id", "parent_version", "last_error",
    "agent_id", "agent_version", "environment_id", "metadata", "archived_at", "deleted", "compute",
    "active_seconds", "running_since", "ended_at",
    "cost_usd", "unpriced_calls", "model_ms", "worker_calls", "memory_stores",
)  # fmt: skip


class Sealer:
    """Encrypts the columns that hold what people wrote (titles, errors that may quote a
    reply, metadata, definitions) with the store's cipher, if it has one."""

    def __init__(self, cipher: Cipher | None) -> None:
        self.cipher = cipher

    def seal(self, text: str) -> str:
        if self.cipher is None or not text:
            return text
        return base64.b64encode(self.cipher.encrypt(text.encode())).decode()

    def open(self, text: str) -> str:
        if self.cipher is None or not text:
            return text
        return self.cipher.decrypt(base64.b64decode(text)).decode()


def storable(text: str) -> str:
    """``text`` as a text column can hold it: PostgreSQL refuses NUL, so it is shown as
    U+FFFD, in every store alike. Only the summary changes; the log keeps the exact text."""
    return text.replace("\x00", "\ufffd")


def sortable(moment: datetime) -> str:
    """A timestamp as text that sorts in time order: UTC, always with microseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def to_row(s: SessionSummary, sealer: Sealer) -> tuple[Any, ...]:
    u = s.usage
    return (
        str(s.id), storable(s.name), storable(s.model), s.status.value, sealer.seal(storable(s.title)),
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_creation_tokens,
        s.message_count, s.tool_call_count, s.turn_count, s.version,
        sortable(s.created_at), sortable(s.updated_at),
        str(s.parent_id) if s.parent_id else None, s.parent_version, sealer.seal(storable(s.last_error)),
        storable(s.agent_id), s.agent_version, storable(s.environment_id),
        sealer.seal(msgspec.json.encode(s.metadata).decode()),
        sortable(s.archived_at) if s.archived_at else None, s.deleted, storable(s.compute),
        s.active_seconds, _optional_time(s.running_since), _optional_time(s.ended_at),
        s.cost.usd, s.cost.unpriced, s.model_ms, " ".join(s.worker_calls), memory_stores_column(s),
    )  # fmt: skip


def memory_stores_column(summary: SessionSummary) -> str:
    """The ``memory_stores`` column: each ``resource=store`` pair with a space either side,
    so ``LIKE '%=<store> %'`` finds a store by its whole id, in SQLite and PostgreSQL alike
    (ids are letters, digits and underscores: neither a wildcard nor a space). No index
    serves it: a page reads rows in creation order until it has enough."""
    return "".join(f" {resource}={store} " for resource, store in summary.memory_stores)


def _read_memory_stores(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((pair.partition("=")[0], pair.partition("=")[2]) for pair in text.split())


def _optional_time(moment: datetime | None) -> str | None:
    return sortable(moment) if moment else None


def _read_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def from_row(row: Any, sealer: Sealer) -> SessionSummary:
    r = {column: row[column] for column in COLUMNS}
    return SessionSummary(
        id=UUID(r["id"]),
        name=r["name"],
        model=r["model"],
        status=Status(r["status"]),
        title=sealer.open(r["title"]),
        usage=Usage(
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cache_read_tokens=r["cache_read_tokens"],
            cache_creation_tokens=r["cache_creation_tokens"],
        ),
        message_count=r["message_count"],
        tool_call_count=r["tool_call_count"],
        turn_count=r["turn_count"],
        version=r["version"],
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        parent_id=UUID(r["parent_id"]) if r["parent_id"] else None,
        parent_version=r["parent_version"],
        last_error=sealer.open(r["last_error"]),
        agent_id=r["agent_id"],
        agent_version=r["agent_version"],
        environment_id=r["environment_id"],
        metadata=msgspec.json.decode(sealer.open(r["metadata"])),
        archived_at=datetime.fromisoformat(r["archived_at"]) if r["archived_at"] else None,
        deleted=bool(r["deleted"]),
        active_seconds=float(r["active_seconds"]),
        running_since=_read_time(r["running_since"]),
        ended_at=_read_time(r["ended_at"]),
        cost=Cost(usd=r["cost_usd"], unpriced=r["unpriced_calls"]),
        model_ms=r["model_ms"],
        compute=r["compute"],
        worker_calls=tuple(r["worker_calls"].split()),
        memory_stores=_read_memory_stores(r["memory_stores"]),
    )


def session_filters(query: SessionQuery, mark: str) -> tuple[str, list[Any]]:
    """The WHERE and ORDER BY of a page of sessions, with ``mark`` as the placeholder."""
    where: list[str] = ["NOT deleted"]
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        where.append(clause.replace("?", mark))
        params.extend(values)

    if not query.include_archived:
        add("archived_at IS NULL")
    if query.agent_id is not None:
        add("agent_id = ?", query.agent_id)
    if query.agent_version is not None:
        add("agent_version = ?", query.agent_version)
    if query.memory_store_id is not None:
        add("memory_stores LIKE ?", f"%={query.memory_store_id} %")
    if query.statuses:
        add(f"status IN ({', '.join('?' * len(query.statuses))})", *(s.value for s in query.statuses))
    for bound, operator in (
        ("created_gt", ">"),
        ("created_gte", ">="),
        ("created_lt", "<"),
        ("created_lte", "<="),
    ):
        if (moment := getattr(query, bound)) is not None:
            add(f"created_at {operator} ?", sortable(moment))
    direction, beyond = ("DESC", "<") if query.order == "desc" else ("ASC", ">")
    if query.after is not None:
        add(f"(created_at, id) {beyond} (?, ?)", sortable(query.after[0]), str(query.after[1]))
    return f"WHERE {' AND '.join(where)} ORDER BY created_at {direction}, id {direction}", params
