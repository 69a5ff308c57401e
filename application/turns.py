"""The turn loop: model, tools, model again, until the model stops calling tools.

:class:`TurnLoop` runs a session's turns for a :class:`~agentjournal.application.service.SessionService`:
it checks the recorded config's policies, records the prompt and the turn's start (which
grants the turn's lease, :mod:`~agentjournal.application.leases`), streams the model's reply,
answers its tool calls as the :mod:`~agentjournal.application.tool_policy` decides (run on the
compute, ask the client, hand a custom tool to the client, refuse), and makes sure the log says
how the turn ended, whatever happens. A turn that waits for the client pauses
(``requires_action``) and is continued later, from any process.

Whoever runs a turn holds its lease; if the lease is lost the turn stops between steps and
its tools' processes are ended (the runner cannot keep acting on a turn another process
may be closing).
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import msgspec

from agentjournal.application.answers import recorded_call
from agentjournal.application.errors import (
    ConcurrentUpdate,
    LeaseLost,
)
from agentjournal.application.leases import (
    Lease,
)
from agentjournal.application.mcp_tools import mcp_target, offered_mcp_tools, run_mcp_tool
from agentjournal.application.memory_mounts import SessionMemory
from agentjournal.application.ports import (
    Compute,
    LanguageModel,
    McpClient,
    ModelError,
    ModelReply,
    TextDelta,
    ToolSpec,
)
from agentjournal.application.recording import recordable
from agentjournal.application.redaction import Redactor
from agentjournal.application.tool_policy import Verdict, judge, refusal
from agentjournal.application.tools import READS_ONLY, ToolArgumentError, ToolLimits, run_tool, tool_arguments
from agentjournal.application.toolset import check_handlers, tool_specs
from agentjournal.application.work_queue import NoWorkerCame
from agentjournal.application.workspace import restore_into_new_sandbox, roll_back, take_snapshot
from agentjournal.domain import (
    Message,
    ModelCall,
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

if TYPE_CHECKING:
    from agentjournal.application.service import SessionService

ANSWER_POLL_SECONDS = 0.1
"""How often a turn waiting for the client's answers reads the log, at most."""


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
    mcp: McpClient | None = None
    """Speaks to the session's MCP servers (none: their tools are not offered)."""
    mcp_tokens: Mapping[str, str] = field(default_factory=dict)
    """Bearer credentials by MCP server URL (the caller's, or from the session's vaults):
    sent to those servers only, never recorded."""
    refresh_mcp_token: Callable[[str], bool] | None = None
    """Renews the token in ``mcp_tokens`` for a server that refused it, saying whether
    there is a new one (a vault's ``mcp_oauth`` credential with refresh settings)."""
    wait_for_log: Callable[[UUID, float], None] = field(
        default=lambda _session_id, seconds: time.sleep(seconds)
    )
    """Blocks until the session's log may have grown, or for the given seconds: how a turn
    waiting for answers hears of them (a server wakes it when it records one)."""


class RuntimeFactory(Protocol):
    """Builds a turn's runtime for a session's recorded config. The session's id is given
    when there is one: a compute is attached to one session's sandbox, so no two sessions
    may be handed the same one."""

    def __call__(self, recorded: SessionConfig, session_id: UUID | None = None) -> TurnRuntime: ...


# -- the worker that runs a turn --------------------------------------------------

_HOST = platform.node()
"""This host's name, as ``socket.gethostname()`` gives it (without loading ``socket``)."""


def this_worker() -> str:
    """Who runs a turn, as ``TurnStarted`` records it (the lease names the runner exactly)."""
    return f"{_HOST}:{os.getpid()}"


