"""A memory store in the Docker sandbox, end to end: the official SDK against a real
``agentjournal serve`` whose sessions run their tools in Docker (an environment with
packages gets the sandbox). A session on a ``read_write`` store writes memories with the
file tools and a command, the versions name it, the next session reads them, and a
``read_only`` store refuses its writes from outside the model."""

from __future__ import annotations

from uuid import UUID

import pytest

from agentjournal.infrastructure.compute.docker_sandbox import sandboxes
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.test_server_sessions import turn

pytestmark = [
    pytest.mark.docker,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(300),
]

FOLDER = "/mnt/memory/team-notes"


def results_of(events: list) -> list:  # type: ignore[type-arg]
    return [e for e in events if e.type == "agent.tool_result"]


def test_sessions_in_docker_write_and_read_a_memory_store(api_server, model_server, engine, sessions):
    client = api_server.client()
    agent = client.beta.agents.create(name="keeper", model="gpt-4o-mini",
                                      tools=[{"type": "agent_toolset_20260401"}])  # fmt: skip
    # pip is in the sandbox's virtual environment already: packages (so Docker), nothing fetched.
    environment = client.beta.environments.create(
        name="sandboxed", config={"type": "cloud", "packages": {"pip": ["pip"]}}
    )
    store = client.beta.memory_stores.create(name="Team Notes", description="What the team agreed.")
    client.beta.memory_stores.memories.create(store.id, path="/release.md", content="Fridays.")

    def new_session(access: str):  # type: ignore[no-untyped-def]
        session = client.beta.sessions.create(
            agent=agent.id, environment_id=environment.id,
            resources=[{"type": "memory_store", "memory_store_id": store.id, "access": access}],
        )  # fmt: skip
        sessions.append(UUID(session.id.removeprefix("sesn_")))
        return session

    def memories() -> dict[str, str | None]:
        return {m.path: m.content for m in client.beta.memory_stores.memories.list(store.id, view="full")}

    try:
        writer = new_session("read_write")
        model_server.enqueue(
            Reply(tool_calls=[
                ScriptedToolCall("read", {"file_path": f"{FOLDER}/release.md"}),
                ScriptedToolCall("write", {"file_path": f"{FOLDER}/people/owner.md", "content": "Ada owns releases."}),
                ScriptedToolCall("bash", {"command": f"echo ' Not on holidays.' >> {FOLDER}/release.md && hostname"}),
            ]),
            Reply(text="Noted."),
        )  # fmt: skip
        read, write, shell = results_of(turn(client, writer.id, "Remember who owns releases."))
        assert not any(r.is_error for r in (read, write, shell)), [r.content for r in (read, write, shell)]
        assert "Fridays." in read.content[0].text
        [container] = sandboxes(engine, sessions[0])
        assert container.id.startswith(shell.content[0].text.split()[-1])  # the command ran in Docker
        written = memories()
        assert written == {
            "/release.md": "Fridays. Not on holidays.\n",
            "/people/owner.md": "Ada owns releases.",
        }
        versions = list(client.beta.memory_stores.memory_versions.list(store.id, session_id=writer.id))
        assert sorted(v.operation for v in versions) == ["created", "modified"]
        assert all(
            v.created_by is not None
            and v.created_by.type == "session_actor"
            and v.created_by.session_id == writer.id
            for v in versions
        )

        reader = new_session("read_only")
        model_server.enqueue(
            Reply(tool_calls=[
                ScriptedToolCall("read", {"file_path": f"{FOLDER}/people/owner.md"}),
                ScriptedToolCall("write", {"file_path": f"{FOLDER}/people/owner.md", "content": "Bob."}),
                ScriptedToolCall("bash", {"command": f"echo Bob > {FOLDER}/people/owner.md"}),
            ]),
            Reply(text="Ada."),
        )  # fmt: skip
        read, write, shell = results_of(turn(client, reader.id, "Who owns releases?"))
        assert "Ada owns releases." in read.content[0].text and not read.is_error
        assert write.is_error
        assert "Permission denied" in shell.content[0].text
        assert memories() == written
        assert list(client.beta.memory_stores.memory_versions.list(store.id, session_id=reader.id)) == []
    finally:
        for session_id in sessions:
            client.beta.sessions.delete("sesn_" + session_id.hex)
