"""A session's log read as a trace: turns, and in each its model calls and tool calls,
with when each ran, how long it took and what it cost.

Everything here is derived from the recorded events, so any session, however old,
can be measured after the fact: the command line's ``show`` and ``timeline``, the
API's session, the browser's page and the OpenTelemetry exporter all read one
:class:`SessionTrace`. A model call's timing and price are those its
``UsageRecorded`` recorded (see :class:`~agentjournal.domain.ModelCall`); usage
recorded before calls were timed shows as a call of unknown duration and price. A
tool call runs from its ``ToolCallStarted`` (or its request, for a client's custom
tool) for the ``duration_ms`` its result recorded.

Costs add up as :class:`Cost`: dollars of the calls whose price is known, and how
many calls had none, so a total over an unpriced call says it is a lower bound
rather than passing for the whole. A fork's trace holds its own turns only: what it
inherited was spent, and is measured, in its parent.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from agentjournal.domain import Session, ToolResult, Usage


class Cost(msgspec.Struct, frozen=True):
    """What some model calls cost: ``usd`` for those with a known price, and how many
    had none (``unpriced``). ``known`` only when every call was priced."""

    usd: float = 0.0
    unpriced: int = 0

    @property
    def known(self) -> bool:
        return self.unpriced == 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(usd=self.usd + other.usd, unpriced=self.unpriced + other.unpriced)

    @classmethod
    def of(cls, cost_usd: float | None) -> Cost:
        """The cost of one call, whose recorded price is ``cost_usd`` (None: unknown)."""
        return cls(unpriced=1) if cost_usd is None else cls(usd=cost_usd)


class ModelCallSpan(msgspec.Struct, frozen=True):
    """One model call. ``version`` is its ``UsageRecorded`` event's; ``duration_ms`` and
    ``first_token_ms`` are None for a call recorded before calls were timed, whose
    ``started_at`` is then the moment its reply was recorded."""

    version: int
    model: str
    started_at: datetime
    duration_ms: float | None
    first_token_ms: float | None
    usage: Usage
    cost_usd: float | None
    tool_calls: int

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.duration_ms or 0.0)


class ToolCallSpan(msgspec.Struct, frozen=True):
    """One tool call, from its start to its result (``version`` is the result's event)."""

    version: int
    call_id: str
    name: str
    started_at: datetime
    duration_ms: float
    failed: bool
    exit_code: int | None

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.duration_ms)


