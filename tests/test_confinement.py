"""The confined host compute (the default) against a hostile model, through the Python API.

Each test is an attack that succeeded when the host compute ran commands unconfined, as
the engine's own user: reading the engine's environment through ``/proc``, another
session's folder, the store, the home folder, ``/etc/shadow`` (the engine commonly runs as
root), reaching the network when the session has none, and leaving processes running past
the deadline or past the engine's own death. The unconfined host remains, as an opt-in.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import msgspec
import pytest

from agentjournal.application import ComputeError, ManagedAgent
from agentjournal.application.ports import ExecResult
from agentjournal.application.runtimes import Runtimes
from agentjournal.domain import ComputeBinding, Session, ToolResult, UnconfinedHostRefused
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.compute.confined import ConfinedHostCompute
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.attacks import (
    connect_to,
    hiding,
    living,
    loopback_listener,
    reached,
    sleeper,
    survivors,
    wait_until,
)
from tests.conftest import ROOT, TEST_KEY
from tests.test_cli import agentjournal

pytestmark = pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="bubblewrap cannot run here")

TOOLS = [{"type": "agent_toolset_20260401"}]


@pytest.fixture
def agent(config, tmp_path):  # type: ignore[no-untyped-def]
    """An agent on the default compute, with Anthropic's tools, on an SQLite store of the test's own."""

    def make(**changes: object) -> ManagedAgent:
        compute = changes.pop("compute", None)
        fields = {"tools": TOOLS, **changes}
        return ManagedAgent(
            config=msgspec.structs.replace(config, **fields), compute=compute, store=tmp_path / "sessions.db"
        )

    return make


def attack(agent: ManagedAgent, model_server, *calls: ScriptedToolCall) -> list[ToolResult]:  # type: ignore[no-untyped-def]
    """One turn in which the model makes ``calls``; their results."""
    model_server.enqueue(Reply(tool_calls=list(calls)), Reply(text="done"))
    before = len(agent.state_at().messages) if agent.session_id else 0
    agent.run("go")
    return [m for m in agent.state_at().messages[before:] if isinstance(m, ToolResult)]


def bash(command: str, timeout_ms: int | None = None) -> ScriptedToolCall:
    arguments: dict[str, object] = {"command": command}
    if timeout_ms is not None:
        arguments["timeout_ms"] = timeout_ms
    return ScriptedToolCall("bash", arguments)


def read(path: str) -> ScriptedToolCall:
    return ScriptedToolCall("read", {"file_path": path})


def test_the_engines_environment_and_command_line_are_out_of_reach(agent, model_server, monkeypatch):
    monkeypatch.setenv("ENGINE_ONLY_SETTING", "engine-secret-8f2c1a")
    me = os.getpid()
    results = attack(
        agent(),
        model_server,
        bash(f"cat /proc/{me}/environ; cat /proc/{me}/cmdline; cat /proc/1/environ"),
        bash("echo /proc/[0-9]*; env"),
        read(f"/proc/{me}/environ"),
    )
    everything = " ".join(r.output for r in results)
    assert "engine-secret-8f2c1a" not in everything and "ENGINE_ONLY_SETTING" not in everything
    assert f"/proc/{me}/environ: No such file or directory" in results[0].output
    processes = [int(path.removeprefix("/proc/")) for path in results[1].output.split("\n")[0].split()]
    assert max(processes) < 10  # the sandbox's own, numbered from 1: bubblewrap's init, the shell
    assert results[2].is_error and "outside the work folder" in results[2].output


def test_another_sessions_folder_is_out_of_reach(agent, model_server):
    first = agent()
    attack(
        first,
        model_server,
        ScriptedToolCall("write", {"file_path": "secret.txt", "content": "first's secret"}),
    )
    first_folder = Path(first.state_at().compute.reference)  # type: ignore[union-attr]
    other = first.session_id
    results = attack(
        agent(),
        model_server,
        bash(f"cat ../{other}/secret.txt; cat {first_folder}/secret.txt; ls .. ; pwd"),
        bash(f"echo appended >> {first_folder}/secret.txt; echo appended >> ../{other}/secret.txt"),
        read(f"../{other}/secret.txt"),
        read(str(first_folder / "secret.txt")),
    )
    assert not any("first's secret" in r.output for r in results)
    assert results[0].output.strip().endswith("/workspace")
    assert all(r.is_error for r in results[2:])
    assert (first_folder / "secret.txt").read_text() == "first's secret"


def test_the_store_the_data_folder_and_the_home_folder_are_out_of_reach(
    agent, model_server, tmp_path, monkeypatch, _home
):
    engine_home = tmp_path / "engine-home"
    engine_home.mkdir()
    (engine_home / "credentials").write_text("the engine user's credentials")
    monkeypatch.setenv("HOME", str(engine_home))
    managed = agent()
    store = tmp_path / "sessions.db"
    results = attack(
        managed,
        model_server,
        bash(
            f"sqlite3 {store} 'CREATE TABLE taken (x)'; sqlite3 ../../../sessions.db 'CREATE TABLE taken (x)'"
        ),
        bash(f"ls {_home} {_home}/workspaces; cat {engine_home}/credentials; ls -a {Path('/root')} ~root"),
        bash("echo $HOME; ls -a $HOME"),
        read(str(store)),
    )
    assert "the engine user's credentials" not in results[1].output
    assert all("No such file or directory" in line for line in results[1].output.strip().splitlines())
    assert results[2].output.split()[0] == "/workspace/.home"
    assert results[3].is_error
    tables = sqlite3.connect(store).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert ("taken",) not in tables


def test_root_has_no_power_over_host_files(agent, model_server):
    """The engine commonly runs as root; inside a user namespace uid 0 would keep root's
    access to host files. The tools' user is never root."""
    name = f"taken-{uuid.uuid4().hex[:8]}"
    try:
        results = attack(
            agent(),
            model_server,
            bash("id -u; cat /etc/shadow"),
            bash(
                f"touch /etc/{name} /usr/{name} /{name}; echo written > /workspace/{name} && echo own folder"
            ),
            read("/etc/shadow"),
        )
        uid, *shadow = results[0].output.splitlines()
        assert uid != "0"
        assert shadow == ["cat: /etc/shadow: Permission denied"]
        assert results[1].output.count("Read-only file system") >= 2 and "own folder" in results[1].output
        assert results[2].is_error
        assert not Path(f"/etc/{name}").exists() and not Path(f"/usr/{name}").exists()
    finally:
        for path in (Path(f"/etc/{name}"), Path(f"/usr/{name}"), Path(f"/{name}")):
            path.unlink(missing_ok=True)  # written only by a test that failed


