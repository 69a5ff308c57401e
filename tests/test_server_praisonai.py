"""PraisonAI's own hosted backend (``praisonai.integrations.managed_agents.ManagedAgent``
with ``provider="anthropic"``, which drives the official SDK) as a second client of the
server, pointed at it by ``ANTHROPIC_BASE_URL`` as its users would."""

from __future__ import annotations

import asyncio

import pytest

from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.serving import API_KEY, WEATHER

managed_agents = pytest.importorskip("praisonai.integrations.managed_agents")


@pytest.fixture
def hosted(api_server, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)

    def make(tools: list[dict], **options: object):  # type: ignore[no-untyped-def]
        config = managed_agents.ManagedConfig(model="claude-haiku-4-5", system="You are terse.", tools=tools)
        return managed_agents.ManagedAgent(provider="anthropic", config=config, **options)

    return make


def test_a_multi_turn_session_with_tools_remembers(hosted, model_server, tmp_path):
    agent = hosted([{"type": "agent_toolset_20260401"}])
    model_server.enqueue(
        Reply(text="Noted, Ada."),
        Reply(
            text="Let me look.", tool_calls=[ScriptedToolCall("bash", {"command": "echo from-the-sandbox"})]
        ),
        Reply(text="The command said from-the-sandbox."),
    )
    assert agent._execute_sync("Hello, my name is Ada.") == "Noted, Ada."
    second = asyncio.run(agent.execute("Run echo for me."))
    assert second.endswith("The command said from-the-sandbox.")
    # The tool ran, and its output reached the model.
    tool_messages = [m for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages[-1]["content"].strip() == "from-the-sandbox"
    # The conversation is one session: the model saw the first turn in the second.
    assert model_server.requests[-1]["messages"][1]["content"] == "Hello, my name is Ada."
    info = agent.retrieve_session()
    assert info["status"] == "idle"
    assert info["usage"]["input_tokens"] == agent.total_input_tokens > 0
    ids = agent.save_ids()
    assert ids["session_id"].startswith("sesn_") and ids["agent_version"] == 1
    assert [s["id"] for s in agent.list_sessions()] == [ids["session_id"]]


def test_a_custom_tool_is_answered_by_praisonais_callback(hosted, model_server):
    calls = []

    def on_custom_tool(name: str, arguments: dict) -> str:
        calls.append((name, arguments))
        return "sunny, 21 C"

    agent = hosted([WEATHER], on_custom_tool=on_custom_tool)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Paris"})]), Reply(text="Sunny in Paris.")
    )
    assert agent._execute_sync("Weather in Paris?") == "Sunny in Paris."
    assert calls == [("get_weather", {"city": "Paris"})]


def test_confirmations_are_asked_of_praisonais_callback(hosted, model_server):
    asked = []

    def on_tool_confirmation(info: dict) -> bool:
        asked.append(info["input"]["command"])
        return "rm" not in info["input"]["command"]

    toolset = {
        "type": "agent_toolset_20260401",
        "default_config": {"permission_policy": {"type": "always_ask"}},
    }
    agent = hosted([toolset], on_tool_confirmation=on_tool_confirmation)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "echo fine"}),
                          ScriptedToolCall("bash", {"command": "rm -rf ./everything"})]),
        Reply(text="One ran."),
    )  # fmt: skip
    assert agent._execute_sync("Do both.") == "One ran."
    assert asked == ["echo fine", "rm -rf ./everything"]
    outputs = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    # A denial is recorded when it is answered, before the allowed call runs: results need not
    # come in the order of the calls.
    assert sorted(o.strip() for o in outputs) == ["error: the user denied this tool call", "fine"]


def test_update_agent_pins_new_sessions_to_the_new_version(hosted, model_server):
    agent = hosted([])
    agent._execute_sync("first")
    first_session = agent.save_ids()["session_id"]
    agent.update_agent(system="You are even more terse.")
    agent._execute_sync("second")
    ids = agent.save_ids()
    assert ids["agent_version"] == 2 and ids["session_id"] != first_session
    assert model_server.requests[-1]["messages"][0] == {
        "role": "system",
        "content": "You are even more terse.",
    }
    versions = [v["version"] for v in agent.list_agent_versions()]
    assert sorted(versions) == [1, 2]


def test_praisonais_interrupt_stops_a_running_turn(hosted, model_server):
    import threading

    agent = hosted([])
    model_server.enqueue(Reply(text="a very long answer " * 100, hold=True), Reply(text="Still here."))
    answers: list[str] = []
    running = threading.Thread(target=lambda: answers.append(agent._execute_sync("Talk for a while.")))
    running.start()
    model_server.wait_for_requests(1)
    agent.interrupt()
    model_server.release()  # the turn reads the rest of its reply, and stops
    running.join(timeout=60)
    assert not running.is_alive()
    assert agent.retrieve_session()["status"] == "idle"
    assert agent._execute_sync("Are you there?") == "Still here."


@pytest.mark.parametrize("store_env", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_session_started_on_one_server_continues_on_another_after_the_first_is_killed(
    model_server, store_env, monkeypatch
):
    from tests.serving import running_server

    def client_of(server):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        config = managed_agents.ManagedConfig(model="claude-haiku-4-5", system="You are terse.", tools=[])
        return managed_agents.ManagedAgent(provider="anthropic", config=config)

    with running_server(model_server.base_url, store_env=store_env) as first:
        agent = client_of(first)
        agent._execute_sync("Hello, my name is Ada.")
        ids = agent.save_ids()
        first.kill()
    with running_server(model_server.base_url, store_env=store_env) as second:
        resumed = client_of(second)
        resumed.restore_ids(ids)
        assert resumed._execute_sync("What is my name?") == "Your name is Ada."
