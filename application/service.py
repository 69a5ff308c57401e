"""``SessionService``: the application that keeps agent sessions in an event store.

It loads a :class:`~agentjournal.domain.Session`, issues commands to it, and saves the new
events as they happen, so a crash loses at most the step in flight. Its named parts:

- the turn loop (:mod:`~agentjournal.application.turns`), which runs a session's turns
  with the model and the compute handed in per turn, deciding each tool call by the
  :mod:`~agentjournal.application.tool_policy`;
- leases (:mod:`~agentjournal.application.leases`): who runs a turn, granted and released
  in the transactions that record its start and end (:meth:`SessionService.save_session`),
  and :mod:`~agentjournal.application.recovery`, which closes a turn whose runner is gone;
- what is recorded of the caller's input (:mod:`~agentjournal.application.recording`) and
  the client's answers to a paused turn (:mod:`~agentjournal.application.answers`);
- the work folder (:mod:`~agentjournal.application.workspace`) and the snapshots
  (:mod:`~agentjournal.application.snapshots`).

Queries about many sessions go to the summary projection instead of replaying logs.
"""

from __future__ import annotations

import functools
import os
import random
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Repository
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InternalError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from agentjournal.application.adapters import release_binding
from agentjournal.application.answers import (
    Step,
    answer_tool_call,
    check_steps,
    confirm_tool_call,
    record_worker_result,
)
from agentjournal.application.errors import (
    SESSION_ID_PREFIX,
    AmbiguousSessionId,
    ConcurrentUpdate,
    SessionNotFound,
    StoreError,
    VersionNotFound,
    parse_session_id,
)
from agentjournal.application.leases import (
    DEFAULT_LEASE_SECONDS,
    LEASE_SECONDS_SETTING,
    Heartbeat,
    Lease,
    LeaseChange,
    Leases,
    holder_is_gone,
    turn_lease_name,
)
from agentjournal.application.memory_stores import memory_quota
from agentjournal.application.paging import Page, check_limit, decode_cursor, paged
from agentjournal.application.ports import (
    BlobStore,
    MemoryContents,
)
from agentjournal.application.projection import (
    SessionProjector,
    SessionQuery,
    SessionSummary,
    SessionSummaryView,
)
from agentjournal.application.recording import given_or_default, recordable_config
from agentjournal.application.redaction import Redactor
from agentjournal.application.search import Search
from agentjournal.application.snapshots import ChunkedRepository, SessionSnapshots
from agentjournal.application.turns import Answered, RuntimeFactory, StartedTurn, TurnLoop, TurnUpdate
from agentjournal.application.work_queue import (
    DEFAULT_WORK_LEASE_SECONDS,
    DEFAULT_WORKER_WAIT_SECONDS,
    WORK_LEASE_SECONDS_SETTING,
    WORK_STORES,
    WORKER_WAIT_SECONDS_SETTING,
    WorkQueue,
)
from agentjournal.application.workspace import Files
from agentjournal.domain import (
    ComputeBinding,
    Session,
    SessionConfig,
    Status,
    leaves_turns_alone,
)
from agentjournal.domain.chain import payload_of

TURN_BEGINNINGS = (Session.TurnStarted, Session.TurnResumed)
"""Events that grant the turn's lease to whoever records them."""
TURN_ENDINGS = (Session.TurnCompleted, Session.TurnFailed, Session.SessionTerminated)
"""Events that release the turn's lease (a pause for the client is a ``TurnCompleted``)."""

STORE_ENV = "AGENTJOURNAL_HOME"
TRANSCODER = "agentjournal.infrastructure.stores.transcoder:MsgspecTranscoder"
FACTORIES = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.sqlite:SQLiteFactory",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.postgres:PostgresFactory",
}
"""Our factories in place of eventsourcing's, by persistence module: a new SQLite file gets
pages sized for its rows; PostgreSQL skips the DDL when the tables exist."""
BLOB_STORES = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.blobs.sqlite:SQLiteBlobStore",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.blobs.postgres:PostgresBlobStore",
}
MEMORY_CONTENTS = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.memory_contents.sqlite:SQLiteMemoryContents",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.memory_contents.postgres:PostgresMemoryContents",
}
LEASE_STORES = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.leases.sqlite:SQLiteLeases",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.leases.postgres:PostgresLeases",
}
SUMMARY_VIEWS = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.readmodel.sqlite:SQLiteSessionSummaries",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.readmodel.postgres:PostgresSessionSummaries",
}


