"""``SessionService``: the application that runs agent sessions over an event store.

It loads a :class:`~domain.Session`, issues commands to it, and saves the new
events as they happen, so a crash loses at most the step in flight. The model
and the compute are ports handed in per turn; queries about many sessions go to
the summary projection instead of replaying logs.
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
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
from agentjournal.application.errors import (
    AmbiguousSessionId,
    ConcurrentUpdate,
    SessionNotFound,
    StoreError,
    VersionNotFound,
    parse_session_id,
)
from agentjournal.application.paging import Page, check_limit, decode_cursor, paged
from agentjournal.application.ports import (
    BlobStore,
    Compute,
    LanguageModel,
    ModelError,
    ModelReply,
    TextDelta,
)
from agentjournal.application.projection import (
    SessionProjector,
    SessionQuery,
    SessionSummary,
    SessionSummaryView,
)
from agentjournal.application.redaction import Redactor, process_secrets
from agentjournal.application.snapshots import ChunkedRepository, SessionSnapshots
from agentjournal.application.tools import READS_ONLY, ToolArgumentError, ToolLimits, run_tool, tool_arguments
from agentjournal.application.toolset import check_handlers, tool_specs
from agentjournal.application.workspace import Files, restore_into_new_sandbox, roll_back, take_snapshot
from agentjournal.domain import (
    AssistantMessage,
    ComputeBinding,
    NoPendingAction,
    PackageInstall,
    Session,
    SessionBusy,
    SessionConfig,
    SessionTerminatedError,
    Status,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
    check_compute,
    check_confinement,
    check_package_sandbox,
)

MAX_TOOL_CALLS_PER_REPLY = 64
ANSWER_POLL_SECONDS = 0.1
"""How often a turn waiting for the client's answers reads the log, at most."""
"""Tool calls one model reply may make; the rest are refused as tool errors."""

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


# -- what a turn reports to its caller ------------------------------------------


class ToolCallUpdate(msgspec.Struct, frozen=True):
    """A tool call began (``result`` is None) or ended."""

    call: ToolCall
    result: ToolResult | None = None


class TurnOutcome(msgspec.Struct, frozen=True):
    """The end of a turn: the final text, why it stopped, what this turn used
    (``usage``) and what the session has used in all (``total_usage``)."""

    session_id: UUID
    text: str
    stop_reason: StopReason
    usage: Usage
    total_usage: Usage


class ComputeProgress(msgspec.Struct, frozen=True):
    """A step of getting the compute ready that may take a while (a sandbox to start,
    packages to install), reported as it begins."""

    step: str


TurnUpdate = TextDelta | ComputeProgress | ToolCallUpdate | TurnOutcome


@dataclass(frozen=True)
class StartedTurn:
    """A turn whose start is recorded (from log version ``first_version`` on); the rest of
    it runs as ``updates`` are consumed."""

    first_version: int
    updates: Iterator[TurnUpdate]


class Answered(msgspec.Struct, frozen=True):
    """The client's answer is recorded from log version ``version`` on; ``ready`` says
    the turn waits on nothing else, and ``paused`` that it is paused (so the caller
    continues it; a turn still running picks the answers up itself)."""

    version: int
    ready: bool
    paused: bool


@dataclass(frozen=True)
class TurnRuntime:
    """What one turn runs with, besides what the session recorded: the adapters, the
    redactor that knows the caller's secrets, and the caller's own decisions. Which
    tools the model is offered, and the bounds of a call, come from the session."""

    model: LanguageModel
    compute: Compute
    redact: Redactor = field(default_factory=Redactor)
    host_packages_ok: bool = False
    """The caller's opt-in to installing packages on the host (never recorded)."""
    unconfined_ok: bool = False
    """The caller's opt-in to running tools on the unconfined host (never recorded)."""
    on_custom_tool: Callable[[str, dict[str, Any]], Any] | None = None
    on_tool_confirmation: Callable[[dict[str, Any]], bool] | None = None
    defer_actions: bool = False
    """Without a handler, a custom tool call or confirmation pauses the turn
    (``requires_action``) until the client answers through :meth:`SessionService.answer_tool`
    or :meth:`SessionService.answer_confirmation`, from any process, and the turn is
    continued by :meth:`SessionService.continue_turn`. Otherwise a missing handler is
    a configuration error, raised before the turn begins."""
    answer_grace: float = 0.0
    """Seconds a turn keeps running while it waits for the client's answers before it
    pauses: answers that come quickly (a client that answers as soon as it sees the
    call) continue the turn without a pause."""
    wait_for_log: Callable[[UUID, float], None] = field(
        default=lambda _session_id, seconds: time.sleep(seconds)
    )
    """Blocks until the session's log may have grown, or for the given seconds: how a turn
    waiting for answers hears of them (a server wakes it when it records one)."""


