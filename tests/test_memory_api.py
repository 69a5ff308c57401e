"""Memory stores through the Python API: a store created and attached by id, a memory one
session writes read by the next, each version attributed to the session that wrote it,
and a ``read_only`` attachment that no tool can write through (on the confined host)."""

from __future__ import annotations

import pytest

from agentjournal.domain.memory import SessionAuthor
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="needs bubblewrap"),
]

TOOLS = [{"type": "agent_toolset_20260401"}]


def test_a_memory_one_session_writes_is_read_by_the_next(make_agent, model_server, tmp_path):
    first = make_agent(tools=TOOLS, working_dir=str(tmp_path / "one"))
    store = first.memory_stores.create("Team notes", "What the team agreed on.")
    attached = first.attach_memory_store(store.id)
    assert attached.resource.mount_path == "/mnt/memory/team-notes"
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall(
            "bash", {"command": "echo 'Release on Fridays.' > /mnt/memory/team-notes/release.md && "
                     "echo 'db: postgres://app:s3cret-pass-77@db/x' > /mnt/memory/team-notes/db.md"}
        )]),
        Reply(text="Noted."),
    )  # fmt: skip
    first.run("Remember: we release on Fridays.")
    kept = first.memory_stores.get(store.id)
    contents = first.memory_stores.contents(kept, (m.version_id for m in kept.memories.values()))
    memories = {m.path: contents[m.version_id] for m in kept.memories.values()}
    assert memories["/release.md"] == "Release on Fridays.\n"
    assert (
        "s3cret-pass-77" not in memories["/db.md"] and "[redacted:" in memories["/db.md"]
    )  # as the log would
    versions = first.memory_stores.get(store.id).versions
    assert len(versions) == 2
    assert all(
        isinstance(v.author, SessionAuthor) and v.author.session_id == str(first.session_id) for v in versions
    )

    second = make_agent(tools=TOOLS, working_dir=str(tmp_path / "two"))
    second.attach_memory_store(store.id, access="read_only")
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall(
            "bash", {"command": "cat /mnt/memory/team-notes/release.md; echo Mondays > /mnt/memory/team-notes/release.md"}
        )]),
        Reply(text="Fridays."),
    )  # fmt: skip
    second.run("When do we release?")
    output = model_server.requests[-1]["messages"][-1]["content"]
    assert "Release on Fridays." in output and "Read-only file system" in output
    assert second.memory_stores.get(store.id).memories == first.memory_stores.get(store.id).memories


def test_a_store_archived_meanwhile_keeps_nothing_and_the_call_says_so(make_agent, model_server, tmp_path):
    agent = make_agent(tools=TOOLS, working_dir=str(tmp_path / "work"))
    store = agent.memory_stores.create("Closing")
    agent.attach_memory_store(store.id)
    agent.memory_stores.archive(store.id)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "echo late > /mnt/memory/closing/late.md"})]),
        Reply(text="Done."),
    )
    assert agent.run("Write it down.") == "Done."
    output = model_server.requests[-1]["messages"][-1]["content"]
    assert "changes not kept" in output and "archived" in output
    assert agent.memory_stores.get(store.id).memories == {}
