"""What a client sends a session between turns and while one runs: a prompt, an
interrupt, and its answers to a paused turn (a custom tool's result, a confirmation).

Each answer checks that the turn waits for that call before it records anything, so an
answer nobody asked for, or a second answer, is refused with the domain's error.
:func:`check_steps` checks a whole batch of them (one send of the cloud API) against the
session before any is recorded, so a batch is refused whole or recorded in order.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from agentjournal.application.tool_policy import refusal
from agentjournal.domain import (
    NoPendingAction,
    Session,
    Status,
    ToolCall,
    ToolResult,
)
from agentjournal.domain.errors import AgentJournalError, SessionError


def recorded_call(session: Session, call_id: str) -> ToolCall:
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
    call = recorded_call(session, tool_call_id)
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
        call = recorded_call(session, tool_call_id)
        why = f"the user denied this tool call{': ' + reason if reason else ''}"
        session.record_tool_result(refusal(call, why))


def _check_awaits_answers(session: Session) -> None:
    """A turn takes the client's answers while it runs (within its grace) or is paused."""
    if session.status != Status.RUNNING and not session.paused:
        raise NoPendingAction(session.id, "")


def record_worker_result(
    session: Session, tool_call_id: str, output: bytes, is_error: bool, worker: str
) -> None:
    """A worker's result for a call the turn waits on it for, applied to ``session`` (not
    saved), capped at the session's ``max_output_bytes`` like any tool's output.
    :class:`NoPendingAction` when no worker is awaited for that call."""
    call = next((c for c in session.open_tool_calls if c.id == tool_call_id), None)
    if call is None or tool_call_id not in session.pending_remote:
        raise NoPendingAction(session.id, tool_call_id)
    limit = session.config.max_output_bytes
    result = ToolResult(
        tool_call_id=tool_call_id, name=call.name, output=output[:limit].decode("utf-8", "replace"),
        is_error=is_error, truncated=len(output) > limit,
    )  # fmt: skip
    session.record_remote_result(result, worker)


class Prompt(msgspec.Struct, frozen=True):
    text: str


class Interrupt(msgspec.Struct, frozen=True):
    detail: str


class ToolAnswer(msgspec.Struct, frozen=True):
    call_id: str
    output: str
    is_error: bool


class Confirmation(msgspec.Struct, frozen=True):
    call_id: str
    allowed: bool
    reason: str


class WorkerResult(msgspec.Struct, frozen=True):
    """A self-hosted worker's result for a call the turn waits on it for."""

    call_id: str
    output: str
    is_error: bool


Step = Prompt | Interrupt | ToolAnswer | Confirmation | WorkerResult


class StepRefused(AgentJournalError):
    """Step ``index`` of a batch would be refused, for ``reason`` (the domain's error)."""

    def __init__(self, index: int, reason: SessionError) -> None:
        super().__init__(str(reason))
        self.index = index
        self.reason = reason


def check_steps(session: Session, orphaned: str | None, steps: Sequence[Step]) -> None:
    """Apply ``steps`` to ``session`` (a copy just read, never saved) as recording them will:
    a prompt starts a turn (first closing one nobody runs, ``orphaned`` says why), answers
    that leave nothing awaited continue the paused turn. Raises :class:`StepRefused` for the
    first step the session would refuse."""
    if orphaned is not None:
        session.interrupt_turn(orphaned)
    for index, step in enumerate(steps):
        try:
            if isinstance(step, Prompt):
                session.begin_turn(step.text, "")
                continue
            if isinstance(step, Interrupt):
                session.interrupt_turn(step.detail)
                continue
            if isinstance(step, WorkerResult):
                if any(
                    isinstance(m, ToolResult) and m.tool_call_id == step.call_id for m in session.messages
                ):
                    continue  # a worker posting again what is recorded: harmless, the first stands
                record_worker_result(session, step.call_id, step.output.encode(), step.is_error, "")
            elif isinstance(step, ToolAnswer):
                answer_tool_call(session, step.call_id, step.output.encode(), step.is_error)
            else:
                confirm_tool_call(session, step.call_id, step.allowed, step.reason)
            if session.paused and not session.awaiting:
                session.resume_turn("")
        except SessionError as e:
            raise StepRefused(index, e) from None
