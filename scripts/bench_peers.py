"""The peer comparison (``scripts/bench --peers``): one agent workload through agentjournal and
through LangGraph's checkpointers (SqliteSaver; PostgresSaver with ``--postgres``), and for
resuming a short session, through PraisonAI's JSON session files, interleaved in one run.

The workload is the same on every side. A turn is one prompt; a fake model answers at once,
and in a turn *with a tool call* it first asks to read ``notes.txt`` (about 400 bytes, a real
file read on both sides: agentjournal's host compute, LangGraph's ``ToolNode``) and answers
after the result. Texts are random words from a seeded generator, so they are the same on
every side and do not compress to nothing. Sessions grown for the long measures mix turns
with and without a tool call, half and half.

Each measure alternates the sides repetition by repetition (A B A B ...), so the machine's
noise falls on all of them, and reports each side's median and p95 and the ratio of medians,
agentjournal / peer: below 1, agentjournal is faster (or smaller).

* per-turn overhead in sessions of 10 and 1,000 turns, with and without a tool call, *warm*
  (the store open, agentjournal's working copy kept, LangGraph's graph compiled once) and
  *cold* (a new service, or a new connection, checkpointer and graph, for every turn, as
  ``agentjournal run --session`` does);
* resume at 100, 1,000 and 5,000 turns: in process, the store open (agentjournal's
  ``SessionService.get_session`` and ``ManagedAgent.resume_session``, LangGraph's
  ``get_state``), and in a fresh process, timed whole (start, imports, open, load, print
  the message count); PraisonAI's JSON file at 100 turns;
* fork plus one turn at 100 and 1,000 turns (agentjournal's ``fork``; LangGraph's branch from
  a past checkpoint, an ``invoke`` naming its ``checkpoint_id``), and the history listing at
  100 turns (the audit log; ``get_state_history``);
* bytes on disk: the SQLite file's growth from an empty store (write-ahead log folded in
  first), per turn and per event, beside the events' own encoded size (the ``state`` column
  of the stored events) and the snapshots'.

LangGraph writes a checkpoint of the whole state at every super-step, so its threads grow
quadratically; a 5,000-turn thread grown through ``invoke`` would take tens of minutes and
tens of gigabytes. Threads longer than ``GROW_LIMIT`` turns are therefore seeded with one
``update_state`` holding all their messages (the output says which): their latest
checkpoint, which a resume reads, is what a grown thread's would be, but their history and
bytes on disk are not, and are not reported.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import count, cycle
from pathlib import Path
from typing import Any

from agentjournal.application import ManagedAgent, SessionService
from agentjournal.application.ports import ModelReply, TextDelta
from agentjournal.application.turns import TurnRuntime
from agentjournal.domain import (
    AssistantMessage,
    Message,
    Session,
    SessionConfig,
    ToolCall,
    Usage,
    UserMessage,
)
from agentjournal.domain.policy import UNCONFINED_HOST
from agentjournal.infrastructure.compute.host import HostCompute

PEERS_MISSING = 'The peer comparison needs LangGraph and PraisonAI: pip install -e ".[bench]"'

TOOL_PROMPT = "Read notes.txt first. "
"""A prompt that starts so makes the fake model ask for the notes before it answers."""
NOTES = "notes.txt"
GROW_LIMIT = 1_000
"""LangGraph threads up to this many turns are grown through ``invoke``; longer ones are seeded."""
SNAPSHOT_INTERVAL = SessionService.snapshotting_intervals[Session]
"""How many events apart agentjournal's service snapshots a session."""
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# -- the workload -------------------------------------------------------------------


def words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(LETTERS, k=rng.randint(2, 9))) for _ in range(n))


def prompt(turn: int, tool: bool | None = None) -> str:
    """The prompt of turn ``turn`` (the same on every side); ``tool`` None: a coin decides."""
    rng = random.Random(f"prompt {turn}")
    with_tool = rng.random() < 0.5 if tool is None else tool
    return (TOOL_PROMPT if with_tool else "") + words(rng, 25)


def answer(to_prompt: str) -> str:
    return words(random.Random(f"answer {to_prompt}"), 40)


def notes_text() -> str:
    return words(random.Random("notes"), 70)[:400]


