"""The local managed agents document's examples, run as a PraisonAI user runs them: the
document's own first line, ``from praisonaiagents import Agent``, with agentjournal's
``ManagedAgent`` as the backend, against the scripted model server over HTTP."""

from __future__ import annotations

import json

import pytest
from praisonaiagents import Agent

from agentjournal import LocalManagedConfig, ManagedAgent, ManagedConfig, ManagedSandboxRequired
from agentjournal.infrastructure.models.scripted import Reply
from tests.conftest import TEST_KEY, run_python


def local_config(server, **fields):  # type: ignore[no-untyped-def]
    return ManagedConfig(api_base=server.base_url, api_key=TEST_KEY, **fields)


def test_quick_start_streams_the_answer_to_stdout(model_server, capsys):
    model_server.enqueue(Reply(text="The capital of France is Paris."))
    managed = ManagedAgent(provider="local", config=local_config(model_server, model="gpt-4o-mini"))
    agent = Agent(name="local-assistant", backend=managed)

    result = agent.start("What is the capital of France?", stream=True)

    assert result == "The capital of France is Paris."
    assert "The capital of France is Paris." in capsys.readouterr().out
    sent = model_server.requests[-1]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["stream"] is True
    assert sent["messages"][0] == {"role": "system", "content": "You are a helpful coding assistant."}
    assert sent["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}


def test_local_managed_config_is_the_same_class():
    assert LocalManagedConfig is ManagedConfig
    defaults = ManagedConfig()
    assert defaults.model == "gpt-4o"
    assert defaults.system == "You are a helpful coding assistant."
    assert defaults.name == "Agent"
    assert defaults.tools == ["execute_command", "read_file", "write_file", "list_files"]
    assert defaults.packages is None
    assert defaults.networking == {"type": "unrestricted"}
    assert defaults.host_packages_ok is False
    assert defaults.working_dir == ""
    assert defaults.env == {}
    assert defaults.max_turns == 25
    assert defaults.metadata == {}
    assert defaults.on_tool_confirmation is None and defaults.on_custom_tool is None


def test_packages_without_a_sandbox_raise_before_any_model_call(model_server, tmp_path):
    managed = ManagedAgent(
        provider="local",
        config=local_config(model_server, model="gpt-4o-mini", packages={"pip": ["pandas", "numpy"]}),
    )
    agent = Agent(name="analyst", backend=managed)

    with pytest.raises(ManagedSandboxRequired) as raised:
        agent.start("Install pandas and analyze data")

    message = str(raised.value)
    assert "compute='docker'" in message and "host_packages_ok=True" in message
    assert isinstance(raised.value, RuntimeError)
    assert model_server.requests == []
    assert managed.retrieve_session()["id"] == ""


def test_persistent_session_resumes_in_another_process(model_server, tmp_path):
    managed = ManagedAgent(
        provider="local", config=local_config(model_server, model="gpt-4o-mini", name="PersistentAgent")
    )
    agent = Agent(name="persistent", backend=managed)
    agent.start("Remember: my favorite color is blue")
    session_info = managed.retrieve_session()
    assert set(session_info) == {"id", "status", "title", "usage"}
    assert session_info["status"] == "idle"
    ids = managed.save_ids()
    assert ids["session_id"] == session_info["id"]

    child = run_python(
        f"""
        import json
        from praisonaiagents import Agent
        from agentjournal import ManagedAgent, ManagedConfig
        ids = json.loads({json.dumps(json.dumps(ids))})
        managed2 = ManagedAgent(provider="local", config=ManagedConfig(
            model="gpt-4o-mini", api_base={model_server.base_url!r}, api_key={TEST_KEY!r}))
        managed2.restore_ids(ids)
        managed2.resume_session(ids["session_id"])
        agent2 = Agent(name="resumed", backend=managed2)
        print(json.dumps({{"answer": agent2.start("What is my favorite color?"),
                           "info": managed2.retrieve_session()}}))
        """
    )
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["answer"] == "Your favorite color is blue."
    assert out["info"]["id"] == session_info["id"]
    # The resumed process sent the whole history to the model.
    contents = [m["content"] for m in model_server.requests[-1]["messages"]]
    assert "Remember: my favorite color is blue" in contents


def test_multi_turn_keeps_the_whole_conversation(model_server):
    managed = ManagedAgent(
        provider="local",
        config=local_config(
            model_server, model="gpt-4o-mini",
            system="You are a math tutor. Help students learn step by step.", name="MathTutor",
        ),
    )  # fmt: skip
    agent = Agent(name="tutor", backend=managed)
    prompts = [
        "Explain what a derivative is",
        "Now show me how to find the derivative of x²",
        "What about x³?",
    ]
    for prompt in prompts:
        agent.start(prompt, stream=True)

    sent = model_server.requests[-1]["messages"]
    assert sent[0]["content"] == "You are a math tutor. Help students learn step by step."
    assert [m["content"] for m in sent if m["role"] == "user"] == prompts
    assert sum(1 for m in sent if m["role"] == "assistant") == 2


def test_usage_is_tracked_and_accumulated(model_server):
    model_server.enqueue(
        Reply(text="A poem.", prompt_tokens=11, completion_tokens=7),
        Reply(text="Physics.", prompt_tokens=30, completion_tokens=13),
    )
    managed = ManagedAgent(provider="local", config=local_config(model_server, model="gpt-4o-mini"))
    agent = Agent(name="tracker", backend=managed)
    agent.start("Write a short poem")
    agent.start("Explain quantum physics briefly")

    info = managed.retrieve_session()
    assert info["usage"] == {"input_tokens": 41, "output_tokens": 20}
    assert managed.total_input_tokens == 41
    assert managed.total_output_tokens == 20


def test_retrieve_session_has_defaults_before_any_session(model_server):
    managed = ManagedAgent(provider="local", config=local_config(model_server))
    assert managed.retrieve_session() == {
        "id": "",
        "status": "unknown",
        "title": "",
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    assert managed.total_input_tokens == 0