@pytest.mark.parametrize("networking", [{"type": "none"}, {"type": "limited"}])
def test_no_network_is_none_at_all_not_even_the_hosts_loopback(agent, model_server, networking):
    with loopback_listener() as (port, listener):
        offline = attack(agent(networking=networking), model_server, bash(connect_to(port)))
        assert "connected" not in offline[0].output and offline[0].is_error
        assert not reached(listener)
        online = attack(agent(), model_server, bash(connect_to(port)))  # unrestricted: the host's
        assert online[0].output == "connected\n"
        assert reached(listener)


def test_nothing_a_command_starts_outlives_its_deadline_however_it_hides(agent, model_server):
    hidden = [sleeper(), sleeper(), sleeper()]
    (result,) = attack(agent(), model_server, bash(hiding(*hidden), timeout_ms=2000))
    assert result.is_error and "[killed after 2 s]" in result.output
    assert survivors(*hidden) == []


CHILD = """
import sys
from agentjournal import ManagedAgent, ManagedConfig
config = ManagedConfig(model="openai/gpt-4o-mini", api_base=sys.argv[1], api_key=sys.argv[2],
                       tools=[{"type": "agent_toolset_20260401"}])
ManagedAgent(config=config, store=sys.argv[3]).run("go")
"""


def test_nothing_a_command_starts_outlives_the_engine_killed_with_sigkill(model_server, tmp_path):
    hidden = [sleeper(), sleeper(), sleeper()]
    first, second, last = hidden
    command = (
        f"env -i setsid {first} </dev/null >/dev/null 2>&1 & nohup {second} >/dev/null 2>&1 & exec {last}"
    )
    model_server.enqueue(Reply(tool_calls=[bash(command, timeout_ms=100_000)]))
    engine = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            textwrap.dedent(CHILD),
            model_server.base_url,
            TEST_KEY,
            str(tmp_path / "s.db"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: all(living(c) for c in hidden), 60), "the command never started"
        engine.kill()
        engine.wait(timeout=30)
        assert survivors(*hidden) == []
    finally:
        engine.kill()
        engine.wait(timeout=30)


