"""What a session browser asks of the store beyond one session's log: finding sessions,
drawing a session's forks, and telling a log by its turns.

Everything here reads the summary projection (one row per session) or one session's
log; nothing is stored. Titles may be encrypted at rest (``CIPHER_KEY``), so a search
by title cannot be a SQL ``LIKE``: it reads the rows through the summary view, which
decrypts them, a page at a time. That is a scan, linear in the number of sessions
(about 0.1 s for 10,000 on SQLite), paid only by searches and fork trees; a plain
listing is one indexed query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from agentjournal.domain import Session, Status, StopReason, Usage

if TYPE_CHECKING:
    from agentjournal.application.projection import SessionSummary
    from agentjournal.application.search import Filters
    from agentjournal.application.service import SessionService

SCAN_PAGE = 1000
"""Summaries read per query while scanning."""

MAX_TREE_NODES = 1000
"""A fork tree stops growing here (and says so): a page cannot show more anyway."""

_ID_PREFIX = re.compile(r"(?:sesn_)?([0-9a-f][0-9a-f-]*)")


# -- finding sessions -------------------------------------------------------------------


class SessionPage(msgspec.Struct, frozen=True):
    """One page of a listing, the most recently updated first."""

    sessions: list[SessionSummary]
    offset: int
    has_more: bool


def find_sessions(
    service: SessionService,
    status: Status | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
    filters: Filters | None = None,
) -> SessionPage:
    """Sessions with ``status`` (any, if None) whose title contains ``text`` or whose id
    begins with it (case-insensitive; an id may be given with its ``sesn_`` prefix and
    with or without dashes), narrowed by ``filters`` (a tool called, a failure, a model:
    see :class:`~agentjournal.application.search.Filters`). Without ``text`` this is one
    query of the summary table (with filters, joined with the search index)."""
    service.projector.catch_up()
    text = text.strip()
    # Filters beyond the status read the search index (built on its first use); the
    # status alone is a column of the summaries.
    narrowed = msgspec.structs.replace(filters, status=status) if filters and filters.reads_index else None

    def rows(limit: int, offset: int) -> list[SessionSummary]:
        if narrowed:
            return service.search.sessions(narrowed, limit, offset)
        return service.summaries.list(status=status, limit=limit, offset=offset)

    if not text:
        found = rows(limit + 1, offset)
        return SessionPage(found[:limit], offset, len(found) > limit)
    matches = _matching(_pages(rows), text.casefold())
    page: list[SessionSummary] = []
    for index, summary in enumerate(matches):
        if index < offset:
            continue
        if len(page) == limit:
            return SessionPage(page, offset, True)
        page.append(summary)
    return SessionPage(page, offset, False)


def _matching(summaries: Iterator[SessionSummary], folded: str) -> Iterator[SessionSummary]:
    prefix = _ID_PREFIX.fullmatch(folded)
    bare = prefix.group(1).replace("-", "") if prefix else None
    for summary in summaries:
        if (bare and summary.id.hex.startswith(bare)) or folded in summary.title.casefold():
            yield summary


def all_summaries(service: SessionService, status: Status | None = None) -> Iterator[SessionSummary]:
    """Every summary, the most recently updated first, read a page at a time."""
    return _pages(lambda limit, offset: service.summaries.list(status=status, limit=limit, offset=offset))


def _pages(rows: Callable[[int, int], list[SessionSummary]]) -> Iterator[SessionSummary]:
    """What ``rows(limit, offset)`` gives, read :data:`SCAN_PAGE` at a time to the end."""
    offset = 0
    while page := rows(SCAN_PAGE, offset):
        yield from page
        offset += len(page)


# -- fork trees -------------------------------------------------------------------------


class ForkNode(msgspec.Struct):
    """A session in a fork tree. ``forked_at`` labels the edge from its parent: the
    parent's event the fork shares history up to (None for the root)."""

    session: SessionSummary
    forked_at: int | None
    children: list[ForkNode] = []


class ForkTree(msgspec.Struct, frozen=True):
    """A session's ancestors (a path down from ``root``) and all its descendants.

    ``missing_parent``: the root is itself a fork whose parent is not in this store
    (an imported fork). ``truncated``: the tree reached :data:`MAX_TREE_NODES`.
    """

    root: ForkNode
    session_id: UUID
    missing_parent: UUID | None
    truncated: bool


