"""The session summary read model, kept up to date from the notification log.

``retrieve_session`` and listings read one row per session instead of replaying
a log. :class:`SessionProjector` folds new session events into those rows (see
:mod:`agentjournal.application.projector` for how a projection reads the log
exactly once, skips other aggregates' events and sets aside an event it cannot
store). A session event that fails is set aside like this: that session's row
keeps what it had, moves to the event's version, and its ``last_error`` says which
event is missing from the summary (the log still holds it).

Listings come in two orders: the most recently updated first, with an offset (the
command line's), and by creation, newest or oldest first, one page after another
(the cloud API's, see :class:`SessionQuery`). Deleted sessions are in neither.
"""

from __future__ import annotations

import abc
import builtins
import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import msgspec

from agentjournal.application.projector import ProjectionView, Projector
from agentjournal.application.tracing import Cost
from agentjournal.domain import Session, Status, StopReason, Usage
from agentjournal.domain.resources import MemoryStoreResource

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Mapper


class SessionSummary(msgspec.Struct, frozen=True):
    """One session at a glance."""

    id: UUID
    name: str
    model: str
    status: Status
    title: str
    usage: Usage
    message_count: int
    tool_call_count: int
    turn_count: int
    version: int
    created_at: datetime
    updated_at: datetime
    parent_id: UUID | None = None
    parent_version: int | None = None
    last_error: str = ""
    agent_id: str = ""
    """The agent the session was created from (its config's ``agent_id``), if any."""
    agent_version: int = 0
    environment_id: str = ""
    metadata: dict[str, Any] = {}
    archived_at: datetime | None = None
    deleted: bool = False
    compute: str = ""
    """Where the session's tools run: its config's ``compute``."""
    cost: Cost = Cost()
    """What the session's own model calls cost (see :mod:`~agentjournal.application.tracing`)."""
    model_ms: float = 0.0
    """How long its timed model calls took, added up."""
    active_seconds: float = 0.0
    """Time spent running, up to the end of the last turn (see :func:`session_stats`)."""
    running_since: datetime | None = None
    """When the running turn started or resumed; None while none runs."""
    ended_at: datetime | None = None
    """When the session was terminated."""
    worker_calls: tuple[str, ...] = ()
    """Calls a self-hosted environment's worker was asked to run and has not answered. A
    turn paused for these alone shows ``running``: the session is busy, nothing is asked
    of the client."""
    memory_stores: tuple[tuple[str, str], ...] = ()
    """The memory stores attached to the session now, as (resource id, store UUID hex)
    pairs: the API's listing filters by store, and a removed resource no longer counts."""


class SessionStats(msgspec.Struct, frozen=True):
    """The cloud's ``stats``: ``active_seconds``, the time spent running (the turn
    running now counts up to ``now``), and ``duration_seconds``, the time since creation,
    frozen when the session is terminated."""

    active_seconds: float
    duration_seconds: float


def session_stats(summary: SessionSummary, now: datetime) -> SessionStats:
    """A session's stats at ``now``, from its summary (so from its log)."""
    active = summary.active_seconds
    if summary.running_since is not None:
        active += max(0.0, (now - summary.running_since).total_seconds())
    end = summary.ended_at or now
    return SessionStats(active, max(0.0, (end - summary.created_at).total_seconds()))


class SessionQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which sessions a page holds, in creation order. Deleted sessions never; archived
    ones only when asked. ``after`` is the (created_at, id) of the last session of the
    previous page: the page goes on from there, so sessions created meanwhile neither
    repeat nor shift it."""

    agent_id: str | None = None
    agent_version: int | None = None
    memory_store_id: str | None = None
    """Only sessions that have this store (UUID hex) among their resources now."""
    statuses: tuple[Status, ...] = ()
    include_archived: bool = False
    created_gt: datetime | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    created_lte: datetime | None = None
    order: Literal["asc", "desc"] = "desc"
    after: tuple[datetime, UUID] | None = None
    limit: int = 20


class SessionSummaryView(ProjectionView[SessionSummary]):
    """Where summaries are kept: one implementation per event store."""

    def get(self, session_id: UUID) -> SessionSummary | None:
        return self.get_many([session_id]).get(session_id)

    @abc.abstractmethod
    def get_many(self, session_ids: Iterable[UUID]) -> dict[UUID, SessionSummary]: ...

    @abc.abstractmethod
    def list(
        self, *, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        """Summaries of sessions not deleted, the most recently updated first."""

    @abc.abstractmethod
    def page(self, query: SessionQuery) -> builtins.list[SessionSummary]:
        """Up to ``query.limit`` summaries matching ``query``, in its order of creation."""

    @abc.abstractmethod
    def ids_starting_with(self, prefix: str, limit: int = 2) -> builtins.list[UUID]:
        """Session ids that begin with ``prefix`` (lower-case hex and dashes)."""


class SessionProjector(Projector[SessionSummary]):
    """Folds session events into a :class:`SessionSummaryView`."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID], view: SessionSummaryView) -> None:
        super().__init__(recorder, mapper, view)
        self.view: SessionSummaryView = view

    def wants(self, event_class: type) -> bool:
        return issubclass(event_class, Session.Event)

    def fold(self, events: Sequence[Session.Event]) -> list[SessionSummary]:
        rows = self.view.get_many({e.originator_id for e in events})
        for event in events:
            rows[event.originator_id] = evolve(event, rows.get(event.originator_id))
        return list(rows.values())

    def set_aside(self, event: Session.Event, error: Exception) -> tuple[list[SessionSummary], str]:
        note = (
            f"summary incomplete: event {event.originator_version} ({type(event).__name__}) "
            f"could not be summarised ({type(error).__name__}: {error}); the session's log holds it"
        )
        row = self.view.get(event.originator_id) or _unknown(event)
        return [_touch(row, event, last_error=note)], note


@functools.singledispatch
def evolve(event: Any, summary: SessionSummary | None) -> SessionSummary:
    """The summary after ``event``. Events that change nothing summarised only bump the version."""
    return _touch(summary, event)


def _touch(summary: SessionSummary | None, event: Any, **changes: Any) -> SessionSummary:
    assert summary is not None, f"{type(event).__name__} before the session began"
    return msgspec.structs.replace(
        summary, version=event.originator_version, updated_at=event.timestamp, **changes
    )


def _unknown(event: Session.Event) -> SessionSummary:
    """A row for a session whose first event could not be summarised: all it knows is an id."""
    return SessionSummary(
        id=event.originator_id, name="", model="", status=Status.ERROR, title="", usage=Usage(),
        message_count=0, tool_call_count=0, turn_count=0, version=event.originator_version,
        created_at=event.timestamp, updated_at=event.timestamp,
    )  # fmt: skip


def _first(event: Session.SessionStarted | Session.SessionForked, **fields: Any) -> SessionSummary:
    """The summary of a session's first event; ``fields`` override the empty defaults."""
    defaults: dict[str, Any] = {
        "status": Status.IDLE, "usage": Usage(), "message_count": 0, "tool_call_count": 0, "turn_count": 0,
    }  # fmt: skip
    return SessionSummary(
        id=event.originator_id,
        title=event.title,
        version=event.originator_version,
        created_at=event.timestamp,
        updated_at=event.timestamp,
        **_from_config(event.config),
        **(defaults | fields),
    )


def _from_config(config: Any) -> dict[str, Any]:
    """What a summary shows of a session's recorded config."""
    return {
        "name": config.name,
        "model": config.model,
        "agent_id": config.agent_id,
        "agent_version": config.agent_version,
        "environment_id": config.environment_id,
        "metadata": dict(config.metadata),
        "compute": config.compute,
    }


@evolve.register
def _(event: Session.SessionStarted, summary: None) -> SessionSummary:
    return _first(event)


@evolve.register
def _(event: Session.SessionForked, summary: None) -> SessionSummary:
    return _first(
        event,
        status=event.status,
        usage=event.usage,
        message_count=len(event.messages),
        tool_call_count=sum(len(getattr(m, "tool_calls", ())) for m in event.messages),
        turn_count=event.turns,
        parent_id=event.lineage.parent_id,
        parent_version=event.lineage.parent_version,
    )


@evolve.register
def _(event: Session.UserMessageAdded, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, message_count=summary.message_count + 1)


