"""A memory store's bound (its live memories, and their bytes together), through the
official SDK against a real ``agentjournal serve`` told a small bound: the API refuses a
write past it with a 400 in the API's error shape, and a session whose command leaves the
store's folder past it keeps nothing of that call, its result saying why, and the store
stays usable (on the confined host and in Docker, the scripted model driving the tools
over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import anthropic
import pytest

from agentjournal.application.memory_stores import MEMORIES_SETTING, STORE_BYTES_SETTING
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.compute.docker_sandbox import sandboxes
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.serving import RunningServer, running_server
from tests.test_server_resources import new_agent_session
from tests.test_server_sessions import turn

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(240)]

MEMORIES, STORE_BYTES = 3, 4096
FOLDER = "/mnt/memory/notes"


@pytest.fixture
def bounded_server(model_server, store) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    bound = {MEMORIES_SETTING: str(MEMORIES), STORE_BYTES_SETTING: str(STORE_BYTES)}
    with running_server(model_server.base_url, store, store_env=bound) as server:
        yield server


def contents(client: Any, store_id: str) -> dict[str, str]:
    return {m.path: m.content for m in client.beta.memory_stores.memories.list(store_id, view="full")}


def test_an_api_write_past_the_bound_is_a_400_and_keeps_nothing(bounded_server):
    client = bounded_server.client()
    memories = client.beta.memory_stores.memories
    store = client.beta.memory_stores.create(name="notes")
    first = memories.create(store.id, path="/a.md", content="a" * 2000)
    memories.create(store.id, path="/b.md", content="b" * 2000)
    with pytest.raises(anthropic.BadRequestError) as refused:
        memories.create(store.id, path="/c.md", content="c" * 97)  # 4,097 bytes together
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "at most 4,096 bytes together" in refused.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError, match="4,096 bytes"):
        memories.update(first.id, memory_store_id=store.id, content="a" * 2097)
    memories.create(store.id, path="/c.md", content="c" * 96)  # exactly the bound
    with pytest.raises(anthropic.BadRequestError, match="at most 3 memories"):
        memories.create(store.id, path="/d.md", content="")
    assert contents(client, store.id) == {"/a.md": "a" * 2000, "/b.md": "b" * 2000, "/c.md": "c" * 96}

    memories.update(first.id, memory_store_id=store.id, content="shorter")  # shrinking is always allowed
    memories.delete(first.id, memory_store_id=store.id)
    memories.create(store.id, path="/d.md", content="d")
    assert sorted(contents(client, store.id)) == ["/b.md", "/c.md", "/d.md"]


def past_the_bound(client: Any, model_server: Any, store_id: str, session_id: str) -> None:
    """A turn whose calls leave the store's folder past each bound, then within it: the
    calls past it keep nothing and say why, the folder is the store again for the next
    call, and what is within the bound is kept."""
    model_server.enqueue(
        Reply(tool_calls=[
            ScriptedToolCall("bash", {"command": f"cd {FOLDER} && for n in 1 2 3; do echo $n > n$n.md; done"}),
            ScriptedToolCall("bash", {"command": f"head -c 5000 /dev/zero | tr '\\0' x > {FOLDER}/big.md"}),
            ScriptedToolCall("write", {"file_path": f"{FOLDER}/small.md", "content": "within the bound"}),
            ScriptedToolCall("bash", {"command": f"ls {FOLDER}"}),
        ]),
        Reply(text="Done."),
    )  # fmt: skip
    events = turn(client, session_id, "Take notes.")
    too_many, too_large, small, listing = [e.content[0].text for e in events if e.type == "agent.tool_result"]
    assert "changes not kept" in too_many and "more than 3 files" in too_many
    assert "changes not kept" in too_large and "more than 4,096 bytes" in too_large
    assert "changes not kept" not in small
    assert listing.split() == ["kept.md", "small.md"]  # each refused call's files gone from the folder

    assert contents(client, store_id) == {"/kept.md": "from the API", "/small.md": "within the bound"}
    written = list(client.beta.memory_stores.memory_versions.list(store_id, session_id=session_id))
    assert [v.operation for v in written] == ["created"]
    assert events[-1].type == "session.status_idle"


def new_store(client: Any) -> tuple[str, dict[str, str]]:
    """A store named Notes (so at ``FOLDER``) holding one memory, and its attachment."""
    store = client.beta.memory_stores.create(name="Notes")
    client.beta.memory_stores.memories.create(store.id, path="/kept.md", content="from the API")
    return store.id, {"type": "memory_store", "memory_store_id": store.id, "access": "read_write"}


@pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="needs bubblewrap")
def test_a_tool_call_that_leaves_the_folder_past_the_bound_keeps_nothing(bounded_server, model_server):
    client = bounded_server.client()
    store_id, attached = new_store(client)
    session = new_agent_session(client, resources=[attached])
    past_the_bound(client, model_server, store_id, session.id)


@pytest.mark.docker
def test_in_docker_a_tool_call_past_the_bound_keeps_nothing(bounded_server, model_server, engine, sessions):
    client = bounded_server.client()
    store_id, attached = new_store(client)
    agent = client.beta.agents.create(name="keeper", model="gpt-4o-mini",
                                      tools=[{"type": "agent_toolset_20260401"}])  # fmt: skip
    # pip is in the sandbox's virtual environment already: packages (so Docker), nothing fetched.
    environment = client.beta.environments.create(
        name="sandboxed", config={"type": "cloud", "packages": {"pip": ["pip"]}}
    )
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id, resources=[attached])
    sessions.append(UUID(session.id.removeprefix("sesn_")))
    try:
        past_the_bound(client, model_server, store_id, session.id)
        assert sandboxes(engine, sessions[0])  # the calls ran in Docker
    finally:
        client.beta.sessions.delete(session.id)
