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
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from agentjournal.application.errors import ConcurrentUpdate
from agentjournal.application.service import RuntimeFactory, SessionService, StartedTurn, TurnUpdate
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


class TurnRunner:
    """Runs started turns to their end on a pool of threads, ringing the doorbell as they go.

    A turn already recorded as started is handed over as the iterator
    :meth:`SessionService.start_turn` returned; whatever happens to it ends in the log
    (the service sees to that), so a failure here is only logged.
    """

    def __init__(self, service: SessionService, runtimes: RuntimeFactory, doorbell: Doorbell,
                 workers: int = 16) -> None:  # fmt: skip
        self.service = service
        self.runtimes = runtimes
        self.doorbell = doorbell
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentjournal-turn")
        self._stopping: dict[UUID, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session_id: UUID, prompt: str) -> int:
        """Record the prompt and the turn's start now (raising why not), run the rest later.
        Returns the log version of the prompt."""
        return self._hand_over(session_id, self.service.start_turn(session_id, prompt, self.runtimes))

    def resume(self, session_id: UUID) -> int:
        """Continue a paused turn whose calls are all answered."""
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
        """Stop the turns of this process between steps; each is recorded as interrupted."""
        with self._lock:
            for stop in self._stopping.values():
                stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _hand_over(self, session_id: UUID, started: StartedTurn) -> int:
        stop = threading.Event()
        with self._lock:
            self._stopping[session_id] = stop
        self.doorbell.ring(session_id)
        self._pool.submit(self._run, session_id, started.updates, stop)
        return started.first_version

    def _run(self, session_id: UUID, updates: Iterator[TurnUpdate], stop: threading.Event) -> None:
        try:
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
            self.doorbell.ring(session_id)
