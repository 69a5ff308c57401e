"""Tool use over the API in the Docker sandbox: the turn's commands run in the session's
container, and deleting the session removes it."""

from __future__ import annotations

import uuid

import pytest

from agentjournal.infrastructure.compute.docker_sandbox import sandboxes
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.test_server_actions import prompt, send, until_idle
from tests.test_server_sessions import new_session

pytestmark = pytest.mark.docker


@pytest.fixture
def engine():  # type: ignore[no-untyped-def]
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
        client.images.get("agentjournal-sandbox:latest")
    except Exception as e:  # noqa: BLE001 - any reason the engine cannot be used
        pytest.skip(f"no Docker engine with the sandbox image (run scripts/setup): {e}")
    return client


def test_tools_run_in_the_sessions_sandbox_and_delete_removes_it(api_server, store, model_server, engine):
    client = api_server.client()
    session_id = new_session(store, tools=("execute_command", "write_file"), compute="docker")
    owner = uuid.UUID(session_id.removeprefix("sesn_"))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("write_file", {"path": "note.txt", "content": "inside"}),
                          ScriptedToolCall("execute_command", {"command": "cat note.txt; echo; hostname; id -u"})]),
        Reply(text="Done."),
    )  # fmt: skip
    try:
        send(client, session_id, prompt("Write and read a note."))
        events = until_idle(
            client,
            session_id,
            extra_headers={"Last-Event-ID": session_id.replace("sesn_", "sevt_") + "0" * 12},
        )
        results = [e for e in events if e.type == "agent.tool_result"]
        assert len(results) == 2 and not any(r.is_error for r in results)
        output = results[1].content[0].text
        container = next(iter(sandboxes(engine, owner)))
        note, host, uid = output.split()[:3]
        assert note == "inside" and container.id.startswith(host)
        assert uid != "0"  # not root in the sandbox
    finally:
        client.beta.sessions.delete(session_id)
    assert list(sandboxes(engine, owner)) == []


def test_an_environment_with_packages_puts_the_session_in_the_sandbox_with_them(
    api_server, model_server, engine
):
    client = api_server.client()
    agent = client.beta.agents.create(name="analyst", model="gpt-4o-mini",
                                      tools=[{"type": "agent_toolset_20260401"}])  # fmt: skip
    environment = client.beta.environments.create(
        name="python-tools",
        config={"type": "cloud", "packages": {"pip": ["tomli-w"]}, "networking": {"type": "unrestricted"}},
    )
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    owner = uuid.UUID(session.id.removeprefix("sesn_"))
    model_server.enqueue(
        Reply(
            tool_calls=[
                ScriptedToolCall("bash", {"command": "python3 -c 'import tomli_w; print(tomli_w.__name__)'"})
            ]
        ),
        Reply(text="It works."),
    )
    try:
        with client.beta.sessions.events.stream(session.id) as stream:
            send(client, session.id, prompt("Check the package."))
            events = []
            for event in stream:
                events.append(event)
                if event.type == "session.status_idle":
                    break
        result = next(e for e in events if e.type == "agent.tool_result")
        assert result.content[0].text.strip() == "tomli_w" and not result.is_error
        assert list(sandboxes(engine, owner))  # the tools ran in this session's container
    finally:
        client.beta.sessions.delete(session.id)
    assert list(sandboxes(engine, owner)) == []
