"""Memory stores through the official SDK against a real ``agentjournal serve``: stores,
memories with paths, every change a memory version with its author, and the store's log
verified by the hash chain like a session's."""

from __future__ import annotations

import hashlib
from uuid import UUID

import anthropic
import pytest

from agentjournal.application.audit import verify
from agentjournal.application.store import open_store

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]


def test_a_store_and_its_memories_round_trip_with_versions(api_server, store):
    client = api_server.client()
    stores = client.beta.memory_stores
    memstore = stores.create(
        name="User Preferences", description="What the user likes.", metadata={"team": "a"}
    )
    assert (
        memstore.id.startswith("memstore_")
        and memstore.type == "memory_store"
        and memstore.archived_at is None
    )
    assert stores.retrieve(memstore.id).description == "What the user likes."
    assert [s.id for s in stores.list()] == [memstore.id]

    note = stores.memories.create(memstore.id, path="/projects/foo/notes.md", content="Tabs, not spaces.")
    assert note.id.startswith("mem_") and note.content is None  # basic view by default on create
    assert note.content_sha256 == hashlib.sha256(b"Tabs, not spaces.").hexdigest()
    stores.memories.create(memstore.id, path="/top.md", content="")
    full = stores.memories.retrieve(note.id, memory_store_id=memstore.id)
    assert full.content == "Tabs, not spaces." and full.memory_version_id.startswith("memver_")

    listed = list(stores.memories.list(memstore.id, depth=1))
    assert [(m.type, m.path) for m in listed] == [("memory_prefix", "/projects/"), ("memory", "/top.md")]
    assert [m.path for m in stores.memories.list(memstore.id, path_prefix="/projects/foo/")] == [
        "/projects/foo/notes.md"
    ]

    moved = stores.memories.update(
        note.id, memory_store_id=memstore.id, path="/style.md", content="Four spaces.",
        precondition={"type": "content_sha256", "content_sha256": full.content_sha256},
    )  # fmt: skip
    assert moved.id == note.id and moved.path == "/style.md"
    with pytest.raises(anthropic.ConflictError):
        stores.memories.update(
            note.id, memory_store_id=memstore.id, content="Stale.",
            precondition={"type": "content_sha256", "content_sha256": full.content_sha256},
        )  # fmt: skip
    with pytest.raises(anthropic.BadRequestError, match="already holds a memory"):
        stores.memories.create(memstore.id, path="/style.md", content="again")
    stores.memories.delete(note.id, memory_store_id=memstore.id)
    with pytest.raises(anthropic.NotFoundError):
        stores.memories.retrieve(note.id, memory_store_id=memstore.id)

    versions = list(stores.memory_versions.list(memstore.id, memory_id=note.id))
    assert [v.operation for v in versions] == ["deleted", "modified", "created"]
    assert versions[1].content is None and versions[1].path == "/style.md"
    assert all(v.created_by is not None and v.created_by.type == "api_actor" for v in versions)
    first = stores.memory_versions.retrieve(versions[2].id, memory_store_id=memstore.id)
    assert first.content == "Tabs, not spaces." and first.path == "/projects/foo/notes.md"
    page = stores.memory_versions.list(memstore.id, limit=2)
    assert len(page.data) == 2 and len(list(page)) == 4  # the cursor leads to the rest

    verified = verify(open_store(store), UUID(memstore.id.removeprefix("memstore_")))
    assert verified.broken is None and verified.events == 1 + 2 + 2  # created, two memories, two changes

    assert stores.update(memstore.id, name="Prefs").name == "Prefs"
    archived = stores.archive(memstore.id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        stores.memories.create(memstore.id, path="/late.md", content="no")
    assert list(stores.list()) == [] and [s.id for s in stores.list(include_archived=True)] == [memstore.id]
    assert stores.delete(memstore.id).type == "memory_store_deleted"
    with pytest.raises(anthropic.NotFoundError):
        stores.retrieve(memstore.id)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [("notes.md", "start with '/'"), ("/a//b.md", "segments"), ("/a/../b.md", "segments"),
     ("/bad\x07.md", "control"), ("/" + "x" * 1100, "1,024 bytes")],
)  # fmt: skip
def test_bad_memory_paths_and_contents_are_refused_clearly(api_server, path, wanted):
    stores = api_server.client().beta.memory_stores
    store = stores.create(name="s")
    with pytest.raises(anthropic.BadRequestError) as refused:
        stores.memories.create(store.id, path=path, content="x")
    assert wanted in refused.value.message
    with pytest.raises(anthropic.BadRequestError, match="102,400 bytes"):
        stores.memories.create(store.id, path="/big.md", content="x" * 102_401)
    assert list(stores.memory_versions.list(store.id)) == []