class TurnLoop:
    """Runs the turns of a service's sessions (the service's named part for them)."""

    def __init__(self, service: SessionService) -> None:
        self.service = service
        self.memory = SessionMemory(service)

    def restore_files(self, session_id: UUID, version: int, runtime_for: RuntimeFactory) -> int:
        """Roll the session's work folder back to its files as of event ``version``, in its
        sandbox, and record that as a ``WorkspaceChanged`` restored from that version: the
        history in between stays in the log. Between turns only. Returns the new version."""
        target = self.service.get_session(session_id, version).files
        session, runtime = self._ready_for_turn(session_id, runtime_for)
        if session.status == Status.RUNNING:
            raise SessionBusy(session.id, session.worker)
        if session.status == Status.TERMINATED:
            raise SessionTerminatedError(session.id)
        for _ in self._prepare_compute(session, runtime, has_tools=True):
            pass
        roll_back(session, runtime.compute, self.service.blobs, version, target)
        self.service.save_session(session)
        self.service.keep(session)
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

    def start_turn(
        self, session_id: UUID, prompt: str | Sequence[str], runtime_for: RuntimeFactory
    ) -> StartedTurn:
        """:meth:`run_turn` in two steps, for callers that answer before the turn is done
        (a server's ``send``): the prompt and the turn's start are recorded now, or the
        reason they cannot be is raised now; the rest runs as the returned ``updates``
        are consumed, which the caller must do (or close), as they hold the session running.
        Several prompts (a new session's ``initial_events``) are recorded in order and
        answered by one turn."""
        prompts = (prompt,) if isinstance(prompt, str) else tuple(prompt)
        return self._begin(
            session_id, runtime_for, lambda s, r: s.begin_turn([r.redact(p) for p in prompts], this_worker())
        )

    def start_continuing(self, session_id: UUID, runtime_for: RuntimeFactory) -> StartedTurn:
        """:meth:`continue_turn` in two steps, like :meth:`start_turn`."""
        return self._begin(session_id, runtime_for, lambda s, _r: s.resume_turn(this_worker()))

    def _begin(
        self, session_id: UUID, runtime_for: RuntimeFactory, command: Callable[[Session, TurnRuntime], None]
    ) -> StartedTurn:
        """Begin a turn with ``command`` on the session brought up to date. Losing the save
        to another process (one closing an orphaned turn, an answer, an interrupt) begins
        again from what it recorded, where the command may then be refused (a turn began
        meanwhile: ``SessionBusy``)."""
        for attempt in range(1, self.service.store_attempts + 1):
            session, runtime = self._ready_for_turn(session_id, runtime_for)
            command(session, runtime)
            try:
                return self._started(session, runtime)
            except ConcurrentUpdate:
                if attempt == self.service.store_attempts:
                    raise
        raise AssertionError("unreachable")

    def _started(self, session: Session, runtime: TurnRuntime) -> StartedTurn:
        """Record the turn's start (which grants its lease), hold the lease with heartbeats
        until the turn ends, and hand over the rest of the turn."""
        recording = len(session.pending_events)
        lost = threading.Event()

        def on_lost() -> None:
            lost.set()
            runtime.compute.stop()

        # Held before the grant is saved, so no sweep of this process takes the new lease
        # for one nobody renews; the save may record the start later than planned (after a
        # title set meanwhile), and then the lease's token is that later version.
        planned = self.service.lease_change(session)
        assert planned is not None and not planned.releases  # a start always grants
        held = self.service.heartbeat.hold(Lease(planned.name, planned.holder, planned.token, 0.0), on_lost)
        try:
            grant = self.service.save_session(session)
        except BaseException:
            self.service.heartbeat.drop(held)
            raise
        assert grant is not None
        lease = Lease(grant.name, grant.holder, grant.token, 0.0)
        if lease.token != planned.token:
            planned_hold, held = held, self.service.heartbeat.hold(lease, on_lost)
            self.service.heartbeat.drop(planned_hold)
        first = session.version - recording + 1
        return StartedTurn(first, self._drive(session, runtime, held, lost))

    def _ready_for_turn(self, session_id: UUID, runtime_for: RuntimeFactory) -> tuple[Session, TurnRuntime]:
        """The session brought up to date, and a runtime for its recorded config that passed
        the same policies as at the session's creation; nothing is recorded yet."""
        session = self.service.working.pop(session_id, None)
        session = self.service.fast_forward(session) if session else self.service.get_session(session_id)
        self.service.recover(session)
        runtime = runtime_for(session.config, session.id)
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

    def _drive(
        self, session: Session, runtime: TurnRuntime, held: int, lost: threading.Event
    ) -> Iterator[TurnUpdate]:
        """Run the agent loop of a turn just begun or resumed, and make sure the log says
        how it ended. ``lost`` is set when the turn's lease is lost: the turn stops at its
        next step (its tools' processes were already ended)."""
        try:
            while True:
                try:
                    yield from self._loop(session, runtime, lost)
                    break
                except _AnsweredMeanwhile:
                    # The client answered while the turn was recording its pause: go on
                    # from the log, where the answer is, if the turn is still ours.
                    fresh = self.service.get_session(session.id)
                    if not _same_turn(fresh, session):
                        return
                    session = fresh
            self.service.keep(session)
        except (GeneratorExit, KeyboardInterrupt) as e:
            reason = "the caller stopped" if isinstance(e, GeneratorExit) else "interrupted"
            self._end(session, lambda s: s.interrupt_turn(reason))
            raise
        except ConcurrentUpdate:
            raise
        except Exception as e:
            error, kind = runtime.redact(str(e)), type(e).__name__
            partial = runtime.redact(e.partial) if isinstance(e, ModelError) else ""
            self._end(session, lambda s: s.fail_turn(error, kind, partial))
            raise
        finally:
            self.service.heartbeat.drop(held)

    def _loop(self, session: Session, runtime: TurnRuntime, lost: threading.Event) -> Iterator[TurnUpdate]:
        """Model, tools, model again, until the model stops calling tools or the turn's
        ``max_turns`` model calls are spent; a turn that waits for the client pauses.

        Each round first answers the open calls nobody waits on any more (those the
        client allowed while the turn waited, after a resume), so the loop also
        continues a paused turn."""
        tools = tool_specs(session.config)
        yield from self._prepare_compute(session, runtime, bool(tools))
        if session.config.mcp_servers:
            tools += offered_mcp_tools(
                session, runtime.mcp, runtime.mcp_tokens, runtime.redact, runtime.refresh_mcp_token
            )
            self.service.save_session(session)  # the servers that failed, if any
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
                if not runtime.defer_actions:
                    # Only a worker is awaited here (handlers answer the rest at once), and
                    # nobody would continue a pause: the turn ends with why.
                    raise NoWorkerCame(runtime.answer_grace)
                session.pause_turn()
                self._save_pause(session)
                yield TurnOutcome(session.id, text, StopReason.REQUIRES_ACTION, used, session.usage)
                return
            if budget <= 0:
                break
            if lost.is_set():
                raise LeaseLost(session.id)
            budget -= 1
            reply, timing = yield from _model_reply(
                runtime.model, session.config.system, session.messages, tools
            )
            message = recordable(reply.message, runtime.redact, session.config.max_output_bytes)
            session.add_assistant_message(message)
            session.record_usage(reply.model, reply.usage, timing)
            text, used = message.content, used + reply.usage
            if not message.tool_calls:
                stop_reason = StopReason.END_TURN
                break
            self.service.save_session(session)
            # The recorded calls carry unique ids and capped arguments; the tools run
            # with what the model sent.
            calls = [
                msgspec.structs.replace(sent, id=recorded.id)
                for sent, recorded in zip(reply.message.tool_calls, message.tool_calls, strict=True)
            ]
            whole = {c.id: c for c in calls}
            yield from self._answer_calls(session, calls, runtime)
        session.complete_turn(stop_reason)
        self.service.save_session(session)
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
            self.service.fast_forward(session)
        return True

    def _save_pause(self, session: Session) -> None:
        try:
            self.service.save_session(session)
        except ConcurrentUpdate:
            raise _AnsweredMeanwhile from None

    def _answer_calls(
        self, session: Session, calls: Sequence[ToolCall], runtime: TurnRuntime, confirmed: bool = False
    ) -> Generator[TurnUpdate, None, bool]:
        """Answer a reply's calls in order and record their results; True when some wait
        for the client. ``confirmed`` calls were allowed while the turn was paused."""
        waiting = False
        for number, call in enumerate(calls, start=1):
            recorded = recorded_call(session, call.id)
            result = yield from self._answer(session, number, call, recorded, runtime, confirmed)
            if result is None:
                waiting = True
                continue
            result = msgspec.structs.replace(result, name=recorded.name, output=runtime.redact(result.output))
            session.record_tool_result(result)
            self.service.save_session(session)
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
        handed to the client when it is a custom tool, to a self-hosted environment's
        worker when one runs it, run on the compute otherwise.
        ``call`` is the call as the model sent it (whole arguments), ``recorded`` as the
        log keeps it; both carry the recorded id. Calls past the ``number`` a reply may
        make are refused, so one reply cannot run without end. None means the call waits
        for the client (a deferred confirmation or custom tool) or a worker."""
        config = session.config
        judgement = judge(config, call, number, confirmed)
        if judgement.verdict == Verdict.ASK:
            if runtime.on_tool_confirmation is None:
                session.request_confirmation(recorded)
                self.service.save_session(session)
                yield ToolCallUpdate(recorded)
                return None
            if not self._confirm(session, call, recorded, runtime):
                return refusal(call, "the user denied this tool call")
            judgement = judge(config, call, number, confirmed=True)
        if judgement.verdict == Verdict.REFUSE:
            return refusal(call, judgement.reason)
        if judgement.verdict == Verdict.CUSTOM:
            session.request_custom_tool(recorded)
            self.service.save_session(session)
            yield ToolCallUpdate(recorded)
            if runtime.on_custom_tool is None:
                return None
            return _custom_result(call, runtime, config.max_output_bytes)
        if judgement.verdict == Verdict.WORKER:
            session.request_remote_tool(recorded)
            self.service.save_session(session)
            self.service.work.offer(config.environment_id, str(session.id))
            yield ToolCallUpdate(recorded)
            return None
        local = judgement.verdict != Verdict.MCP
        if local:  # the memory stores as they are now, what other sessions wrote included
            self.memory.show(session, runtime.compute)
        session.start_tool_call(recorded)
        self.service.save_session(session)
        started = session.version
        yield ToolCallUpdate(recorded)
        if not local:
            target = mcp_target(config, call.name)
            assert target is not None  # judged an MCP call
            return run_mcp_tool(
                runtime.mcp,
                target,
                call,
                runtime.mcp_tokens,
                config.max_output_bytes,
                runtime.refresh_mcp_token,
            )
        result = run_tool(runtime.compute, call, ToolLimits.of(config))
        if call.name not in READS_ONLY:
            # Recorded before the result, so the files as of the result are what the call left.
            take_snapshot(session, runtime.compute, self.service.blobs, recorded.id)
            notes = self.memory.collect(session, runtime.compute, recorded.id, started, runtime.redact)
            if notes:
                result = msgspec.structs.replace(result, output="\n".join([result.output, *notes]))
        return result

    def _confirm(self, session: Session, call: ToolCall, recorded: ToolCall, runtime: TurnRuntime) -> bool:
        """Ask the client whether ``call`` may run, showing it the arguments that would run
        (``call``, whole); the question (``recorded``) and the answer are recorded."""
        assert runtime.on_tool_confirmation is not None  # checked before the turn began
        session.request_confirmation(recorded)
        self.service.save_session(session)
        info = {"name": call.name, "input": _arguments_or_text(call.arguments), "tool_use_id": call.id}
        allowed = runtime.on_tool_confirmation(info) is True
        session.answer_confirmation(call.id, allowed, "" if allowed else "denied by on_tool_confirmation")
        self.service.save_session(session)
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
            self.service.save_session(
                session
            )  # before anything else can stop the turn: the log must know the sandbox
            if session.files:
                yield ComputeProgress(f"restoring {len(session.files)} files")
                restore_into_new_sandbox(session, runtime.compute, self.service.blobs)
                self.service.save_session(session)
        installed = {(p.manager, p.where) for p in session.packages}
        for manager, names in session.config.packages.items():
            if names and (manager, binding.reference) not in installed:
                yield ComputeProgress(f"installing {manager} packages: {' '.join(names)}")
                output = runtime.compute.install_packages(manager, names)
                session.record_packages(
                    PackageInstall(manager, tuple(names), binding.reference, runtime.redact(output))
                )
                self.service.save_session(session)

    def _end(self, session: Session, command: Callable[[Session], None]) -> None:
        """Record how a turn ended, on a copy fresh from the store: the in-memory
        session may hold events whose save failed, and must not be saved after them."""
        fresh = self.service.get_session(session.id)
        if _same_turn(fresh, session):
            command(fresh)
            self.service.save_session(fresh)


def _model_reply(
    model: LanguageModel, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
) -> Generator[TextDelta, None, tuple[ModelReply, ModelCall]]:
    """One model call: its text goes on to the caller as it streams, and its reply is
    returned with the call's timing (measured here, whatever the adapter) and price (the
    adapter's). A call that fails after some text was shown fails with a
    :class:`ModelError` whose ``partial`` is that text, so the turn's failure records
    what the caller saw, and no half answer passes for a reply."""
    shown: list[str] = []
    reply = None
    first_token = 0.0
    try:
        # Asked for first, timed after: an adapter may prepare there (load its client).
        items = model.stream(system, messages, tools)
        started_at, started = datetime.now(timezone.utc), time.perf_counter()
        for item in items:
            first_token = first_token or time.perf_counter()
            if isinstance(item, ModelReply):
                reply = item
            else:
                shown.append(item.text)
                yield item
    except ModelError as e:
        e.partial = "".join(shown)
        raise
    if reply is None:
        raise ModelError("the model stream ended without a reply", partial="".join(shown))
    ended = time.perf_counter()
    timing = ModelCall(
        started_at=started_at,
        duration_ms=round((ended - started) * 1000, 3),
        first_token_ms=round((first_token - started) * 1000, 3),
        cost_usd=reply.cost_usd,
    )
    return reply, timing


def _same_turn(fresh: Session, running: Session) -> bool:
    """Whether the log still shows the turn ``running`` runs as running: not ended by
    anyone since, and not followed by another turn of this same process."""
    return fresh.status == Status.RUNNING and fresh.worker == running.worker and fresh.turns == running.turns


class _AnsweredMeanwhile(Exception):
    """The client's answer reached the log while the turn recorded its pause."""


def _custom_result(call: ToolCall, runtime: TurnRuntime, max_output_bytes: int) -> ToolResult:
    """What the client's handler answered for a custom tool call, capped like any tool's
    output; its failure is the model's to read, like any tool's."""
    assert runtime.on_custom_tool is not None  # checked before the turn began
    started = time.perf_counter()
    try:
        arguments = tool_arguments(call)
    except ToolArgumentError as e:
        return refusal(call, str(e))
    try:
        answer = runtime.on_custom_tool(call.name, arguments)
        output = answer if isinstance(answer, str) else msgspec.json.encode(answer).decode()
    except Exception as e:  # noqa: BLE001 - the handler's failure is the tool's result
        return refusal(call, f"{type(e).__name__}: {e}")
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
