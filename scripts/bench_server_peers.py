"""The API server beside LangGraph's agent server (``scripts/bench --server-peers``), and the
events listing of long histories.

Both servers run in their own processes on this machine, each on its own port, and call the
same fake model: the project's scripted OpenAI-compatible server over HTTP (agentjournal
through litellm, as it always does; LangGraph's graph, one node, through the ``openai``
SDK). LangGraph's server is ``langgraph dev`` (``langgraph-cli[inmem]``: the in-memory
runtime, no network needed; its PostgreSQL runtime is not on the package index), with its
default of one background worker; agentjournal's is ``agentjournal serve`` on SQLite.

Measured, each side alternating with the other repetition by repetition:

* a turn without a tool call: agentjournal from ``send`` to ``session.status_idle`` on an open
  stream; LangGraph's ``POST /threads/{id}/runs/wait`` (a run to its end);
* turns per second: a turn in each of ``concurrent`` new sessions (threads) at once;
* reading a 10,000-event history: every page of agentjournal's ``events.list`` (1,000 a page)
  against LangGraph's whole state (``GET /threads/{id}/state``) holding the same messages;
* each server's resident memory (RSS, the process and its children) grown by 1,000 new
  sessions, each with one turn (the bounded caches, such as the 64 working copies kept
  between turns, fill within the first hundred: measured on 200, their filling read as
  growth per session).

And agentjournal alone: a 10,000- and a 100,000-event session listed page by page (100 a
page) from a server that has not read them before, with the server's peak resident memory
(``VmHWM``) over what it held before: the same for both if a page costs its own size.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bench_peers import interleaved, machine

from agentjournal.application import SessionService
from agentjournal.domain import (
    AssistantMessage,
    Session,
    SessionConfig,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)
from agentjournal.infrastructure.models.scripted import ScriptedModelServer

SERVER_PEERS_MISSING = (
    'The server comparison needs LangGraph\'s agent server: pip install -e ".[bench]" (langgraph-cli[inmem])'
)
KEY = "bench-key"
CONFIG = SessionConfig(model="bench", system="", name="bench", tools=(), networking={"type": "unrestricted"})

GRAPH = textwrap.dedent(
    '''
    """One model call per run, streamed from the fake model, as agentjournal's turn makes it."""
    import os

    from langgraph.graph import END, START, MessagesState, StateGraph
    from openai import AsyncOpenAI

    model = AsyncOpenAI(base_url=os.environ["BENCH_MODEL_URL"], api_key="unused")
    ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


    def wire(message):
        sent = {"role": ROLES[message.type], "content": message.content}
        if message.type == "tool":
            sent["tool_call_id"] = message.tool_call_id
        return sent


    async def call_model(state: MessagesState) -> dict:
        text = ""
        stream = await model.chat.completions.create(
            model="bench", messages=[wire(m) for m in state["messages"][-2:]], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return {"messages": [{"role": "assistant", "content": text}]}


    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    graph = builder.compile()
    '''
)


def server_peers_missing() -> bool:
    """Whether LangGraph's agent server (its API, in-memory runtime and CLI) is not installed."""
    needed = ("langgraph_api", "langgraph_runtime_inmem", "langgraph_cli", "openai")
    return any(importlib.util.find_spec(name) is None for name in needed) or _langgraph_cli() is None


def _langgraph_cli() -> str | None:
    beside = Path(sys.executable).parent / "langgraph"
    return str(beside) if beside.exists() else shutil.which("langgraph")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def resident_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, ``VmHWM``) and its children's, in KiB."""
    total = 0
    for each in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{each}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))
        except (OSError, StopIteration):
            continue
    return total


def _descendants(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            direct = [int(child) for child in children.read().split()]
    except OSError:
        return []
    return [found for child in direct for found in (child, *_descendants(child))]


class Served:
    """A server process of one side, stopped on exit."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def rss_kib(self) -> int:
        return resident_kib(self.process.pid)


def serve_agentjournal(store: str, model_url: str) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-m", "agentjournal", "--store", store, "serve", "--port", "0",
         "--api-base", model_url, "--model-provider", "openai"],
        env={**os.environ, "AGENTJOURNAL_API_KEYS": KEY, "OPENAI_API_KEY": "unused"},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return Served(process, process.stdout.readline().split()[-1])


def serve_langgraph(folder: Path, model_url: str) -> Served:
    """``langgraph dev`` on the one-node graph, ready once it answers ``/ok``."""
    (folder / "graph.py").write_text(GRAPH)
    (folder / "langgraph.json").write_text('{"dependencies": ["."], "graphs": {"agent": "./graph.py:graph"}}')
    port = _free_port()
    environ = {**os.environ, "BENCH_MODEL_URL": model_url, "LANGSMITH_TRACING": "false",
               "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_API_KEY": ""}  # fmt: skip
    cli = _langgraph_cli()
    assert cli is not None
    process = subprocess.Popen(
        [cli, "dev", "--no-browser", "--no-reload", "--port", str(port), "--config",
         str(folder / "langgraph.json")],
        cwd=folder, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    served = Served(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{served.url}/ok", timeout=2).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"langgraph dev ended at start ({process.returncode})")
        time.sleep(0.2)
    served.__exit__()
    raise RuntimeError("langgraph dev did not answer /ok within 180 s")


def grow_history(service: SessionService, events: int) -> Session:
    """A session of about ``events`` log events: turns of a prompt, a tool call and its
    result, an answer, and usage (nine events, four messages a turn)."""
    session = Session.start(CONFIG)
    turn = 0
    while session.version + 9 <= events:
        turn += 1
        session.begin_turn(f"prompt {turn}: please look at the file and fix it", "bench")
        call = ToolCall(f"c{turn}", "read_file", '{"path": "src/module.py"}')
        session.add_assistant_message(AssistantMessage("Let me read it.", (call,)))
        session.record_usage("bench", Usage(800, 40))
        session.start_tool_call(call)
        session.record_tool_result(ToolResult(call.id, call.name, "def f():\n    return 1\n" * 20))
        session.add_assistant_message(AssistantMessage("Fixed: f now returns 2."))
        session.record_usage("bench", Usage(1200, 25))
        session.complete_turn()
        if turn % 50 == 0:
            service.save_session(session)
    service.save_session(session)
    return session


def langgraph_messages(session: Session) -> list[dict[str, Any]]:
    """The session's messages as LangGraph's state holds them."""
    out: list[dict[str, Any]] = []
    for message in session.messages:
        if isinstance(message, UserMessage):
            out.append({"type": "human", "content": message.content})
        elif isinstance(message, AssistantMessage):
            calls = [
                {"id": c.id, "name": c.name, "args": {"path": "src/module.py"}} for c in message.tool_calls
            ]
            out.append({"type": "ai", "content": message.content, "tool_calls": calls})
        elif isinstance(message, ToolResult):
            out.append({"type": "tool", "content": message.output, "tool_call_id": message.tool_call_id})
    return out


class AgentjournalSide:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.client = httpx.Client(base_url=served.url, headers={"x-api-key": KEY}, timeout=120)
        self.agent = self.client.post("/v1/agents", json={"name": "bench", "model": "bench"}).json()["id"]
        environment = {"name": "bench", "config": {"type": "cloud", "networking": {"type": "unrestricted"}}}
        self.environment = self.client.post("/v1/environments", json=environment).json()["id"]

    def new_session(self) -> str:
        made = self.client.post(
            "/v1/sessions", json={"agent": self.agent, "environment_id": self.environment}
        )
        made.raise_for_status()
        return str(made.json()["id"])

    def turn(self, session: str) -> None:
        """A prompt, from ``send`` to ``session.status_idle`` on a stream opened before it."""
        path = f"/v1/sessions/{session}/events"
        with self.client.stream("GET", f"{path}/stream") as stream:
            sent = self.client.post(path, json={"events": [{"type": "user.message", "content": "hello"}]})
            sent.raise_for_status()
            for line in stream.iter_lines():
                if line == "event: session.status_idle":
                    return
        raise RuntimeError("the stream ended before the turn did")

    def list_all(self, session: str, limit: int = 1000) -> int:
        listed, page = 0, None
        while True:
            params: dict[str, Any] = {"limit": limit, **({"page": page} if page else {})}
            body = self.client.get(f"/v1/sessions/{session}/events", params=params).json()
            listed += len(body["data"])
            page = body["next_page"]
            if not page:
                return listed

    async def turns_at_once(self, count: int) -> None:
        sessions = [self.new_session() for _ in range(count)]
        limits = httpx.Limits(max_connections=2 * count + 10)
        async with httpx.AsyncClient(base_url=self.served.url, headers={"x-api-key": KEY}, timeout=300,
                                     limits=limits) as client:  # fmt: skip

            async def one(session: str) -> None:
                path = f"/v1/sessions/{session}/events"
                async with client.stream("GET", f"{path}/stream") as stream:
                    body = {"events": [{"type": "user.message", "content": "hello"}]}
                    (await client.post(path, json=body)).raise_for_status()
                    async for line in stream.aiter_lines():
                        if line == "event: session.status_idle":
                            return
                raise RuntimeError("the stream ended before the turn did")

            await asyncio.gather(*(one(s) for s in sessions))


class LangGraphSide:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.client = httpx.Client(base_url=served.url, timeout=300)

    def new_session(self) -> str:
        made = self.client.post("/threads", json={})
        made.raise_for_status()
        return str(made.json()["thread_id"])

    def turn(self, thread: str) -> None:
        body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hello"}]}}
        done = self.client.post(f"/threads/{thread}/runs/wait", json=body)
        done.raise_for_status()

    def seed(self, messages: list[dict[str, Any]]) -> str:
        """A thread of the graph whose state holds ``messages``, as if its node had written them."""
        made = self.client.post("/threads", json={"metadata": {"graph_id": "agent"}})
        made.raise_for_status()
        thread = str(made.json()["thread_id"])
        update = {"values": {"messages": messages}, "as_node": "model"}
        self.client.post(f"/threads/{thread}/state", json=update).raise_for_status()
        return thread

    def read_state(self, thread: str) -> int:
        state = self.client.get(f"/threads/{thread}/state")
        state.raise_for_status()
        return len(state.json()["values"]["messages"])

    async def turns_at_once(self, count: int) -> None:
        async with httpx.AsyncClient(base_url=self.served.url, timeout=300) as client:

            async def one() -> None:
                made = await client.post("/threads", json={})
                body = {
                    "assistant_id": "agent",
                    "input": {"messages": [{"role": "user", "content": "hello"}]},
                }
                (
                    await client.post(f"/threads/{made.json()['thread_id']}/runs/wait", json=body)
                ).raise_for_status()

            await asyncio.gather(*(one() for _ in range(count)))


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def side_by_side(quick: bool) -> dict[str, Any]:
    """Both servers on the same fake model, measured interleaved."""
    repeat, concurrent, rounds = (4, 3, 1) if quick else (60, 20, 5)
    history, sessions_for_memory = (1_000, 10) if quick else (10_000, 1_000)
    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d", time.gmtime())}
    with tempfile.TemporaryDirectory() as folder, ScriptedModelServer() as model:
        store = f"{folder}/server.db"
        service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": store})
        long_session = grow_history(service, history)
        seeded = langgraph_messages(long_session)
        service.close()
        with (
            serve_agentjournal(store, model.base_url) as ours_served,
            serve_langgraph(Path(folder), model.base_url) as theirs_served,
        ):
            ours, theirs = AgentjournalSide(ours_served), LangGraphSide(theirs_served)
            one_ours, one_theirs = ours.new_session(), theirs.new_session()
            for _ in range(3):  # warm up: litellm's first call, LangGraph's graph
                ours.turn(one_ours)
                theirs.turn(one_theirs)
            results["turn_no_tool"] = interleaved(
                {"agentjournal": lambda: ours.turn(one_ours), "langgraph": lambda: theirs.turn(one_theirs)},
                repeat,
            )
            per_second: dict[str, list[float]] = {"agentjournal": [], "langgraph": []}
            for _ in range(rounds):
                for name, side in (("agentjournal", ours), ("langgraph", theirs)):
                    wall = _timed(lambda side=side: asyncio.run(side.turns_at_once(concurrent)))  # type: ignore[misc]
                    per_second[name].append(concurrent / wall)
            results["turns_per_s"] = {
                "concurrent": concurrent,
                **{name: round(sorted(v)[len(v) // 2], 2) for name, v in per_second.items()},
            }
            thread = theirs.seed(seeded)
            assert ours.list_all(f"sesn_{long_session.id.hex}") == 9 * long_session.turns  # nine a turn
            assert theirs.read_state(thread) == len(seeded)
            results["history_read"] = {
                "events": long_session.version,
                "messages": len(seeded),
                **interleaved(
                    {
                        "agentjournal": lambda: ours.list_all(f"sesn_{long_session.id.hex}"),
                        "langgraph": lambda: theirs.read_state(thread),
                    },
                    max(3, repeat // 6),
                ),  # fmt: skip
            }
            memory: dict[str, Any] = {"sessions": sessions_for_memory}
            for name, side in (("agentjournal", ours), ("langgraph", theirs)):
                before = side.served.rss_kib()
                for _ in range(sessions_for_memory // 10):
                    asyncio.run(side.turns_at_once(10))
                after = side.served.rss_kib()
                memory[name] = {
                    "rss_before_mib": round(before / 1024, 1),
                    "rss_after_mib": round(after / 1024, 1),
                    "growth_per_1000_sessions_mib": round(
                        (after - before) / 1024 * 1000 / sessions_for_memory, 1
                    ),
                }
            results["memory"] = memory
    return results


def long_history(quick: bool) -> dict[str, Any]:
    """agentjournal alone: sessions of 10,000 and 100,000 events (1,000 and 5,000 quick)
    listed 100 a page from a server that has not read them, with its peak memory over what
    it held before, and the time."""
    sizes = (1_000, 5_000) if quick else (10_000, 100_000)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, ScriptedModelServer() as model:
        store = f"{folder}/history.db"
        service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": store})
        sessions = {size: grow_history(service, size).id for size in sizes}
        service.close()
        for size, session_id in sessions.items():
            with serve_agentjournal(store, model.base_url) as served:
                side = AgentjournalSide(served)
                side.list_all(side.new_session(), 100)  # a listing's code paths warm, on another session
                before = resident_kib(served.process.pid)
                started = time.perf_counter()
                listed = side.list_all(f"sesn_{session_id.hex}", 100)
                elapsed = time.perf_counter() - started
                peak = resident_kib(served.process.pid, "VmHWM")
                results[str(size)] = {
                    "api_events": listed,
                    "seconds": round(elapsed, 3),
                    "events_per_s": round(listed / elapsed),
                    "rss_before_mib": round(before / 1024, 1),
                    "peak_over_before_mib": round((peak - before) / 1024, 1),
                }
    return results


def run(quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"long_history": long_history(quick)}
    if server_peers_missing():
        results["langgraph_server"] = SERVER_PEERS_MISSING
    else:
        results["langgraph_server"] = side_by_side(quick)
    return results


def table(results: dict[str, Any]) -> str:
    """The README's rows."""
    rows = ["| measure | agentjournal | LangGraph agent server | ratio |", "| --- | --- | --- | --- |"]
    peer = results.get("langgraph_server")
    if isinstance(peer, dict):
        turn = peer["turn_no_tool"]
        rows.append(
            f"| turn without a tool call | {turn['agentjournal']['median_ms']} ms (p95 {turn['agentjournal']['p95_ms']})"
            f" | {turn['langgraph']['median_ms']} ms (p95 {turn['langgraph']['p95_ms']}) | {turn['ratio_vs_langgraph']} |"
        )
        tps = peer["turns_per_s"]
        rows.append(
            f"| turns per second, {tps['concurrent']} at once | {tps['agentjournal']} | {tps['langgraph']} | "
            f"{round(tps['agentjournal'] / tps['langgraph'], 2)}x |"
        )
        read = peer["history_read"]
        rows.append(
            f"| read a {read['events']:,}-event history ({read['messages']:,} messages) | "
            f"{read['agentjournal']['median_ms']} ms (p95 {read['agentjournal']['p95_ms']}) | "
            f"{read['langgraph']['median_ms']} ms (p95 {read['langgraph']['p95_ms']}) | {read['ratio_vs_langgraph']} |"
        )
        memory = peer["memory"]
        rows.append(
            f"| RSS growth per 1,000 sessions (measured on {memory['sessions']}) | "
            f"{memory['agentjournal']['growth_per_1000_sessions_mib']} MiB from {memory['agentjournal']['rss_before_mib']}"
            f" | {memory['langgraph']['growth_per_1000_sessions_mib']} MiB from {memory['langgraph']['rss_before_mib']} | |"
        )
    for size, row in results["long_history"].items():
        rows.append(
            f"| list {int(size):,} events 100 a page ({row['api_events']:,} API events) | {row['seconds']} s, "
            f"peak RSS +{row['peak_over_before_mib']} MiB over {row['rss_before_mib']} | | |"
        )
    return "\n".join(rows)
