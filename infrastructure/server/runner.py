"""Turns run in the background, and streams hear of every event this process appends.

``send`` answers as soon as the prompt and the turn's start are in the log; a pool of
threads runs the rest of the turn (:class:`TurnRunner`). Everything a turn does is
in the store, so a stream never depends on this process: it reads the log. The
:class:`Doorbell` only shortens the wait of streams in this process, which would
otherwise notice new events at their next poll, as streams of other processes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from uuid import UUID

from agentjournal.application.errors import ConcurrentUpdate
from agentjournal.application.service import SessionService
from agentjournal.application.turns import RuntimeFactory, StartedTurn, TurnUpdate
from agentjournal.domain import SessionError
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.wire import USER_INTERRUPT_DETAIL

log = logging.getLogger(__name__)


class Doorbell:
    """Wakes the streams waiting on a session's log in this process.

    A stream subscribes once, then loops: :meth:`asyncio.Event.clear` its event, read
    the log, wait on the event (with a timeout, for other processes' events). A ring
    between the read and the wait leaves the event set, so none is missed. ``ring``
    may be called from any thread; waiters are asyncio tasks on ``loop``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiters: dict[UUID, set[asyncio.Event]] = {}
        self._threads = threading.Condition()

    def ring(self, session_id: UUID) -> None:
        self.loop.call_soon_threadsafe(self._wake, session_id)
        with self._threads:
            self._threads.notify_all()

    def wait(self, session_id: UUID, seconds: float) -> None:
        """For threads (a turn waiting for the client's answers): return at the next ring
        of any session, or after ``seconds``. The caller reads the log either way."""
        with self._threads:
            self._threads.wait(seconds)

    def _wake(self, session_id: UUID) -> None:
        for event in self._waiters.get(session_id, ()):
            event.set()

    @contextlib.contextmanager
    def subscription(self, session_id: UUID) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        waiters = self._waiters.setdefault(session_id, set())
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(session_id, None)


SHUTDOWN_DETAIL = "the server shut down before the turn ended"


class TurnRunner:
    """Runs started turns to their end on a set of threads, ringing the doorbell as they go.

    A turn already recorded as started is handed over as the iterator
    :meth:`SessionService.start_turn` returned; whatever happens to it ends in the log
    (the service sees to that), so a failure here is only logged. Turns wait in a queue
    for a free thread; they hold their lease meanwhile, so they are not taken for orphans.

    :meth:`shutdown` stops taking prompts (503), gives the turns running and queued a
    grace period to end, then records the end of every one still open, as interrupted:
    nothing is left ``running`` by a clean stop. The threads are daemons, so the process
    does not wait out a model call still in flight; its late steps are refused by the log.
    """

    def __init__(self, service: SessionService, runtimes: RuntimeFactory, doorbell: Doorbell,
                 workers: int = 16, grace: float = 5.0,
                 on_turn_end: Callable[[UUID], None] | None = None) -> None:  # fmt: skip
        self.service = service
        self.on_turn_end = on_turn_end
        """Called (on the turn's thread) after each turn this runner ran has ended."""
        self.runtimes = runtimes
        self.doorbell = doorbell
        self.workers = workers
        self.grace = grace
        self._queue: queue.SimpleQueue[tuple[UUID, Iterator[TurnUpdate], threading.Event] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._stopping: dict[UUID, threading.Event] = {}
        """The turn of each session this process runs or has queued, by the flag that stops it."""
        self._lock = threading.Condition()
        self._closing = False

    def start(self, session_id: UUID, prompt: str | Sequence[str]) -> int:
        """Record the prompt (or several, in order) and the turn's start now (raising why
        not), run the rest later. Returns the log version of the first prompt."""
        self._check_open()
        return self._hand_over(session_id, self.service.start_turn(session_id, prompt, self.runtimes))

    def resume(self, session_id: UUID) -> int:
        """Continue a paused turn whose calls are all answered."""
        self._check_open()
        return self._hand_over(session_id, self.service.start_continuing(session_id, self.runtimes))

    def interrupt(self, session_id: UUID) -> int:
        """Record the turn as interrupted (from any process), and stop it here if it runs
        here. Returns the log version that records it."""
        with self._lock:
            stop = self._stopping.get(session_id)
        if stop is not None:
            stop.set()
        version = self.service.interrupt(session_id, USER_INTERRUPT_DETAIL)
        self.doorbell.ring(session_id)
        return version

    def shutdown(self) -> None:
        """Stop taking turns, wait up to :attr:`grace` seconds for those running and queued,
        then record each one still open as interrupted and stop it."""
        deadline = time.monotonic() + self.grace
        with self._lock:
            self._closing = True
            while self._stopping and self._lock.wait(max(0.0, deadline - time.monotonic())):
                pass
            left = dict(self._stopping)
        for session_id, stop in left.items():
            stop.set()
            self._close(session_id)
        # Their leases are released now: a beat finds them lost at once, and the turns'
        # tools' processes are ended instead of outliving the turns.
        self.service.heartbeat.beat()
        for _ in self._threads:
            self._queue.put(None)

    def _check_open(self) -> None:
        if self._closing:
            raise ApiError(503, "the server is shutting down and takes no new turns; retry on another server")

    def _close(self, session_id: UUID) -> None:
        """Record the end of a turn this process will not run to its end."""
        with contextlib.suppress(SessionError, ConcurrentUpdate):
            self.service.interrupt(session_id, SHUTDOWN_DETAIL)
        self.doorbell.ring(session_id)

    def _hand_over(self, session_id: UUID, started: StartedTurn) -> int:
        stop = threading.Event()
        with self._lock:
            closing = self._closing
            if not closing:
                self._stopping[session_id] = stop
                if len(self._threads) < self.workers:
                    thread = threading.Thread(target=self._work, name="agentjournal-turn", daemon=True)
                    self._threads.append(thread)
                    thread.start()
        if closing:  # the shutdown began while the start was being recorded
            self._close(session_id)
            close: Callable[[], None] | None = getattr(started.updates, "close", None)
            if close is not None:
                close()
            return started.first_version
        self.doorbell.ring(session_id)
        self._queue.put((session_id, started.updates, stop))
        return started.first_version

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            self._run(*item)

    def _run(self, session_id: UUID, updates: Iterator[TurnUpdate], stop: threading.Event) -> None:
        try:
            if not stop.is_set():
                for _ in updates:
                    self.doorbell.ring(session_id)
                    if stop.is_set():
                        break
        except ConcurrentUpdate:
            # Another process wrote to the log first: an interrupt, or a recovery that
            # took this turn for dead. The log says which; this turn stops here.
            log.info("session %s: the turn stopped, its log moved on elsewhere", session_id)
        except Exception:  # noqa: BLE001 - recorded in the log as the turn's failure
            log.warning("session %s: the turn failed", session_id, exc_info=True)
        finally:
            close: Callable[[], None] | None = getattr(updates, "close", None)
            if close is not None:
                close()  # a turn left early is recorded as interrupted
            with self._lock:
                if self._stopping.get(session_id) is stop:
                    del self._stopping[session_id]
                self._lock.notify_all()
            self.doorbell.ring(session_id)
            self._turn_ended(session_id)

    def _turn_ended(self, session_id: UUID) -> None:
        if self.on_turn_end is None:
            return
        try:
            self.on_turn_end(session_id)
        except Exception:  # noqa: BLE001 - telemetry must never fail a turn
            log.warning("session %s: the turn's telemetry failed", session_id, exc_info=True)
