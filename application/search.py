"""Search inside sessions: the text of every message, tool call, tool output and failure,
across all sessions, and the sessions that used a tool, failed, or ran a model.

A read model like the summaries (see :mod:`~agentjournal.application.projector`): the
:class:`SearchProjector` folds each session event that carries text into rows of an
index in the store's own database (SQLite's FTS5, PostgreSQL's ``tsvector`` with a GIN
index), one row per piece of text, so a search is one indexed query however many logs
there are, never a replay of them. A row names its session, the event's version (so a
hit links to the session at that event), what kind of text it is, the tool it belongs to
and whether it was a failure.

**Words, not substrings.** A query is split into words (letters and digits; everything
else separates them) and matches text holding every word, each as the start of a word:
``read conf`` finds "reading the config file". Both stores split text the same way.

What is not indexed: a fork's inherited conversation (its parent's events hold it, and
the fork's own events are indexed as they come), text past :data:`INDEXED_CHARS` of one
message or output, and, in a store encrypted at rest (``CIPHER_KEY``), any text at all:
an index of words would hold them in the clear. There the index keeps only what the
filters need (tool names, failures), and a search for words is refused with a reason.
The index holds what the log holds, which is redacted before it is recorded.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from agentjournal.application.projector import ProjectionView, Projector
from agentjournal.domain import AssistantMessage, Session, Status
from agentjournal.domain.errors import AgentJournalError

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Mapper

    from agentjournal.application.projection import SessionSummary
    from agentjournal.application.service import SessionService

INDEXED_CHARS = 65_536
"""How much of one piece of text is indexed (a tool's output can be megabytes)."""

MAX_WORDS = 16
"""A query of more words than this is refused: each is one more index lookup."""

SNIPPET_CHARS = 160

SEARCH_VIEWS = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.readmodel.sqlite_search:SQLiteSearchIndex",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.readmodel.postgres_search:PostgresSearchIndex",
}

_WORD = re.compile(r"[^\W_]+")


class UnsearchableQuery(AgentJournalError, ValueError):
    """A search that cannot be run as asked (no words, too many, an encrypted store)."""


class Kind:
    """What a row's text is."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL_CALL = "tool_call"
    """A call's tool name and the arguments the model wrote."""
    TOOL_RESULT = "tool_result"
    ERROR = "error"
    """A failed turn's error."""


class IndexedText(msgspec.Struct, frozen=True):
    """One piece of a session's text, at the event that recorded it. ``part`` tells apart
    the pieces of one event (a reply's text and each of its tool calls)."""

    session_id: UUID
    version: int
    part: int
    kind: str
    tool: str
    failed: bool
    at: datetime
    text: str


class Filters(msgspec.Struct, frozen=True):
    """What narrows a search or a listing: sessions that called ``tool``, that failed
    (a failed turn, or a tool call that answered with an error) when ``failed``, that run
    ``model``, with ``status``. For a search's hits, ``tool`` and ``failed`` narrow the hits
    themselves: the text of that tool's calls and output, the failures."""

    tool: str = ""
    failed: bool = False
    model: str = ""
    status: Status | None = None

    def __bool__(self) -> bool:
        return bool(self.status) or self.reads_index

    @property
    def reads_index(self) -> bool:
        """Whether these filters need the search index (the status alone does not)."""
        return bool(self.tool or self.failed or self.model)


class Hit(msgspec.Struct, frozen=True):
    """Where a search found its words: the session, the event (``version``), what kind of
    text, the tool, and a piece of the text around the first word found."""

    session_id: UUID
    version: int
    kind: str
    tool: str
    failed: bool
    at: datetime
    snippet: str
    title: str = ""
    model: str = ""


class HitPage(msgspec.Struct, frozen=True):
    hits: list[Hit]
    offset: int
    has_more: bool


class SearchIndexView(ProjectionView[IndexedText]):
    """Where the index is kept: one implementation per event store."""

    holds_text: bool
    """False in a store encrypted at rest: rows keep their tool and failure, not their text."""

    @abc.abstractmethod
    def hits(self, words: Sequence[str], filters: Filters, limit: int, offset: int) -> list[IndexedText]:
        """Rows holding every one of ``words`` as the start of a word (any row when there
        are none), narrowed by ``filters``, of sessions not deleted; the latest recorded
        first (rows are stored in the order of the log, so the index's own order is that
        one, and the first page stops early instead of sorting every match)."""

    @abc.abstractmethod
    def session_ids(self, filters: Filters, limit: int, offset: int) -> list[UUID]:
        """Sessions not deleted that match ``filters``, the most recently updated first."""

    @abc.abstractmethod
    def tools(self) -> list[str]:
        """Every tool name the index holds, sorted."""

    @abc.abstractmethod
    def models(self) -> list[str]:
        """Every model a session not deleted runs, sorted."""