def fork_tree(service: SessionService, session_id: UUID) -> ForkTree:
    """The fork tree around a session: the chain of sessions it was forked from, up to
    the first, and everything forked from it, at any depth."""
    summary = service.summary(session_id)
    ancestors = [summary]
    missing_parent = None
    while (parent_id := ancestors[-1].parent_id) is not None:
        parent = service.summaries.get(parent_id)
        if parent is None:
            missing_parent = parent_id
            break
        if parent in ancestors:  # only a crafted import can loop; stop where it does
            break
        ancestors.append(parent)
    children: dict[UUID, list[SessionSummary]] = {}
    for row in all_summaries(service):
        if row.parent_id is not None:
            children.setdefault(row.parent_id, []).append(row)
    node = _node(summary)
    truncated = _grow(node, children, MAX_TREE_NODES - len(ancestors))
    for parent in ancestors[1:]:
        node = _node(parent, [node])
    return ForkTree(node, session_id, missing_parent, truncated)


def _node(summary: SessionSummary, children: list[ForkNode] | None = None) -> ForkNode:
    return ForkNode(summary, summary.parent_version if summary.parent_id else None, children or [])


def _grow(root: ForkNode, children: dict[UUID, list[SessionSummary]], budget: int) -> bool:
    """Add ``root``'s descendants, breadth first, the earliest fork first, up to
    ``budget`` nodes in all; True if some were left out."""
    queue, seen = [root], {root.session.id}
    for node in queue:
        forks = sorted(children.get(node.session.id, ()), key=lambda s: (s.parent_version or 0, s.created_at))
        for child in forks:
            if child.id in seen:
                continue
            if len(queue) >= budget:
                return True
            seen.add(child.id)
            grown = _node(child)
            node.children.append(grown)
            queue.append(grown)
    return False


# -- turns ------------------------------------------------------------------------------


class TurnSummary(msgspec.Struct):
    """One turn of a log, or (``turn`` 0) what a fork inherited from its parent.

    ``first_message`` and ``message_count`` place it in the session's messages: the
    prompt that started it and everything up to the next prompt. ``started`` and
    ``ended`` are log versions (``ended`` None while it runs); ``usage`` is what its
    model calls reported.
    """

    turn: int
    first_message: int
    message_count: int
    started: int
    started_at: datetime
    usage: Usage = Usage()
    ended: int | None = None
    ended_at: datetime | None = None
    stop_reason: str | None = None
    detail: str = ""


def turns(service: SessionService, session_id: UUID, version: int | None = None) -> list[TurnSummary]:
    """The session's turns as of ``version`` (default: now), from one pass over its log
    (none for a session that has not run one, or does not exist)."""
    found: list[TurnSummary] = []
    messages = 0
    prompt_at: int | None = None  # where the latest prompt no turn has claimed yet sits
    for event in service.events.get(session_id, lte=version):
        current = found[-1] if found and found[-1].turn else None
        match event:
            case Session.SessionForked():
                messages = len(event.messages)
                at, moment = event.originator_version, event.timestamp
                found.append(TurnSummary(0, 0, messages, at, moment, event.usage, at, moment))
            case Session.UserMessageAdded():
                prompt_at = messages
                messages += 1
            case Session.AssistantMessageAdded() | Session.ToolResultRecorded():
                messages += 1
                if current:
                    current.message_count += 1
            case Session.TurnStarted():
                first = messages if prompt_at is None else prompt_at
                at, moment = event.originator_version, event.timestamp
                found.append(TurnSummary(event.turn, first, messages - first, at, moment))
                prompt_at = None
            case Session.UsageRecorded() if current:
                current.usage = current.usage + event.usage
            case Session.TurnCompleted() if current:
                _end(current, event, event.stop_reason.value, event.detail)
            case Session.TurnFailed() if current:
                _end(current, event, StopReason.ERROR.value, f"{event.error_type}: {event.error}")
            case Session.TurnResumed() if current:
                current.ended = current.ended_at = current.stop_reason = None
                current.detail = ""
    return found


def _end(turn: TurnSummary, event: Session.Event, stop_reason: str, detail: str) -> None:
    turn.ended, turn.ended_at = event.originator_version, event.timestamp
    turn.stop_reason, turn.detail = stop_reason, detail
