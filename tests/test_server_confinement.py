"""``agentjournal serve`` against a hostile model: a real server process, the official SDK,
and the scripted model answering with the tool calls an attacker would make.

A session whose environment asks for no packages runs on the confined host; these are the
attacks that succeeded when it ran unconfined, as the server's own user (and commonly as
root): the server's environment read through ``/proc``, another session's folder read and
appended to, the store opened and changed, the home folder and ``/etc/shadow`` read, the
network reached when the environment allows none, and commands outliving their deadline or
the server killed with SIGKILL. Where nothing can confine a session it is refused, unless
the server opted in to the unconfined host. With packages, a session runs in Docker, whose
walls the same attacks meet (``test_docker_*``, with a Docker engine).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentjournal.infrastructure.compute import bubblewrap
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
from tests.serving import API_KEY, WEATHER, RunningServer, running_server
from tests.test_server_actions import prompt, until_idle

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="bubblewrap cannot run here"),
]

TOOLSET = {"type": "agent_toolset_20260401"}
SETTING, SETTING_VALUE = "ENGINE_ONLY_SETTING", "server-secret-5e1d7c"


@pytest.fixture
def engine_home(tmp_path: Path) -> Path:
    """The server user's home folder, with something of theirs in it."""
    home = tmp_path / "engine-home"
    home.mkdir()
    (home / "credentials").write_text("the server user's credentials")
    return home


@pytest.fixture
def server(model_server, store, engine_home):  # type: ignore[no-untyped-def]
    with running_server(
        model_server.base_url, store, {"HOME": str(engine_home), SETTING: SETTING_VALUE}
    ) as s:
        yield s


def new_session(server: RunningServer, networking: dict[str, Any] | None = None, **environment: Any) -> str:
    """A session made the cloud's way: an agent with Anthropic's tools, an environment."""
    client = server.client()
    agent = client.beta.agents.create(name="a", model="gpt-4o-mini", tools=[TOOLSET, WEATHER])  # type: ignore[list-item]
    config = {"type": "cloud", **({"networking": networking} if networking else {}), **environment}
    created = client.beta.environments.create(name="e", config=config)  # type: ignore[arg-type]
    return client.beta.sessions.create(agent=agent.id, environment_id=created.id).id


