"""The JSON shapes of what agentjournal reports, shared by the Python API and the CLI.

Every function returns plain data (dicts, lists, strings, numbers, None), ready for
``json.dumps``: ids are strings, timestamps RFC 3339 strings in UTC, enums their
values. The command line's ``--json`` output is exactly these, so a script can move
between ``agentjournal list --json`` and ``ManagedAgent.list_sessions()`` freely.

==================  ==================================================================
``session_info``    id, status, title, usage {input_tokens, output_tokens}
``session_listing`` session_info + name, model, version, message_count, turn_count,
                    created_at, updated_at, parent_id, parent_version, last_error,
                    cost, model_ms
``session_detail``  session_listing + compute (where its tools run: ``host``,
                    ``host-unconfined`` or ``docker``) and messages (each tagged by
                    ``type``: user, assistant or tool)
``cost``            usd (None when no call had a price), unpriced_calls
``session_trace``   cost, model_ms, tool_stats [{name, calls, failures, median_ms,
                    p95_ms}], turns [{turn, version, started_at, ended_at,
                    duration_ms, outcome, error, cost, model_ms, model_calls
                    [{version, model, started_at, ended_at, duration_ms,
                    first_token_ms, usage, cost_usd, tool_calls}], tool_calls
                    [{version, call_id, name, started_at, ended_at, duration_ms,
                    failed, exit_code}]}]
``turn_outcome``    session_id, text, stop_reason, usage (this turn's), total_usage
``audit_entry``     session_id, version, type, timestamp, payload
``timeline_entry``  version, timestamp, actor, text
``session_diff``    left, right, relation, shared_messages, left_only, right_only
``verification``    session_id, ok, events, head, broken {version, problem} or None
``session_state``   ``Session.state()``: the state as of one event
==================  ==================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from agentjournal.application.audit import SessionDiff, TimelineEntry, Verification
    from agentjournal.application.projection import SessionSummary
    from agentjournal.application.service import AuditEntry
    from agentjournal.application.tracing import Cost, ModelCallSpan, SessionTrace, ToolCallSpan, TurnSpan
    from agentjournal.application.turns import TurnOutcome
    from agentjournal.domain import Session


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back: structs as dicts, tuples as lists, UUIDs,
    datetimes and enums as strings, by msgspec's own rules."""
    return msgspec.json.decode(msgspec.json.encode(value))


def session_info(summary: SessionSummary) -> dict[str, Any]:
    """A session at a glance: what ``ManagedAgent.retrieve_session()`` returns."""
    return {
        "id": str(summary.id),
        "status": summary.status.value,
        "title": summary.title,
        "usage": {
            "input_tokens": summary.usage.input_tokens,
            "output_tokens": summary.usage.output_tokens,
        },
    }


def session_listing(summary: SessionSummary) -> dict[str, Any]:
    """One session of a listing: ``session_info`` and where it stands and came from."""
    return session_info(summary) | {
        "name": summary.name,
        "model": summary.model,
        "version": summary.version,
        "message_count": summary.message_count,
        "turn_count": summary.turn_count,
        "created_at": _plain(summary.created_at),
        "updated_at": _plain(summary.updated_at),
        "parent_id": _plain(summary.parent_id),
        "parent_version": summary.parent_version,
        "last_error": summary.last_error,
        "cost": cost(summary.cost),
        "model_ms": round(summary.model_ms, 3),
    }


def cost(value: Cost) -> dict[str, Any]:
    """What calls cost: ``usd`` is None when none of them had a known price (unknown is
    not free), and a lower bound while ``unpriced_calls`` is above 0."""
    priced = value.known or value.usd > 0
    return {"usd": value.usd if priced else None, "unpriced_calls": value.unpriced}


def format_cost(value: Cost) -> str:
    """A cost for people: ``$0.0132``, ``unknown``, or ``$0.0132 + 2 calls unpriced``."""
    if value.known:
        return f"${value.usd:.6f}"
    if value.usd == 0:
        return "unknown"
    return f"${value.usd:.6f} + {value.unpriced} calls unpriced"


def session_trace(trace: SessionTrace) -> dict[str, Any]:
    """A session's turns with their model and tool calls, timings and costs, and per-tool
    statistics (see :mod:`agentjournal.application.tracing`)."""
    return {
        "session_id": str(trace.session_id),
        "cost": cost(trace.cost),
        "model_ms": round(trace.model_ms, 3),
        "tool_stats": _plain(trace.tool_stats()),
        "turns": [_turn(t) for t in trace.turns],
    }


def _turn(turn: TurnSpan) -> dict[str, Any]:
    return {
        "turn": turn.turn,
        "version": turn.version,
        "started_at": _plain(turn.started_at),
        "ended_at": _plain(turn.ended_at),
        "duration_ms": turn.duration_ms,
        "outcome": turn.outcome,
        "error": turn.error,
        "cost": cost(turn.cost),
        "model_ms": round(turn.model_ms, 3),
        "model_calls": [_call(c) for c in turn.model_calls],
        "tool_calls": [_call(c) for c in turn.tool_calls],
    }


def _call(call: ModelCallSpan | ToolCallSpan) -> dict[str, Any]:
    return _plain(call) | {"ended_at": _plain(call.ended_at)}


def session_detail(summary: SessionSummary, session: Session) -> dict[str, Any]:
    """A session with its conversation: ``session_listing`` plus where its tools run
    (``compute``) and ``messages``."""
    return session_listing(summary) | {
        "compute": session.config.compute,
        "messages": _plain(session.messages),
    }


def turn_outcome(outcome: TurnOutcome) -> dict[str, Any]:
    """How a turn ended: its final text, why it stopped, and the usage it reports."""
    return _plain(outcome)


def audit_entry(entry: AuditEntry) -> dict[str, Any]:
    return _plain(entry)


def timeline_entry(entry: TimelineEntry) -> dict[str, Any]:
    return _plain(entry)


def session_diff(diff: SessionDiff) -> dict[str, Any]:
    return _plain(diff)


def verification(result: Verification) -> dict[str, Any]:
    """A chain check: ``ok``, or ``broken`` naming the first event that is not as written."""
    return {
        "session_id": str(result.session_id),
        "ok": result.ok,
        "events": result.events,
        "head": result.head,
        "broken": _plain(result.broken),
    }


def session_state(session: Session) -> dict[str, Any]:
    return _plain(session.state())