def data_home() -> Path:
    """Where agentjournal keeps its files: ``$AGENTJOURNAL_HOME``, else the XDG data folder."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(xdg) / "agentjournal"


class AuditEntry(msgspec.Struct, frozen=True):
    """One event of a session's log, for people and tools to read."""

    session_id: UUID
    version: int
    type: str
    timestamp: datetime
    payload: dict[str, Any]


def project_session(session: Session | None, events: Iterable[Any]) -> Session | None:
    """Fold events into a session. eventsourcing's default projector also checks each
    event against a runtime Protocol, which costs more than applying it."""
    for event in events:
        session = event.mutate(session)
    return session


LiveT = TypeVar("LiveT")


class SessionService(Application[UUID]):
    """Creates, runs, replays and forks sessions."""

    name = "agentjournal"
    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "TRANSCODER_TOPIC": TRANSCODER,
        "MAPPER_TOPIC": "agentjournal.infrastructure.stores.mapper:TypedMapper",
        "SQLITE_LOCK_TIMEOUT": "30",
        # No connection opened before the first query needs one (eventsourcing's default opens
        # five): one for a process that uses the store from one thread at a time, more only
        # while threads wait for one, up to POSTGRES_MAX_OVERFLOW.
        "POSTGRES_POOL_SIZE": "0",
    }
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Session: 100}
    """A session's state is kept as a snapshot each time its log passes a multiple of this
    many events (see :mod:`~agentjournal.application.snapshots`: each one holds what changed
    since the one before, so together they hold each message once)."""
    working_copies = 64
    """How many sessions to keep in memory between turns (each is brought up to date
    with the events other processes appended before it is used again)."""

    store_races = (InternalError, IntegrityError, OperationalError, sqlite3.OperationalError)
    """What two processes opening a store at the same moment can get (see ``store_attempts``)."""

    store_attempts = 6
    """Opening a store runs DDL (on PostgreSQL only when a table is missing), which can race
    another process opening it at the same moment: PostgreSQL fails such DDL ("tuple
    concurrently updated", a duplicate catalog entry), and SQLite reports a new file "locked"
    while another process switches it to WAL mode, a lock its busy timeout does not wait for.
    Such a race is retried this many times."""

    def __init__(self, env: EnvType | None = None) -> None:
        for attempt in range(1, self.store_attempts + 1):
            try:
                super().__init__(env)
                self.summaries: SessionSummaryView = self.construct_view(SUMMARY_VIEWS, "SUMMARY_VIEW_TOPIC")
                self.blobs: BlobStore = self.construct_view(BLOB_STORES, "BLOB_STORE_TOPIC")
                break
            except self.store_races as e:
                if getattr(self, "factory", None) is not None:
                    self.factory.close()
                if attempt == self.store_attempts:
                    raise StoreError(f"cannot open the session store: {e}") from e
                time.sleep(random.uniform(0.05, 0.2) * attempt)
            except (PersistenceError, sqlite3.DatabaseError) as e:
                where = self.env.get("SQLITE_DBNAME") or self.env.get("POSTGRES_DBNAME") or "the store"
                raise StoreError(f"cannot use {where} as a session store: {e}") from None
        self.session_snapshots = (
            SessionSnapshots(self.snapshots.recorder, self.mapper) if self.snapshots else None
        )
        self.leases: Leases = self.construct_view(LEASE_STORES, "LEASES_TOPIC")
        self.lease_seconds = float(self.env.get(LEASE_SECONDS_SETTING) or DEFAULT_LEASE_SECONDS)
        self.heartbeat = Heartbeat(self.leases, self.lease_seconds)
        self.work = WorkQueue(
            self.construct_view(WORK_STORES, "WORK_STORE_TOPIC"),
            float(self.env.get(WORK_LEASE_SECONDS_SETTING) or DEFAULT_WORK_LEASE_SECONDS),
            float(self.env.get(WORKER_WAIT_SECONDS_SETTING) or DEFAULT_WORKER_WAIT_SECONDS),
        )
        self.memory_quota = memory_quota(self.env)
        """The most every memory store's live memories may hold (see
        :func:`~agentjournal.application.memory_stores.memory_quota`)."""
        self.working: OrderedDict[UUID, Session] = OrderedDict()
        """Sessions kept in memory between turns (see :attr:`working_copies`)."""
        self.turns = TurnLoop(self)
        self.projector = SessionProjector(self.recorder, self.mapper, self.summaries)

    def construct_repository(self) -> Repository[UUID]:
        return ChunkedRepository(event_store=self.events, snapshot_store=self.snapshots)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Take a chunk of each session whose events just saved passed a multiple of the
        interval, from the session in memory (eventsourcing's own reloads it from the store,
        and keeps the whole state each time)."""
        interval = self.snapshotting_intervals.get(Session)
        if self.session_snapshots is None or not interval:
            return
        for session in processing_event.aggregates.values():
            if not isinstance(session, Session):
                continue
            versions = [
                e.originator_version for e in processing_event.events if e.originator_id == session.id
            ]
            if versions and (min(versions) - 1) // interval < max(versions) // interval:
                try:
                    self.session_snapshots.take(session)
                except Exception as e:
                    # The events are saved: a chunk only spares a later load some folding, and
                    # the next one continues the latest that was stored. Whatever stops it (a
                    # store that refuses it, a state that cannot be encoded), a step must not
                    # fail for it.
                    import logging

                    logging.getLogger(__name__).warning(
                        "no snapshot of session %s at event %d: %s: %s",
                        session.id, session.version, type(e).__name__, e,
                    )  # fmt: skip

    def live(self, aggregate_id: UUID, kind: type[LiveT]) -> LiveT | None:
        """The aggregate with this id when it is a ``kind`` its owner has not deleted; None
        for anything else (no such id, another kind of aggregate, deleted): how the catalog
        parts (agents, environments, vaults, files, memory stores) look one up."""
        try:
            found: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(found, kind) or getattr(found, "deleted", False):
            return None
        return found

    def take_snapshot(
        self, aggregate_id: UUID, version: int | None = None, projector_func: Any = None
    ) -> None:
        """Take a chunk of the session as of ``version`` (default: now), whatever the
        interval; any other aggregate is snapshotted as eventsourcing does."""
        aggregate = self.repository.get(aggregate_id, version=version, projector_func=project_session)
        if self.session_snapshots is None or not isinstance(aggregate, Session):
            super().take_snapshot(aggregate_id, version)
            return
        self.session_snapshots.take(aggregate)

    def construct_env(self, name: str, env: EnvType | None = None) -> Any:
        environment = super().construct_env(name, env)
        module = environment.get("PERSISTENCE_MODULE")
        if module == "eventsourcing.sqlite" and not environment.get("SQLITE_DBNAME"):
            home = data_home()
            home.mkdir(parents=True, exist_ok=True)
            environment["SQLITE_DBNAME"] = str(home / "sessions.db")
        return environment

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        """eventsourcing's factory for the persistence module, or ours where ``FACTORIES``
        names one (by topic, so this layer imports no adapter)."""
        topic = FACTORIES.get(env.get("PERSISTENCE_MODULE") or "")
        if topic is None:
            return super().construct_factory(env)
        factory: InfrastructureFactory[Any] = resolve_topic(topic)(env)
        return factory

    def construct_view(self, topics: Mapping[str, str], setting: str) -> Any:
        """A read model's view in this store's database: the class named by the ``setting``
        environment variable, or the one ``topics`` names for the persistence module."""
        module = self.env.get("PERSISTENCE_MODULE") or ""
        topic = self.env.get(setting) or topics.get(module)
        if topic is None:
            msg = f"no read model for persistence module {module!r}; use one of {sorted(topics)} or set {setting}"
            raise ValueError(msg)
        view_class = resolve_topic(topic)
        return view_class(self.factory.datastore, self.mapper.cipher)  # type: ignore[attr-defined]

    # -- commands -------------------------------------------------------------------

    def create_session(self, config: SessionConfig, title: str = "", redact: Redactor | None = None) -> UUID:
        """A new session. Its config and title are redacted like everything else recorded."""
        redact = given_or_default(redact)
        session = Session.start(recordable_config(config, redact), redact(title))
        self.save_session(session)
        return session.id

    def change_config(self, session_id: UUID, config: SessionConfig, redact: Redactor | None = None) -> None:
        """Record a deliberate change of what governs the session (model, system prompt,
        tools, bounds ...). The caller has checked it like a new session's config."""
        session = self.get_session(session_id)
        session.change_config(recordable_config(config, given_or_default(redact)))
        self.save_session(session)

    def set_title(self, session_id: UUID, title: str, redact: Redactor | None = None) -> None:
        session = self.get_session(session_id)
        session.set_title(given_or_default(redact)(title))
        self.save_session(session)

    def fork(self, session_id: UUID, at_version: int | None = None) -> UUID:
        """A new session whose history is this one's up to ``at_version`` (default: now)."""
        fork = self.get_session(session_id, at_version).fork()
        self.save_session(fork)
        return fork.id

    def fast_forward(self, session: Session) -> Session:
        """The kept copy, with whatever other processes appended since."""
        newer = self.events.get(session.id, gt=session.version)
        return project_session(session, newer) or session

    def keep(self, session: Session) -> None:
        """Keep a session whose events are all saved, for its next turn."""
        self.working[session.id] = session
        while len(self.working) > self.working_copies:
            self.working.popitem(last=False)

    def recover(self, session: Session) -> bool:
        """Close a turn nobody runs any more (its lease ran out: a crash), so the session is
        usable again. Returns True when a turn was closed."""
        why = self.orphaned(session)
        if why is None:
            return False
        session.interrupt_turn(why)
        self.save_session(session)
        return True

    def orphaned(self, session: Session) -> str | None:
        """Why the turn the session shows running has nobody running it, or None when it is
        not running or its runner's lease is live."""
        if session.status != Status.RUNNING:
            return None
        name = turn_lease_name(session.id)
        lease = self.leases.find([name]).get(name)
        if lease is None:
            return f"runner lost: {session.worker or 'the runner'} left no lease"
        if lease.expires_at > self.leases.now():
            if self.holder_is_gone(lease):
                return f"runner lost: {lease.holder} no longer runs the turn"
            return None
        if lease.expires_at == 0:
            return f"runner lost: {lease.holder} released its lease without recording the turn's end"
        return f"runner lost: {lease.holder} stopped renewing its lease"

    def holder_is_gone(self, lease: Lease) -> bool:
        """Whether a lease that has not expired is certainly held by nobody: its holder is
        this service, which no longer runs that turn, or a process of this host that exited
        (a crash here need not wait out the lease)."""
        if lease.holder == self.heartbeat.holder:
            return not self.heartbeat.holds(lease.name)
        return holder_is_gone(lease.holder)

    def is_abandoned(self, session: Session) -> bool:
        """Whether the session shows a turn running that nobody runs any more (see
        :meth:`orphaned`). The next turn closes it first (:meth:`recover`)."""
        return self.orphaned(session) is not None

    def restore_files(self, session_id: UUID, version: int, runtime_for: RuntimeFactory) -> int:
        """See :meth:`TurnLoop.restore_files`."""
        return self.turns.restore_files(session_id, version, runtime_for)

    def run_turn(self, session_id: UUID, prompt: str, runtime_for: RuntimeFactory) -> Iterator[TurnUpdate]:
        """See :meth:`TurnLoop.run_turn`."""
        return self.turns.run_turn(session_id, prompt, runtime_for)

    def continue_turn(self, session_id: UUID, runtime_for: RuntimeFactory) -> Iterator[TurnUpdate]:
        """See :meth:`TurnLoop.continue_turn`."""
        return self.turns.continue_turn(session_id, runtime_for)

    def start_turn(
        self, session_id: UUID, prompt: str | Sequence[str], runtime_for: RuntimeFactory
    ) -> StartedTurn:
        """See :meth:`TurnLoop.start_turn`."""
        return self.turns.start_turn(session_id, prompt, runtime_for)

    def start_continuing(self, session_id: UUID, runtime_for: RuntimeFactory) -> StartedTurn:
        """See :meth:`TurnLoop.start_continuing`."""
        return self.turns.start_continuing(session_id, runtime_for)

    def check_steps(self, session_id: UUID, steps: Sequence[Step]) -> None:
        """Whether the session would take all of ``steps`` as it stands now, checked before
        any is recorded (see :func:`~agentjournal.application.answers.check_steps`)."""
        session = self.get_session(session_id)
        check_steps(session, self.orphaned(session), steps)

    def interrupt(self, session_id: UUID, reason: str = "interrupted by request") -> int:
        """Close the running (or paused) turn, from any process. A turn running elsewhere
        finds out at its next save, which the store refuses, and stops there. Returns
        the version that records the interruption."""
        return self._applied(session_id, lambda session: session.interrupt_turn(reason))[0].version

    def answer_tool(self, session_id: UUID, tool_call_id: str, output: str, is_error: bool = False,
                    redact: Redactor | None = None) -> Answered:  # fmt: skip
        """Record the client's result for a custom tool call the paused turn waits on."""
        data = given_or_default(redact)(output).encode()
        return self._answer_awaited(session_id, lambda s: answer_tool_call(s, tool_call_id, data, is_error))

    def answer_from_worker(self, session_id: UUID, tool_call_id: str, output: str, is_error: bool,
                           worker: str, redact: Redactor | None = None) -> Answered:  # fmt: skip
        """Record a self-hosted worker's result for a call the turn waits on it for."""
        data = given_or_default(redact)(output).encode()
        return self._answer_awaited(
            session_id, lambda s: record_worker_result(s, tool_call_id, data, is_error, worker)
        )

    def answer_confirmation(
        self, session_id: UUID, tool_call_id: str, allowed: bool, reason: str = "",
        redact: Redactor | None = None,
    ) -> Answered:  # fmt: skip
        """Record the client's yes or no for a call the paused turn waits on. A denial is
        answered at once with an error result the model reads (with ``reason``); an
        allowed call runs when the turn continues."""
        reason = given_or_default(redact)(reason)
        return self._answer_awaited(session_id, lambda s: confirm_tool_call(s, tool_call_id, allowed, reason))

    def _answer_awaited(self, session_id: UUID, answer: Callable[[Session], None]) -> Answered:
        """Record an answer to a turn that waits for the client: paused, or still running
        within its grace. The turn may record its pause at the same moment; then the
        answer is recorded again on the paused session."""
        session, first = self._applied(session_id, answer)
        return Answered(version=first, ready=not session.awaiting, paused=session.paused)

    def _applied(self, session_id: UUID, command: Callable[[Session], None]) -> tuple[Session, int]:
        """Apply ``command`` to the session and save what it records; the session saved, and
        the version of the first event recorded. A command from outside the turn (an answer,
        an interrupt, the end of the session) can lose the save to the turn, which saves at
        every step; it is applied again to what the turn recorded (and refused then if that
        no longer allows it), up to :attr:`store_attempts` times."""
        attempt = 1
        while True:
            session = self.get_session(session_id)
            command(session)
            first = (
                session.pending_events[0].originator_version if session.pending_events else session.version
            )
            try:
                self.save_session(session)
                return session, first
            except ConcurrentUpdate:
                if attempt == self.store_attempts:
                    raise
                attempt += 1

    def archive(self, session_id: UUID) -> None:
        session = self.get_session(session_id)
        session.archive()
        self.save_session(session)

    def delete(self, session_id: UUID, release: Callable[[ComputeBinding], None] = release_binding) -> None:
        """Terminate the session if it is not, then hide it for good (the log keeps it)."""
        if self.get_session(session_id).status != Status.TERMINATED:
            self.terminate(session_id, "deleted", release)
        self._applied(session_id, lambda session: session.delete())

    def terminate(
        self, session_id: UUID, reason: str = "", release: Callable[[ComputeBinding], None] = release_binding
    ) -> None:
        """Close a session for good, from any process, even while a turn runs. Its sandbox is
        released first, by the binding the log recorded, and the release is recorded only
        once it is done."""
        released: list[ComputeBinding] = []

        def close(session: Session) -> None:
            if session.compute is not None:
                if session.compute not in released:  # not again when the save is made again
                    release(session.compute)
                    released.append(session.compute)
                session.release_compute("terminated")
            session.terminate(reason)

        self._applied(session_id, close)

    def save_session(self, session: Session) -> LeaseChange | None:
        """Commit the session's new events in one transaction: what :meth:`save` does for
        one aggregate, without the two runtime Protocol checks eventsourcing's
        ``ProcessingEvent.collect_events`` makes of every object it is given (about 10 µs
        a save, and a turn saves after every step). Snapshots and notifications follow as
        in :meth:`save`.

        A turn's start grants its lease and its end releases it, in the same transaction
        (returned: the change made to the lease, if any). Events another process appended
        meanwhile that change nothing a turn depends on (a title, metadata) do not stop
        the save: the new events are recorded after them (:func:`rebase`)."""
        if not session.pending_events:
            return None  # nothing new: no transaction
        for attempt in range(1, self.store_attempts + 1):
            change = self.lease_change(session)
            processing: ProcessingEvent[UUID] = ProcessingEvent()
            processing.events.extend(session.pending_events)
            processing.aggregates[session.id] = session
            if change is not None:
                processing.saved_kwargs["lease"] = change
            try:
                recordings = self._record(processing)
                break
            except IntegrityError:
                if attempt < self.store_attempts and self._rebase(session):
                    continue
                session.collect_events()  # not recorded, and never to be saved later
                raise ConcurrentUpdate(session.id) from None
            except BaseException:
                session.collect_events()
                raise
        session.collect_events()
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # eventsourcing's deprecated hook, called as save() does
        return change

    # -- queries ----------------------------------------------------------------------

    def lease_change(self, session: Session) -> LeaseChange | None:
        """What saving the session's new events does to its turn's lease: a turn's start
        (or resumption) grants it to this process, with that event's version as its token;
        any end of the turn releases it."""
        change = None
        for event in session.pending_events:
            if isinstance(event, TURN_BEGINNINGS):
                change = LeaseChange(
                    turn_lease_name(session.id),
                    self.heartbeat.holder,
                    event.originator_version,
                    self.lease_seconds,
                )
            elif isinstance(event, TURN_ENDINGS):
                change = LeaseChange(turn_lease_name(session.id))
        return change

    def _rebase(self, session: Session) -> bool:
        """Put the session's unsaved events after those another process appended meanwhile,
        when those change nothing the unsaved ones depend on (:func:`leaves_turns_alone`:
        a title, metadata). The events are triggered again on the stored session, so each
        gets its new version and chains from the new head, and ``session`` becomes that
        session. False (and nothing changed) when something else came in between."""
        base = session.pending_events[0].originator_version - 1
        newer = list(self.events.get(session.id, gt=base))
        if not newer or not all(leaves_turns_alone(event) for event in newer):
            return False
        stored = self.get_session(session.id)
        for event in session.collect_events():
            stored.trigger_event(type(event), **payload_of(event))
        vars(session).clear()
        vars(session).update(vars(stored))
        return True

    def close(self) -> None:
        """Stop renewing leases (turns still running here are left to expire and be closed
        by a live process), then close the store."""
        self.heartbeat.close()
        super().close()

    def get_session(self, session_id: UUID, version: int | None = None) -> Session:
        """The session as of ``version`` (default: its latest). The store holds agents and
        environments too: an id of one of them is no session, and not found. Versions are
        the store's 64-bit integers; one past them is not found either."""
        if version is not None and not 1 <= version < 2**63:
            raise VersionNotFound(session_id, version, self._latest_version(session_id))
        try:
            session = self.repository.get(session_id, version=version, projector_func=project_session)
        except AggregateNotFoundError:
            raise SessionNotFound(session_id) from None
        if not isinstance(session, Session):
            raise SessionNotFound(session_id)
        if version is not None and session.version != version:
            raise VersionNotFound(session_id, version, session.version)
        return session

    def files_at(self, session_id: UUID, version: int | None = None) -> Files:
        """The session's work folder as it was right after event ``version`` (default: now)."""
        session = self.get_session(session_id, version)
        return Files(session.files, session.version, self.blobs)

    def _latest_version(self, session_id: UUID) -> int:
        return self.get_session(session_id).version

    def find_session(self, reference: str) -> UUID:
        """A session id from its full text (with or without dashes, or in the API's form,
        ``sesn_`` and its hex) or an unambiguous prefix of at least 4 characters of any
        of these forms. The store holds agents, environments and memory stores too: the id
        of one of them names no session, and is not found, as an unknown id is."""
        text = reference.strip().lower().removeprefix(SESSION_ID_PREFIX)
        digits = text.replace("-", "")
        if len(digits) < 32 and re.fullmatch(r"[0-9a-f][0-9a-f-]{3,}", text):
            self.projector.catch_up()
            found = self.summaries.ids_starting_with(_dashed(digits))
            if len(found) == 1:
                return found[0]
            if found:
                raise AmbiguousSessionId(reference, len(found))
            raise SessionNotFound(reference)
        session_id = parse_session_id(reference)
        first = next(iter(self.events.get(session_id, lte=1)), None)
        if not isinstance(first, Session.Created):
            raise SessionNotFound(session_id)
        return session_id

    @functools.cached_property
    def memory_contents(self) -> MemoryContents:
        """The contents of memory versions, sealed outside the log (see
        :mod:`agentjournal.domain.memory`), made on first use: a process that never
        touches memory stores never creates its table."""
        contents: MemoryContents = self.construct_view(MEMORY_CONTENTS, "MEMORY_CONTENTS_TOPIC")
        return contents

    @functools.cached_property
    def search(self) -> Search:
        """The index of the sessions' text (:mod:`~agentjournal.application.search`), made on
        first use: a process that never searches never creates or folds it."""
        return Search(self)

    def summary(self, session_id: UUID) -> SessionSummary:
        self.projector.catch_up()
        found = self.summaries.get(session_id)
        if found is None:
            raise SessionNotFound(session_id)
        return found

    def list_summaries(
        self, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionSummary]:
        """Sessions not deleted, the most recently updated first."""
        self.projector.catch_up()
        return self.summaries.list(status=status, limit=limit, offset=offset)

    def page_summaries(self, query: SessionQuery, page: str | None = None) -> Page[SessionSummary]:
        """One page of the sessions ``query`` selects, in order of creation; ``page`` is the
        cursor the previous page ended with (``Page.next_page``)."""
        limit = check_limit(query.limit)
        after = decode_cursor(page, tuple[datetime, UUID]) if page else None
        self.projector.catch_up()
        rows = self.summaries.page(msgspec.structs.replace(query, after=after, limit=limit + 1))
        return paged(rows, limit, lambda s: (s.created_at, s.id))

    def audit_log(
        self,
        session_id: UUID,
        types: Sequence[str] = (),
        after: int | None = None,
        until: int | None = None,
    ) -> list[AuditEntry]:
        """Every event of a session, in order, optionally only of some types or versions."""
        events: list[Any] = list(self.events.get(session_id, gt=after, lte=until))
        if not events and after is None and until is None:
            raise SessionNotFound(session_id)
        wanted = set(types)
        return [
            AuditEntry(
                session_id=e.originator_id,
                version=e.originator_version,
                type=type(e).__name__,
                timestamp=e.timestamp,
                payload=_payload(e),
            )
            for e in events
            if not wanted or type(e).__name__ in wanted
        ]


def _dashed(digits: str) -> str:
    """The first hex digits of a UUID as its text begins (``1b4e28ba2fa1`` is
    ``1b4e28ba-2fa1``): how the summary table keeps ids."""
    groups, start = [], 0
    for size in (8, 4, 4, 4, 12):
        if start >= len(digits):
            break
        groups.append(digits[start : start + size])
        start += size
    return "-".join(groups)


def _payload(event: Any) -> dict[str, Any]:
    fields = {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
    # Through JSON, so the payload is the plain data the CLI prints (lists, strings).
    return msgspec.json.decode(msgspec.json.encode(fields))
