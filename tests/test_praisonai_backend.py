"""``ManagedAgent`` as PraisonAI's own ``Agent`` drives it: the ``ManagedBackendProtocol``
of praisonaiagents, its ids, provider hints, and its custom tools and confirmations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from praisonaiagents import Agent
from praisonaiagents.agent.protocols import ManagedBackendProtocol

from agentjournal import Agent as AgentJournalAgent
from agentjournal import (
    ConfigError,
    ManagedAgent,
    ManagedConfig,
    RecordedConfigWarning,
    UnsupportedProvider,
)
from agentjournal.domain import ToolResult
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY


@pytest.fixture
def managed(model_server, store):  # type: ignore[no-untyped-def]
    def make(**fields: Any) -> ManagedAgent:
        config = ManagedConfig(
            model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY, **fields
        )
        return ManagedAgent(provider="local", config=config, store=store)

    return make


def test_it_satisfies_praisonais_protocol(managed):
    assert isinstance(managed(), ManagedBackendProtocol)


def test_praisonai_agents_async_entry_point_runs_a_turn(managed, model_server):
    backend = managed()
    agent = Agent(name="async", backend=backend)
    model_server.enqueue(Reply(text="from astart"))
    assert asyncio.run(agent.astart("hello")) == "from astart"
    assert backend.retrieve_session()["status"] == "idle"


def test_save_ids_has_praisonais_keys_and_restores_in_a_new_backend(managed, model_server):
    first = managed(name="Keeper")
    Agent(name="a", backend=first).start("Remember: my favorite color is blue")
    ids = first.save_ids()
    assert ids == {
        "agent_id": "Keeper",
        "agent_version": 1,
        "environment_id": "host",
        "session_id": first.session_id,
    }
    second = managed()
    second.restore_ids(ids)
    assert second.managed_session_id == first.session_id
    assert (
        Agent(name="b", backend=second).start("What is my favorite color?") == "Your favorite color is blue."
    )


def test_the_ids_are_attributes_read_from_the_sessions_log(managed, model_server, store):
    """PraisonAI's ``agent_id``, ``agent_version`` and ``environment_id`` attributes say what
    ``save_ids`` says: this agent's before a session, then the session's as recorded, whatever
    config and compute the agent that resumed it brings."""
    first = managed(name="Keeper")
    assert (first.agent_id, first.agent_version, first.environment_id) == ("Keeper", 1, "host")
    first.run("hello")
    first.update_agent(system="Be brief.")
    resumed = ManagedAgent(config=ManagedConfig(name="Other"), compute="docker", store=store)
    with pytest.warns(RecordedConfigWarning, match="name"):
        resumed.resume_session(first.session_id)
    assert (resumed.agent_id, resumed.agent_version, resumed.environment_id) == ("Keeper", 2, "host")
    assert resumed.save_ids() == {
        "agent_id": "Keeper", "agent_version": 2, "environment_id": "host", "session_id": first.session_id,
    }  # fmt: skip
    resumed.reset_all()
    assert (resumed.agent_id, resumed.agent_version, resumed.environment_id) == ("Other", 1, "docker")


def test_our_agent_runs_silently_as_praisonais_does(managed, model_server, capsys):
    agent = AgentJournalAgent(name="quiet", backend=managed())
    model_server.enqueue(Reply(text="said, not shown"), Reply(text="said and shown"))
    assert agent.run("hello") == "said, not shown"
    assert capsys.readouterr().out == ""
    assert agent.run("again", stream=True) == "said and shown"
    assert capsys.readouterr().out == "said and shown\n"


def test_callbacks_given_to_the_backend_as_praisonais_examples_do(model_server, store):
    weather = {"type": "custom", "name": "get_weather", "description": "The weather in a city.",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip
    config = ManagedConfig(
        model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY, tools=[weather]
    )
    backend = ManagedAgent(
        config=config, store=store, on_custom_tool=lambda name, arguments: f"sunny in {arguments['city']}"
    )
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"})]), Reply(text="It is sunny.")
    )
    assert Agent(name="weather", backend=backend).start("Weather in Oslo?") == "It is sunny."
    assert model_server.requests[-1]["messages"][-1]["content"] == "sunny in Oslo"


def test_reset_session_starts_a_new_session_and_keeps_the_old(managed, model_server):
    backend = managed()
    agent = Agent(name="a", backend=backend)
    agent.start("Remember: my favorite color is blue")
    old = backend.session_id
    backend.reset_session()
    assert backend.retrieve_session()["id"] == ""
    assert agent.start("What is my favorite color?") != "Your favorite color is blue."
    assert backend.session_id not in (None, old)
    assert {s["id"] for s in backend.list_sessions()} == {old, backend.session_id}
    backend.reset_all()
    assert backend.session_id is None and backend.total_input_tokens == 0


def test_update_agent_as_praisonai_calls_it(managed, model_server):
    backend = managed()
    agent = Agent(name="a", backend=backend)
    agent.start("hello")
    backend.update_agent(system="Answer in French.", name="Francais")
    agent.start("hello again")
    assert model_server.requests[-1]["messages"][0]["content"] == "Answer in French."
    assert backend.save_ids()["agent_version"] == 2


@pytest.mark.parametrize(
    ("provider", "model", "routed"),
    [
        ("ollama", "llama3", "ollama/llama3"),
        ("gemini", "1.5-pro", "gemini/1.5-pro"),
        ("openai", "gpt-4o", "gpt-4o"),
    ],
)
def test_providers_are_model_routing_hints(provider, model, routed, store):
    assert (
        ManagedAgent(provider=provider, config=ManagedConfig(model=model), store=store).config.model == routed
    )


def test_unknown_providers_and_computes_say_what_exists(store):
    with pytest.raises(
        UnsupportedProvider, match="Unknown provider 'modal'.*'local', 'openai', 'ollama', 'gemini'"
    ):
        ManagedAgent(provider="modal", store=store)
    with pytest.raises(
        ConfigError, match=r"compute must be one of \['docker', 'host', 'host-unconfined', 'local'\]"
    ):
        ManagedAgent(compute="e2b", store=store)
    assert ManagedAgent(compute="local", store=store).compute_kind == "host"


def test_a_config_converts_to_a_dict_and_back(store):
    def handler(name: str, arguments: dict[str, Any]) -> str:
        return "ok"

    config = ManagedConfig(
        model="m", metadata={"team": "a"}, on_custom_tool=handler,
        tools=["read_file", {"type": "custom", "name": "lookup"}],
    )  # fmt: skip
    values = config.to_dict()
    assert values["max_turns"] == 25 and values["on_custom_tool"] is handler
    assert ManagedConfig.from_dict(values) == config
    assert ManagedAgent(config=values, store=store).config == config


def test_custom_tools_and_confirmations_through_praisonais_agent(managed, model_server):
    asked: list[dict[str, Any]] = []
    tools = [
        {"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}},
        {"type": "custom", "name": "lookup_order", "description": "Find an order",
         "input_schema": {"type": "object", "properties": {"order": {"type": "string"}}}},
    ]  # fmt: skip
    backend = managed(
        tools=tools,
        on_custom_tool=lambda name, arguments: {"order": arguments["order"], "status": "shipped"},
        on_tool_confirmation=lambda info: asked.append(info) or False,
    )
    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("lookup_order", {"order": "A-1"}),
            ScriptedToolCall("bash", {"command": "rm -rf ~"}),
        ]),
        Reply(text="Order A-1 has shipped."),
    )  # fmt: skip
    assert Agent(name="support", backend=backend).start("Where is A-1?") == "Order A-1 has shipped."
    assert [a["name"] for a in asked] == ["bash"]
    results = [m for m in backend.state_at().messages if isinstance(m, ToolResult)]
    assert results[0].output == '{"order":"A-1","status":"shipped"}'
    assert results[1].is_error and "denied" in results[1].output