# -- the file tools run in the sandbox too --------------------------------------------------


def test_paths_mean_the_same_as_in_docker_and_links_lead_nowhere(agent, model_server):
    results = attack(
        agent(),
        model_server,
        ScriptedToolCall("write", {"file_path": "/workspace/notes/a.txt", "content": "absolute"}),
        bash("ln -s /etc/passwd link; ln -s /proc/1/environ env-link; cat notes/a.txt"),
        read("notes/a.txt"),
        read("link"),
        read("env-link"),
        ScriptedToolCall("glob", {"pattern": "**/*"}),
    )
    assert results[1].output == "absolute"
    assert results[2].output == "absolute"
    assert results[3].is_error and "outside the work folder" in results[3].output
    assert results[4].is_error and "outside the work folder" in results[4].output
    assert set(results[5].output.split()) == {"notes/a.txt", "notes/"}


def test_the_work_folders_virtual_environment_cannot_stand_in_for_the_helpers_python(agent, model_server):
    forge = "mkdir -p .venv/bin && printf '#!/bin/sh\\necho forged\\n' > .venv/bin/python3 && chmod +x .venv/bin/python3"
    results = attack(
        agent(), model_server, bash(f"{forge} && echo real > note.txt"), bash("python3 -V"), read("note.txt")
    )
    assert results[1].output == "forged\n"  # a command finds the work folder's environment first
    assert results[2].output == "real\n"  # the file tools' helper never does


# -- who may run tools unconfined ------------------------------------------------------------


def test_the_unconfined_host_runs_only_for_a_process_that_names_it(agent, model_server, tmp_path):
    opted_in = agent(compute="host-unconfined")
    (result,) = attack(opted_in, model_server, bash("pwd"))
    assert opted_in.state_at().config.compute == "host-unconfined"
    assert result.output.strip() == opted_in.state_at().compute.reference  # type: ignore[union-attr]

    shown = agentjournal("show", str(opted_in.session_id), store=tmp_path / "sessions.db").stdout
    assert "tools run on this host, UNCONFINED" in shown
    detail = json.loads(
        agentjournal("show", "--json", str(opted_in.session_id), store=tmp_path / "sessions.db").stdout
    )
    assert detail["compute"] == "host-unconfined"

    resumed = agent()  # by default: no opt-in, so no unconfined tools, whatever the log says
    resumed.resume_session(opted_in.session_id)  # type: ignore[arg-type]
    model_server.enqueue(Reply(tool_calls=[bash("id")]), Reply(text="done"))
    with pytest.raises(UnconfinedHostRefused, match="compute='host-unconfined'"):
        resumed.run("again")


def test_moving_a_session_to_the_unconfined_host_is_a_checked_config_change(agent, model_server, tmp_path):
    managed = agent()
    (confined,) = attack(managed, model_server, bash("pwd"))
    assert confined.output == "/workspace\n"
    shown = agentjournal("show", str(managed.session_id), store=tmp_path / "sessions.db").stdout
    assert "tools run on this host, confined (bubblewrap" in shown
    managed.update_agent(compute="host-unconfined")
    (moved,) = attack(managed, model_server, bash("pwd"))
    assert moved.output.strip() == managed.state_at().compute.reference  # type: ignore[union-attr]
    changed = managed.audit_log(types=("ConfigChanged",))
    assert [e.payload["changes"] for e in changed] == [["compute"]]
    assert changed[0].payload["config"]["compute"] == "host-unconfined"
    managed.update_agent(compute="host")  # and back: narrowing needs no opt-in
    assert attack(managed, model_server, bash("pwd"))[0].output == "/workspace\n"


