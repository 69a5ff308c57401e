"""The ``Session`` aggregate: an agent conversation whose state is a fold over its events.

Commands (methods) check the rules and trigger events; each event's ``apply``
is the only code that changes state, so replaying the log rebuilds exactly
what the live object held. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate, as_recorded, changed_fields
from agentjournal.domain.errors import (
    AnswersMissing,
    NoPendingAction,
    NotTerminated,
    NoTurnInProgress,
    SessionArchivedError,
    SessionBusy,
    SessionTerminatedError,
    UnknownToolCall,
)
from agentjournal.domain.resources import MemoryStoreResource, MountedResource, SessionResource
from agentjournal.domain.values import (
    AssistantMessage,
    ComputeBinding,
    FileState,
    Lineage,
    Message,
    ModelCall,
    PackageInstall,
    SessionConfig,
    Status,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)

TITLE_LENGTH = 60
NO_FILES: Mapping[str, FileState] = MappingProxyType({})


_FORK_MARK = re.compile(r" ?\(fork at event \d+\)$")


def fork_title(title: str, version: int) -> str:
    """A fork's title: its parent's, marked with the event it was forked at, so the two
    are told apart in any listing (a fork of a fork is marked once, with its own point)."""
    base = _FORK_MARK.sub("", title)
    return f"{base} (fork at event {version})" if base else f"(fork at event {version})"


def derive_title(prompt: str) -> str:
    """A title from a prompt: its first non-empty line, cut to a readable length."""
    line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "")
    if len(line) <= TITLE_LENGTH:
        return line
    return line[: TITLE_LENGTH - 1].rstrip() + "\u2026"


class Session(ChainedAggregate):
    """One agent session: config, conversation, usage, status, title and lineage."""

    config_version: int = 1
    """How many configs have governed the session: 1, and one more per ``ConfigChanged``."""

    pending_confirmations: tuple[str, ...] = ()
    """Tool calls waiting for the client's confirmation."""

    pending_custom: tuple[str, ...] = ()
    """Custom tool calls waiting for the client's result."""

    pending_remote: tuple[str, ...] = ()
    """Tool calls waiting for a self-hosted environment's worker to run them and post
    their result (the turn is paused meanwhile, but the session is busy, not idle)."""

    ran_on: tuple[tuple[str, str], ...] = ()
    """(call id, worker) for each call a self-hosted environment's worker answered."""

    paused: bool = False
    """The last turn stopped to wait for the client (``requires_action``): its calls in
    ``awaiting`` are answered while it waits, and then the turn continues."""

    archived_at: datetime | None = None
    """When the session was archived: kept and readable, closed to new turns."""

    files_changed_at: int = 0
    """The version of the event that last changed ``files`` (0 when none did since the
    session was loaded from a snapshot of the old kind): what lets a snapshot that
    continues another leave out a manifest that did not change."""

    resources: tuple[MountedResource, ...] = ()
    """The resources mounted for the session (uploaded files), in the order added."""

    memory_read: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Per attached memory store (its UUID, hex), the memory versions last shown to the
    session's tools (see ``MemoryRead``)."""

    deleted: bool = False
    """Deleted by its owner: hidden from listings and lookups. The log keeps it, as it
    keeps everything; deleting is an event like any other.

    These are class defaults, replaced (never mutated) by events, so sessions loaded
    from snapshots taken before they existed have them too."""

    class Event(ChainedAggregate.Event):
        """Every event of a session carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class SessionStarted(Created):
        config: SessionConfig
        title: str

    class SessionForked(Created):
        """A new session that begins with its parent's state as of ``lineage.parent_version``."""

        config: SessionConfig
        title: str
        lineage: Lineage
        messages: list[Message]
        usage: Usage
        usage_by_model: dict[str, Usage]
        turns: int
        status: Status
        last_error: str = ""
        """The parent's error when it forked at a failed turn. Forks recorded before this
        field existed decode with the default, and their hash never covered it."""
        files: Mapping[str, FileState] | None = None
        """The parent's work folder manifest at the fork point; the fork's sandbox starts
        with these files. Forks recorded before it decode with no files, unhashed."""

    def __init__(
        self,
        config: SessionConfig,
        title: str,
        lineage: Lineage | None = None,
        messages: list[Message] | None = None,
        usage: Usage | None = None,
        usage_by_model: dict[str, Usage] | None = None,
        turns: int = 0,
        status: Status = Status.IDLE,
        last_error: str = "",
        files: Mapping[str, FileState] | None = None,
    ) -> None:
        self.config = config
        self.title = title
        self.lineage = lineage
        self.messages: list[Message] = list(messages or [])
        self.usage = usage or Usage()
        self.usage_by_model: dict[str, Usage] = dict(usage_by_model or {})
        self.turns = turns
        self.status = status
        self.worker = ""
        self.last_error = last_error
        self.compute: ComputeBinding | None = None
        self.packages: list[PackageInstall] = []
        self.chain_head = GENESIS
        if files:
            self.files = dict(files)
            self.files_changed_at = 1

    # -- creation -------------------------------------------------------------

    @classmethod
    def start(cls, config: SessionConfig, title: str = "") -> Session:
        return cls._create_chained(cls.SessionStarted, GENESIS, config=as_recorded(config), title=title)

    def fork(self) -> Session:
        """A new session sharing this one's past. The caller loads this session at
        the version to fork from; the fork records that version as its lineage."""
        fork = self._create_chained(
            self.SessionForked,
            self.chain_head,
            config=self.config,
            title=fork_title(self.title, self.version),
            lineage=Lineage(parent_id=self.id, parent_version=self.version),
            messages=list(self.messages),
            usage=self.usage,
            usage_by_model=dict(self.usage_by_model),
            turns=self.turns,
            # A fork of a closed session is a way to continue it, so it starts open.
            status=Status.IDLE if self.status == Status.TERMINATED else self.status,
            last_error=self.last_error,
            files=dict(self.files),
        )
        if self.status == Status.RUNNING:
            # The parent was mid-turn at that point: the fork cannot continue a turn
            # that no process runs, so it starts with that turn closed as interrupted.
            fork.interrupt_turn("forked mid-turn")
        elif self.paused:
            # The client's answers belong to the parent; the fork closes what was asked.
            fork._close_open_tool_calls("not run: forked while waiting for the client")
        for mounted in self.resources:
            if isinstance(mounted.resource, MemoryStoreResource):
                # Memory is shared state: the fork reads the store as it is, not as it was.
                fork.trigger_event(fork.ResourceAdded, resource=mounted.resource)
        return fork

    # -- queries ----------------------------------------------------------------

    @property
    def last_error(self) -> str:
        """What made the last turn fail, while the session is in the error state that turn
        left. The error belongs to that turn: once another starts, it is history (the log
        keeps it), not state.

        The text is kept in the instance's ``__dict__`` under this same name, where
        snapshots (which copy ``__dict__``) have always found it."""
        return self.__dict__.get("last_error", "") if self.status == Status.ERROR else ""

    @last_error.setter
    def last_error(self, text: str) -> None:
        self.__dict__["last_error"] = text

    @property
    def files(self) -> Mapping[str, FileState]:
        """The work folder's manifest: path (relative to the work folder) to file, as the
        last ``WorkspaceChanged`` left it. A fold like the rest: the session at any version
        knows its files as they were right after that event.

        Kept in the instance's ``__dict__`` (so snapshots carry it); sessions loaded from
        snapshots taken before it existed have none."""
        return self.__dict__.get("files", NO_FILES)

    @files.setter
    def files(self, manifest: Mapping[str, FileState]) -> None:
        self.__dict__["files"] = manifest

    @property
    def awaiting(self) -> tuple[str, ...]:
        """Ids of the tool calls the paused turn waits on: confirmations, then custom
        results, then a worker's results."""
        return (
            *self.pending_confirmations,
            *(c for c in self.pending_custom if c not in self.pending_confirmations),
            *self.pending_remote,
        )

    @property
    def awaits_worker(self) -> bool:
        """Paused for a self-hosted worker's results only: the session is busy (its status
        shows ``running``), nothing is asked of the client."""
        return self.paused and bool(self.pending_remote) and set(self.awaiting) <= set(self.pending_remote)

    @property
    def model_calls_this_turn(self) -> int:
        """Model replies since the turn's prompt: a turn continued after a pause keeps its budget."""
        count = 0
        for message in reversed(self.messages):
            if isinstance(message, UserMessage):
                break
            count += isinstance(message, AssistantMessage)
        return count

    @property
    def open_tool_calls(self) -> list[ToolCall]:
        """Tool calls of the latest assistant message that have no result yet."""
        answered: set[str] = set()
        for message in reversed(self.messages):
            if isinstance(message, ToolResult):
                answered.add(message.tool_call_id)
            elif isinstance(message, AssistantMessage):
                return [c for c in message.tool_calls if c.id not in answered]
            else:
                break
        return []

    # -- commands ---------------------------------------------------------------

    def begin_turn(self, prompt: str | Sequence[str], worker: str) -> None:
        """Add the user's prompt and mark the session running, on behalf of ``worker``.
        A sequence of prompts (a new session's ``initial_events``) is added message by
        message, in order, and one turn answers them all."""
        prompts = (prompt,) if isinstance(prompt, str) else tuple(prompt)
        if not prompts:
            raise ValueError("a turn needs at least one prompt")
        self._check_not_terminated()
        self._check_not_archived()
        if self.status == Status.RUNNING:
            raise SessionBusy(self.id, self.worker)
        if self.paused:
            self._close_open_tool_calls("not run: the user sent a new message instead of answering")
        for text in prompts:
            self.trigger_event(self.UserMessageAdded, content=text)
        if not self.title:
            self.trigger_event(self.TitleSet, title=derive_title(prompts[0]))
        self.trigger_event(self.TurnStarted, turn=self.turns + 1, worker=worker)

    def add_assistant_message(self, message: AssistantMessage) -> None:
        self._check_running()
        self.trigger_event(self.AssistantMessageAdded, message=message)

    def record_usage(self, model: str, usage: Usage, call: ModelCall | None = None) -> None:
        """Add one model call's usage; ``call`` is its timing and cost, when measured.
        ``call`` is always passed, None included: the event's dataclass sets a field it
        is not given to its default, and the hash must cover what the event holds."""
        self._check_not_terminated()
        self.trigger_event(self.UsageRecorded, model=model, usage=usage, call=call)

    def start_tool_call(self, call: ToolCall) -> None:
        self._check_open_call(call.id)
        self.trigger_event(self.ToolCallStarted, call=call)

    def request_custom_tool(self, call: ToolCall) -> None:
        """The model called a tool the client runs; its answer comes back as a result."""
        self._check_open_call(call.id)
        self.trigger_event(self.CustomToolRequested, call=call)

    def request_remote_tool(self, call: ToolCall) -> None:
        """A self-hosted environment's worker runs this call; its result is the call's
        ``ToolResultRecorded``, after a ``RemoteToolAnswered`` naming the worker."""
        self._check_open_call(call.id)
        self.trigger_event(self.RemoteToolRequested, call=call)

    def record_remote_result(self, result: ToolResult, worker: str) -> None:
        """A worker's result for a call it was asked to run, while the turn runs (within its
        grace) or is paused for it; ``worker`` says who ran it."""
        self._check_turn_open()
        if result.tool_call_id not in self.pending_remote:
            raise NoPendingAction(self.id, result.tool_call_id)
        self.trigger_event(self.RemoteToolAnswered, tool_call_id=result.tool_call_id, worker=worker)
        self.trigger_event(self.ToolResultRecorded, result=result)

    def request_confirmation(self, call: ToolCall) -> None:
        """The call needs the client's yes or no before it runs."""
        self._check_open_call(call.id)
        self.trigger_event(self.ToolConfirmationRequested, call=call)

    def answer_confirmation(self, tool_call_id: str, allowed: bool, reason: str = "") -> None:
        """The client's yes or no, given while the turn runs (an in-process handler) or
        while it is paused for it."""
        self._check_turn_open()
        if tool_call_id not in self.pending_confirmations:
            raise NoPendingAction(self.id, tool_call_id)
        self.trigger_event(
            self.ToolConfirmationAnswered, tool_call_id=tool_call_id, allowed=allowed, reason=reason
        )

    def change_config(self, config: SessionConfig) -> None:
        """A deliberate change of what governs the session, recorded with the names of
        the fields that changed. The caller checks the new config against the same
        policies as a new session's."""
        self._check_not_terminated()
        config = as_recorded(config)
        changed = changed_fields(config, self.config)
        if self.status == Status.RUNNING and changed != ("metadata",):
            raise SessionBusy(self.id, self.worker)  # metadata alone governs nothing a turn does
        if changed:
            self.trigger_event(self.ConfigChanged, config=config, changes=changed)

    def record_tool_result(self, result: ToolResult) -> None:
        """A call's result: from the compute while the turn runs, or from the client (a
        custom tool's answer, a refusal it decided) while the turn is paused for it."""
        self._check_turn_open()
        if result.tool_call_id not in {c.id for c in self.open_tool_calls}:
            raise UnknownToolCall(result.tool_call_id)
        self.trigger_event(self.ToolResultRecorded, result=result)

    def record_mcp_failure(self, server: str, kind: str, message: str) -> None:
        """An MCP server could not be used this turn (``kind``: ``connection`` or
        ``authentication``). The turn goes on without its tools."""
        self._check_running()
        self.trigger_event(self.McpServerFailed, server=server, kind=kind, message=message)

    def pause_turn(self) -> None:
        """Stop the turn until the client answers the calls in :attr:`awaiting`. The calls
        stay open, so nothing the model asked for is lost while it waits."""
        self._check_running()
        if not self.awaiting:
            raise NoPendingAction(self.id, "")
        self.trigger_event(
            self.TurnCompleted, stop_reason=StopReason.REQUIRES_ACTION, detail=" ".join(self.awaiting)
        )

    def resume_turn(self, worker: str) -> None:
        """Continue a paused turn once every call it waited on is answered."""
        self._check_not_terminated()
        if not self.paused:
            raise NoTurnInProgress(self.id)
        if self.awaiting:
            raise AnswersMissing(self.id, self.awaiting)
        self.trigger_event(self.TurnResumed, worker=worker)

    def complete_turn(self, stop_reason: StopReason = StopReason.END_TURN) -> None:
        self._check_running()
        self._close_open_tool_calls(f"not run: turn ended ({stop_reason.value})")
        self.trigger_event(self.TurnCompleted, stop_reason=stop_reason, detail="")

    def fail_turn(self, error: str, error_type: str, partial: str = "") -> None:
        """The turn cannot go on. Open tool calls get an error result so the
        conversation stays well-formed for the next model call. ``partial`` is the text
        of a model reply that failed after some of it was shown: kept with the failure,
        never as a message, so no half answer passes for a reply."""
        self._check_running()
        self._close_open_tool_calls("not run: the turn failed")
        self.trigger_event(self.TurnFailed, error=error, error_type=error_type, partial=partial)

    def interrupt_turn(self, detail: str) -> None:
        """Close a turn that stopped without finishing (a crash, a cancel), or that was
        paused for the client and will not be continued."""
        self._check_turn_open()
        self._close_open_tool_calls(f"not run: the turn was interrupted ({detail})")
        self.trigger_event(self.TurnCompleted, stop_reason=StopReason.INTERRUPTED, detail=detail)

    def set_title(self, title: str) -> None:
        self._check_not_terminated()
        self.trigger_event(self.TitleSet, title=title)

    def attach_compute(self, binding: ComputeBinding) -> None:
        self._check_not_terminated()
        self.trigger_event(self.ComputeAttached, binding=binding)

    def release_compute(self, reason: str) -> None:
        """Record that the sandbox was removed. Only after it was: the log must not
        claim a release that did not happen."""
        if self.compute is not None:
            self.trigger_event(self.ComputeReleased, binding=self.compute, reason=reason)

    def record_workspace(
        self, manifest: Mapping[str, FileState], tool_call_id: str = "", restored_from: int = 0
    ) -> bool:
        """Record the work folder as a snapshot found it (``manifest``: every file), after
        tool call ``tool_call_id``, or after it was rolled back to the files as of event
        ``restored_from``. Only what differs from :attr:`files` is recorded: the files added
        or changed, and the paths gone. Returns whether anything was."""
        self._check_not_terminated()
        files = self.files
        changed = {path: state for path, state in manifest.items() if files.get(path) != state}
        deleted = tuple(sorted(files.keys() - manifest.keys()))
        if not changed and not deleted:
            return False
        self.trigger_event(
            self.WorkspaceChanged,
            changed=dict(sorted(changed.items())),
            deleted=deleted,
            tool_call_id=tool_call_id,
            restored_from=restored_from,
        )
        return True

    def record_packages(self, install: PackageInstall) -> None:
        self._check_not_terminated()
        self.trigger_event(self.PackagesInstalled, install=install)

    def terminate(self, reason: str = "") -> None:
        """Close the session for good. Its sandbox, if any, is released first by the
        caller, which then records it with :meth:`release_compute`."""
        self._check_not_terminated()
        if self.status == Status.RUNNING or self.paused:
            self.interrupt_turn("terminated")
        self.trigger_event(self.SessionTerminated, reason=reason)

    def archive(self) -> None:
        """Keep the session, readable and forkable, but closed to new turns."""
        if self.archived_at is None:
            if self.status == Status.RUNNING:
                raise SessionBusy(self.id, self.worker)
            self.trigger_event(self.SessionArchived)

    def delete(self) -> None:
        """Hide the session for good. The caller terminates it (releasing its sandbox) first."""
        if self.status != Status.TERMINATED:
            raise (
                SessionBusy(self.id, self.worker) if self.status == Status.RUNNING else NotTerminated(self.id)
            )
        if not self.deleted:
            self.trigger_event(self.SessionDeleted)

    def add_resource(self, resource: SessionResource) -> None:
        """Record a resource mounted for the session, between turns. What it put into the
        work folder is recorded apart, as a ``WorkspaceChanged``."""
        self._check_not_terminated()
        if self.status == Status.RUNNING:
            raise SessionBusy(self.id, self.worker)
        self.trigger_event(self.ResourceAdded, resource=resource)

    def remove_resource(self, resource_id: str) -> None:
        """Forget a resource; the files it put into the work folder stay there (they are
        the session's files now, which its tools may have changed)."""
        self._check_not_terminated()
        if self.status == Status.RUNNING:
            raise SessionBusy(self.id, self.worker)
        if self.resource(resource_id) is not None:
            self.trigger_event(self.ResourceRemoved, resource_id=resource_id)

    def touch_resource(self, resource_id: str) -> None:
        """Record that a resource was updated (a repository's token rotated: the token
        itself is never recorded)."""
        self._check_not_terminated()
        if self.resource(resource_id) is not None:
            self.trigger_event(self.ResourceUpdated, resource_id=resource_id)

    def record_memory_read(self, store_id: str, versions: tuple[str, ...]) -> None:
        """Record the memory versions of a store now shown to the tools, when they differ
        from those last recorded."""
        if dict(self.memory_read).get(store_id) != versions:
            self.trigger_event(self.MemoryRead, memory_store_id=store_id, versions=versions)

    def record_memory_written(self, store_id: str, tool_call_id: str, versions: tuple[str, ...]) -> None:
        """Record the memory versions a tool call's changes to a store's folder became."""
        if versions:
            self.trigger_event(
                self.MemoryWritten, memory_store_id=store_id, tool_call_id=tool_call_id, versions=versions
            )

    def resource(self, resource_id: str) -> MountedResource | None:
        """The mounted resource with this id, if the session has it."""
        return next((r for r in self.resources if r.resource.id == resource_id), None)

    def _close_open_tool_calls(self, why: str) -> None:
        for call in self.open_tool_calls:
            self.trigger_event(
                self.ToolResultRecorded,
                result=ToolResult(tool_call_id=call.id, name=call.name, output=why, is_error=True),
            )

    def _check_not_terminated(self) -> None:
        if self.status == Status.TERMINATED:
            raise SessionTerminatedError(self.id)

    def _check_not_archived(self) -> None:
        if self.archived_at is not None:
            raise SessionArchivedError(self.id)

    def _check_turn_open(self) -> None:
        """Running, or paused for the client."""
        self._check_not_terminated()
        if self.status != Status.RUNNING and not self.paused:
            raise NoTurnInProgress(self.id)

    def _check_open_call(self, tool_call_id: str) -> None:
        self._check_running()
        if tool_call_id not in {c.id for c in self.open_tool_calls}:
            raise UnknownToolCall(tool_call_id)

    def _check_running(self) -> None:
        self._check_not_terminated()
        if self.status != Status.RUNNING:
            raise NoTurnInProgress(self.id)

    # -- events -----------------------------------------------------------------

    class UserMessageAdded(Event):
        content: str

        def apply(self, session: Session) -> None:
            session.messages.append(UserMessage(content=self.content))

    class TurnStarted(Event):
        turn: int
        worker: str

        def apply(self, session: Session) -> None:
            session.turns = self.turn
            session.status = Status.RUNNING
            session.worker = self.worker
            session.paused = False

    class TurnResumed(Event):
        """A paused turn continues, its calls answered, on behalf of ``worker``."""

        worker: str

        def apply(self, session: Session) -> None:
            session.status = Status.RUNNING
            session.worker = self.worker
            session.paused = False

    class AssistantMessageAdded(Event):
        message: AssistantMessage

        def apply(self, session: Session) -> None:
            session.messages.append(self.message)

    class UsageRecorded(Event):
        model: str
        usage: Usage
        call: ModelCall | None = None
        """The call's timing and cost. Usage recorded before calls were timed decodes
        with the default, and its hash never covered it."""

        def apply(self, session: Session) -> None:
            session.usage = session.usage + self.usage
            previous = session.usage_by_model.get(self.model, Usage())
            session.usage_by_model[self.model] = previous + self.usage

    class ToolCallStarted(Event):
        call: ToolCall

    class CustomToolRequested(Event):
        """The client runs this call; its answer is the call's ``ToolResultRecorded``."""

        call: ToolCall

        def apply(self, session: Session) -> None:
            session.pending_custom = (*session.pending_custom, self.call.id)

    class RemoteToolRequested(Event):
        """A self-hosted worker runs this call; its answer is the call's ``ToolResultRecorded``."""

        call: ToolCall

        def apply(self, session: Session) -> None:
            session.pending_remote = (*session.pending_remote, self.call.id)

    class RemoteToolAnswered(Event):
        """Who ran a call in a self-hosted environment: the worker key's id and the worker's
        own name (``Anthropic-Worker-ID``), as ``key_id/worker``. The result follows."""

        tool_call_id: str
        worker: str

        def apply(self, session: Session) -> None:
            session.ran_on = (*session.ran_on, (self.tool_call_id, self.worker))

    class ToolConfirmationRequested(Event):
        call: ToolCall

        def apply(self, session: Session) -> None:
            session.pending_confirmations = (*session.pending_confirmations, self.call.id)

    class ToolConfirmationAnswered(Event):
        """The client's decision. A denied call is answered with an error result the
        model reads; an allowed one runs."""

        tool_call_id: str
        allowed: bool
        reason: str

        def apply(self, session: Session) -> None:
            session.pending_confirmations = _without(session.pending_confirmations, self.tool_call_id)

    class ConfigChanged(Event):
        config: SessionConfig
        changes: tuple[str, ...]

        def apply(self, session: Session) -> None:
            session.config = self.config
            session.config_version += 1

    class ToolResultRecorded(Event):
        result: ToolResult

        def apply(self, session: Session) -> None:
            session.messages.append(self.result)
            session.pending_confirmations = _without(session.pending_confirmations, self.result.tool_call_id)
            session.pending_custom = _without(session.pending_custom, self.result.tool_call_id)
            session.pending_remote = _without(session.pending_remote, self.result.tool_call_id)

    class TitleSet(Event):
        title: str

        def apply(self, session: Session) -> None:
            session.title = self.title

    class TurnCompleted(Event):
        stop_reason: StopReason
        detail: str

        def apply(self, session: Session) -> None:
            session.status = Status.IDLE
            session.worker = ""
            session.paused = self.stop_reason == StopReason.REQUIRES_ACTION

    class TurnFailed(Event):
        error: str
        error_type: str
        partial: str = ""
        """The text a failed model reply had streamed to the caller before it failed.
        Failures recorded before this field decode with the default, and their hash never
        covered it."""

        def apply(self, session: Session) -> None:
            session.status = Status.ERROR
            session.worker = ""
            session.last_error = f"{self.error_type}: {self.error}"

    class McpServerFailed(Event):
        """An MCP server was unreachable or refused the credential: the turn ran without
        its tools. Nothing of the session's state changes; the cloud API shows it as a
        ``session.error``."""

        server: str
        kind: str
        message: str

    class PackagesInstalled(Event):
        install: PackageInstall

        def apply(self, session: Session) -> None:
            session.packages.append(self.install)

    class WorkspaceChanged(Event):
        """The work folder changed: files added or changed (``changed``, path to file) and
        paths deleted, found by a snapshot after tool call ``tool_call_id`` (empty when no
        call caused it), or after a restore of the files as of event ``restored_from``. The
        manifest at any version is the fold of these, and the hash chain covers it."""

        changed: dict[str, FileState]
        deleted: tuple[str, ...]
        tool_call_id: str
        restored_from: int

        def apply(self, session: Session) -> None:
            files = dict(session.files)
            for path in self.deleted:
                files.pop(path, None)
            files.update(self.changed)
            session.files = files
            session.files_changed_at = self.originator_version

    class ComputeAttached(Event):
        binding: ComputeBinding

        def apply(self, session: Session) -> None:
            session.compute = self.binding

    class ComputeReleased(Event):
        binding: ComputeBinding
        reason: str

        def apply(self, session: Session) -> None:
            session.compute = None

    class SessionTerminated(Event):
        reason: str

        def apply(self, session: Session) -> None:
            session.status = Status.TERMINATED
            session.paused = False

    class SessionArchived(Event):
        def apply(self, session: Session) -> None:
            session.archived_at = self.timestamp

    class ResourceAdded(Event):
        resource: SessionResource

        def apply(self, session: Session) -> None:
            mounted = MountedResource(
                resource=self.resource, created_at=self.timestamp, updated_at=self.timestamp
            )
            session.resources = (*session.resources, mounted)

    class ResourceUpdated(Event):
        resource_id: str

        def apply(self, session: Session) -> None:
            session.resources = tuple(
                msgspec.structs.replace(r, updated_at=self.timestamp)
                if r.resource.id == self.resource_id
                else r
                for r in session.resources
            )

    class ResourceRemoved(Event):
        resource_id: str

        def apply(self, session: Session) -> None:
            session.resources = tuple(r for r in session.resources if r.resource.id != self.resource_id)

    class MemoryRead(Event):
        """The tools were shown these memory versions of a store (its whole content)."""

        memory_store_id: str
        versions: tuple[str, ...]

        def apply(self, session: Session) -> None:
            read = dict(session.memory_read) | {self.memory_store_id: self.versions}
            session.memory_read = tuple(read.items())

    class MemoryWritten(Event):
        """What a tool call left in a store's folder became these memory versions, each
        attributed to this session and the call's ``ToolCallStarted``."""

        memory_store_id: str
        tool_call_id: str
        versions: tuple[str, ...]

    class SessionDeleted(Event):
        def apply(self, session: Session) -> None:
            session.deleted = True

    def state(self) -> dict[str, Any]:
        """Everything the events determine, for comparing replays and for display."""
        return {
            "id": self.id,
            "version": self.version,
            "config": self.config,
            "title": self.title,
            "status": self.status,
            "messages": list(self.messages),
            "usage": self.usage,
            "usage_by_model": dict(self.usage_by_model),
            "turns": self.turns,
            "lineage": self.lineage,
            "compute": self.compute,
            "packages": list(self.packages),
            "last_error": self.last_error,
            "pending_confirmations": self.pending_confirmations,
            "pending_custom": self.pending_custom,
            "pending_remote": self.pending_remote,
            "ran_on": dict(self.ran_on),
            "paused": self.paused,
            "archived_at": self.archived_at,
            "deleted": self.deleted,
            "config_version": self.config_version,
            "files": dict(self.files),
        }


def _without(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return tuple(i for i in items if i != item)


def leaves_turns_alone(event: Any) -> bool:
    """Whether an event changes nothing a running turn depends on: a title, or metadata
    alone. A turn's own events may be recorded after such an event appended meanwhile by
    another process, as if they came first (see ``SessionService._save``)."""
    if isinstance(event, Session.TitleSet):
        return True
    return isinstance(event, Session.ConfigChanged) and tuple(event.changes) == ("metadata",)