class Stats:
    """Wall times, in milliseconds, of one side's repetitions of a measure."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.times)
        return {
            "median_ms": round(self.median, 3),
            "p95_ms": round(ordered[math.ceil(0.95 * len(ordered)) - 1], 3),
            "n": len(ordered),
        }


def interleaved(sides: Mapping[str, Callable[[], object]], repeat: int) -> dict[str, Any]:
    """Each side once per round, for ``repeat`` rounds; summaries and the ratios of the
    first side's median to each other side's."""
    stats = {name: Stats() for name in sides}
    for _ in range(repeat):
        for name, run in sides.items():
            started = time.perf_counter()
            run()
            stats[name].times.append((time.perf_counter() - started) * 1000)
    result: dict[str, Any] = {name: s.summary() for name, s in stats.items()}
    first, *others = stats
    for other in others:
        result[f"ratio_vs_{other}"] = ratio(stats[first].median, stats[other].median)
    return result


def ratio(ours: float, theirs: float) -> float:
    """Three significant digits: a ratio of 0.004 is not 0."""
    return float(f"{ours / theirs:.3g}")


def fresh_process(code: str, bytecode: Path) -> Callable[[], object]:
    """Runs ``code`` in a new interpreter, which must print a message count. Every side's
    modules import from cached bytecode, as an installed package's do (a development
    install, or an environment that says not to write bytecode, would otherwise compile
    the sources in every process), in ``bytecode``: one run writes it before any is timed."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ["PYTHONPYCACHEPREFIX"] = str(bytecode)

    def run() -> object:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=environ
        )
        if done.returncode != 0 or not done.stdout.strip().isdigit():
            raise RuntimeError(f"the fresh process failed: {done.stderr[-2000:]}")
        return int(done.stdout)

    run()
    return run


# -- agentjournal ---------------------------------------------------------------------


class FakeModel:
    """agentjournal's side of the fake model: asks for the notes when the prompt says so,
    then answers; at once, with usage."""

    def stream(
        self, system: str, messages: Sequence[Message], tools: Sequence[Any]
    ) -> Iterator[TextDelta | ModelReply]:
        last = messages[-1]
        if isinstance(last, UserMessage) and last.content.startswith(TOOL_PROMPT):
            call = ToolCall(f"call_{len(messages)}", "read_file", f'{{"path": "{NOTES}"}}')
            yield ModelReply(AssistantMessage("", (call,)), Usage(800, 20), "bench")
            return
        text = answer(next(m.content for m in reversed(messages) if isinstance(m, UserMessage)))
        yield TextDelta(text)
        yield ModelReply(AssistantMessage(text), Usage(1200, 60), "bench")


CONFIG = SessionConfig(model="bench", system="s", name="bench", tools=("read_file",), compute=UNCONFINED_HOST)


class Project:
    """agentjournal through its public API: turns through ``SessionService.run_turn`` with a
    real tool (``read_file`` on the unconfined host compute, which reads in this process as
    the peers do, in ``folder``)."""

    name = "agentjournal"

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.service = SessionService(env)
        self.runtime = self.new_runtime()
        self.agent = ManagedAgent(store=self.service)

    def new_runtime(self) -> TurnRuntime:
        return TurnRuntime(model=FakeModel(), compute=HostCompute(self.folder), unconfined_ok=True)

    def new_session(self) -> str:
        return str(self.service.create_session(CONFIG))

    def turn(self, session: str, text: str) -> None:
        list(self.service.run_turn(uuid.UUID(session), text, lambda _config, _session_id=None: self.runtime))

    def cold_turn(self, session: str, text: str) -> None:
        service = SessionService(self.env)
        runtime = self.new_runtime()
        try:
            list(service.run_turn(uuid.UUID(session), text, lambda _config, _session_id=None: runtime))
        finally:
            service.close()

    def resume(self, session: str) -> int:
        return len(self.service.get_session(uuid.UUID(session)).messages)

    def resume_agent(self, session: str) -> None:
        self.agent.resume_session(session)

    def fork_and_turn(self, session: str, text: str) -> None:
        self.turn(str(self.service.fork(uuid.UUID(session))), text)

    def history(self, session: str) -> int:
        return len(self.service.audit_log(uuid.UUID(session)))

    def sqlite_file(self) -> Path:
        return Path(self.env["SQLITE_DBNAME"])

    def events(self, session: str) -> int:
        return self.service.get_session(uuid.UUID(session)).version

    def fresh_code(self, session: str) -> str:
        return (
            "import uuid\n"
            "from agentjournal.application import SessionService\n"
            f"service = SessionService({self.env!r})\n"
            f"print(len(service.get_session(uuid.UUID({session!r})).messages))\n"
        )

    def close(self) -> None:
        self.service.close()


