"""The ``MemoryStore`` aggregate and what a session records of memory: every change a
version with its author, the rules of paths, a store rebuilt from its events, a fork that
keeps the session's memory stores (shared state) but not its file resources, and (in a
real store) a session's changes applied removals first."""

from __future__ import annotations

import pytest

from agentjournal.domain import Session, SessionConfig
from agentjournal.domain.memory import (
    ApiAuthor,
    MemoryPreconditionFailed,
    MemoryStore,
    MemoryStoreError,
    SessionAuthor,
    content_sha256,
    store_slug,
)
from agentjournal.domain.resources import FileResource, MemoryStoreResource

pytestmark = pytest.mark.timeout(60)


def test_each_change_is_a_version_with_its_author_and_the_store_replays():
    store = MemoryStore.create("Team Notes!", "what we agreed")
    memory = store.create_memory("/a.md", "one", ApiAuthor())
    by_session = SessionAuthor(session_id="s1", event_version=7)
    store.update_memory(memory.id, by_session, path="/b/a.md", content="two")
    with pytest.raises(MemoryPreconditionFailed):
        store.update_memory(memory.id, by_session, content="three", expected_sha256=memory.content_sha256)
    store.update_memory(memory.id, by_session, content="two")  # nothing changes: nothing recorded
    store.delete_memory(memory.id, by_session)
    assert [(v.operation, v.path, v.content_sha256, v.author) for v in store.versions] == [
        ("created", "/a.md", content_sha256("one"), ApiAuthor()),
        ("modified", "/b/a.md", content_sha256("two"), by_session),
        ("deleted", "/b/a.md", None, by_session),
    ]
    assert list(store.unsealed.values()) == ["one", "two"]  # for the application to seal
    events = store.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.versions == store.versions and replayed.memories == {}
    assert store.slug == store_slug("Team Notes!") == "team-notes"


@pytest.mark.parametrize(
    "path", ["a.md", "/", "/a//b", "/a/./b", "/a/../b", "/x\u200b.md", "/" + "a/" * 20 + "b"]
)
def test_paths_a_memory_cannot_have_are_refused(path):
    with pytest.raises(MemoryStoreError):
        MemoryStore.create("s").create_memory(path, "x", ApiAuthor())


def test_a_memory_cannot_be_a_folder_of_another():
    store = MemoryStore.create("s")
    store.create_memory("/a/b.md", "x", ApiAuthor())
    for path in ("/a", "/a/b.md/c"):
        with pytest.raises(MemoryStoreError, match="cannot both be files"):
            store.create_memory(path, "y", ApiAuthor())


def test_a_fork_keeps_the_memory_stores_and_not_the_file_resources():
    session = Session.start(SessionConfig(model="m", system="s", name="n", tools=()))
    store = MemoryStoreResource(
        id="r1", memory_store_id="ab" * 16, name="notes", mount_path="/mnt/memory/notes"
    )
    session.add_resource(store)
    session.add_resource(FileResource(id="r2", file_id="cd" * 16, mount_path="/mnt/x", path="mnt/x"))
    session.record_memory_read(store.memory_store_id, ("v1",))
    session.record_memory_read(store.memory_store_id, ("v1",))  # the same versions: recorded once
    assert sum(isinstance(e, Session.MemoryRead) for e in session.collect_events()) == 1
    fork = session.fork()
    assert [r.resource for r in fork.resources] == [store]


def test_a_session_may_turn_a_folder_of_memories_into_one_memory(service):
    from agentjournal.application.memory_stores import MemoryStores

    stores = MemoryStores(service)
    store = stores.create("s")
    stores.create_memory(store.id, "/a/b.md", "x")
    author = SessionAuthor(session_id="s1", event_version=3)
    written = stores.write_from_session(store.id, author, {"/a/b.md": None, "/a": "now a file"})
    assert [v.operation for v in written] == ["deleted", "created"]
    assert [m.path for m in stores.get(store.id).memories.values()] == ["/a"]


def test_a_redacted_version_loses_its_sealed_content_and_the_store_still_verifies(service):
    from agentjournal.application.audit import verify
    from agentjournal.application.memory_stores import MemoryStores

    stores = MemoryStores(service)
    store = stores.create("s")
    memory = stores.create_memory(store.id, "/a.md", "first draft")
    moved = stores.update_memory(store.id, memory.id, path="/b.md")  # the content sealed again
    assert stores.contents(store.id, [memory.version_id, moved.version_id]) == {
        memory.version_id: "first draft", moved.version_id: "first draft",
    }  # fmt: skip
    with pytest.raises(MemoryStoreError, match="current version"):
        stores.redact_version(store.id, moved.version_id)
    redacted = stores.redact_version(store.id, memory.version_id)
    assert (redacted.path, redacted.content_sha256, redacted.redacted_by) == (None, None, ApiAuthor())
    assert service.memory_contents.get([memory.version_id, moved.version_id]) == {
        moved.version_id: "first draft"
    }
    assert verify(service, store.id).broken is None
    stores.delete(store.id)  # a deleted store's contents go with it
    assert service.memory_contents.get([moved.version_id]) == {}
    assert verify(service, store.id).broken is None


def test_a_version_whose_content_is_in_the_log_cannot_be_redacted():
    store = MemoryStore.create("s")
    store.trigger_event(
        MemoryStore.MemoryWritten, memory_id="m1", version_id="v1", operation="created", path="/a.md",
        content="as stores recorded it before contents were sealed", author=ApiAuthor(),
    )  # fmt: skip
    store.update_memory("m1", ApiAuthor(), content="newer")
    with pytest.raises(MemoryStoreError, match="append-only"):
        store.redact_version("v1", ApiAuthor())
