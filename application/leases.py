"""Leases: who runs a session's turn, and whether they still do.

The log says *that* a turn runs (``TurnStarted`` ... no end yet) and who started it; it
cannot say whether that runner is still alive, and a heartbeat is not history. So beside
the log, in the same store, each running turn has a **lease**: a named row with a holder,
a token and an expiry, renewed by heartbeats while the turn runs.

- **Taken and released with the log.** The lease of turn ``turn:<session>`` is granted in
  the transaction that records ``TurnStarted`` or ``TurnResumed`` and released in the one
  that records how the turn ended (completed, paused for the client, failed, interrupted,
  terminated), whoever records it. The log's own optimistic concurrency is what makes one
  runner the only one: only one process can append the turn's start at a given version,
  so the grant needs no compare-and-set of its own. Its token is that event's version,
  unique for the session, which fences an older runner's heartbeats out of a newer lease.
- **Renewed by heartbeats** (:class:`Heartbeat`): one thread per process renews every lease
  the process holds each third of a period, as a compare-and-set on (name, token) that
  fails once the lease was released, re-granted or let expire. A runner that loses its
  lease is told, stops between steps and ends the processes its tools started: it cannot
  keep acting on a turn someone else may be closing.
- **Expired means orphaned.** A session whose log shows a turn running and whose lease is
  absent (a log written before leases) or expired is closed by any live process
  (:mod:`~agentjournal.application.recovery`), within two lease periods of the crash.

A turn paused for the client (custom tools, confirmations) is not running: it holds no
lease, and nothing expires while the client takes its time.

The store adapters implement :class:`Leases` and apply a :class:`LeaseChange` handed to the
recorder with the events (eventsourcing passes a save's keyword arguments down to the
recorder, as it does for a process application's tracking record).
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

import msgspec

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 10.0
"""How long a turn's lease lasts without a heartbeat. A crashed runner's turns are closed
within two periods (an expiry, then the next sweep), so about 20 s at this default."""

LEASE_SECONDS_SETTING = "AGENTJOURNAL_LEASE_SECONDS"
"""The store setting (environment variable) that overrides :data:`DEFAULT_LEASE_SECONDS`."""


class Lease(msgspec.Struct, frozen=True):
    """A lease as the store holds it. ``expires_at`` is in seconds since the epoch by the
    store's clock (PostgreSQL's own, so servers on several hosts agree); 0 once released."""

    name: str
    holder: str
    token: int
    expires_at: float


class LeaseChange(msgspec.Struct, frozen=True):
    """What a save does to a lease in the transaction of its events: grant it to ``holder``
    with ``token`` for ``seconds`` (replacing whatever was there), or release it
    (``seconds`` 0)."""

    name: str
    holder: str = ""
    token: int = 0
    seconds: float = 0.0

    @property
    def releases(self) -> bool:
        return self.seconds <= 0


class Leases(Protocol):
    """The port the store adapters implement (beside :class:`LeaseChange`, which their
    recorders apply with the events)."""

    def renew(self, held: Sequence[Lease], seconds: float) -> list[Lease]:
        """Extend each of ``held`` that is still the store's (same name and token, not
        released, not expired) to ``seconds`` from now, in one transaction; returns those
        renewed, with their new expiry."""
        ...

    def find(self, names: Sequence[str]) -> dict[str, Lease]:
        """The stored leases among ``names`` (live, expired or released), by name."""
        ...

    def now(self) -> float:
        """The store's clock, in seconds since the epoch, as expiries are measured."""
        ...


def turn_lease_name(session_id: UUID) -> str:
    return f"turn:{session_id.hex}"


def new_holder() -> str:
    """A new lease holder's name: host, process id and a random part (a process id is
    reused after a restart; a holder never is)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_gone(holder: str) -> bool:
    """Whether ``holder`` certainly runs nothing any more: it named a process of this host
    that has exited. (A live process of that id may be another; then only the lease's
    expiry can tell.) Lets a crash on this host be recovered at once."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


_HOST = platform.node()


class Heartbeat:
    """Renews the leases this process holds, from one thread, every third of a period.

    ``hold`` registers a lease with a callback for its loss and returns a handle; ``drop``
    forgets it by that handle (its turn ended, and the save that recorded the end released
    it). Two turns racing to start one session both hold the lease they plan to be granted
    (the same name and token) until one of them wins, so holds are told apart by handle. A renewal the store refuses
    means the lease is lost: the callback runs (on the heartbeat thread) and the lease is
    forgotten. A store that cannot be reached is retried at the next beat; the lease then
    runs out on its own if the store stays away, as it must, since another process may be
    unable to reach this one either.
    """

    def __init__(self, leases: Leases, seconds: float) -> None:
        self.holder = new_holder()
        """Whom the leases this heartbeat renews are granted to."""
        self.leases = leases
        self.seconds = seconds
        self._held: dict[int, tuple[Lease, Callable[[], None]]] = {}
        self._handles = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease, on_lost: Callable[[], None]) -> int:
        with self._lock:
            handle = next(self._handles)
            if self._closed:
                return handle
            self._held[handle] = (lease, on_lost)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="agentjournal-heartbeat", daemon=True)
                self._thread.start()
            return handle

    def drop(self, handle: int) -> None:
        with self._lock:
            self._held.pop(handle, None)

    def holds(self, name: str) -> bool:
        """Whether a turn of this process holds lease ``name`` (by any token: a turn's
        start may be saved under a later token than planned)."""
        with self._lock:
            return any(lease.name == name for lease, _ in self._held.values())

    def close(self) -> None:
        """Stop beating (the process is shutting down; what it held runs out)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.seconds)

    def beat(self) -> None:
        """Renew everything held now (the thread does this every third of a period)."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        try:
            renewed = {(lease.name, lease.token) for lease in self.leases.renew(
                list({(lease.name, lease.token): lease for lease, _ in held.values()}.values()),
                self.seconds)}  # fmt: skip
        except Exception:  # noqa: BLE001 - a store away for a beat is retried at the next
            log.warning("could not renew %d turn leases", len(held), exc_info=True)
            return
        for handle, (lease, on_lost) in held.items():
            if (lease.name, lease.token) in renewed:
                continue
            with self._lock:
                still_held = self._held.pop(handle, None) is not None
            if still_held:
                log.warning("lost the lease %s (token %d)", lease.name, lease.token)
                on_lost()

    def _beat(self) -> None:
        while not self._wake.wait(self.seconds / 3):
            self.beat()
