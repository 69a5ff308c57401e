"""A page of a session's API events, read from where it starts: a page costs its own size.

An API event id names a log position (:func:`~.wire.event_id`), so a cursor says which
log version a page starts at, and the store reads the log from any version on (a ranged
read: ``gt`` and ``limit``). What a position alone does not give is the projector's
memory of what came before it (the session's config, the calls still open, see
:class:`~.wire.WireProjector`). That memory is small and only ever true of its version,
since the log never changes, so it is kept: *checkpoints*, copies of a projector fed up
to some version, per session, for the sessions listed most recently.

- A page that ends keeps the projector as it stood just before the event its cursor
  names, so the next page (from this process) reads the log from that event on, and no
  further than its own events.
- Every read keeps a projector at each multiple of an interval it passes; when a session
  has more than :data:`MAX_PERIODIC` of them, every other one goes and the interval
  doubles, so a long session's checkpoints stay few and evenly spread. They let a page
  ``desc`` (newest first) read from the nearest one below it, and a cursor this process
  never issued (another server's, or one whose checkpoint was dropped) start from there.

With no checkpoint below a page (the first read of a session in a process), the log is
read from its start once, in ranges, keeping checkpoints on the way and never more than
a page of API events: memory stays the size of a page and a read range, however long the
log. Time filters compare the log event's own timestamp; no text is parsed.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from uuid import UUID

from agentjournal.infrastructure.server.wire import ApiEvent, WireProjector

Position = tuple[int, int]
"""(log version, index among that version's API events): where an API event stands."""

FIRST_INTERVAL = 256
"""A new session's checkpoints are kept every this many versions (until there are too many)."""
MAX_PERIODIC = 128
"""The most evenly spread checkpoints kept of one session; past this the interval doubles."""
MAX_RESUMES = 16
"""The most page-end checkpoints kept of one session (the most recently used stay)."""
RESUME_SLACK = 64
"""How many API events before a page's end its reader starts copying the projector."""
MAX_READ = 1000
"""The most log events one ranged read returns; the first read of a page asks for fewer."""


class EventSource(Protocol):
    """The store's ranged read of a session's log, oldest first (eventsourcing's
    ``EventStore.get``, or :class:`~agentjournal.infrastructure.stores.log_rows.RangedLog`)."""

    def get(self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None,
            limit: int | None = None) -> Iterator[Any]: ...  # fmt: skip


Keeps = Callable[[ApiEvent, Any], bool] | None
"""Whether a page shows an API event, given it and its log event (for the log's timestamp);
None when it shows every one (no call made per event)."""


class Checkpoints:
    """Projectors of one session, each a copy fed up to some version; see the module."""

    def __init__(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.interval = FIRST_INTERVAL
        self.periodic: dict[int, WireProjector] = {}
        self.resumes: OrderedDict[int, WireProjector] = OrderedDict()
        self.lock = threading.Lock()

    def below(self, version: int | None) -> WireProjector:
        """A projector to feed from, fed up to the highest kept version below ``version``
        (any, when None), or a new one: a copy, the kept one stays as it was."""
        with self.lock:
            kept = [v for v in (*self.periodic, *self.resumes) if version is None or v < version]
            if not kept:
                return WireProjector(self.session_id)
            best = max(kept)
            if best in self.resumes:
                self.resumes.move_to_end(best)
                return self.resumes[best].copy()
            return self.periodic[best].copy()

    def passed(self, projector: WireProjector) -> None:
        """Keep ``projector`` if its version is one the interval keeps (it is called after
        every event fed, so the usual case is one remainder and nothing else)."""
        version = projector.version
        if version % self.interval:
            return
        with self.lock:
            if version % self.interval or version in self.periodic:
                return
            self.periodic[version] = projector.copy()
            while len(self.periodic) > MAX_PERIODIC:
                self.interval *= 2
                self.periodic = {v: p for v, p in self.periodic.items() if v % self.interval == 0}

    def resume_at(self, projector: WireProjector) -> None:
        """Keep ``projector`` (already a copy nobody feeds) where a page's successor starts."""
        with self.lock:
            self.resumes[projector.version] = projector
            self.resumes.move_to_end(projector.version)
            while len(self.resumes) > MAX_RESUMES:
                self.resumes.popitem(last=False)


class SessionCheckpoints:
    """The checkpoints of the sessions listed most recently (``keep`` of them)."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._sessions: OrderedDict[UUID, Checkpoints] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, session_id: UUID) -> Checkpoints:
        with self._lock:
            found = self._sessions.pop(session_id, None) or Checkpoints(session_id)
            self._sessions[session_id] = found
            while len(self._sessions) > self.keep:
                self._sessions.popitem(last=False)
            return found


def log_after(events: EventSource, session_id: UUID, version: int, until: int | None = None,
              size: Callable[[int], int] = lambda _read: MAX_READ) -> Iterator[Any]:  # fmt: skip
    """The session's log events after ``version`` (up to ``until``, if given), in ranged
    reads; ``size`` says how many the next read asks for, given how many were read so far
    (at most :data:`MAX_READ`), so a reader that stops early has read little past it."""
    read = 0
    while until is None or version < until:
        wanted = max(1, min(size(read), MAX_READ))
        got = list(events.get(session_id, gt=version, lte=until, limit=wanted))
        yield from got
        read += len(got)
        if len(got) < wanted:
            return
        version = got[-1].originator_version


def page_forward(events: EventSource, checkpoints: Checkpoints, keeps: Keeps, after: Position | None,
                 limit: int) -> tuple[list[ApiEvent], bool]:  # fmt: skip
    """Up to ``limit`` API events past ``after`` (from the first, when None) that ``keeps``
    keeps, oldest first, and whether more follow."""
    projector = checkpoints.below(after[0] if after else 1)
    found: list[ApiEvent] = []
    resume: WireProjector | None = None

    def size(read: int) -> int:
        """As many log events as the page still misses API events, at the rate read so far
        (twice as many as last time while none was found)."""
        missing = limit + 1 - len(found)
        if not read:
            return missing
        return math.ceil(missing * read / len(found)) + 1 if found else 2 * read

    for event in log_after(events, checkpoints.session_id, projector.version, size=size):
        # The state before the log event that holds the page's last API event is where the
        # next page starts; it is copied only near the page's end (an event that projects
        # more than RESUME_SLACK API events may leave the next page an earlier checkpoint).
        before = projector.copy() if limit - RESUME_SLACK <= len(found) < limit else None
        for version, index, body in projector.project(event):
            if (after is None or (version, index) > after) and (keeps is None or keeps(body, event)):
                found.append(body)
        checkpoints.passed(projector)
        if before is not None and len(found) >= limit:
            resume = before  # the page's last event is this log event's: the next page starts here
        if len(found) > limit:
            break
    if resume is not None:
        checkpoints.resume_at(resume)
    return found[:limit], len(found) > limit


def page_backward(events: EventSource, checkpoints: Checkpoints, keeps: Keeps, before: Position | None,
                  limit: int) -> tuple[list[ApiEvent], bool]:  # fmt: skip
    """Up to ``limit`` API events before ``before`` (from the last, when None) that ``keeps``
    keeps, newest first, and whether more precede them.

    The log is read forward (a projector only goes forward) in windows, each from the
    nearest checkpoint below the last window's start; of each window only its newest
    events still wanted are held."""
    found: list[ApiEvent] = []
    until = before[0] if before else None
    while len(found) <= limit and (until is None or until >= 1):
        projector = checkpoints.below(until)
        start = projector.version
        window: deque[ApiEvent] = deque(maxlen=limit + 1 - len(found))
        for event in log_after(events, checkpoints.session_id, start, until):
            for version, index, body in projector.project(event):
                if (before is None or (version, index) < before) and (keeps is None or keeps(body, event)):
                    window.append(body)
            checkpoints.passed(projector)
        found.extend(reversed(window))
        if start == 0:
            break
        until = start
    return found[:limit], len(found) > limit