def session_json(server: RunningServer, session_id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/v1/sessions/{session_id}", headers={"x-api-key": API_KEY}).json()


def bash(command: str, timeout_ms: int | None = None) -> ScriptedToolCall:
    arguments: dict[str, object] = {"command": command}
    if timeout_ms is not None:
        arguments["timeout_ms"] = timeout_ms
    return ScriptedToolCall("bash", arguments)


def attack(server: RunningServer, model_server, session_id: str, *calls: ScriptedToolCall) -> list[Any]:  # type: ignore[no-untyped-def]
    """One turn in which the model makes ``calls``; their results, as the API shows them."""
    model_server.enqueue(Reply(tool_calls=list(calls)), Reply(text="done"))
    client = server.client()
    with client.beta.sessions.events.stream(session_id) as stream:
        client.beta.sessions.events.send(session_id, events=[prompt("go")])
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "session.status_idle":
                break
    return [e for e in seen if e.type == "agent.tool_result"]


def text(result: Any) -> str:
    return "".join(block.text for block in result.content)


def folder_of(store: Path, session_id: str) -> Path:
    """A session's work folder, where the server makes it (under the test's data folder)."""
    return store.parent / "home" / "workspaces" / str(uuid.UUID(session_id.removeprefix("sesn_")))


def test_the_servers_secrets_and_other_sessions_are_out_of_reach(server, model_server, store):
    first, second = new_session(server), new_session(server)
    assert session_json(server, second)["x_agentjournal"]["compute"] == "host"
    attack(
        server,
        model_server,
        first,
        ScriptedToolCall("write", {"file_path": "secret.txt", "content": "first's"}),
    )
    first_folder, other = folder_of(store, first), first.removeprefix("sesn_")
    pid = server.process.pid
    results = attack(
        server,
        model_server,
        second,
        bash(f"cat /proc/{pid}/environ; cat /proc/{pid}/cmdline; env; echo /proc/[0-9]*"),
        bash(f"cat {first_folder}/secret.txt ../*/secret.txt; ls .. {first_folder.parent}"),
        bash(f"echo appended >> {first_folder}/secret.txt"),
        ScriptedToolCall("read", {"file_path": str(first_folder / "secret.txt")}),
    )
    everything = " ".join(text(r) for r in results)
    for secret in (SETTING, SETTING_VALUE, API_KEY, "first's", str(store)):
        assert secret not in everything
    assert f"/proc/{pid}/environ: No such file or directory" in text(results[0])
    assert other not in text(results[1])
    assert results[2].is_error and results[3].is_error
    assert (first_folder / "secret.txt").read_text() == "first's"


def test_the_store_the_data_folder_home_and_roots_files_are_out_of_reach(
    server, model_server, store, engine_home, _home
):
    name = f"taken-{uuid.uuid4().hex[:8]}"
    session_id = new_session(server)
    try:
        results = attack(
            server,
            model_server,
            session_id,
            bash(
                f"sqlite3 {store} 'CREATE TABLE taken (x)'; sqlite3 ../../../sessions.db 'CREATE TABLE taken (x)'"
            ),
            bash(f"ls {_home}; cat {engine_home}/credentials; ls /root"),
            bash(f"id -u; cat /etc/shadow; touch /etc/{name} /usr/{name}"),
        )
        assert all("No such file or directory" in line for line in text(results[1]).strip().splitlines())
        uid, *refusals = text(results[2]).splitlines()
        assert uid != "0"
        assert refusals[0] == "cat: /etc/shadow: Permission denied"
        assert all("Read-only file system" in line for line in refusals[1:])
        tables = (
            sqlite3.connect(store).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        )
        assert ("taken",) not in tables
        assert not Path(f"/etc/{name}").exists() and not Path(f"/usr/{name}").exists()
    finally:
        for path in (Path(f"/etc/{name}"), Path(f"/usr/{name}")):
            path.unlink(missing_ok=True)  # written only by a test that failed


def test_limited_networking_that_allows_nothing_is_no_network_at_all(server, model_server):
    offline, online = new_session(server, {"type": "limited"}), new_session(server)
    with loopback_listener() as (port, listener):
        (refused,) = attack(server, model_server, offline, bash(connect_to(port)))
        assert refused.is_error and "connected" not in text(refused)
        assert not reached(listener)
        (connected,) = attack(server, model_server, online, bash(connect_to(port)))
        assert text(connected) == "connected\n" and reached(listener)


def test_nothing_a_command_starts_outlives_its_deadline(server, model_server):
    hidden = [sleeper(), sleeper(), sleeper()]
    (result,) = attack(server, model_server, new_session(server), bash(hiding(*hidden), timeout_ms=2000))
    assert result.is_error and "[killed after 2 s]" in text(result)
    assert survivors(*hidden) == []


def test_a_commands_processes_die_with_the_server_killed_with_sigkill(server, model_server):
    first, second, last = hidden = [sleeper(), sleeper(), sleeper()]
    command = (
        f"env -i setsid {first} </dev/null >/dev/null 2>&1 & nohup {second} >/dev/null 2>&1 & exec {last}"
    )
    session_id = new_session(server)
    model_server.enqueue(Reply(tool_calls=[bash(command, timeout_ms=100_000)]))
    server.client().beta.sessions.events.send(session_id, events=[prompt("go")])
    assert wait_until(lambda: all(living(c) for c in hidden), 60), "the command never started"
    server.kill()
    assert survivors(*hidden) == []


def test_concurrent_turns_of_two_sessions_never_share_a_work_folder(model_server, store):
    """Sessions from one agent and environment have the same settings; while one turn waits
    for the client, another session's turn runs. The first turn's next command still runs
    in its own session's folder."""
    with running_server(model_server.base_url, store, extra=("--answer-grace", "60")) as server:
        client = server.client()
        mine, theirs = new_session(server), new_session(server)
        for session_id in (mine, theirs):
            attack(server, model_server, session_id, bash(f"echo {session_id} > whose.txt"))
        model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"})]))
        with client.beta.sessions.events.stream(mine) as stream:
            client.beta.sessions.events.send(mine, events=[prompt("weather, then whose")])
            use = next(
                e for e in stream if e.type == "agent.custom_tool_use"
            )  # the turn waits for the answer
        attack(server, model_server, theirs, bash("cat whose.txt"))
        model_server.enqueue(Reply(tool_calls=[bash("cat whose.txt")]), Reply(text="done"))
        answer = {"type": "user.custom_tool_result", "custom_tool_use_id": use.id, "content": "cold"}
        client.beta.sessions.events.send(mine, events=[answer])  # type: ignore[list-item]
        until_idle(client, mine)
        results = [e for e in client.beta.sessions.events.list(mine) if e.type == "agent.tool_result"]
        assert text(results[-1]) == f"{mine}\n"


def test_where_nothing_can_confine_a_session_it_is_refused_naming_the_fix(model_server, store, tmp_path):
    nowhere = tmp_path / "no-programs"
    nowhere.mkdir()
    without = {"PATH": str(nowhere), "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    with running_server(model_server.base_url, store, without) as server:
        with pytest.raises(Exception) as refused:
            new_session(server)
        assert getattr(refused.value, "status_code", None) == 400
        message = str(refused.value)
        assert "bwrap is not installed" in message and "no Docker engine" in message
        assert "apt-get install bubblewrap" in message and "--allow-unconfined-host" in message
        assert server.client().beta.sessions.list().data == []


def test_the_unconfined_host_runs_only_on_a_server_that_opted_in(model_server, store):
    with running_server(model_server.base_url, store, extra=("--allow-unconfined-host",)) as server:
        session_id = new_session(server)
        assert session_json(server, session_id)["x_agentjournal"]["compute"] == "host-unconfined"
        (result,) = attack(server, model_server, session_id, bash("pwd"))
        assert text(result).strip() == str(folder_of(store, session_id).resolve())
    with running_server(model_server.base_url, store) as server:
        with pytest.raises(Exception) as refused:
            server.client().beta.sessions.events.send(session_id, events=[prompt("again")])
        assert getattr(refused.value, "status_code", None) == 400
        assert "--allow-unconfined-host" in str(refused.value)


# -- the Docker sandbox: an environment with packages, or no bubblewrap ---------------------


@pytest.fixture
def docker_engine():  # type: ignore[no-untyped-def]
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.images.get("agentjournal-sandbox:latest")
    except Exception as e:  # noqa: BLE001 - any reason the engine cannot be used
        pytest.skip(f"no Docker engine with the sandbox image (run scripts/setup): {e}")
    return client


def sandboxes_of(engine: Any, session_id: str) -> list[Any]:
    from agentjournal.infrastructure.compute.docker_sandbox import sandboxes

    return list(sandboxes(engine, uuid.UUID(session_id.removeprefix("sesn_"))))


@pytest.mark.docker
def test_docker_walls_hold_against_the_same_attacks(
    server, model_server, store, engine_home, _home, docker_engine
):
    packages = {"packages": {"pip": ["tomli-w"]}}
    first, second = new_session(server, **packages), new_session(server, **packages)
    try:
        assert session_json(server, second)["x_agentjournal"]["compute"] == "docker"
        attack(
            server,
            model_server,
            first,
            ScriptedToolCall("write", {"file_path": "secret.txt", "content": "first's"}),
        )
        pid, hidden = server.process.pid, [sleeper(), sleeper(), sleeper()]
        results = attack(
            server,
            model_server,
            second,
            bash(f"cat /proc/{pid}/environ; env"),
            bash(
                f"cat {folder_of(store, first)}/secret.txt ../*/secret.txt; ls {_home} {engine_home} {store}"
            ),
            bash(
                f"python3 -c \"import sqlite3; sqlite3.connect('{store}').execute('CREATE TABLE taken (x)')\""
            ),
            bash("id -u; cat /etc/shadow 2>&1; touch /etc/taken /usr/taken 2>&1"),  # one stream, in order
            bash(hiding(*hidden), timeout_ms=2000),
        )
        everything = " ".join(text(r) for r in results)
        for secret in (SETTING, SETTING_VALUE, API_KEY, "first's", "credentials"):
            assert secret not in everything
        assert results[2].is_error
        uid, *refusals = text(results[3]).splitlines()
        assert uid != "0" and "Permission denied" in refusals[0]
        assert all("Read-only file system" in line for line in refusals[1:])
        assert results[4].is_error and survivors(*hidden) == []  # its $PPID is outside: it killed itself
        tables = (
            sqlite3.connect(store).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        )
        assert ("taken",) not in tables
    finally:
        for session_id in (first, second):
            server.client().beta.sessions.delete(session_id)
    assert sandboxes_of(docker_engine, first) == sandboxes_of(docker_engine, second) == []


@pytest.mark.docker
def test_where_bubblewrap_cannot_run_docker_takes_the_session_with_no_network(
    model_server, store, tmp_path, docker_engine
):
    nowhere = tmp_path / "no-programs"
    nowhere.mkdir()
    with running_server(model_server.base_url, store, {"PATH": str(nowhere)}) as server:
        session_id = new_session(server, {"type": "limited"})
        try:
            assert session_json(server, session_id)["x_agentjournal"]["compute"] == "docker"
            with loopback_listener() as (port, listener):
                (result,) = attack(server, model_server, session_id, bash(connect_to(port)))
                assert result.is_error and "connected" not in text(result) and not reached(listener)
            (interfaces,) = attack(server, model_server, session_id, bash("ls /sys/class/net"))
            assert text(interfaces).split() == ["lo"]
        finally:
            server.client().beta.sessions.delete(session_id)
    assert sandboxes_of(docker_engine, session_id) == []


@pytest.mark.docker
def test_docker_ends_what_a_killed_server_left_running_when_the_session_is_next_used(
    model_server, store, docker_engine
):
    """Docker runs a command where the server cannot take it along when it dies (a departure
    from the confined host): what a killed server left running in a sandbox dies when the
    next command there ends, since every command's end kills all of the tools' processes,
    or when the session's sandbox is released."""
    hidden = sleeper()
    packages = {"packages": {"pip": ["tomli-w"]}}
    with running_server(model_server.base_url, store) as server:
        session_id = new_session(server, **packages)
        model_server.enqueue(Reply(tool_calls=[bash(f"exec {hidden}", timeout_ms=100_000)]))
        server.client().beta.sessions.events.send(session_id, events=[prompt("go")])
        assert wait_until(lambda: bool(living(hidden)), 600), "the command never started"
        server.kill()
    try:
        with running_server(model_server.base_url, store) as server:
            client = server.client()
            # The new server closes the dead turn first, in its recovery sweep at start.
            assert wait_until(lambda: client.beta.sessions.retrieve(session_id).status == "idle", 60)
            model_server.enqueue(Reply(tool_calls=[bash("true")]), Reply(text="done"))
            client.beta.sessions.events.send(session_id, events=[prompt("again")])
            until_idle(client, session_id)  # from the new turn's prompt
            result = [
                e for e in client.beta.sessions.events.list(session_id) if e.type == "agent.tool_result"
            ][-1]
            assert not result.is_error
            assert survivors(hidden, seconds=10) == []
            server.client().beta.sessions.delete(session_id)
    finally:
        for container in sandboxes_of(docker_engine, session_id):
            container.remove(force=True)
