"""A session's trace sent as OpenTelemetry spans, following the GenAI semantic conventions.

The spans are derived from the log (:func:`~agentjournal.application.tracing.session_trace`),
so any session can be exported after the fact, as often as wanted, with the times it
recorded. They nest as the log does:

- ``session {title}``: the whole session (``gen_ai.conversation.id`` is its id);
- ``invoke_agent {name}``: one turn, or the part of one after a pause;
- ``chat {model}``: a model call, with its tokens (``gen_ai.usage.*``), its time to
  first token and, when known, its cost (``agentjournal.cost_usd``; GenAI has no cost
  attribute yet);
- ``execute_tool {tool}``: a tool call (``gen_ai.tool.name``, ``gen_ai.tool.call.id``),
  with the status ``ERROR`` and ``error.type`` when it failed.

A session's trace id is its UUID, so a second export of the same session lands in the
same trace, and a viewer shows it as one. Only what the log keeps about the run goes
out: names, ids, models, counts, times, costs and (already redacted) errors; never a
message, a tool's arguments or output, nor anything of the environment.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentjournal.application.errors import AgentJournalError
from agentjournal.application.tracing import ModelCallSpan, SessionTrace, ToolCallSpan, TurnSpan

SERVICE_NAME = "agentjournal"
COST_ATTRIBUTE = "agentjournal.cost_usd"
UNPRICED_ATTRIBUTE = "agentjournal.unpriced_calls"


def traces_endpoint(base: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base address, as the exporter's
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is read: ``/v1/traces`` added unless already there."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


class _SessionTraceIds(IdGenerator):
    """Trace ids from the session being exported; span ids at random."""

    def __init__(self) -> None:
        self.trace_id = 0
        self._random = random.Random()

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1


class ExportFailed(AgentJournalError):
    """The collector did not take the spans (unreachable, or it refused them)."""


class _Collected(SpanProcessor):
    """Keeps every ended span, for one export of them all."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class _SpanBuilder:
    """Makes a session trace's spans, with their recorded times, and hands them to
    ``processor`` as they end. A span's trace id is its session's id; one session at a
    time (the id is the generator's state)."""

    def __init__(self, processor: SpanProcessor) -> None:
        self._ids = _SessionTraceIds()
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": SERVICE_NAME}), id_generator=self._ids
        )
        self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("agentjournal.infrastructure.telemetry")

    def session(self, trace: SessionTrace, title: str, agent: str) -> None:
        """A session's span, and its turns' under it."""
        self._ids.trace_id = trace.session_id.int
        end = max([trace.started_at, *(_turn_end(t) for t in trace.turns)])
        conversation = {"gen_ai.conversation.id": str(trace.session_id)}
        with self._span(f"session {title}".strip(), trace.started_at, end, {
            **conversation, "gen_ai.request.model": trace.model, **_cost(trace.cost.usd, trace.cost.unpriced),
        }):  # fmt: skip
            for turn in trace.turns:
                self.turn(turn, agent, conversation)

    def latest_turn(self, trace: SessionTrace, agent: str) -> None:
        """The span of a session's last turn (the one that just ended), as a root of its trace."""
        self._ids.trace_id = trace.session_id.int
        self.turn(trace.turns[-1], agent, {"gen_ai.conversation.id": str(trace.session_id)})

    def turn(self, turn: TurnSpan, agent: str, conversation: dict[str, Any]) -> None:
        """A turn's span, under the current span if any, and its calls' under it."""
        agent = agent or "agent"
        cost = turn.cost
        attributes = {
            **conversation,
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "agentjournal.turn": turn.turn,
            "agentjournal.outcome": turn.outcome,
            **_cost(cost.usd, cost.unpriced),
        }
        with self._span(f"invoke_agent {agent}", turn.started_at, _turn_end(turn), attributes) as span:
            if turn.outcome == "error":
                span.set_status(Status(StatusCode.ERROR, turn.error))
                span.set_attribute("error.type", turn.error.split(":", 1)[0])
            for call in turn.model_calls:
                self._model_call(call, conversation)
            for tool in turn.tool_calls:
                self._tool_call(tool, conversation)

    def _model_call(self, call: ModelCallSpan, conversation: dict[str, Any]) -> None:
        usage = call.usage
        attributes: dict[str, Any] = {
            **conversation,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": call.model,
            "gen_ai.response.model": call.model,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_tokens,
            "agentjournal.version": call.version,
            **_cost(call.cost_usd or 0.0, int(call.cost_usd is None)),
        }
        if call.first_token_ms is not None:
            attributes["gen_ai.server.time_to_first_token"] = call.first_token_ms / 1000
        with self._span(f"chat {call.model}", call.started_at, call.ended_at, attributes, SpanKind.CLIENT):
            pass

    def _tool_call(self, call: ToolCallSpan, conversation: dict[str, Any]) -> None:
        attributes: dict[str, Any] = {
            **conversation,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.call_id,
            "agentjournal.version": call.version,
        }
        if call.exit_code is not None:
            attributes["agentjournal.exit_code"] = call.exit_code
        with self._span(f"execute_tool {call.name}", call.started_at, call.ended_at, attributes) as span:
            if call.failed:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", "tool_error")

    @contextmanager
    def _span(
        self,
        name: str,
        start: datetime,
        end: datetime,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Iterator[otel_trace.Span]:
        span = self._tracer.start_span(name, kind=kind, attributes=attributes, start_time=_nanos(start))
        with otel_trace.use_span(span, end_on_exit=False):
            yield span
        span.end(end_time=_nanos(max(start, end)))

    def shutdown(self) -> None:
        self._provider.shutdown()


class SpanSender:
    """Builds session traces as spans and sends them, at :meth:`flush`, in one request to
    an OTLP/HTTP endpoint, so a failure is the caller's to see rather than a background
    thread's to log. Without an endpoint, the exporter's ``OTEL_EXPORTER_OTLP_*``
    settings say where."""

    def __init__(self, endpoint: str = "") -> None:
        self._collected = _Collected()
        self._spans = _SpanBuilder(self._collected)
        self._endpoint = traces_endpoint(endpoint) if endpoint else ""
        self._exporter = OTLPSpanExporter(endpoint=self._endpoint or None, timeout=10)

    def send(self, trace: SessionTrace, title: str = "", agent: str = "") -> None:
        """Build one session's spans, to be sent at the next :meth:`flush`."""
        self._spans.session(trace, title, agent)

    def flush(self) -> int:
        """Send the spans built so far; how many. Raises :class:`ExportFailed`."""
        spans, self._collected.spans = self._collected.spans, []
        if spans and self._exporter.export(spans) is not SpanExportResult.SUCCESS:
            where = self._endpoint or "the configured OTLP endpoint"
            raise ExportFailed(f"the OpenTelemetry collector at {where} did not take {len(spans)} spans")
        return len(spans)

    def close(self) -> None:
        self._exporter.shutdown()
        self._spans.shutdown()


class LiveExporter:
    """Sends each turn as it ends, from a server: the turn's span (a root of its session's
    trace) with its calls under it. The SDK's batch processor sends them from a thread of
    its own, so a slow or absent collector never holds a turn; what it cannot send, the
    SDK logs. :meth:`close` sends what is still queued."""

    def __init__(self, endpoint: str) -> None:
        exporter = OTLPSpanExporter(endpoint=traces_endpoint(endpoint), timeout=10)
        self._spans = _SpanBuilder(BatchSpanProcessor(exporter))
        self._lock = threading.Lock()

    def turn_ended(self, trace: SessionTrace, agent: str) -> None:
        """Send the last turn of ``trace``: the one that just ended."""
        if trace.turns:
            with self._lock:
                self._spans.latest_turn(trace, agent)

    def close(self) -> None:
        self._spans.shutdown()


def export(traces: Iterable[tuple[SessionTrace, str, str]], endpoint: str = "") -> int:
    """Send each (trace, title, agent name) to ``endpoint`` (else the exporter's
    ``OTEL_EXPORTER_OTLP_*`` settings); the number of spans sent."""
    sender = SpanSender(endpoint)
    try:
        for trace, title, agent in traces:
            sender.send(trace, title, agent)
        return sender.flush()
    finally:
        sender.close()


def _turn_end(turn: TurnSpan) -> datetime:
    ends = [turn.started_at, *(c.ended_at for c in turn.model_calls), *(c.ended_at for c in turn.tool_calls)]
    return turn.ended_at or max(ends)


def _cost(usd: float, unpriced: int) -> dict[str, Any]:
    """The cost attributes: dollars only where some call had a price; a count of the
    calls that had none, so an absent or partial cost is never read as free."""
    shown: dict[str, Any] = {UNPRICED_ATTRIBUTE: unpriced}
    if unpriced == 0 or usd > 0:
        shown[COST_ATTRIBUTE] = usd
    return shown


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000