class TurnSpan(msgspec.Struct, frozen=True):
    """One turn: from its ``TurnStarted`` to the event that ended it (``ended_at`` None
    while it runs), its outcome (a stop reason, ``error``, or ``running``), and its
    calls in the order they were made."""

    turn: int
    version: int
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    model_calls: tuple[ModelCallSpan, ...]
    tool_calls: tuple[ToolCallSpan, ...]
    error: str = ""

    @property
    def cost(self) -> Cost:
        return sum((Cost.of(c.cost_usd) for c in self.model_calls), Cost())

    @property
    def duration_ms(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000

    @property
    def model_ms(self) -> float:
        return sum(c.duration_ms or 0.0 for c in self.model_calls)


class ToolStats(msgspec.Struct, frozen=True):
    """How one tool fared across a session: its calls, how many failed (an error result
    or a non-zero exit code), and the median and 95th percentile of their durations."""

    name: str
    calls: int
    failures: int
    median_ms: float
    p95_ms: float


class SessionTrace(msgspec.Struct, frozen=True):
    """A session as a trace: its turns in order, and totals and statistics over them.
    ``model`` is the model its config names (the last one, after a config change)."""

    session_id: UUID
    model: str
    started_at: datetime
    turns: tuple[TurnSpan, ...]

    @property
    def cost(self) -> Cost:
        return sum((t.cost for t in self.turns), Cost())

    @property
    def model_calls(self) -> list[ModelCallSpan]:
        return [c for t in self.turns for c in t.model_calls]

    @property
    def tool_calls(self) -> list[ToolCallSpan]:
        return [c for t in self.turns for c in t.tool_calls]

    @property
    def model_ms(self) -> float:
        return sum(t.model_ms for t in self.turns)

    def tool_stats(self) -> list[ToolStats]:
        """Per-tool statistics, the most called first."""
        by_name: dict[str, list[ToolCallSpan]] = {}
        for call in self.tool_calls:
            by_name.setdefault(call.name, []).append(call)
        stats = [
            ToolStats(
                name=name,
                calls=len(calls),
                failures=sum(c.failed for c in calls),
                median_ms=statistics.median(c.duration_ms for c in calls),
                p95_ms=percentile([c.duration_ms for c in calls], 95),
            )
            for name, calls in by_name.items()
        ]
        return sorted(stats, key=lambda s: (-s.calls, s.name))


def percentile(values: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile: the smallest of ``values`` that at least ``rank``
    percent of them are at or below (so always one of them, never an interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]


def failed(result: ToolResult) -> bool:
    """A tool call failed when its result is an error or its command exited non-zero."""
    return result.is_error or result.exit_code not in (None, 0)


def session_trace(events: Iterable[Any]) -> SessionTrace:
    """The trace of one session's events, in log order (the first being its start or fork)."""
    builder = _Builder()
    for event in events:
        builder.add(event)
    return builder.trace()


@dataclass
class _OpenTurn:
    """A turn whose end is not yet read: its spans so far."""

    turn: int
    version: int
    started_at: datetime
    model_calls: list[ModelCallSpan] = field(default_factory=list)
    tool_calls: list[ToolCallSpan] = field(default_factory=list)

    def span(self, ended_at: datetime | None, outcome: str, error: str = "") -> TurnSpan:
        return TurnSpan(
            turn=self.turn, version=self.version, started_at=self.started_at, ended_at=ended_at,
            outcome=outcome, model_calls=tuple(self.model_calls), tool_calls=tuple(self.tool_calls),
            error=error,
        )  # fmt: skip


class _Builder:
    """Folds events into turns; a turn's spans collect until the event that ends it. A
    paused turn that resumes (``TurnResumed``) continues as a second span of its number."""

    def __init__(self) -> None:
        self.session_id: UUID | None = None
        self.model = ""
        self.started_at: datetime | None = None
        self.turns: list[TurnSpan] = []
        self.open: _OpenTurn | None = None
        self.tool_starts: dict[str, datetime] = {}
        self.pending_reply: tuple[datetime, int] | None = None

    def add(self, e: Any) -> None:
        match e:
            case Session.SessionStarted() | Session.SessionForked():
                self.session_id, self.model, self.started_at = e.originator_id, e.config.model, e.timestamp
            case Session.ConfigChanged():
                self.model = e.config.model
            case Session.TurnStarted():
                self._close(e.timestamp, "interrupted")
                self.open = _OpenTurn(e.turn, e.originator_version, e.timestamp)
            case Session.TurnResumed():
                self._close(e.timestamp, "interrupted")
                number = self.turns[-1].turn if self.turns else 0
                self.open = _OpenTurn(number, e.originator_version, e.timestamp)
            case Session.AssistantMessageAdded():
                self.pending_reply = (e.timestamp, len(e.message.tool_calls))
            case Session.UsageRecorded():
                self._model_call(e)
            case (
                Session.ToolCallStarted()
                | Session.CustomToolRequested()
                | Session.ToolConfirmationRequested()
            ):
                self.tool_starts.setdefault(e.call.id, e.timestamp)
            case Session.ToolResultRecorded():
                self._tool_call(e)
            case Session.TurnCompleted():
                self._close(e.timestamp, e.stop_reason.value)
            case Session.TurnFailed():
                self._close(e.timestamp, "error", f"{e.error_type}: {e.error}")

    def _model_call(self, e: Any) -> None:
        replied_at, tool_calls = self.pending_reply or (e.timestamp, 0)
        self.pending_reply = None
        call = e.call
        span = ModelCallSpan(
            version=e.originator_version,
            model=e.model,
            started_at=call.started_at if call else replied_at,
            duration_ms=call.duration_ms if call else None,
            first_token_ms=call.first_token_ms if call else None,
            usage=e.usage,
            cost_usd=call.cost_usd if call else None,
            tool_calls=tool_calls,
        )
        if self.open is not None:
            self.open.model_calls.append(span)

    def _tool_call(self, e: Any) -> None:
        result = e.result
        ended = e.timestamp
        started = self.tool_starts.pop(
            result.tool_call_id, ended - timedelta(milliseconds=result.duration_ms)
        )
        span = ToolCallSpan(
            version=e.originator_version,
            call_id=result.tool_call_id,
            name=result.name,
            started_at=started,
            duration_ms=result.duration_ms,
            failed=failed(result),
            exit_code=result.exit_code,
        )
        if self.open is not None:
            self.open.tool_calls.append(span)

    def _close(self, ended_at: datetime, outcome: str, error: str = "") -> None:
        if self.open is not None:
            self.turns.append(self.open.span(ended_at, outcome, error))
            self.open = None

    def trace(self) -> SessionTrace:
        turns = [*self.turns, *([self.open.span(None, "running")] if self.open else [])]
        assert self.session_id is not None and self.started_at is not None, "a log begins with its session"
        return SessionTrace(
            session_id=self.session_id, model=self.model, started_at=self.started_at, turns=tuple(turns)
        )
