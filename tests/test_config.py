"""Bad configuration is refused at once, with a message that says what to change."""

from __future__ import annotations

import pytest

from agentjournal.application import ConfigError, ManagedAgent, ManagedConfig, UnsupportedProvider


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": 4}, "ManagedConfig.model: Expected `str`"),
        ({"tools": "execute_command"}, "ManagedConfig.tools"),
        ({"tools": ["execute_command", "rm_rf"]}, "tools[1]: unknown tool 'rm_rf'"),
        ({"tools": ["search_web"]}, "'search_web' is not available"),
        (
            {"tools": [{"type": "agent_toolset_20260401", "configs": [{"name": "execute_command"}]}]},
            "'execute_command' is not a tool of 'agent_toolset_20260401'",
        ),
        (
            {
                "tools": [
                    {
                        "type": "agent_toolset_20260401",
                        "configs": [{"name": "web_fetch", "allowed_domains": ["example.org"]}],
                    }
                ]
            },
            "web_fetch's ['allowed_domains'] are not enforced",
        ),
        ({"tools": [{"type": "web_search_20250305"}]}, "is not a tool name"),
        ({"tools": [{"type": "mcp_toolset"}]}, "needs a non-empty 'mcp_server_name'"),
        (
            {"tools": [{"type": "mcp_toolset", "mcp_server_name": "github"}]},
            "name servers ['github'] that ManagedConfig.mcp_servers does not define",
        ),
        ({"tools": [{"type": "custom", "name": "bash"}]}, "name of a built-in tool"),
        ({"tools": ["bash", {"type": "agent_toolset_20260401"}]}, "['bash'] named more than once"),
        ({"on_custom_tool": "not a function"}, "on_custom_tool must be a function"),
        ({"metadata": {"when": object()}}, "ManagedConfig.metadata"),
        ({"model_max_attempts": 0}, "model_max_attempts must be at least 1"),
        ({"packages": {"pip": "pandas"}}, "ManagedConfig.packages"),
        ({"packages": {"brew": ["wget"]}}, "unknown manager 'brew'"),
        ({"packages": {"pip": ["--index-url=http://evil"]}}, "non-name"),
        ({"networking": {"type": "open"}}, "networking: type 'open'"),
        ({"env": {"NOT A NAME": "x"}}, "not environment variable names"),
        ({"env": {"TOKEN": 5}}, "ManagedConfig.env"),
        ({"max_turns": 0}, "max_turns and model_max_attempts must be at least 1"),
        ({"host_packages_ok": "yes"}, "host_packages_ok: Expected `bool`"),
        ({"command_timeout": -1}, "must be positive"),
        ({"workspace_quota_bytes": 0}, "workspace_quota_bytes must be positive"),
    ],
)
def test_wrong_values_are_refused(fields, message):
    with pytest.raises(ConfigError) as raised:
        ManagedConfig(**fields)
    assert message in str(raised.value)


ASKING = {"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}}


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ([{"type": "custom", "name": "lookup"}], "need on_custom_tool"),
        ([ASKING], "give on_tool_confirmation"),
    ],
)
def test_a_tool_nobody_can_answer_is_refused_when_the_agent_is_built(tools, message, tmp_path):
    """The callbacks may come with the config or, as PraisonAI's examples pass them, with
    the agent: so a config alone may lack them, and the agent built from it may not."""
    config = ManagedConfig(tools=tools)
    with pytest.raises(ConfigError, match=message):
        ManagedAgent(config=config, store=tmp_path / "s.db")
    handlers = {"on_custom_tool": lambda name, arguments: "x", "on_tool_confirmation": lambda info: True}
    ManagedAgent(config=config, store=tmp_path / "s.db", **handlers)
    with pytest.raises(ConfigError, match=message):
        ManagedAgent(store=tmp_path / "s.db").update_agent(tools=tools)


def test_unknown_fields_are_refused():
    with pytest.raises(TypeError, match="modle"):
        ManagedConfig(modle="gpt-4o")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="unknown field `modle`"):
        ManagedConfig.from_dict({"modle": "gpt-4o"})


def test_a_dict_config_is_validated_too():
    managed = ManagedAgent(config={"model": "ollama/llama3", "max_turns": 3})
    assert managed.config.model == "ollama/llama3" and managed.config.max_turns == 3


def test_the_api_key_is_hidden_from_repr_and_errors():
    config = ManagedConfig(api_key="sk-very-secret-key-123456", env={"TOKEN": "hunter22"})
    assert "sk-very-secret" not in repr(config)
    assert "hunter22" not in repr(config)
    with pytest.raises(ConfigError) as raised:
        ManagedConfig(api_key=12345)  # type: ignore[arg-type]
    assert "12345" not in str(raised.value)


def test_unknown_provider_and_compute_are_refused():
    with pytest.raises(
        UnsupportedProvider, match=r"Unknown provider 'anthropic': choose from \['local', 'openai'"
    ):
        ManagedAgent(provider="anthropic")
    with pytest.raises(ConfigError, match="compute must be one of"):
        ManagedAgent(compute="kubernetes")


def test_empty_prompt_is_refused(tmp_path):
    managed = ManagedAgent(store=tmp_path / "s.db")
    with pytest.raises(ConfigError, match="non-empty"):
        managed.run("   ")
    assert managed.retrieve_session()["id"] == ""


def test_the_unconfined_host_refuses_a_network_policy_it_cannot_enforce(tmp_path):
    from agentjournal.application import ComputeError

    managed = ManagedAgent(
        config={"networking": {"type": "none"}}, compute="host-unconfined", store=tmp_path / "s.db"
    )
    with pytest.raises(ComputeError, match="cannot restrict the network"):
        managed.run("hello")
    assert managed.retrieve_session()["id"] == ""