class SearchProjector(Projector[IndexedText]):
    """Folds session events that carry text into a :class:`SearchIndexView`."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID], view: SearchIndexView) -> None:
        super().__init__(recorder, mapper, view)
        self.view: SearchIndexView = view

    def wants(self, event_class: type) -> bool:
        return issubclass(
            event_class,
            Session.UserMessageAdded
            | Session.AssistantMessageAdded
            | Session.ToolResultRecorded
            | Session.TurnFailed,
        )

    def fold(self, events: Sequence[Session.Event]) -> list[IndexedText]:
        keep = self.view.holds_text
        return [row for event in events for row in rows_of(event, keep)]

    def set_aside(self, event: Session.Event, error: Exception) -> tuple[list[IndexedText], str]:
        return [], f"not searchable: event {event.originator_version} ({type(event).__name__}): {error}"


def rows_of(event: Session.Event, keep_text: bool = True) -> list[IndexedText]:
    """The index rows of one event (none for an event without text)."""

    def row(part: int, kind: str, text: str, tool: str = "", failed: bool = False) -> IndexedText:
        kept = text[:INDEXED_CHARS].replace("\x00", "\ufffd") if keep_text else ""
        return IndexedText(event.originator_id, event.originator_version, part, kind, tool, failed,
                           event.timestamp, kept)  # fmt: skip

    match event:
        case Session.UserMessageAdded():
            return [row(0, Kind.USER, event.content)]
        case Session.AssistantMessageAdded(message=AssistantMessage() as message):
            found = [row(0, Kind.ASSISTANT, message.content)] if message.content else []
            for part, call in enumerate(message.tool_calls, start=1):
                found.append(row(part, Kind.TOOL_CALL, f"{call.name} {call.arguments}", call.name))
            return found
        case Session.ToolResultRecorded():
            result = event.result
            return [row(0, Kind.TOOL_RESULT, result.output, result.name, result.is_error)]
        case Session.TurnFailed():
            text = f"{event.error_type}: {event.error}" + (f"\n{event.partial}" if event.partial else "")
            return [row(0, Kind.ERROR, text, failed=True)]
    return []


def words(query: str) -> list[str]:
    """The words of a query in lower case (as both stores fold them: ``str.casefold`` would
    make "ß" "ss", which neither does), each once, in order."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))


def snippet(text: str, found: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """A piece of ``text`` around the first of ``found`` it holds (its start without
    words), on one line, with "…" where it was cut."""
    flat = " ".join(text.split())
    folded = flat.lower()
    starts = [i for w in found if (i := _word_start(folded, w)) >= 0]
    at = min(starts) if starts else 0
    begin = max(0, at - width // 3)
    piece = flat[begin : begin + width]
    return ("…" if begin else "") + piece + ("…" if begin + width < len(flat) else "")


def _word_start(folded: str, word: str) -> int:
    match = re.search(rf"(?<![^\W_]){re.escape(word)}", folded)
    return match.start() if match else -1


class Search:
    """The index of one service's store, caught up before every query."""

    def __init__(self, service: SessionService) -> None:
        self.service = service
        self.view: SearchIndexView = service.construct_view(SEARCH_VIEWS, "SEARCH_VIEW_TOPIC")
        self.projector = SearchProjector(service.recorder, service.mapper, self.view)

    def catch_up(self) -> None:
        self.service.projector.catch_up()
        self.projector.catch_up()

    def find(self, query: str, filters: Filters, limit: int = 50, offset: int = 0) -> HitPage:
        """Hits of ``query``'s words narrowed by ``filters``, the latest first. A query
        without words lists what the filters alone select (at least one is needed)."""
        found = words(query)
        if query.strip() and not found:
            raise UnsearchableQuery("a search needs at least one word (letters or digits)")
        if len(found) > MAX_WORDS:
            raise UnsearchableQuery(f"a search takes at most {MAX_WORDS} words, not {len(found)}")
        if found and not self.view.holds_text:
            raise UnsearchableQuery(
                "this store is encrypted at rest (CIPHER_KEY), so the words of its sessions are not "
                "indexed; filter by tool, failure, model or status instead"
            )
        if not found and not filters:
            raise UnsearchableQuery("give words to search for, or a filter (tool, failed, model, status)")
        self.catch_up()
        rows = self.view.hits(found, filters, limit + 1, offset)
        summaries = self.service.summaries.get_many({r.session_id for r in rows[:limit]})
        hits = [_hit(r, found, summaries.get(r.session_id)) for r in rows[:limit]]
        return HitPage(hits, offset, len(rows) > limit)

    def sessions(self, filters: Filters, limit: int, offset: int) -> list[SessionSummary]:
        """Summaries of the sessions ``filters`` select, the most recently updated first."""
        self.catch_up()
        ids = self.view.session_ids(filters, limit, offset)
        summaries = self.service.summaries.get_many(ids)
        return [summaries[i] for i in ids if i in summaries]

    def facets(self) -> dict[str, list[str]]:
        """What the filters can choose from: the tools called, the models run."""
        self.catch_up()
        return {"tools": self.view.tools(), "models": self.view.models()}


def _hit(row: IndexedText, found: Sequence[str], summary: SessionSummary | None) -> Hit:
    return Hit(
        row.session_id, row.version, row.kind, row.tool, row.failed, row.at, snippet(row.text, found),
        title=summary.title if summary else "", model=summary.model if summary else "",
    )  # fmt: skip
