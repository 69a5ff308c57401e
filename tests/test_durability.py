"""Crashes and concurrent writers, with real processes, on SQLite and PostgreSQL.

A process killed mid-turn leaves a log that loads and a session that the next
user closes as interrupted; two processes sending to one session at once never
lose or interleave events: one wins, the other gets a clear error.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentjournal.application import ManagedAgent, ManagedConfig
from agentjournal.domain import Status, ToolResult
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import ROOT, TEST_KEY, wait_until

CHILD = """
import json, sys
from agentjournal.application import ManagedAgent, ManagedConfig
store, base_url, key, session_id, prompt, wait_for_go = json.loads(sys.argv[1])
agent = ManagedAgent(config=ManagedConfig(model="openai/gpt-4o-mini", api_base=base_url, api_key=key),
                     store=store)
agent.resume_session(session_id)
if wait_for_go:
    print("ready", flush=True)
    sys.stdin.readline()
try:
    print(json.dumps({"ok": agent.run(prompt)}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"""


def spawn_python(code: str, *args: str) -> subprocess.Popen[str]:
    """Run ``code`` in a new interpreter, in the background, its input and output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_all_succeed(processes: list[subprocess.Popen[str]], timeout: float) -> None:
    for process in processes:
        _, stderr = process.communicate(timeout=timeout)
        assert process.returncode == 0, stderr


def start_child(store_env, server, session_id, prompt, wait_for_go=False):  # type: ignore[no-untyped-def]
    """A process that resumes the session and runs ``prompt``; with ``wait_for_go`` it first
    prints "ready" and waits for a line on its input, so several can be started at once."""
    return spawn_python(
        CHILD, json.dumps([store_env, server.base_url, TEST_KEY, session_id, prompt, wait_for_go])
    )


def start_together(children: list[subprocess.Popen[str]]) -> None:
    """The barrier: once every child has loaded the session, let them all go."""
    for child in children:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n", child.communicate()[1]
    for child in children:
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]


def last_json(child: subprocess.Popen[str]) -> dict[str, str]:
    """The outcome a child printed last; its stderr if it printed none."""
    stdout, stderr = child.communicate(timeout=120)
    lines = stdout.strip().splitlines()
    assert lines, f"the child printed nothing (exit {child.returncode}):\n{stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def read_line_from(fifo: Path, timeout: float = 60.0) -> str:
    """A line a tool writes to the named pipe ``fifo``: the barrier that says it is running.
    The pipe is opened without blocking, so a tool that never comes fails the test in time."""
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([reader], [], [], timeout)
        assert ready, f"nothing was written to {fifo} in {timeout:g} s"
        return os.read(reader, 4096).decode()
    finally:
        os.close(reader)


def assert_log_is_whole(agent: ManagedAgent) -> None:
    """Every event is there, numbered without gaps; it replays to the version of the last one,
    and its hash chain holds."""
    versions = [e.version for e in agent.audit_log()]
    assert versions == list(range(1, len(versions) + 1))
    assert agent.state_at().version == versions[-1]
    assert agent.verify().ok


@pytest.fixture
def agent(model_server, store_env) -> ManagedAgent:  # type: ignore[no-untyped-def]
    config = ManagedConfig(model="openai/gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY)
    managed = ManagedAgent(config=config, store=store_env)
    managed.run("hello")
    yield managed
    managed.service.close()


def event_types(agent: ManagedAgent) -> list[str]:
    return [e.type for e in agent.audit_log()]


def test_killed_during_the_model_stream(agent, model_server, store_env):
    model_server.enqueue(Reply(text="an answer that never ends", hold=True))
    child = start_child(store_env, model_server, agent.session_id, "tell me a story")
    model_server.wait_for_requests(2)  # the turn is recorded as started and the model is streaming
    child.send_signal(signal.SIGKILL)
    child.wait()

    assert agent.retrieve_session()["status"] == "running"  # the truth, until someone looks
    assert_log_is_whole(agent)

    agent.resume_session(agent.session_id)
    last = agent.audit_log()[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"
    assert last.payload["detail"].startswith("runner lost")
    assert agent.retrieve_session()["status"] == "idle"
    assert agent.run("still there?").startswith("Noted.")
    assert_log_is_whole(agent)


@pytest.fixture
def pipes(agent: ManagedAgent) -> Iterator[tuple[Path, Path]]:
    """Two named pipes in the session's work folder (all a confined tool sees), for whoever
    the tools run as: one a tool writes to once it runs, one it waits on (``cat gate`` blocks
    until a writer opens it). The gate is opened and closed after the test, so a tool still
    waiting ends then and not before."""
    folder = Path(agent.state_at().compute.reference)  # type: ignore[union-attr]
    started, gate = folder / "tool-started", folder / "gate"
    for pipe in (started, gate):
        os.mkfifo(pipe)
        os.chmod(pipe, 0o666)
    yield started, gate
    with contextlib.suppress(OSError):  # nothing waits on it (any more)
        os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))


def test_killed_during_a_tool_call(agent, model_server, store_env, pipes: tuple[Path, Path]):
    fifo, _ = pipes
    slow = "echo started > tool-started && cat gate"
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": slow})]), Reply(text="never")
    )
    child = start_child(store_env, model_server, agent.session_id, "run the slow thing")
    assert read_line_from(fifo) == "started\n"
    assert event_types(agent)[-1] == "ToolCallStarted"
    child.send_signal(signal.SIGKILL)
    child.wait()
    model_server.script.clear()  # the reply the dead process would have asked for

    # The next turn itself notices the dead worker and closes its turn first.
    assert agent.run("what happened?").startswith("Noted.")
    state = agent.state_at()
    closing = [m for m in state.messages if isinstance(m, ToolResult)]
    assert len(closing) == 1 and closing[0].is_error and "interrupted" in closing[0].output
    # The model was sent a well-formed history: every tool call has its result.
    roles = [m["role"] for m in model_server.requests[-1]["messages"]]
    assert roles[-3:] == ["assistant", "tool", "user"]
    assert state.status == Status.IDLE
    assert_log_is_whole(agent)


