"""What an MCP tool call adds to a turn over the MCP server's own time (``scripts/bench --mcp``).

A FastMCP server (the ``mcp`` package's) in a process of its own on 127.0.0.1 serves one
tool, ``work``, which busy-waits the milliseconds it is asked for and answers how long its
body took (the server's own time). Measured, as medians and 95th percentiles of milliseconds:

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
import subprocess
import sys
import tempfile
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


def serve(port: int) -> None:
    """The benchmark's MCP server (run in a process of its own, so it takes no interpreter
    time from the client's threads): ``work`` takes ``ms`` milliseconds of busy work and
    answers with how long its body took, the server's own time."""
    from mcp.server.fastmcp import FastMCP

    app = FastMCP("bench", host="127.0.0.1", port=port, log_level="WARNING")

    @app.tool()
    def work(ms: float) -> str:
        """Busy-wait ``ms`` milliseconds; answer the milliseconds taken."""
        started = time.perf_counter()
        while (time.perf_counter() - started) * 1000 < ms:
            pass
        return repr((time.perf_counter() - started) * 1000)

    app.run("streamable-http")


class _Server:
    """The MCP server's process, and its address."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the benchmark's MCP server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


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
            own = float(session.call_tool(server.url, None, "work", {"ms": ms}).text)
            elapsed = (time.perf_counter() - started) * 1000
            if index >= WARM_UP:
                times.append(elapsed)
                added.append(elapsed - own)
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
                    added.append(result.duration_ms - float(result.output))
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
