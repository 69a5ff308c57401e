"""Memory stores attached to sessions, through the official SDK against a real
``agentjournal serve`` on the confined host: a store is shown at ``/mnt/memory/<slug>``,
what one session writes there becomes memory versions attributed to it and is read by the
next, a ``read_only`` store refuses writes from outside the model, and each session's log
records the versions it read and wrote."""

from __future__ import annotations

from uuid import UUID

import anthropic
import pytest

from agentjournal.application.store import open_store
from agentjournal.domain import Session
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.test_server_resources import new_agent_session
from tests.test_server_sessions import turn

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(240),
    pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="needs bubblewrap"),
]

FOLDER = "/mnt/memory/user-preferences"


@pytest.fixture
def client(api_server):  # type: ignore[no-untyped-def]
    return api_server.client()


def attached(store_id: str, access: str = "read_write") -> dict[str, object]:
    return {"type": "memory_store", "memory_store_id": store_id, "access": access,
            "instructions": "Keep one file per topic."}  # fmt: skip


def log_of(store_path, session_id: str) -> list[object]:  # type: ignore[no-untyped-def]
    # Held in a name while it is read: a store nothing refers to may be closed mid-read.
    opened = open_store(store_path)
    try:
        return list(opened.events.get(UUID(session_id.removeprefix("sesn_"))))
    finally:
        opened.close()


def test_a_memory_written_in_one_session_is_read_in_the_next_and_attributed(
    api_server, client, model_server, store
):
    memory = client.beta.memory_stores.create(name="User Preferences", description="How the user works.")
    client.beta.memory_stores.memories.create(memory.id, path="/style.md", content="Four spaces.")
    first = new_agent_session(client, resources=[attached(memory.id)])
    [resource] = first.resources
    assert (resource.type, resource.mount_path, resource.access) == ("memory_store", FOLDER, "read_write")

    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("read", {"file_path": f"{FOLDER}/style.md"}),
            ScriptedToolCall("write", {"file_path": f"{FOLDER}/editor/choice.md", "content": "Helix."}),
            ScriptedToolCall("bash", {"command": f"rm {FOLDER}/style.md && ls {FOLDER}"}),
        ]),
        Reply(text="Noted."),
    )  # fmt: skip
    events = turn(client, first.id, "Remember that I use Helix.")
    results = [e for e in events if e.type == "agent.tool_result"]
    assert "Four spaces." in results[0].content[0].text and not any(r.is_error for r in results)
    system = model_server.requests[0]["messages"][0]["content"]
    assert FOLDER in system and "How the user works." in system and "Keep one file per topic." in system

    memories = {m.path: m for m in client.beta.memory_stores.memories.list(memory.id, view="full")}
    assert {p: m.content for p, m in memories.items()} == {"/editor/choice.md": "Helix."}
    written = list(client.beta.memory_stores.memory_versions.list(memory.id, session_id=first.id))
    assert sorted(v.operation for v in written) == ["created", "deleted"]
    assert all(v.created_by.type == "session_actor" and v.created_by.session_id == first.id for v in written)

    log = log_of(store, first.id)
    writes = [e for e in log if isinstance(e, Session.MemoryWritten)]
    assert sorted(v for e in writes for v in e.versions) == sorted(
        v.id.removeprefix("memver_") for v in written
    )
    reads = [e for e in log if isinstance(e, Session.MemoryRead)]
    assert reads and reads[0].memory_store_id == memory.id.removeprefix("memstore_")

    second = new_agent_session(client, resources=[attached(memory.id, "read_only")])
    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("read", {"file_path": f"{FOLDER}/editor/choice.md"}),
            ScriptedToolCall("write", {"file_path": f"{FOLDER}/editor/choice.md", "content": "Vim."}),
            ScriptedToolCall("bash", {"command": f"echo Emacs > {FOLDER}/editor/choice.md"}),
        ]),
        Reply(text="You use Helix."),
    )  # fmt: skip
    events = turn(client, second.id, "Which editor do I use?")
    read, write, shell = [e for e in events if e.type == "agent.tool_result"]
    assert "Helix." in read.content[0].text and not read.is_error
    assert write.is_error
    assert "Read-only file system" in shell.content[0].text
    memories = {m.path: m.content for m in client.beta.memory_stores.memories.list(memory.id, view="full")}
    assert memories == {"/editor/choice.md": "Helix."}
    assert list(client.beta.memory_stores.memory_versions.list(memory.id, session_id=second.id)) == []


def test_memory_stores_that_cannot_be_attached_are_refused(api_server, client):
    with pytest.raises(anthropic.NotFoundError):
        new_agent_session(client, resources=[attached("memstore_" + "0" * 32)])
    memory = client.beta.memory_stores.create(name="m")
    with pytest.raises(anthropic.BadRequestError, match="access"):
        new_agent_session(client, resources=[attached(memory.id, "write_only")])
    client.beta.memory_stores.archive(memory.id)
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        new_agent_session(client, resources=[attached(memory.id)])
