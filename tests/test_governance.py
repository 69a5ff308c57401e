"""A session runs under the config it recorded, whoever resumes, forks or drives it; a
deliberate change is an event, checked like a new session's config."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgspec
import pytest

from agentjournal import (
    ConfigError,
    ManagedAgent,
    ManagedSandboxRequired,
    RecordedConfigWarning,
    SessionBusy,
    TurnOutcome,
)
from agentjournal.application import ComputeNotAllowed
from agentjournal.domain import Status, StopReason, ToolResult
from agentjournal.infrastructure.compute.confined import ConfinedHostCompute
from agentjournal.infrastructure.compute.host import HostCompute
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall


def resumed(agent: ManagedAgent, service: Any, **changes: Any) -> ManagedAgent:
    """A new agent, as another process would build it, on the same session."""
    other = ManagedAgent(config=msgspec.structs.replace(agent.config, **changes), store=service)
    other.resume_session(agent.session_id)  # type: ignore[arg-type]
    return other


def test_a_resume_with_another_model_prompt_and_bounds_keeps_the_recorded_ones(
    make_agent, model_server, service
):
    agent = make_agent(system="Be brief.", max_turns=2)
    agent.run("hello")
    with pytest.warns(RecordedConfigWarning, match="model, system, max_turns"):
        other = resumed(agent, service, model="openai/other-model", system="Be evil.", max_turns=50)
    model_server.enqueue(*[Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "true"})])] * 3)
    outcome = [u for u in other.updates("loop") if isinstance(u, TurnOutcome)][0]
    assert outcome.stop_reason == StopReason.MAX_TURNS
    assert len(model_server.requests) == 1 + 2
    assert {r["model"] for r in model_server.requests} == {"gpt-4o-mini"}
    assert {r["messages"][0]["content"] for r in model_server.requests} == {"Be brief."}


def test_a_resume_without_the_hosts_opt_in_does_not_install_packages_on_the_host(
    make_agent, model_server, service
):
    agent = make_agent(packages={"pip": ["tomli-w"]}, host_packages_ok=True, tools=[])
    agent.create_session()
    other = resumed(agent, service, packages=None, host_packages_ok=False)
    with pytest.raises(ManagedSandboxRequired, match="tomli-w"):
        other.run("hello")
    assert model_server.requests == []
    assert [e.type for e in other.audit_log()] == ["SessionStarted"]


def test_a_resume_cannot_move_a_session_to_another_compute(make_agent, model_server, service, tmp_path):
    agent = make_agent(compute=ConfinedHostCompute(root=tmp_path / "elsewhere"))
    agent.run("hello")
    other = ManagedAgent(config=agent.config, compute="docker", store=service)
    other.resume_session(agent.session_id)  # type: ignore[arg-type]
    with pytest.raises(ComputeNotAllowed, match="runs its tools on 'host' compute"):
        other.run("again")
    assert other.state_at().status == Status.IDLE


def test_update_agent_records_the_change_and_the_next_turn_uses_it(make_agent, model_server):
    agent = make_agent()
    agent.run("hello")
    assert agent.save_ids()["agent_version"] == 1
    agent.update_agent(model="openai/newer", system="You are terse.", tools=["read_file"])
    (change,) = [e for e in agent.audit_log() if e.type == "ConfigChanged"]
    assert change.payload["changes"] == ["model", "system", "tools"]
    assert agent.save_ids()["agent_version"] == 2
    agent.run("again")
    sent = model_server.requests[-1]
    assert sent["model"] == "newer" and sent["messages"][0]["content"] == "You are terse."
    assert [t["function"]["name"] for t in sent["tools"]] == ["read_file"]


def test_update_agent_is_checked_like_a_new_config(make_agent, model_server):
    agent = make_agent()
    agent.run("hello")
    before = agent.state_at().version
    with pytest.raises(ManagedSandboxRequired):
        agent.update_agent(packages={"pip": ["pandas"]})
    assert agent.state_at().version == before
    assert agent.config.packages is None


def test_the_system_prompt_and_an_explicit_title_are_redacted(make_agent, model_server, monkeypatch):
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
    monkeypatch.setenv("CIPHER_KEY", "ZmFrZS1jaXBoZXIta2V5LWZvci10aGUtdGVzdA==")
    agent = make_agent(
        system=f"Use the key {secret}.", session_title="key ZmFrZS1jaXBoZXIta2V5LWZvci10aGUtdGVzdA=="
    )
    agent.run("hello")
    state = agent.state_at()
    assert secret not in state.config.system and "[redacted:openai-key]" in state.config.system
    assert state.title == "key [redacted:process-env:CIPHER_KEY]"


def test_a_second_prompt_while_a_turn_is_open_is_busy_not_a_deadlock(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(Reply(text="first reply, in pieces"))
    turn = agent.updates("first")
    next(turn)  # the turn is running, its iterator open
    raised: list[BaseException] = []
    second = threading.Thread(target=lambda: _capture(raised, agent.run, "second"))
    second.start()
    second.join(timeout=30)
    assert not second.is_alive(), "the second prompt waited on the first instead of failing"
    assert len(raised) == 1 and isinstance(raised[0], SessionBusy)
    turn.close()
    assert agent.state_at().status == Status.IDLE


def _capture(into: list[BaseException], function: Any, *args: Any) -> None:
    try:
        function(*args)
    except BaseException as e:  # noqa: BLE001 - the test inspects it
        into.append(e)


def test_leaving_the_async_stream_early_interrupts_the_turn(make_agent, model_server, tmp_path):
    agent = make_agent(working_dir=str(tmp_path / "work"))
    # The tool call comes after a hundred pieces of text, 0.2 s apart: the turn stops at the
    # piece after the one the consumer leaves on, twenty seconds before the call.
    model_server.enqueue(
        Reply(text="about to run a tool. " * 40, delay=0.2,
              tool_calls=[ScriptedToolCall("execute_command", {"command": "touch ran"})]),
        Reply(text="and then talk again"),
    )  # fmt: skip

    async def first_words() -> str:
        async for text in agent.stream("go"):
            return text
        return ""

    assert asyncio.run(first_words())
    last = agent.audit_log()[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"
    assert not (tmp_path / "work" / "ran").exists()
    assert len(model_server.requests) == 1
    assert agent.state_at().status == Status.IDLE


def test_execute_with_a_timeout_interrupts_the_turn(make_agent, model_server):
    agent = make_agent()
    model_server.enqueue(Reply(text="slow " * 400, delay=0.2))  # 50 s, ended at the piece after 0.5 s
    with pytest.raises(TimeoutError):
        asyncio.run(agent.execute("go", timeout=0.5))
    last = agent.audit_log()[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"


def test_a_fork_runs_its_tools_on_the_compute_object_the_agent_was_given(make_agent, model_server, tmp_path):
    compute = HostCompute(root=tmp_path / "given")
    agent = make_agent(compute=compute)
    agent.run("hello")
    fork = agent.fork()
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("write_file", {"path": "from-fork", "content": "x"})]),
                         Reply(text="written"))  # fmt: skip
    assert fork.run("write") == "written"
    assert (tmp_path / "given" / "from-fork").read_text() == "x"
    assert [m for m in fork.state_at().messages if isinstance(m, ToolResult)][0].is_error is False


def test_a_whole_number_for_a_float_bound_still_verifies(make_agent, model_server):
    agent = make_agent(command_timeout=60)
    agent.run("hello")
    agent.update_agent(command_timeout=30)
    assert agent.verify().ok
    assert agent.state_at().config.command_timeout == 30.0


def test_update_agent_on_a_resumed_session_changes_only_what_it_names(make_agent, model_server, service):
    agent = make_agent(system="Be brief.", max_turns=4, tools=["read_file"])
    agent.run("hello")
    other = ManagedAgent(config=msgspec.structs.replace(agent.config, system="Other.", max_turns=9,
                                                        tools=["execute_command"]), store=service)  # fmt: skip
    with pytest.warns(RecordedConfigWarning):
        other.resume_session(agent.session_id)  # type: ignore[arg-type]
    other.update_agent(model="openai/newer")
    config = other.state_at().config
    assert (config.model, config.system, config.max_turns, config.tools) == (
        "openai/newer",
        "Be brief.",
        4,
        ("read_file",),
    )
    assert other.retrieve_session() and other.service.summary(other.state_at().id).model == "openai/newer"


def test_a_session_with_confirmations_is_refused_up_front_without_a_handler(
    make_agent, model_server, service
):
    toolset = {
        "type": "agent_toolset_20260401",
        "default_config": {"permission_policy": {"type": "always_ask"}},
    }
    agent = make_agent(tools=[toolset], on_tool_confirmation=lambda info: True)
    agent.create_session()
    other = ManagedAgent(config=msgspec.structs.replace(agent.config, tools=["read_file"], on_tool_confirmation=None),
                         store=service)  # fmt: skip
    with pytest.warns(RecordedConfigWarning):
        other.resume_session(agent.session_id)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="give on_tool_confirmation"):
        other.run("go")
    assert [e.type for e in other.audit_log()] == ["SessionStarted"]
    assert model_server.requests == []


def test_a_snapshot_altered_in_the_store_is_found_by_verify(make_agent, model_server, tmp_path, monkeypatch):
    """Sessions load from their latest snapshot: widening the tools in one must not pass."""
    import sqlite3

    from agentjournal import SessionService
    from agentjournal.domain import Session

    store_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "snap.db")}
    monkeypatch.setattr(SessionService, "snapshotting_intervals", {Session: 5})
    service = SessionService(store_env)
    agent = ManagedAgent(
        config=msgspec.structs.replace(make_agent().config, tools=["list_files"]), store=service
    )
    for prompt in ("one", "two", "three"):
        agent.run(prompt)
    snapshots = service.session_snapshots
    (snapshot, *_) = reversed(list(snapshots.chunks(agent.state_at().id)))
    rest = snapshots.rest(snapshot.chunk)
    rest["config"] = msgspec.structs.replace(rest["config"], tools=("list_files", "execute_command"))
    altered = msgspec.structs.replace(snapshot.chunk, rest=service.mapper.transcoder.encode(rest))
    with sqlite3.connect(store_env["SQLITE_DBNAME"]) as db:
        db.execute(
            "UPDATE stored_snapshots SET state = ? WHERE originator_version = ?",
            (msgspec.msgpack.encode(altered), snapshot.version),
        )
    assert service.get_session(agent.state_at().id).config.tools == ("list_files", "execute_command")
    result = agent.verify()
    assert result.broken is not None and result.broken.version == snapshot.version
    assert "snapshot" in result.broken.problem and "state differs" in result.broken.problem
    service.close()
