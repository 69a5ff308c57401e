"""Sessions exported as OpenTelemetry GenAI spans, received by a real OTLP/HTTP receiver."""

from __future__ import annotations

import socket
import uuid

import msgspec
import pytest

from agentjournal.application import ManagedAgent
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.otlp_receiver import OtlpReceiver
from tests.test_cli import agentjournal

pytestmark = pytest.mark.timeout(180)

SECRET = "sk-proj-" + "a1B2c3D4" * 6


def test_a_session_is_exported_as_nested_genai_spans(config, model_server, store):
    managed = ManagedAgent(
        config=msgspec.structs.replace(config, tools=["execute_command"], env={"TOKEN": SECRET}),
        store=str(store),
    )
    model_server.enqueue(
        Reply(
            tool_calls=[
                ScriptedToolCall(name="execute_command", arguments={"command": "echo $TOKEN; exit 2"})
            ]
        ),
        Reply(text="done"),
    )
    managed.run(f"use {SECRET}")
    managed.service.close()

    with OtlpReceiver() as receiver:
        done = agentjournal("otel", managed.session_id, "--endpoint", receiver.endpoint, store=store)
    assert "sent 5 spans of 1 sessions" in done.stdout
    spans = {s.name.split(" ")[0]: s for s in receiver.spans}
    assert sorted(s.name for s in receiver.spans) == [
        "chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool execute_command", "invoke_agent Agent",
        "session use [redacted:env:TOKEN]",
    ]  # fmt: skip
    session, turn, tool = spans["session"], spans["invoke_agent"], spans["execute_tool"]
    chats = [s for s in receiver.spans if s.name.startswith("chat ")]
    assert {s.trace_id for s in receiver.spans} == {uuid.UUID(managed.session_id).hex}
    assert session.parent_id == "" and turn.parent_id == session.span_id
    assert all(s.parent_id == turn.span_id for s in (*chats, tool))
    assert session.resource["service.name"] == "agentjournal"
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["agentjournal.cost_usd"] > 0
        assert turn.start_ns <= chat.start_ns <= chat.end_ns <= turn.end_ns
    assert tool.attributes["gen_ai.tool.name"] == "execute_command"
    assert tool.attributes["agentjournal.exit_code"] == 2 and tool.status_code == 2  # STATUS_CODE_ERROR
    assert turn.attributes["gen_ai.conversation.id"] == managed.session_id
    everything = repr([(s.name, s.attributes, s.resource) for s in receiver.spans])
    assert SECRET not in everything


def test_an_unpriced_model_exports_no_cost_but_says_so(config, model_server, store):
    managed = ManagedAgent(
        config=msgspec.structs.replace(config, model="openai/scripted-local"), store=str(store)
    )
    managed.run("hello")
    managed.service.close()
    with OtlpReceiver() as receiver:
        agentjournal("otel", "--all", "--endpoint", receiver.endpoint, store=store)
    (chat,) = [s for s in receiver.spans if s.name.startswith("chat ")]
    assert "agentjournal.cost_usd" not in chat.attributes
    assert chat.attributes["agentjournal.unpriced_calls"] == 1


def test_an_unreachable_collector_is_a_plain_failure(config, model_server, store):
    managed = ManagedAgent(config=config, store=str(store))
    managed.run("hello")
    managed.service.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = agentjournal("otel", "--all", "--endpoint", f"http://127.0.0.1:{port}", store=store, check=False)
    assert done.returncode == 1 and "did not take" in done.stderr and "Traceback" not in done.stderr


def test_a_server_sends_each_turn_as_it_ends(model_server, store):
    from tests.conftest import wait_until
    from tests.serving import running_server
    from tests.test_browser_routes import create, run_turn

    with OtlpReceiver() as receiver:
        with running_server(
            model_server.base_url, store, extra=("--otel-endpoint", receiver.endpoint)
        ) as server:
            session_id = create(store, "live")
            run_turn(server.url, session_id, "Hello")
            wait_until(lambda: any(s.name.startswith("chat ") for s in receiver.spans), "the turn's spans")
        (turn,) = [s for s in receiver.spans if s.name.startswith("invoke_agent ")]
        (chat,) = [s for s in receiver.spans if s.name.startswith("chat ")]
    assert turn.trace_id == session_id[5:] and turn.parent_id == ""
    assert chat.parent_id == turn.span_id and chat.attributes["agentjournal.cost_usd"] > 0