def test_two_processes_sending_at_once(agent, model_server, store_env):
    # The winner's reply holds until the loser has given up, so the loser cannot slip in after it.
    model_server.enqueue(Reply(text="first " * 20, hold=True), Reply(text="second"))
    children = [
        start_child(store_env, model_server, agent.session_id, f"prompt {i}", wait_for_go=True)
        for i in range(2)
    ]
    start_together(children)
    wait_until(lambda: any(c.poll() is not None for c in children), "one of the two to give up", 60)
    model_server.release()
    outcomes = [last_json(c) for c in children]

    winners = [o for o in outcomes if "ok" in o]
    losers = [o for o in outcomes if "error" in o]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0]["error"] in ("SessionBusy", "ConcurrentUpdate")
    assert "session" in losers[0]["message"] and agent.session_id in losers[0]["message"]

    types = event_types(agent)
    assert types.count("TurnStarted") == 2 and types.count("TurnCompleted") == 2
    # The winner's turn is contiguous: nothing of the loser's is interleaved.
    second_turn = types[types.index("TurnCompleted") + 1 :]
    assert second_turn == [
        "UserMessageAdded",
        "TurnStarted",
        "AssistantMessageAdded",
        "UsageRecorded",
        "TurnCompleted",
    ]
    assert_log_is_whole(agent)


def test_a_busy_session_is_refused_while_its_worker_lives(agent, model_server, store_env):
    model_server.enqueue(Reply(text="slow " * 100, hold=True), Reply(text="mine"))
    child = start_child(store_env, model_server, agent.session_id, "long one")
    model_server.wait_for_requests(2)
    from agentjournal.domain import SessionBusy

    with pytest.raises(SessionBusy, match="running a turn"):
        agent.run("me too")
    model_server.release()
    result = last_json(child)
    assert result["ok"].startswith("slow")
    assert agent.run("now me") == "mine"


def test_a_10000_event_session_loads_forks_and_summarises(service):
    from agentjournal.domain import AssistantMessage, Session, SessionConfig, Usage

    session = Session.start(SessionConfig(model="m", system="s", name="big", tools=()))
    while session.version + 5 <= 10_000:
        session.begin_turn(f"prompt {session.version}", "w")
        session.add_assistant_message(AssistantMessage(f"answer {session.version}"))
        session.record_usage("m", Usage(3, 2))
        session.complete_turn()
        if session.version % 1000 < 6:
            service.save(session)
    service.save(session)
    service.take_snapshot(session.id)

    loaded = service.get_session(session.id)
    assert loaded.version == session.version >= 9_995
    assert loaded.state() == session.state()
    summary = service.summary(session.id)
    assert summary.version == loaded.version and summary.message_count == len(loaded.messages)
    fork = service.get_session(service.fork(session.id, 5_001))
    assert fork.messages == service.get_session(session.id, 5_001).messages