@evolve.register
def _(event: Session.TurnStarted, summary: SessionSummary) -> SessionSummary:
    return _touch(
        summary, event, status=Status.RUNNING, turn_count=event.turn, last_error="",
        running_since=summary.running_since or event.timestamp,
    )  # fmt: skip


@evolve.register
def _(event: Session.TurnResumed, summary: SessionSummary) -> SessionSummary:
    return _touch(
        summary, event, status=Status.RUNNING, running_since=summary.running_since or event.timestamp
    )


def _stopped(summary: SessionSummary, event: Session.Event) -> dict[str, Any]:
    """The running time a turn's end (or a termination) adds to the summary."""
    if summary.running_since is None:
        return {}
    ran = max(0.0, (event.timestamp - summary.running_since).total_seconds())
    return {"active_seconds": summary.active_seconds + ran, "running_since": None}


@evolve.register
def _(event: Session.AssistantMessageAdded, summary: SessionSummary) -> SessionSummary:
    return _touch(
        summary,
        event,
        message_count=summary.message_count + 1,
        tool_call_count=summary.tool_call_count + len(event.message.tool_calls),
    )


@evolve.register
def _(event: Session.ToolResultRecorded, summary: SessionSummary) -> SessionSummary:
    answered = event.result.tool_call_id
    return _touch(
        summary, event, message_count=summary.message_count + 1,
        worker_calls=tuple(c for c in summary.worker_calls if c != answered),
    )  # fmt: skip


@evolve.register
def _(event: Session.UsageRecorded, summary: SessionSummary) -> SessionSummary:
    call = event.call
    return _touch(
        summary,
        event,
        usage=summary.usage + event.usage,
        cost=summary.cost + Cost.of(call.cost_usd if call else None),
        model_ms=summary.model_ms + (call.duration_ms if call else 0.0),
    )


@evolve.register
def _(event: Session.TitleSet, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, title=event.title)


@evolve.register
def _(event: Session.RemoteToolRequested, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, worker_calls=(*summary.worker_calls, event.call.id))


@evolve.register
def _(event: Session.TurnCompleted, summary: SessionSummary) -> SessionSummary:
    if _awaits_worker(event, summary):
        return _touch(summary, event)  # running, and its time counts on
    return _touch(summary, event, status=Status.IDLE, **_stopped(summary, event))


def _awaits_worker(event: Session.TurnCompleted, summary: SessionSummary) -> bool:
    """Whether the turn pauses for a worker's results only (a pause's ``detail`` names the
    calls it waits on), as :attr:`Session.awaits_worker` says of the session itself."""
    awaited = set(event.detail.split())
    return (
        event.stop_reason == StopReason.REQUIRES_ACTION
        and bool(awaited)
        and awaited <= set(summary.worker_calls)
    )


@evolve.register
def _(event: Session.TurnFailed, summary: SessionSummary) -> SessionSummary:
    return _touch(
        summary, event, status=Status.ERROR, last_error=f"{event.error_type}: {event.error}",
        **_stopped(summary, event),
    )  # fmt: skip


@evolve.register
def _(event: Session.ConfigChanged, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, **_from_config(event.config))


@evolve.register
def _(event: Session.ResourceAdded, summary: SessionSummary) -> SessionSummary:
    resource = event.resource
    if not isinstance(resource, MemoryStoreResource):
        return _touch(summary, event)
    attached = (resource.id, resource.memory_store_id)
    return _touch(summary, event, memory_stores=(*summary.memory_stores, attached))


@evolve.register
def _(event: Session.ResourceRemoved, summary: SessionSummary) -> SessionSummary:
    kept = tuple(pair for pair in summary.memory_stores if pair[0] != event.resource_id)
    return _touch(summary, event, memory_stores=kept)


@evolve.register
def _(event: Session.SessionTerminated, summary: SessionSummary) -> SessionSummary:
    return _touch(
        summary, event, status=Status.TERMINATED, ended_at=event.timestamp, **_stopped(summary, event)
    )


@evolve.register
def _(event: Session.SessionArchived, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, archived_at=event.timestamp)


@evolve.register
def _(event: Session.SessionDeleted, summary: SessionSummary) -> SessionSummary:
    return _touch(summary, event, deleted=True)
