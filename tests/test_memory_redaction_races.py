"""A memory's version redacted between a store's load and the read of its content.

A version is current when a reader loads the store; another process (a second service
on the same SQLite file) then writes the memory again and redacts that version before
the reader asks for its content. The reader must answer the store as it is now: the
API's retrieve, a move of the memory, and the folder a session's tools are shown."""

from __future__ import annotations

import uuid
from pathlib import Path
from uuid import UUID

import pytest

from agentjournal.application.api import ManagedAgent
from agentjournal.application.memory_mounts import SessionMemory
from agentjournal.application.memory_stores import MemoryStores
from agentjournal.application.service import SessionService
from agentjournal.application.store import open_store
from agentjournal.domain.memory import MemoryQuota, MemoryStore
from agentjournal.infrastructure.compute import bubblewrap

pytestmark = pytest.mark.timeout(120)

SECRET = "token-5c1e-never-shown-again"


class RedactedMeanwhile(MemoryStores):
    """Memory stores that, right after their first load of a store, let ``other`` (another
    service on the same database) write ``memory_id`` again and redact the version this
    load holds as current: the interleaving a race would give, made certain."""

    def __init__(self, service: SessionService, other: MemoryStores, memory_id: str) -> None:
        super().__init__(service)
        self.other = other
        self.memory_id = memory_id
        self.raced = False

    def get(self, store_id: UUID) -> MemoryStore:
        store = super().get(store_id)
        if not self.raced:
            self.raced = True
            loaded = store.memory(self.memory_id).version_id
            self.other.update_memory(store_id, self.memory_id, content="in the vault")
            self.other.redact_version(store_id, loaded)
        return store


@pytest.fixture
def secret_memory(store: Path) -> tuple[MemoryStore, str, MemoryStores]:
    """A store whose memory holds ``SECRET``, and a second service's memory stores."""
    other = MemoryStores(open_store(store))
    memstore = other.create("Ops")
    memory = other.create_memory(memstore.id, "/keys.md", SECRET)
    return memstore, memory.id, other


def test_a_retrieve_answers_the_memory_as_it_is_once_its_version_was_redacted(store, secret_memory):
    memstore, memory_id, other = secret_memory
    stores = RedactedMeanwhile(open_store(store), other, memory_id)
    memory, content = stores.content(stores.get(memstore.id), memory_id)
    assert (
        content == "in the vault" and memory.version_id == other.get(memstore.id).memory(memory_id).version_id
    )


def test_a_move_is_made_on_the_store_as_it_is_once_its_version_was_redacted(store, secret_memory):
    memstore, memory_id, other = secret_memory
    stores = RedactedMeanwhile(open_store(store), other, memory_id)
    moved = stores.update_memory(memstore.id, memory_id, path="/vault.md")
    assert moved.path == "/vault.md"
    assert stores.content(stores.get(memstore.id), memory_id)[1] == "in the vault"
    assert [v.operation for v in other.get(memstore.id).versions] == ["created", "modified", "modified"]


def test_a_session_is_shown_the_store_as_it_is_once_a_version_was_redacted(store, tmp_path, secret_memory):
    if bubblewrap.unavailable() is not None:
        pytest.skip("needs bubblewrap")
    from agentjournal.infrastructure.compute.confined import ConfinedHostCompute

    memstore, memory_id, other = secret_memory
    service = open_store(store)
    agent = ManagedAgent(config={"model": "gpt-4o-mini"}, compute="host", store=service)
    agent.attach_memory_store(memstore.id)
    session = service.get_session(UUID(agent.session_id))
    compute = ConfinedHostCompute(tmp_path / "work", base=tmp_path / "data")
    compute.attach(uuid.uuid4(), None)

    SessionMemory(service, RedactedMeanwhile(service, other, memory_id)).show(session, compute)
    assert compute.memory_files("ops", 1_000_000, MemoryQuota()) == {"keys.md": b"in the vault"}
    current = other.get(memstore.id).memory(memory_id).version_id
    assert dict(session.memory_read)[memstore.id.hex] == (current,)  # what was shown, not what was loaded