def test_ctrl_c_on_the_cli_records_the_turn_as_interrupted(model_server, store):
    model_server.enqueue(Reply(text="a very long answer " * 50, hold=True))
    env = {**os.environ, "TEST_MODEL_KEY": TEST_KEY}
    child = subprocess.Popen(
        [sys.executable, "-m", "agentjournal.infrastructure.cli.main", "--store", str(store), "run", "talk",
         "--model", "openai/m", "--api-base", model_server.base_url, "--api-key-env", "TEST_MODEL_KEY"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # As at a terminal: a test process may ignore SIGINT (a worker of a parallel run),
        # and an ignored signal stays ignored across exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.read(1) == "a"  # the answer is streaming
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "recorded as interrupted" in stderr

    from agentjournal.application import SessionService

    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    (summary,) = service.list_summaries()
    assert summary.status == Status.IDLE
    last = service.audit_log(summary.id)[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"
    service.close()


OPEN_STORE = """
import json, sys
from agentjournal.application import SessionService
SessionService(json.loads(sys.argv[1])).close()
"""


def test_many_workers_can_open_one_store_at_the_same_moment(store_env):
    # Twice: while the tables are being created, and once they exist.
    for _ in range(2):
        assert_all_succeed([spawn_python(OPEN_STORE, json.dumps(store_env)) for _ in range(8)], timeout=120)


def test_interrupting_a_turn_another_process_runs(agent, model_server, store_env):
    model_server.enqueue(Reply(text="a slow answer " * 40, hold=True), Reply(text="after"))
    child = start_child(store_env, model_server, agent.session_id, "long one")
    model_server.wait_for_requests(2)
    agent.interrupt()
    last = agent.audit_log()[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"

    model_server.release()  # the child's turn gets its whole reply, and finds the log moved on
    outcome = last_json(child)
    assert outcome["error"] == "ConcurrentUpdate", outcome
    assert agent.retrieve_session()["status"] == "idle"
    assert agent.run("and now?") == "after"
    assert_log_is_whole(agent)


def test_concurrent_command_line_use(agent, model_server, store_env):
    # The winner's reply holds until the other run has given up.
    model_server.enqueue(Reply(text="slow " * 40, hold=True), Reply(text="unused"))
    env = {**os.environ, "TEST_MODEL_KEY": TEST_KEY}
    if store_env["PERSISTENCE_MODULE"] != "eventsourcing.sqlite":
        env.update(store_env)  # the CLI takes eventsourcing's settings from the environment
    base = [sys.executable, "-m", "agentjournal.infrastructure.cli.main"]
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        base += ["--store", store_env["SQLITE_DBNAME"]]
    run = [*base, "run", "go", "--session", agent.session_id, "--model", "openai/m",
           "--api-base", model_server.base_url, "--api-key-env", "TEST_MODEL_KEY"]  # fmt: skip
    readers = [["list"], ["log", agent.session_id], ["timeline", agent.session_id], ["verify"]]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in [run, run, *[[*base, *r] for r in readers]]
    ]
    wait_until(lambda: any(p.poll() is not None for p in processes[:2]), "one of the two runs to give up", 60)
    model_server.release()
    outputs = [p.communicate(timeout=120) for p in processes]
    results = [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]

    runs, reads = results[:2], results[2:]
    assert sorted(code for code, _, _ in runs) == [0, 2], runs
    loser = next(err for code, _, err in runs if code == 2)
    assert "is running a turn" in loser or "changed by another process" in loser
    failed = [err for code, _, err in reads if code != 0]
    assert not failed, "\n\n".join(failed)
    assert agent.verify().ok
    assert_log_is_whole(agent)


CHURN = """
import json, sys
from agentjournal.application import SessionService
from agentjournal.domain import SessionConfig
env = json.loads(sys.argv[1])
for _ in range(int(sys.argv[2])):
    service = SessionService(env)
    service.create_session(SessionConfig(model="m", system="s", name="n", tools=()))
    service.list_summaries()
    service.close()
"""


def test_processes_opening_writing_and_reading_together(store_env, open_service):
    open_service().close()  # the tables exist, as for workers joining a running system
    assert_all_succeed([spawn_python(CHURN, json.dumps(store_env), "6") for _ in range(6)], timeout=240)
    summaries = open_service().list_summaries(limit=1000)
    assert len(summaries) == 36 and {s.version for s in summaries} == {1}