def test_a_log_recorded_on_the_host_before_it_was_confined_resumes_confined(config, model_server, tmp_path):
    """Logs written before this compute existed recorded "host" for the unconfined host;
    they resume confined, which only narrows what their tools may do."""
    agent = ManagedAgent(config=msgspec.structs.replace(config, tools=TOOLS), store=tmp_path / "old.db")
    session = Session.start(agent.config.session_config("host"), "old")
    folder = tmp_path / "home" / "workspaces" / str(session.id)
    folder.mkdir(parents=True)
    (folder / "kept.txt").write_text("from before\n")  # root's, as the unconfined host left it
    session.attach_compute(ComputeBinding(kind="host", reference=str(folder)))
    agent.service.save(session)
    agent.resume_session(session.id)
    (result,) = attack(agent, model_server, bash("id -u; cat kept.txt; echo more >> kept.txt && echo mine"))
    uid, kept, mine = result.output.split("\n")[:3]
    assert uid != "0" and kept == "from before" and mine == "mine"


def test_sessions_with_the_same_settings_never_share_a_compute(config, tmp_path):
    """Turns of sessions with the same settings may run at once: an adapter both used would
    be attached to whichever attached last, and run the other's tools in its folder."""
    runtimes = Runtimes(config)
    recorded = config.session_config("host")
    ids = uuid.uuid4(), uuid.uuid4()
    first, second = (runtimes(recorded, session_id).compute for session_id in ids)
    first.attach(ids[0], None)
    second.attach(ids[1], None)
    first.write_file("mine.txt", b"first")
    second.write_file("mine.txt", b"second")
    assert first.execute("cat mine.txt", 30).output == "first"


def test_where_bubblewrap_cannot_run_the_host_says_how_to_fix_it(agent, monkeypatch):
    monkeypatch.setattr(bubblewrap, "unavailable", lambda: "user namespaces are disabled")
    with pytest.raises(ComputeError) as refused:
        agent().create_session()
    message = str(refused.value)
    assert "user namespaces are disabled" in message
    assert "apt-get install bubblewrap" in message and "compute='docker'" in message
    assert "compute='host-unconfined'" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="only an engine running as root hands folders over")
def test_as_root_a_folder_of_roots_is_never_given_to_the_tools(tmp_path):
    given = tmp_path / "roots"
    given.mkdir()
    with pytest.raises(ComputeError, match="belongs to root"):
        ConfinedHostCompute(given).attach(uuid.uuid4(), None)
    made = ConfinedHostCompute(tmp_path / "new")
    made.attach(uuid.uuid4(), None)
    assert (tmp_path / "new").stat().st_uid != 0
    assert json.loads(made.execute("python3 -c 'import os; print(os.getuid())'", 30).output) != 0


# -- ending sandboxes from outside a call ------------------------------------------------------


def running_in_a_thread(
    compute: ConfinedHostCompute, command: str
) -> tuple[threading.Thread, list[ExecResult]]:
    """A command running on ``compute`` in a thread of its own, and where its result will be."""
    results: list[ExecResult] = []
    thread = threading.Thread(target=lambda: results.append(compute.execute(command, 120)), daemon=True)
    thread.start()
    return thread, results


def test_release_ends_what_runs_in_a_work_folder_from_any_process(tmp_path):
    hidden = [sleeper(), sleeper()]
    compute = ConfinedHostCompute(base=tmp_path)
    binding = compute.attach(uuid.uuid4(), None)
    thread, results = running_in_a_thread(compute, f"setsid {hidden[0]} & exec {hidden[1]}")
    assert wait_until(lambda: all(living(c) for c in hidden), 30)
    ConfinedHostCompute().release(binding)  # as from another process: a compute that ran nothing
    thread.join(timeout=30)
    assert not thread.is_alive() and results[0].exit_code != 0
    assert survivors(*hidden) == []


def test_stop_ends_the_running_call_and_later_calls_run(tmp_path):
    hidden = sleeper()
    compute = ConfinedHostCompute(base=tmp_path)
    compute.attach(uuid.uuid4(), None)
    thread, results = running_in_a_thread(compute, f"exec {hidden}")
    assert wait_until(lambda: bool(living(hidden)), 30)
    compute.stop()
    thread.join(timeout=30)
    assert not thread.is_alive() and results[0].exit_code != 0
    assert survivors(hidden) == []
    assert compute.execute("echo still here", 30).output == "still here\n"
