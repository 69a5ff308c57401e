"""Recovery: no turn stays ``running`` when nobody runs it.

A turn whose runner died (a crash, ``kill -9``, a lost machine) leaves its session
``running`` in the log, with a lease (:mod:`~agentjournal.application.leases`) that stops
being renewed. :class:`Recovery` finds such sessions and closes their turns: recorded as
interrupted, naming the runner that was lost, each tool call left open answered with an
error result ("not run") so it is never run a second time and the history stays valid
input for the next model call. Streams reading the log then see the turn end like any
other.

A turn paused for a self-hosted environment's worker holds no lease (it runs nowhere);
it is closed when no worker served its work item for the queue's ``worker_wait``.

Any live process can sweep; several sweeping at once race like any two writers (the log
takes one closing record, the other gets ``ConcurrentUpdate`` and moves on). A server
sweeps when it starts and every half lease period while it runs, so a crashed server's
sessions are idle again within two lease periods, whether it is restarted or another
server on the same store is already running. The Python API recovers a session itself
before it runs the session's next turn (:meth:`SessionService.recover`).

A turn that is closed is not continued: whoever recovers it may lack what the turn ran
with (the model's key, the callbacks of the process that started it), and a client
resending its prompt is simple and visible, where a turn continued by an unseen process
would not be.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import UUID

from agentjournal.application.errors import ConcurrentUpdate
from agentjournal.application.leases import turn_lease_name
from agentjournal.application.service import SessionService
from agentjournal.application.work_queue import WorkConflict
from agentjournal.domain import SessionError, Status

log = logging.getLogger(__name__)

PAGE = 500
"""Running sessions read from the summaries at a time."""


class Recovery:
    """Closes the turns whose runner is gone, on demand (:meth:`sweep`) or from a thread
    (:meth:`start`). ``on_closed`` hears of each session whose turn it closed."""

    def __init__(self, service: SessionService, on_closed: Callable[[UUID], None] = lambda _id: None) -> None:
        self.service = service
        self.on_closed = on_closed
        self.interval = service.lease_seconds / 2
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> list[UUID]:
        """Close every orphaned turn in the store now; the sessions closed."""
        closed = []
        for session_id in self._suspects():
            try:
                session = self.service.get_session(session_id)
                if self.service.recover(session):
                    closed.append(session_id)
                    self.on_closed(session_id)
            except (ConcurrentUpdate, SessionError):
                continue  # another process closed it, or a turn began meanwhile
        return closed + self._close_unserved()

    def _close_unserved(self) -> list[UUID]:
        """Close the turns that wait for a self-hosted worker none of which came (or took
        over from a lost one) within the queue's ``worker_wait``, and stop their work."""
        work = self.service.work
        closed = []
        for item in work.unserved_since(work.worker_wait):
            session_id = UUID(item.session_id)
            try:
                if self.service.get_session(session_id).pending_remote:
                    why = f"no worker of its self-hosted environment served it within {work.worker_wait:g} s"
                    self.service.interrupt(session_id, why)
                    closed.append(session_id)
                    self.on_closed(session_id)
                work.stop(item.environment_id, item.id, force=True)
            except (ConcurrentUpdate, SessionError, WorkConflict):
                continue  # answered, closed or stopped meanwhile
        return closed

    def _suspects(self) -> list[UUID]:
        """Sessions the summaries show running whose lease is not live (one query for the
        leases of a page of them); each is checked again on its log before it is closed."""
        service = self.service
        service.projector.catch_up()
        suspects: list[UUID] = []
        offset = 0
        while True:
            running = [s.id for s in service.summaries.list(status=Status.RUNNING, limit=PAGE, offset=offset)]
            if not running:
                return suspects
            leases = service.leases.find([turn_lease_name(i) for i in running])
            now = service.leases.now()
            for session_id in running:
                lease = leases.get(turn_lease_name(session_id))
                if lease is None or lease.expires_at <= now or service.holder_is_gone(lease):
                    suspects.append(session_id)
            offset += PAGE

    def start(self) -> None:
        """Sweep now and then every half lease period, from a thread, until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="agentjournal-recovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while True:
            try:
                closed = self.sweep()
                if closed:
                    log.warning("closed the turns of %d sessions whose runner was lost", len(closed))
            except Exception:  # noqa: BLE001 - a store away for a sweep is tried at the next
                log.warning("could not sweep for orphaned turns", exc_info=True)
            if self._stop.wait(self.interval):
                return