RuntimeFactory = Callable[[SessionConfig], TurnRuntime]
"""Builds a turn's runtime for a session's recorded config."""


class AuditEntry(msgspec.Struct, frozen=True):
    """One event of a session's log, for people and tools to read."""

    session_id: UUID
    version: int
    type: str
    timestamp: datetime
    payload: dict[str, Any]


# -- the worker that runs a turn --------------------------------------------------

_HOST = platform.node()
"""This host's name, as ``socket.gethostname()`` gives it (without loading ``socket``)."""
_ACTIVE: set[UUID] = set()
"""Sessions with a turn running in this process."""


def this_worker() -> str:
    return f"{_HOST}:{os.getpid()}"


def _worker_is_gone(worker: str, session_id: UUID) -> bool:
    """True when the worker that started a turn can no longer be running it."""
    host, _, pid = worker.rpartition(":")
    if host != _HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return session_id not in _ACTIVE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def project_session(session: Session | None, events: Iterable[Any]) -> Session | None:
    """Fold events into a session. eventsourcing's default projector also checks each
    event against a runtime Protocol, which costs more than applying it."""
    for event in events:
        session = event.mutate(session)
    return session


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

    stale_turn_after = timedelta(hours=1)
    """A turn started on another host is taken as interrupted after this long without an event."""

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
        self._working: OrderedDict[UUID, Session] = OrderedDict()
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
                except (PersistenceError, sqlite3.Error) as e:
                    # The events are saved: a chunk only spares a later load some folding, and
                    # the next one continues the latest that was stored. A step must not fail
                    # for it.
                    import logging

                    logging.getLogger(__name__).warning(
                        "no snapshot of session %s at event %d: %s", session.id, session.version, e
                    )

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
        redact = _redactor(redact)
        session = Session.start(recordable_config(config, redact), redact(title))
        self._save(session)
        return session.id

    def change_config(self, session_id: UUID, config: SessionConfig, redact: Redactor | None = None) -> None:
        """Record a deliberate change of what governs the session (model, system prompt,
        tools, bounds ...). The caller has checked it like a new session's config."""
        session = self.get_session(session_id)
        session.change_config(recordable_config(config, _redactor(redact)))
        self._save(session)

    def set_title(self, session_id: UUID, title: str, redact: Redactor | None = None) -> None:
        session = self.get_session(session_id)
        session.set_title(_redactor(redact)(title))
        self._save(session)

    def fork(self, session_id: UUID, at_version: int | None = None) -> UUID:
        """A new session whose history is this one's up to ``at_version`` (default: now)."""
        fork = self.get_session(session_id, at_version).fork()
        self._save(fork)
        return fork.id

    def restore_files(self, session_id: UUID, version: int, runtime_for: RuntimeFactory) -> int:
        """Roll the session's work folder back to its files as of event ``version``, in its
        sandbox, and record that as a ``WorkspaceChanged`` restored from that version: the
        history in between stays in the log. Between turns only. Returns the new version."""
        target = self.get_session(session_id, version).files
        session, runtime = self._ready_for_turn(session_id, runtime_for)
        if session.status == Status.RUNNING:
            raise SessionBusy(session.id, session.worker)
        if session.status == Status.TERMINATED:
            raise SessionTerminatedError(session.id)
        for _ in self._prepare_compute(session, runtime, has_tools=True):
            pass
        roll_back(session, runtime.compute, self.blobs, version, target)
        self._save(session)
        self._keep(session)
        return session.version

    def run_turn(self, session_id: UUID, prompt: str, runtime_for: RuntimeFactory) -> Iterator[TurnUpdate]:
        """The agent loop for one prompt: model, tools, model again, up to ``max_turns``
        model calls. Yields text as it streams, tool calls, and a final :class:`TurnOutcome`.

        The session's recorded config governs the turn, whoever runs it: the runtime
        is built for that config (``runtime_for``), and the same policies as at its
        creation are checked before anything is recorded. Whatever happens then, the
        turn ends in the log: completed, failed (status ``error``, and the error is
        raised) or interrupted (the caller stopped iterating, or the process was
        interrupted).
        """
        yield from self.start_turn(session_id, prompt, runtime_for).updates

    def continue_turn(self, session_id: UUID, runtime_for: RuntimeFactory) -> Iterator[TurnUpdate]:
        """Continue a turn paused for the client (``requires_action``) once every call it
        waited on is answered: confirmed calls run, then the model goes on, within what is
        left of the turn's ``max_turns``. Updates and ending as :meth:`run_turn`."""
        yield from self.start_continuing(session_id, runtime_for).updates

    def start_turn(self, session_id: UUID, prompt: str, runtime_for: RuntimeFactory) -> StartedTurn:
        """:meth:`run_turn` in two steps, for callers that answer before the turn is done
        (a server's ``send``): the prompt and the turn's start are recorded now, or the
        reason they cannot be is raised now; the rest runs as the returned ``updates``
        are consumed, which the caller must do (or close), as they hold the session running."""
        session, runtime = self._ready_for_turn(session_id, runtime_for)
        session.begin_turn(runtime.redact(prompt), this_worker())
        return self._started(session, runtime)

    def start_continuing(self, session_id: UUID, runtime_for: RuntimeFactory) -> StartedTurn:
        """:meth:`continue_turn` in two steps, like :meth:`start_turn`."""
        session, runtime = self._ready_for_turn(session_id, runtime_for)
        session.resume_turn(this_worker())
        return self._started(session, runtime)

    def _started(self, session: Session, runtime: TurnRuntime) -> StartedTurn:
        first = session.pending_events[0].originator_version
        self._save(session)
        _ACTIVE.add(session.id)
        return StartedTurn(first, self._drive(session, runtime))

    def _ready_for_turn(self, session_id: UUID, runtime_for: RuntimeFactory) -> tuple[Session, TurnRuntime]:
        """The session brought up to date, and a runtime for its recorded config that passed
        the same policies as at the session's creation; nothing is recorded yet."""
        session = self._working.pop(session_id, None)
        session = self._fast_forward(session) if session else self.get_session(session_id)
        self.recover(session)
        runtime = runtime_for(session.config)
        check_package_sandbox(session.config.packages, session.config.compute, runtime.host_packages_ok)
        check_compute(session.id, session.config.compute, runtime.compute.kind)
        check_confinement(session.config.compute, runtime.unconfined_ok)
        if not runtime.defer_actions:
            check_handlers(
                session.config.custom_tools,
                session.config.confirm_tools,
                runtime.on_custom_tool,
                runtime.on_tool_confirmation,
            )
        return session, runtime

    def _drive(self, session: Session, runtime: TurnRuntime) -> Iterator[TurnUpdate]:
        """Run the agent loop of a turn just begun or resumed, and make sure the log says
        how it ended."""
        try:
            while True:
                try:
                    yield from self._loop(session, runtime)
                    break
                except _AnsweredMeanwhile:
                    # The client answered while the turn was recording its pause: go on
                    # from the log, where the answer is, if the turn is still ours.
                    fresh = self.get_session(session.id)
                    if not _same_turn(fresh, session):
                        return
                    session = fresh
            self._keep(session)
        except (GeneratorExit, KeyboardInterrupt) as e:
            reason = "the caller stopped" if isinstance(e, GeneratorExit) else "interrupted"
            self._end(session, lambda s: s.interrupt_turn(reason))
            raise
        except ConcurrentUpdate:
            raise
        except Exception as e:
            error, kind = runtime.redact(str(e)), type(e).__name__
            self._end(session, lambda s: s.fail_turn(error, kind))
            raise
        finally:
            _ACTIVE.discard(session.id)

    def _loop(self, session: Session, runtime: TurnRuntime) -> Iterator[TurnUpdate]:
        """Model, tools, model again, until the model stops calling tools or the turn's
        ``max_turns`` model calls are spent; a turn that waits for the client pauses.

        Each round first answers the open calls nobody waits on any more (those the
        client allowed while the turn waited, after a resume), so the loop also
        continues a paused turn."""
        tools = tool_specs(session.config)
        yield from self._prepare_compute(session, runtime, bool(tools))
        text, used = "", Usage()
        stop_reason = StopReason.MAX_TURNS
        budget = session.config.max_turns - session.model_calls_this_turn
        whole: dict[str, ToolCall] = {}
        """This process's calls as the model sent them (the log may hold them capped)."""
        while True:
            ready = [whole.get(c.id, c) for c in session.open_tool_calls if c.id not in session.awaiting]
            yield from self._answer_calls(session, ready, runtime, confirmed=True)
            if session.awaiting:
                if self._answers_arrive(session, runtime):
                    continue
                session.pause_turn()
                self._save_pause(session)
                yield TurnOutcome(session.id, text, StopReason.REQUIRES_ACTION, used, session.usage)
                return
            if budget <= 0:
                break
            budget -= 1
            reply = None
            for item in runtime.model.stream(session.config.system, session.messages, tools):
                if isinstance(item, ModelReply):
                    reply = item
                else:
                    yield item
            if reply is None:
                raise ModelError("the model stream ended without a reply")
            message = recordable(reply.message, runtime.redact, session.config.max_output_bytes)
            session.add_assistant_message(message)
            session.record_usage(reply.model, reply.usage)
            text, used = message.content, used + reply.usage
            if not message.tool_calls:
                stop_reason = StopReason.END_TURN
                break
            self._save(session)
            # The recorded calls carry unique ids and capped arguments; the tools run
            # with what the model sent.
            calls = [
                msgspec.structs.replace(sent, id=recorded.id)
                for sent, recorded in zip(reply.message.tool_calls, message.tool_calls, strict=True)
            ]
            whole = {c.id: c for c in calls}
            yield from self._answer_calls(session, calls, runtime)
        session.complete_turn(stop_reason)
        self._save(session)
        yield TurnOutcome(session.id, text, stop_reason, used, session.usage)

    def _answers_arrive(self, session: Session, runtime: TurnRuntime) -> bool:
        """Wait up to ``runtime.answer_grace`` seconds for the client to answer what the turn
        waits on, reading its answers from the log (any process may record them). True
        when nothing is awaited any more."""
        deadline = time.monotonic() + runtime.answer_grace
        while session.awaiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            runtime.wait_for_log(session.id, min(remaining, ANSWER_POLL_SECONDS))
            project_session(session, self.events.get(session.id, gt=session.version))
        return True

    def _save_pause(self, session: Session) -> None:
        try:
            self._save(session)
        except ConcurrentUpdate:
            raise _AnsweredMeanwhile from None

    def _answer_calls(
        self, session: Session, calls: Sequence[ToolCall], runtime: TurnRuntime, confirmed: bool = False
    ) -> Generator[TurnUpdate, None, bool]:
        """Answer a reply's calls in order and record their results; True when some wait
        for the client. ``confirmed`` calls were allowed while the turn was paused."""
        waiting = False
        for number, call in enumerate(calls, start=1):
            recorded = _recorded_call(session, call.id)
            result = yield from self._answer(session, number, call, recorded, runtime, confirmed)
            if result is None:
                waiting = True
                continue
            result = msgspec.structs.replace(result, name=recorded.name, output=runtime.redact(result.output))
            session.record_tool_result(result)
            self._save(session)
            yield ToolCallUpdate(recorded, result)
        return waiting

    def _answer(
        self,
        session: Session,
        number: int,
        call: ToolCall,
        recorded: ToolCall,
        runtime: TurnRuntime,
        confirmed: bool = False,
    ) -> Generator[TurnUpdate, None, ToolResult | None]:
        """Answer one tool call as the session's config allows: refused when the tool is
        not enabled for the session, asked about first when it needs confirmation,
        handed to the client when it is a custom tool, run on the compute otherwise.
        ``call`` is the call as the model sent it (whole arguments), ``recorded`` as the
        log keeps it; both carry the recorded id. Calls past the ``number`` a reply may
        make are refused, so one reply cannot run without end. None means the call waits
        for the client (a deferred confirmation or custom tool)."""
        config = session.config
        if number > MAX_TOOL_CALLS_PER_REPLY:
            return _refusal(call, f"not run: a reply may make at most {MAX_TOOL_CALLS_PER_REPLY} tool calls")
        if call.name not in config.tool_names:
            enabled = sorted(config.tool_names)
            return _refusal(
                call, f"tool {call.name!r} is not enabled in this session; its tools are {enabled}"
            )
        if call.name in config.confirm_tools and not confirmed:
            if runtime.on_tool_confirmation is None:
                session.request_confirmation(recorded)
                self._save(session)
                yield ToolCallUpdate(recorded)
                return None
            if not self._confirm(session, call, recorded, runtime):
                return _refusal(call, "the user denied this tool call")
        if call.name in {t.name for t in config.custom_tools}:
            session.request_custom_tool(recorded)
            self._save(session)
            yield ToolCallUpdate(recorded)
            if runtime.on_custom_tool is None:
                return None
            return _custom_result(call, runtime, config.max_output_bytes)
        session.start_tool_call(recorded)
        self._save(session)
        yield ToolCallUpdate(recorded)
        result = run_tool(runtime.compute, call, ToolLimits.of(config))
        if call.name not in READS_ONLY:
            # Recorded before the result, so the files as of the result are what the call left.
            take_snapshot(session, runtime.compute, self.blobs, recorded.id)
        return result

    def _confirm(self, session: Session, call: ToolCall, recorded: ToolCall, runtime: TurnRuntime) -> bool:
        """Ask the client whether ``call`` may run, showing it the arguments that would run
        (``call``, whole); the question (``recorded``) and the answer are recorded."""
        assert runtime.on_tool_confirmation is not None  # checked before the turn began
        session.request_confirmation(recorded)
        self._save(session)
        info = {"name": call.name, "input": _arguments_or_text(call.arguments), "tool_use_id": call.id}
        allowed = runtime.on_tool_confirmation(info) is True
        session.answer_confirmation(call.id, allowed, "" if allowed else "denied by on_tool_confirmation")
        self._save(session)
        return allowed

    def _prepare_compute(
        self, session: Session, runtime: TurnRuntime, has_tools: bool
    ) -> Iterator[TurnUpdate]:
        """Attach the session's sandbox (re-attaching after a restart) and install its
        packages there once; both are recorded, and each step is reported as it begins."""
        needs_compute = has_tools or any(session.config.packages.values())
        if not needs_compute:
            return
        yield ComputeProgress(f"preparing the {runtime.compute.kind} compute")
        binding = runtime.compute.attach(session.id, session.compute)
        if binding != session.compute:
            session.attach_compute(binding)
            self._save(session)  # before anything else can stop the turn: the log must know the sandbox
            if session.files:
                yield ComputeProgress(f"restoring {len(session.files)} files")
                restore_into_new_sandbox(session, runtime.compute, self.blobs)
                self._save(session)
        installed = {(p.manager, p.where) for p in session.packages}
        for manager, names in session.config.packages.items():
            if names and (manager, binding.reference) not in installed:
                yield ComputeProgress(f"installing {manager} packages: {' '.join(names)}")
                output = runtime.compute.install_packages(manager, names)
                session.record_packages(
                    PackageInstall(manager, tuple(names), binding.reference, runtime.redact(output))
                )
                self._save(session)

    def _fast_forward(self, session: Session) -> Session:
        """The kept copy, with whatever other processes appended since."""
        newer = self.events.get(session.id, gt=session.version)
        return project_session(session, newer) or session

    def _keep(self, session: Session) -> None:
        """Keep a session whose events are all saved, for its next turn."""
        self._working[session.id] = session
        while len(self._working) > self.working_copies:
            self._working.popitem(last=False)

    def _end(self, session: Session, command: Callable[[Session], None]) -> None:
        """Record how a turn ended, on a copy fresh from the store: the in-memory
        session may hold events whose save failed, and must not be saved after them."""
        fresh = self.get_session(session.id)
        if _same_turn(fresh, session):
            command(fresh)
            self._save(fresh)

    def recover(self, session: Session) -> bool:
        """Close a turn whose worker is gone (a crash), so the session is usable again.
        Returns True when a turn was closed."""
        if not self.is_abandoned(session):
            return False
        session.interrupt_turn(f"worker {session.worker} stopped")
        self._save(session)
        return True

    def is_abandoned(self, session: Session) -> bool:
        """Whether the session shows a turn running that nobody runs any more: its worker
        is gone, or it recorded nothing for :attr:`stale_turn_after`. The next turn
        closes it first (:meth:`recover`)."""
        if session.status != Status.RUNNING:
            return False
        return _worker_is_gone(session.worker, session.id) or (
            datetime.now(timezone.utc) - session.modified_on > self.stale_turn_after
        )

    def interrupt(self, session_id: UUID, reason: str = "interrupted by request") -> int:
        """Close the running (or paused) turn, from any process. A turn running elsewhere
        finds out at its next save, which the store refuses, and stops there. Returns
        the version that records the interruption."""
        return self._applied(session_id, lambda session: session.interrupt_turn(reason))[0].version

    def answer_tool(self, session_id: UUID, tool_call_id: str, output: str, is_error: bool = False,
                    redact: Redactor | None = None) -> Answered:  # fmt: skip
        """Record the client's result for a custom tool call the paused turn waits on."""
        data = _redactor(redact)(output).encode()
        return self._answer_awaited(session_id, lambda s: answer_tool_call(s, tool_call_id, data, is_error))

    def answer_confirmation(
        self, session_id: UUID, tool_call_id: str, allowed: bool, reason: str = "",
        redact: Redactor | None = None,
    ) -> Answered:  # fmt: skip
        """Record the client's yes or no for a call the paused turn waits on. A denial is
        answered at once with an error result the model reads (with ``reason``); an
        allowed call runs when the turn continues."""
        reason = _redactor(redact)(reason)
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
                self._save(session)
                return session, first
            except ConcurrentUpdate:
                if attempt == self.store_attempts:
                    raise
                attempt += 1

    def archive(self, session_id: UUID) -> None:
        session = self.get_session(session_id)
        session.archive()
        self._save(session)

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

    def _save(self, session: Session) -> None:
        """Commit the session's new events in one transaction: what :meth:`save` does for
        one aggregate, without the two runtime Protocol checks eventsourcing's
        ``ProcessingEvent.collect_events`` makes of every object it is given (about 10 µs
        a save, and a turn saves after every step). Snapshots and notifications follow as
        in :meth:`save`."""
        if not session.pending_events:
            return  # nothing new: no transaction
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events.extend(session.collect_events())
        processing.aggregates[session.id] = session
        try:
            recordings = self._record(processing)
        except IntegrityError:
            raise ConcurrentUpdate(session.id) from None
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # eventsourcing's deprecated hook, called as save() does

    # -- queries ----------------------------------------------------------------------

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
        """A session id from its full text (with or without dashes) or an unambiguous
        prefix of at least 4 characters."""
        text = reference.strip().lower()
        if len(text.replace("-", "")) < 32 and re.fullmatch(r"[0-9a-f][0-9a-f-]{3,}", text):
            self.projector.catch_up()
            found = self.summaries.ids_starting_with(text)
            if len(found) == 1:
                return found[0]
            if found:
                raise AmbiguousSessionId(reference, len(found))
            raise SessionNotFound(reference)
        return parse_session_id(reference)

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


