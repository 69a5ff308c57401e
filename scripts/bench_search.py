"""Search inside sessions (``scripts/bench --search``): 1,000 sessions of 5 turns each (a
prompt naming its own ticket, a tool call, its output, an answer), then

* building the search index from the whole log (what the first search of an existing store
  pays, once);
* a search for a word one session holds, a word every session holds (the first page of 50),
  two words, and a word narrowed by tool and failure;
* the session list narrowed by a tool, and by failures;
* keeping the index up to date: a new turn's events folded in before the next search;
* for scale, one pass that replays every session's log and looks for the word in its
  messages (what a search without the index would cost per keystroke).

On SQLite, and on PostgreSQL with ``--postgres``. Medians and p95 in milliseconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from agentjournal.application import SessionService
from agentjournal.application.search import Filters, Search
from agentjournal.domain import AssistantMessage, SessionConfig, ToolCall, ToolResult, Usage

CONFIG = SessionConfig(model="bench", system="s", name="bench", tools=())
TURNS = 5


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "n": len(ordered),
    }


def _timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return _summary(times)


def fill(service: SessionService, sessions: int) -> None:
    """``sessions`` sessions of :data:`TURNS` turns; every tenth one's tool call fails."""
    for n in range(sessions):
        session = service.get_session(service.create_session(CONFIG, title=f"session {n}"))
        for turn in range(TURNS):
            session.begin_turn(
                f"ticket{n}: please look at the module and fix the parser, step {turn}", "bench"
            )
            tool = "read_file" if turn % 2 else "execute_command"
            call = ToolCall(f"c{turn}", tool, '{"path": "src/module.py"}')
            session.add_assistant_message(AssistantMessage("Let me read it first.", (call,)))
            session.record_usage("bench", Usage(800, 40))
            session.start_tool_call(call)
            failed = n % 10 == 0 and turn == 0
            output = (
                "Traceback: parser failed" if failed else "def parse(text):\n    return text.split()\n" * 20
            )
            session.record_tool_result(
                ToolResult(call.id, tool, output, 1 if failed else 0, 3.2, is_error=failed)
            )
            session.add_assistant_message(AssistantMessage("Fixed: the parser splits on commas now."))
            session.complete_turn()
        service.save(session)


def measure(env: dict[str, str], sessions: int, repeat: int) -> dict[str, object]:
    service = SessionService(env)
    try:
        started = time.perf_counter()
        fill(service, sessions)
        filled = time.perf_counter() - started
        service.projector.catch_up()
        search = service.search
        started = time.perf_counter()
        search.catch_up()
        built = time.perf_counter() - started
        results: dict[str, object] = {
            "sessions": sessions,
            "events": sessions * (1 + TURNS * 8),
            "fill_s": round(filled, 2),
            "index_build_s": round(built, 3),
            "one_session_word": _timed(lambda: search.find(f"ticket{sessions // 2}", Filters()), repeat),
            "common_word_first_page": _timed(lambda: search.find("parser", Filters(), limit=50), repeat),
            "two_words": _timed(lambda: search.find("fix parser", Filters(), limit=50), repeat),
            "word_tool_and_failure": _timed(
                lambda: search.find("parser", Filters(tool="execute_command", failed=True)), repeat
            ),
            "sessions_by_tool": _timed(lambda: search.sessions(Filters(tool="read_file"), 50, 0), repeat),
            "sessions_with_failures": _timed(lambda: search.sessions(Filters(failed=True), 50, 0), repeat),
            "new_turn_then_search": _new_turn_then_search(service, search, max(5, repeat // 4)),
            "replay_every_log_once_ms": round(_replay_all(service, f"ticket{sessions // 2}"), 1),
        }
        return results
    finally:
        service.close()


def _new_turn_then_search(service: SessionService, search: Search, repeat: int) -> dict[str, float]:
    """A turn recorded, then a search: the time of the search, which folds it in first."""
    session = service.get_session(service.create_session(CONFIG, title="growing"))
    times = []
    for n in range(repeat):
        session.begin_turn(f"fresh{n} words", "bench")
        session.add_assistant_message(AssistantMessage("ok"))
        session.complete_turn()
        service.save(session)
        started = time.perf_counter()
        assert search.find(f"fresh{n}", Filters()).hits
        times.append((time.perf_counter() - started) * 1000)
    return _summary(times)


def _replay_all(service: SessionService, word: str) -> float:
    started = time.perf_counter()
    found = 0
    for summary in service.list_summaries(limit=1_000_000):
        session = None
        for event in service.events.get(summary.id):  # from the store, not a copy in memory
            session = event.mutate(session)
        assert session is not None
        found += any(word in getattr(m, "content", "") for m in session.messages)
    assert found
    return (time.perf_counter() - started) * 1000


def run(quick: bool, sqlite_env: dict[str, str], postgres_env: dict[str, str] | None) -> dict[str, object]:
    sessions = 200 if quick else 1_000
    repeat = 20 if quick else 100
    results: dict[str, object] = {"sqlite": measure(sqlite_env, sessions, repeat)}
    if postgres_env:
        results["postgres"] = measure(postgres_env, sessions, repeat)
    return results
