"""What an MCP tool call adds to a turn over the MCP server's own time (``scripts/bench --mcp``).

A FastMCP server (the ``mcp`` package's) on 127.0.0.1 serves one tool, ``work``, which
takes the milliseconds it is asked for and records how long its body took (the server's
own time). Measured, as medians and 95th percentiles of milliseconds:

* ``kept_call``: a call through the engine's MCP client on the session's kept connection,
  and ``kept_added``, that time less the tool's own;
* ``new_session_call``: a call that opens its own MCP session (connect, initialize, call,
  close), as the client did before connections were kept, and ``new_session_added``;
* ``turn_call_added``: in whole turns (an in-process model asking for one call, the
  session's SQLite log), the call's time as the turn recorded it (``duration_ms``) less the
  tool's own; and ``turn_listing``, what listing the server's tools costs each turn;
* each for a tool answering at once (``0`` ms) and one working ``5`` ms.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentjournal.application import SessionService
from agentjournal.application.ports import ModelReply, TextDelta
from agentjournal.application.turns import TurnRuntime
from agentjournal.domain import AssistantMessage, McpServer, SessionConfig, ToolCall, ToolResult, Usage

WARM_UP = 3


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "n": len(ordered),
    }


class _Server:
    """The FastMCP server, its address, and the own time of each ``work`` call."""

    def __init__(self) -> None:
        import uvicorn
        from mcp.server.fastmcp import FastMCP

        self.own_ms: list[float] = []
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        app = FastMCP("bench", host="127.0.0.1", port=port)

        @app.tool()
        def work(ms: float) -> str:
            """Take ``ms`` milliseconds (sleeping: busy work would hold the interpreter's lock
            from the client's threads in this same process)."""
            started = time.perf_counter()
            time.sleep(ms / 1000)
            self.own_ms.append((time.perf_counter() - started) * 1000)
            return "done"

        config = uvicorn.Config(app.streamable_http_app(), log_level="warning", timeout_graceful_shutdown=0)
        self._server = uvicorn.Server(config)
        self._listener = listener
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [listener]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}/mcp"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._listener.close()


class _CallsOnce:
    """An in-process model that asks for one ``work`` call, then answers."""

    def __init__(self, ms: float) -> None:
        self.ms = ms
        self.calls = 0

    def stream(self, system, messages, tools) -> Iterator[TextDelta | ModelReply]:  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls % 2:
            call = ToolCall(f"c{self.calls}", "mcp__bench__work", f'{{"ms": {self.ms}}}')
            yield ModelReply(AssistantMessage("", (call,)), Usage(100, 10), "bench")
        else:
            yield TextDelta("done")
            yield ModelReply(AssistantMessage("done"), Usage(120, 2), "bench")


class _NoCompute:
    kind = "none"

    def attach(self, session_id, previous):  # type: ignore[no-untyped-def]
        raise AssertionError("the benchmark's turns use MCP tools only")


def _client_calls(server: _Server, ms: float, repeat: int, kept: bool) -> tuple[list[float], list[float]]:
    """Each call's time through the engine's client, and what it added to the tool's own."""
    from agentjournal.infrastructure.mcp.client import HttpMcpClient

    client = HttpMcpClient(allow_private=True)
    session = client.for_session()
    times, added = [], []
    try:
        for index in range(repeat + WARM_UP):
            if not kept:
                session.close()
            started = time.perf_counter()
            session.call_tool(server.url, None, "work", {"ms": ms})
            elapsed = (time.perf_counter() - started) * 1000
            if index >= WARM_UP:
                times.append(elapsed)
                added.append(elapsed - server.own_ms[-1])
    finally:
        client.close()
    return times, added


def _turns(server: _Server, ms: float, repeat: int) -> dict[str, dict[str, float]]:
    """Whole turns with one MCP call each, on a SQLite log."""
    from agentjournal.infrastructure.mcp.client import HttpMcpClient

    client = HttpMcpClient(allow_private=True)
    mcp = client.for_session()
    config = SessionConfig(
        model="bench",
        system="s",
        name="bench",
        tools=(),
        compute=_NoCompute.kind,
        mcp_servers=(McpServer("bench", server.url, permission="always_allow"),),
    )
    with tempfile.TemporaryDirectory() as folder:
        service = SessionService(
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(folder) / "b.db")}
        )
        session_id = service.create_session(config)
        runtime = TurnRuntime(model=_CallsOnce(ms), compute=_NoCompute(), mcp=mcp)
        listing: list[float] = []
        original = mcp.list_tools

        def timed_listing(url: str, token: str | None) -> Any:
            started = time.perf_counter()
            try:
                return original(url, token)
            finally:
                listing.append((time.perf_counter() - started) * 1000)

        mcp.list_tools = timed_listing  # type: ignore[method-assign]
        added = []
        try:
            for index in range(repeat + WARM_UP):
                list(service.run_turn(session_id, "work", lambda _config, _session_id=None: runtime))
                result = [m for m in service.get_session(session_id).messages if isinstance(m, ToolResult)][
                    -1
                ]
                if index >= WARM_UP:
                    added.append(result.duration_ms - server.own_ms[-1])
        finally:
            service.close()
            client.close()
    return {"turn_call_added": summary(added), "turn_listing": summary(listing[WARM_UP:])}


def run(quick: bool) -> dict[str, object]:
    repeat = 20 if quick else 100
    server = _Server()
    results: dict[str, object] = {}
    try:
        for ms in (0.0, 5.0):
            kept, kept_added = _client_calls(server, ms, repeat, kept=True)
            new, new_added = _client_calls(server, ms, repeat // 2, kept=False)
            results[f"tool_{ms:g}ms"] = {
                "kept_call": summary(kept),
                "kept_added": summary(kept_added),
                "new_session_call": summary(new),
                "new_session_added": summary(new_added),
                **_turns(server, ms, repeat),
            }
    finally:
        server.stop()
    return results