def _payload(event: Any) -> dict[str, Any]:
    fields = {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
    # Through JSON, so the payload is the plain data the CLI prints (lists, strings).
    return msgspec.json.decode(msgspec.json.encode(fields))


def _redactor(given: Redactor | None) -> Redactor:
    """The caller's redactor, or one that knows at least this process's secrets."""
    return given or Redactor(process_secrets())


def recordable(message: AssistantMessage, redact: Redactor, max_argument_bytes: int) -> AssistantMessage:
    """A model's message as the log keeps it: redacted, each call with an id of its own
    (models do repeat or omit them) and without whitespace (a pause records the ids it
    waits on separated by spaces), and arguments over ``max_argument_bytes`` replaced
    by a JSON object saying how large they were (the tool still gets them whole)."""
    seen: set[str] = set()
    calls = []
    for number, call in enumerate(message.tool_calls, start=1):
        given = "_".join(redact(call.id).split())
        call_id, again = given or f"call_{number}", 1
        while call_id in seen:
            again += 1
            call_id = f"{given or f'call_{number}'}_{again}"
        seen.add(call_id)
        arguments = _capped_arguments(_redact_arguments(call.arguments, redact), max_argument_bytes)
        calls.append(ToolCall(call_id, redact(call.name), arguments))
    return msgspec.structs.replace(message, content=redact(message.content), tool_calls=tuple(calls))


def recordable_config(config: SessionConfig, redact: Redactor) -> SessionConfig:
    """A config as the log keeps it: its texts (system prompt, name, metadata, custom tool
    descriptions) redacted like everything else recorded."""
    return msgspec.structs.replace(
        config,
        system=redact(config.system),
        name=redact(config.name),
        metadata=redact_json(config.metadata, redact),
        custom_tools=tuple(
            msgspec.structs.replace(t, description=redact(t.description)) for t in config.custom_tools
        ),
    )


def _redact_arguments(arguments: str, redact: Redactor) -> str:
    """A call's arguments redacted value by value when they are JSON, so a credential shape
    can never swallow the structure around it (a key, the next field): the record keeps
    every field the tool was given. Unchanged arguments keep their exact text."""
    try:
        decoded = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return redact(arguments)
    redacted = redact_json(decoded, redact)
    return arguments if redacted == decoded else msgspec.json.encode(redacted).decode()


def redact_json(value: Any, redact: Redactor) -> Any:
    """Every string in a JSON value redacted, keys included; the structure is kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_json(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(v, redact) for v in value]
    return value


def _capped_arguments(arguments: str, limit: int) -> str:
    data = arguments.encode()
    if len(data) <= limit:
        return arguments
    return msgspec.json.encode(
        {"truncated_arguments": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                 "head": data[: min(limit, 1_000)].decode("utf-8", "replace")}}
    ).decode()  # fmt: skip


def _same_turn(fresh: Session, running: Session) -> bool:
    """Whether the log still shows the turn ``running`` runs as running: not ended by
    anyone since, and not followed by another turn of this same process."""
    return fresh.status == Status.RUNNING and fresh.worker == running.worker and fresh.turns == running.turns


class _AnsweredMeanwhile(Exception):
    """The client's answer reached the log while the turn recorded its pause."""


def _recorded_call(session: Session, call_id: str) -> ToolCall:
    """The call with this id, as the log keeps it, among the session's open calls."""
    for call in session.open_tool_calls:
        if call.id == call_id:
            return call
    raise NoPendingAction(session.id, call_id)


def answer_tool_call(session: Session, tool_call_id: str, output: bytes, is_error: bool) -> None:
    """The client's result for a custom tool call the turn waits on, applied to ``session``
    (not saved): the call's result, capped at the session's ``max_output_bytes``.
    :class:`NoPendingAction` when the turn waits for no such answer."""
    _check_awaits_answers(session)
    if tool_call_id not in session.pending_custom:
        raise NoPendingAction(session.id, tool_call_id)
    call = _recorded_call(session, tool_call_id)
    limit = session.config.max_output_bytes
    session.record_tool_result(
        ToolResult(
            tool_call_id=tool_call_id, name=call.name, is_error=is_error, truncated=len(output) > limit,
            output=output[:limit].decode("utf-8", "replace"),
        )
    )  # fmt: skip


def confirm_tool_call(session: Session, tool_call_id: str, allowed: bool, reason: str) -> None:
    """The client's yes or no for a call the turn waits on, applied to ``session`` (not
    saved); a denial is the call's result at once, an error the model reads."""
    _check_awaits_answers(session)
    session.answer_confirmation(tool_call_id, allowed, reason)
    if not allowed:
        call = _recorded_call(session, tool_call_id)
        why = f"the user denied this tool call{': ' + reason if reason else ''}"
        session.record_tool_result(_refusal(call, why))


def _check_awaits_answers(session: Session) -> None:
    """A turn takes the client's answers while it runs (within its grace) or is paused."""
    if session.status != Status.RUNNING and not session.paused:
        raise NoPendingAction(session.id, "")


def _refusal(call: ToolCall, why: str) -> ToolResult:
    return ToolResult(tool_call_id=call.id, name=call.name, output=f"error: {why}", is_error=True)


def _custom_result(call: ToolCall, runtime: TurnRuntime, max_output_bytes: int) -> ToolResult:
    """What the client's handler answered for a custom tool call, capped like any tool's
    output; its failure is the model's to read, like any tool's."""
    assert runtime.on_custom_tool is not None  # checked before the turn began
    started = time.perf_counter()
    try:
        arguments = tool_arguments(call)
    except ToolArgumentError as e:
        return _refusal(call, str(e))
    try:
        answer = runtime.on_custom_tool(call.name, arguments)
        output = answer if isinstance(answer, str) else msgspec.json.encode(answer).decode()
    except Exception as e:  # noqa: BLE001 - the handler's failure is the tool's result
        return _refusal(call, f"{type(e).__name__}: {e}")
    data = output.encode()
    return ToolResult(
        tool_call_id=call.id,
        name=call.name,
        output=data[:max_output_bytes].decode("utf-8", "replace"),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        truncated=len(data) > max_output_bytes,
    )


def _arguments_or_text(arguments: str) -> Any:
    """A call's arguments as the JSON object the model meant, or its text when it is not one."""
    try:
        return msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return arguments