# -- LangGraph ----------------------------------------------------------------------------


def langgraph_app(checkpointer: Any, folder: Path) -> Any:
    """The same agent as a LangGraph graph: a messages state, an agent node calling the fake
    model, a tool node reading files of ``folder``, compiled with ``checkpointer``."""
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    @tool
    def read_file(path: str) -> str:
        """Read a file of the work folder."""
        return (folder / path).read_text()

    def agent(state: MessagesState) -> dict[str, Any]:
        messages = state["messages"]
        last = messages[-1]
        if isinstance(last, HumanMessage) and str(last.content).startswith(TOOL_PROMPT):
            call = {"name": "read_file", "args": {"path": NOTES}, "id": f"call_{len(messages)}"}
            usage = {"input_tokens": 800, "output_tokens": 20, "total_tokens": 820}
            return {"messages": [AIMessage("", tool_calls=[call], usage_metadata=usage)]}
        asked = next(str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage))
        usage = {"input_tokens": 1200, "output_tokens": 60, "total_tokens": 1260}
        return {"messages": [AIMessage(answer(asked), usage_metadata=usage)]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([read_file]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def seeded_messages(turns: int, folder: Path) -> list[Any]:
    """The messages ``turns`` turns of the growth workload leave in a LangGraph thread."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    notes = (folder / NOTES).read_text()
    messages: list[Any] = []
    for number in range(1, turns + 1):
        text = prompt(number)
        messages.append(HumanMessage(text))
        if text.startswith(TOOL_PROMPT):
            call = {"name": "read_file", "args": {"path": NOTES}, "id": f"call_{len(messages)}"}
            messages.append(AIMessage("", tool_calls=[call]))
            messages.append(ToolMessage(notes, tool_call_id=call["id"], name="read_file"))
        messages.append(AIMessage(answer(text)))
    return messages


class LangGraph:
    """LangGraph with a checkpointer: SqliteSaver on an SQLite file, or PostgresSaver."""

    def __init__(self, folder: Path, sqlite_file: Path | None = None, postgres: str | None = None) -> None:
        self.folder = folder
        self.sqlite_file = sqlite_file
        self.postgres = postgres
        self.name = "langgraph_sqlite" if sqlite_file else "langgraph_postgres"
        self.connection, checkpointer = self.connect()
        checkpointer.setup()
        self.app = langgraph_app(checkpointer, folder)

    def connect(self) -> tuple[Any, Any]:
        if self.sqlite_file is not None:
            from langgraph.checkpoint.sqlite import SqliteSaver

            file = sqlite3.connect(self.sqlite_file, check_same_thread=False)
            return file, SqliteSaver(file)
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        assert self.postgres is not None
        server = psycopg.connect(self.postgres, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        return server, PostgresSaver(server)

    @staticmethod
    def config(thread: str, checkpoint: str | None = None) -> dict[str, Any]:
        configurable = {"thread_id": thread, **({"checkpoint_id": checkpoint} if checkpoint else {})}
        return {"configurable": configurable}

    def new_session(self) -> str:
        return uuid.uuid4().hex

    def turn(self, thread: str, text: str, checkpoint: str | None = None) -> None:
        from langchain_core.messages import HumanMessage

        self.app.invoke({"messages": [HumanMessage(text)]}, self.config(thread, checkpoint))

    def cold_turn(self, thread: str, text: str) -> None:
        from langchain_core.messages import HumanMessage

        connection, checkpointer = self.connect()
        try:
            app = langgraph_app(checkpointer, self.folder)
            app.invoke({"messages": [HumanMessage(text)]}, self.config(thread))
        finally:
            connection.close()

    def seed(self, thread: str, turns: int) -> None:
        self.app.update_state(
            self.config(thread), {"messages": seeded_messages(turns, self.folder)}, as_node="agent"
        )

    def resume(self, thread: str) -> int:
        return len(self.app.get_state(self.config(thread)).values["messages"])

    def head(self, thread: str) -> str:
        return str(self.app.get_state(self.config(thread)).config["configurable"]["checkpoint_id"])

    def fork_and_turn(self, thread: str, checkpoint: str, text: str) -> None:
        """LangGraph's fork: a new branch of the thread from a past checkpoint, by invoking
        with that checkpoint's id; the new input runs from the state it holds."""
        self.turn(thread, text, checkpoint)

    def history(self, thread: str) -> int:
        return sum(1 for _ in self.app.get_state_history(self.config(thread)))

    def fresh_code(self, thread: str) -> str:
        if self.sqlite_file is not None:
            opening = (
                "import sqlite3\n"
                "from langgraph.checkpoint.sqlite import SqliteSaver\n"
                f"saver = SqliteSaver(sqlite3.connect({str(self.sqlite_file)!r}))\n"
            )
        else:
            opening = (
                "import psycopg\n"
                "from psycopg.rows import dict_row\n"
                "from langgraph.checkpoint.postgres import PostgresSaver\n"
                f"saver = PostgresSaver(psycopg.connect({self.postgres!r}, autocommit=True, "
                "prepare_threshold=0, row_factory=dict_row))\n"
            )
        # The graph a program resuming the thread builds: the same nodes and edges.
        return opening + (
            "from langgraph.graph import START, MessagesState, StateGraph\n"
            "from langgraph.prebuilt import ToolNode, tools_condition\n"
            "graph = StateGraph(MessagesState)\n"
            "graph.add_node('agent', lambda state: {})\n"
            "graph.add_node('tools', ToolNode([]))\n"
            "graph.add_edge(START, 'agent')\n"
            "graph.add_conditional_edges('agent', tools_condition)\n"
            "graph.add_edge('tools', 'agent')\n"
            "app = graph.compile(checkpointer=saver)\n"
            f"print(len(app.get_state({{'configurable': {{'thread_id': {thread!r}}}}}).values['messages']))\n"
        )

    def close(self) -> None:
        self.connection.close()


# -- PraisonAI ----------------------------------------------------------------------------


class PraisonJson:
    """PraisonAI's own session persistence, as its ``Agent`` uses it with a ``session_id``:
    ``DefaultSessionStore``, one JSON file per session. Every turn is kept
    (``retention="keep_all"``), so it holds what the other sides hold; its default keeps
    100 messages and summarises the rest."""

    name = "praisonai_json"

    def __init__(self, folder: Path) -> None:
        from praisonaiagents.session.store import DefaultSessionStore

        self.folder = folder
        self.store = DefaultSessionStore(session_dir=str(folder), retention="keep_all")

    def grow(self, session: str, turns: int, notes: str) -> None:
        """Turns recorded as its agent records them: a message at a time."""
        for number in range(1, turns + 1):
            text = prompt(number)
            self.store.add_message(session, "user", text)
            if text.startswith(TOOL_PROMPT):
                call = {"id": f"call_{number}", "type": "function",
                        "function": {"name": "read_file", "arguments": f'{{"path": "{NOTES}"}}'}}  # fmt: skip
                self.store.add_message(session, "assistant", "", tool_calls=[call])
                self.store.add_message(session, "tool", notes, tool_call_id=call["id"])
            self.store.add_message(session, "assistant", answer(text))

    def resume(self, session: str) -> int:
        """What its ``Agent`` reads to restore a session's chat history."""
        return len(self.store.get_working_history(session))

    def fresh_code(self, session: str) -> str:
        return (
            "from praisonaiagents.session.store import DefaultSessionStore\n"
            f"store = DefaultSessionStore(session_dir={str(self.folder)!r}, retention='keep_all')\n"
            f"print(len(store.get_working_history({session!r})))\n"
        )


# -- bytes on disk -------------------------------------------------------------------


def sqlite_bytes(path: Path) -> int:
    """The file's size once its write-ahead log is folded in and truncated."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def encoded_bytes(path: Path, kind: str, record: bool = False) -> int:
    """The sum of the ``state`` column of the tables of ``kind`` (``events`` or
    ``snapshots``): what was encoded, without the tables' and indexes' own bytes. With
    ``record``, each row's whole record: its originator's id (as stored), version (8 bytes),
    topic and state, the event as the store must keep it whatever its layout."""
    size = "length(originator_id) + 8 + length(topic) + length(state)" if record else "length(state)"
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return sum(
            connection.execute(f"SELECT coalesce(sum({size}), 0) FROM {table}").fetchone()[0]
            for table in tables
            if table.endswith(kind)
        )


# -- the run ---------------------------------------------------------------------------


class Sizes:
    """How much to measure: ``--quick`` makes it small enough for a test."""

    def __init__(self, quick: bool) -> None:
        self.turn_sizes = (10, 50) if quick else (10, 1_000)
        self.resume_sizes = (50, 100) if quick else (100, 1_000, 5_000)
        self.fork_sizes = self.resume_sizes[:2]
        self.history_sizes = (100,)
        """LangGraph's ``get_state_history`` decodes every checkpoint, each the whole state:
        about 9 s at 200 turns, minutes at 1,000, so it is listed at 100 turns only."""
        self.warm, self.cold = (4, 3) if quick else (30, 15)
        self.resume_repeat, self.fresh_repeat = (5, 2) if quick else (50, 7)
        self.fork_repeat, self.history_repeat = (3, 2) if quick else (10, 3)


def grow(side: Project | LangGraph, turns: int) -> tuple[str, float, str]:
    """A new session of ``turns`` turns of the growth workload through the full turn path;
    the seconds it took, and how (LangGraph threads past ``GROW_LIMIT`` are seeded)."""
    session = side.new_session()
    started = time.perf_counter()
    if isinstance(side, LangGraph) and turns > GROW_LIMIT:
        side.seed(session, turns)
        how = "seeded with one update_state"
    else:
        for number in range(1, turns + 1):
            side.turn(session, prompt(number))
        how = "grown through the turn path"
    return session, round(time.perf_counter() - started, 2), how


class Peers:
    """One run of the comparison on one database (SQLite, or PostgreSQL): ``project_env``
    and ``langgraph`` open each side's store for a label, new and empty on SQLite."""

    def __init__(self, sizes: Sizes, folder: Path, project_env: Callable[[str], dict[str, str]],
                 langgraph: Callable[[str], LangGraph]) -> None:  # fmt: skip
        self.sizes = sizes
        self.folder = folder
        self.project_env = project_env
        self.langgraph = langgraph
        self.opened: list[Project | LangGraph] = []

    def pair(self, label: str) -> tuple[Project, LangGraph]:
        project = Project(self.project_env(label), self.folder)
        peer = self.langgraph(label)
        self.opened += [project, peer]
        return project, peer

    def close(self) -> None:
        for side in self.opened:
            side.close()

    def per_turn(self) -> dict[str, Any]:
        """Turns into sessions of each size, warm and cold, with and without a tool call.
        Short sessions get a new one for every measured turn (grown just before, so the warm
        ones are in agentjournal's working copies); a long one takes all the measured turns."""
        sizes = self.sizes
        results: dict[str, Any] = {}
        for size in sizes.turn_sizes:
            project, peer = self.pair(f"turns{size}")
            long = {side.name: [grow(side, size)[0]] for side in (project, peer)} if size > 100 else None
            numbers = count(size + 1)
            results[str(size)] = {}
            for mode, repeat in (("warm", sizes.warm), ("cold", sizes.cold)):
                for tool in (False, True):
                    turns = {}
                    for side in (project, peer):
                        sessions = long[side.name] if long else [grow(side, size)[0] for _ in range(repeat)]
                        turns[side.name] = turn_runner(side, cycle(sessions), mode, tool, numbers)
                    results[str(size)][f"{mode}_{'tool' if tool else 'no_tool'}"] = interleaved(turns, repeat)
        return results

    def long_sessions(self, praison: PraisonJson | None, on_sqlite: bool) -> dict[str, Any]:
        """Resume, history, fork plus a turn, and (on SQLite) bytes on disk, on a session
        grown to each size, each on stores of its own."""
        results: dict[str, Any] = {}
        for size in self.sizes.resume_sizes:
            project, peer = self.pair(f"long{size}")
            with_praison = praison if size == self.sizes.resume_sizes[0] else None
            for measure, value in (
                LongSession(self.sizes, size, project, peer, on_sqlite).measure(with_praison).items()
            ):
                results.setdefault(measure, {})[str(size)] = value
        return results


def turn_runner(side: Project | LangGraph, sessions: Iterator[str], mode: str, tool: bool,
                numbers: Iterator[int]) -> Callable[[], None]:  # fmt: skip
    run = side.cold_turn if mode == "cold" else side.turn
    return lambda: run(next(sessions), prompt(next(numbers), tool))


class LongSession:
    """The measures on one grown session per side."""

    def __init__(self, sizes: Sizes, size: int, project: Project, peer: LangGraph, on_sqlite: bool) -> None:
        self.sizes = sizes
        self.size = size
        self.project = project
        self.peer = peer
        self.empty: tuple[int, int] | None = None
        if on_sqlite:
            assert peer.sqlite_file is not None
            self.empty = (sqlite_bytes(project.sqlite_file()), sqlite_bytes(peer.sqlite_file))

    def measure(self, praison: PraisonJson | None) -> dict[str, Any]:
        project, peer, size = self.project, self.peer, self.size
        sid, seconds, _ = grow(project, size)
        thread, peer_seconds, how = grow(peer, size)
        grown = how.startswith("grown")
        events = project.events(sid)
        results: dict[str, Any] = {
            "grow": {
                "agentjournal_s": seconds,
                f"{peer.name}_s": peer_seconds,
                f"{peer.name}_how": how,
                "agentjournal_events": events,
                "agentjournal_events_since_snapshot": events % SNAPSHOT_INTERVAL,
            }
        }
        if self.empty:
            results["bytes_on_disk"] = self.bytes_on_disk(events, grown)
        assert project.resume(sid) == peer.resume(thread), "both sides hold the same messages"
        resume: dict[str, Callable[[], object]] = {"agentjournal": lambda: project.resume(sid),
                                                   peer.name: lambda: peer.resume(thread)}  # fmt: skip
        fresh = {"agentjournal": fresh_process(project.fresh_code(sid), project.folder / "bytecode"),
                 peer.name: fresh_process(peer.fresh_code(thread), project.folder / "bytecode")}  # fmt: skip
        if praison is not None:
            psid = uuid.uuid4().hex
            praison.grow(psid, size, notes_text())
            resume[praison.name] = lambda: praison.resume(psid)
            fresh[praison.name] = fresh_process(praison.fresh_code(psid), project.folder / "bytecode")
        in_process = interleaved(resume, self.sizes.resume_repeat)
        agent = interleaved({"agentjournal": lambda: project.resume_agent(sid),
                             peer.name: lambda: peer.resume(thread)}, self.sizes.resume_repeat)  # fmt: skip
        in_process["agentjournal_resume_session"] = agent["agentjournal"]
        in_process[f"resume_session_ratio_vs_{peer.name}"] = agent[f"ratio_vs_{peer.name}"]
        results["resume_in_process"] = in_process
        results["resume_fresh_process"] = interleaved(fresh, self.sizes.fresh_repeat)
        if size in self.sizes.history_sizes:
            results["history"] = interleaved(
                {"agentjournal": lambda: project.history(sid), peer.name: lambda: peer.history(thread)},
                self.sizes.history_repeat,
            )
        if size in self.sizes.fork_sizes:
            head = peer.head(thread)
            numbers = count(size + 1)
            results["fork_plus_turn"] = interleaved(
                {"agentjournal": lambda: project.fork_and_turn(sid, prompt(next(numbers), False)),
                 peer.name: lambda: peer.fork_and_turn(thread, head, prompt(next(numbers), False))},
                self.sizes.fork_repeat,
            )  # fmt: skip
        return results

    def bytes_on_disk(self, events: int, peer_grown: bool) -> dict[str, Any]:
        """Each store's growth from empty to the grown session (LangGraph's only when its
        thread was grown, not seeded), and agentjournal's events' own encoded size beside it."""
        assert self.empty is not None and self.peer.sqlite_file is not None
        ours = sqlite_bytes(self.project.sqlite_file()) - self.empty[0]
        encoded = encoded_bytes(self.project.sqlite_file(), "events")
        result: dict[str, Any] = {
            "agentjournal_file_growth_bytes": ours,
            "agentjournal_bytes_per_turn": round(ours / self.size),
            "agentjournal_events": events,
            "agentjournal_disk_bytes_per_event": round(ours / events, 1),
            "agentjournal_encoded_bytes_per_event": round(encoded / events, 1),
            "agentjournal_disk_per_encoded": round(ours / encoded, 2),
            "agentjournal_disk_per_record": round(
                ours / encoded_bytes(self.project.sqlite_file(), "events", True), 2
            ),
            "agentjournal_snapshot_bytes": encoded_bytes(self.project.sqlite_file(), "snapshots"),
        }
        if peer_grown:
            theirs = sqlite_bytes(self.peer.sqlite_file) - self.empty[1]
            result[f"{self.peer.name}_file_growth_bytes"] = theirs
            result[f"{self.peer.name}_bytes_per_turn"] = round(theirs / self.size)
            result["ratio_per_turn"] = ratio(ours, theirs)
        return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    versions: dict[str, str | None] = {}
    for package in ("langgraph", "langgraph-checkpoint-sqlite", "langgraph-checkpoint-postgres", "praisonaiagents",
                    "eventsourcing", "msgspec"):  # fmt: skip
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "versions": versions,
    }


def peers_missing() -> bool:
    """Whether LangGraph's checkpointers or PraisonAI's session store cannot be imported."""
    try:
        import langgraph.checkpoint.sqlite  # noqa: F401
        import langgraph.graph  # noqa: F401
        import praisonaiagents.session.store  # noqa: F401
    except ImportError:
        return True
    return False


def run(quick: bool, postgres: dict[str, str] | None) -> dict[str, Any]:
    """The whole comparison: SQLite always, PostgreSQL when ``postgres`` (the project's
    settings, with a schema of its own) is given."""
    sizes = Sizes(quick)
    results: dict[str, Any] = {
        "machine": machine(),
        "workload": {
            "turn": "one prompt; the fake model answers at once, after one read_file of ~400 bytes when the turn has a tool call",
            "grown_sessions": "half the turns with a tool call (seeded); agentjournal through run_turn, "
            f"LangGraph through invoke up to {GROW_LIMIT} turns, seeded with one update_state beyond",
            "ratio": "agentjournal median / peer median: below 1, agentjournal is faster or smaller",
            "praisonai": "DefaultSessionStore (one JSON file per session), retention keep_all",
            "history": "agentjournal's audit_log vs LangGraph's get_state_history, at 100 turns only: "
            "LangGraph decodes every checkpoint (about 9 s at 200 turns)",
            "fork": "agentjournal's fork then one turn vs LangGraph's invoke with a past checkpoint_id (a branch)",
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as name:
        folder = Path(name)
        (folder / NOTES).write_text(notes_text())

        def sqlite_env(label: str) -> dict[str, str]:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(folder / f"aj-{label}.db"),
            }

        def sqlite_graph(label: str) -> LangGraph:
            return LangGraph(folder, sqlite_file=folder / f"lg-{label}.db")

        peers = Peers(sizes, folder, sqlite_env, sqlite_graph)
        try:
            praison = PraisonJson(folder / "praisonai")
            results["sqlite"] = {"per_turn": peers.per_turn(), **peers.long_sessions(praison, on_sqlite=True)}
        finally:
            peers.close()
        if postgres:
            results["postgres"] = run_postgres(sizes, folder, postgres)
    return results


def run_postgres(sizes: Sizes, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """The same on PostgreSQL: agentjournal in its schema, LangGraph's PostgresSaver in
    another; both dropped at the end. Bytes on disk are SQLite's only."""
    import psycopg

    conninfo = " ".join(
        f"{key.removeprefix('POSTGRES_').lower()}={value}"
        for key, value in env.items()
        if key.startswith("POSTGRES_") and key != "POSTGRES_SCHEMA"
    )
    schemas = [env["POSTGRES_SCHEMA"]]

    def project_env(label: str) -> dict[str, str]:
        return env

    def postgres_graph(label: str) -> LangGraph:
        schema = f"{env['POSTGRES_SCHEMA']}_lg_{label}"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        schemas.append(schema)
        return LangGraph(folder, postgres=f"{conninfo} options='-c search_path={schema}'")

    peers = Peers(sizes, folder, project_env, postgres_graph)
    try:
        return {"per_turn": peers.per_turn(), **peers.long_sessions(None, on_sqlite=False)}
    finally:
        peers.close()
        with psycopg.connect(conninfo, autocommit=True) as connection:
            for schema in schemas:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# -- the table ---------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The comparison as a readable table: each measure's medians (p95) and ratios."""
    lines = [f"{'measure':<52} {'agentjournal':>20} {'peer':>20} {'ratio':>7}  peer"]
    for database in ("sqlite", "postgres"):
        if database not in results:
            continue
        part = results[database]
        for size, modes in part["per_turn"].items():
            for mode, row in modes.items():
                lines += _rows(f"{database} turn at {size} turns, {mode.replace('_', ' ')}", row)
        for measure in ("resume_in_process", "resume_fresh_process", "fork_plus_turn", "history"):
            for size, row in part[measure].items():
                lines += _rows(f"{database} {measure.replace('_', ' ')} at {size} turns", row)
        for size, row in part.get("bytes_on_disk", {}).items():
            peer = next(
                (k for k in row if k.endswith("_bytes_per_turn") and not k.startswith("agentjournal")), ""
            )
            theirs = f"{row[peer]:>20,} {row['ratio_per_turn']:>7}" if peer else f"{'(seeded)':>20} {'':>7}"
            lines.append(
                f"{database + ' bytes on disk per turn at ' + size + ' turns':<52} "
                f"{row['agentjournal_bytes_per_turn']:>20,} {theirs}  {peer.removesuffix('_bytes_per_turn')}"
            )
            lines.append(
                f"{'  agentjournal bytes per event: disk / encoded':<52} "
                f"{row['agentjournal_disk_bytes_per_event']:>9} / {row['agentjournal_encoded_bytes_per_event']:<8} "
                f"= {row['agentjournal_disk_per_encoded']}; snapshots {row['agentjournal_snapshot_bytes']:,} bytes"
            )
            lines.append(
                f"{'  agentjournal disk / events records (id, version, topic, state)':<52} "
                f"{row['agentjournal_disk_per_record']:>20}"
            )
        for size, row in part["grow"].items():
            peer = next(k for k in row if k.endswith("_s") and not k.startswith("agentjournal"))
            lines.append(
                f"{database + ' grow to ' + size + ' turns (s)':<52} {row['agentjournal_s']:>20} {row[peer]:>20}"
                f" {'':>7}  {peer.removesuffix('_s')}, {row[peer.removesuffix('_s') + '_how']}"
            )
    return "\n".join(lines)


def _rows(label: str, row: dict[str, Any]) -> list[str]:
    ours = row["agentjournal"] if "agentjournal" in row else row["agentjournal_resume_session"]
    lines = []
    for key, ratio in row.items():
        if not key.startswith("ratio_vs_"):
            continue
        peer = key.removeprefix("ratio_vs_")
        lines.append(f"{label:<52} {_ms(ours):>20} {_ms(row[peer]):>20} {ratio:>7}  {peer}")
    if "agentjournal_resume_session" in row:
        peer = next(k for k in row if k.startswith("resume_session_ratio_vs_")).removeprefix(
            "resume_session_ratio_vs_"
        )
        lines.append(
            f"{'  the same through ManagedAgent.resume_session':<52} {_ms(row['agentjournal_resume_session']):>20} "
            f"{'':>20} {row['resume_session_ratio_vs_' + peer]:>7}  {peer}"
        )
    return lines


def _ms(stats: dict[str, float]) -> str:
    return f"{stats['median_ms']:.2f} ({stats['p95_ms']:.2f}) ms"
