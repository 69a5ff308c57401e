"""A memory store's bound: the rule a change is judged by (what it leaves, and whether it
grew), the settings that give it, and the bytes a process remembers of the folders it
filled. Through a real SQLite store; end to end through ``serve`` in
tests/test_server_memory_quota.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from uuid import UUID

import pytest

from agentjournal.application import memory_mounts
from agentjournal.application.api import ManagedAgent
from agentjournal.application.errors import ConfigError
from agentjournal.application.memory_mounts import SessionMemory
from agentjournal.application.memory_stores import (
    MEMORIES_SETTING,
    STORE_BYTES_SETTING,
    MemoryStores,
    memory_quota,
)
from agentjournal.application.service import SessionService
from agentjournal.application.store import open_store
from agentjournal.domain import Session
from agentjournal.domain.memory import MAX_MEMORIES, MAX_STORE_BYTES, MemoryQuota, MemoryQuotaExceeded
from agentjournal.infrastructure.compute import bubblewrap

pytestmark = pytest.mark.timeout(120)


def test_a_change_is_refused_when_it_leaves_the_store_past_a_bound_it_grew_towards() -> None:
    quota = MemoryQuota(memories=2, total_bytes=100)
    quota.check((2, 100), (2, 100))  # at the bound
    with pytest.raises(MemoryQuotaExceeded, match="at most 2 memories; this change would leave 3"):
        quota.check((2, 10), (3, 20))
    with pytest.raises(MemoryQuotaExceeded, match="at most 100 bytes together; this change would leave 101"):
        quota.check((1, 100), (1, 101))
    quota.check((5, 500), (4, 400))  # past a bound lowered since, shrinking: allowed
    with pytest.raises(MemoryQuotaExceeded):
        quota.check((5, 500), (5, 501))


def test_the_bound_comes_from_the_settings_and_a_bad_one_is_refused() -> None:
    assert memory_quota({}) == MemoryQuota(MAX_MEMORIES, MAX_STORE_BYTES) == MemoryQuota(2_000, 20 * 1024**2)
    assert memory_quota({MEMORIES_SETTING: "10", STORE_BYTES_SETTING: "4096"}) == MemoryQuota(10, 4096)
    for bad in ("0", "-1", "1e3", "many"):
        with pytest.raises(ConfigError, match=MEMORIES_SETTING):
            memory_quota({MEMORIES_SETTING: bad})


def test_a_write_past_the_bound_keeps_nothing_of_it(open_service) -> None:  # type: ignore[no-untyped-def]
    service: SessionService = open_service(**{MEMORIES_SETTING: "2", STORE_BYTES_SETTING: "10"})
    stores = MemoryStores(service)
    store = stores.create("notes")
    stores.create_memory(store.id, "/a.md", "12345")
    with pytest.raises(MemoryQuotaExceeded):
        stores.create_memory(store.id, "/b.md", "123456")
    assert stores.get(store.id).usage == (1, 5) and len(stores.get(store.id).versions) == 1


def test_what_a_process_remembers_of_the_folders_it_filled_is_bounded_in_bytes(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The most recently shown folders are remembered up to ``MAX_SHOWN_BYTES``; the one
    just shown is kept even past it, as its call's changes are read against it. A call
    whose folder was let go meanwhile keeps nothing, and its result says so."""
    if bubblewrap.unavailable() is not None:
        pytest.skip("needs bubblewrap")
    from agentjournal.infrastructure.compute.confined import ConfinedHostCompute

    monkeypatch.setattr(memory_mounts, "MAX_SHOWN_BYTES", 25_000)
    service = open_store(store)
    memory = SessionMemory(service)
    shown: list[tuple[UUID, str]] = []
    first: tuple[Session, ConfinedHostCompute] | None = None
    for n, size in enumerate((10_000, 10_000, 30_000)):
        agent = ManagedAgent(config={"model": "gpt-4o-mini"}, compute="host", store=service)
        memstore = memory.stores.create(f"store {n}")
        memory.stores.create_memory(memstore.id, "/notes.md", "x" * size)
        agent.attach_memory_store(memstore.id)
        session = service.get_session(UUID(agent.session_id))
        compute = ConfinedHostCompute(tmp_path / f"work{n}", base=tmp_path / f"data{n}")
        compute.attach(uuid.uuid4(), None)
        memory.show(session, compute)
        shown.append((session.id, memstore.id.hex))
        first = first or (session, compute)
        if n == 1:
            assert list(memory._shown) == shown and memory._shown_bytes == 20_000
    assert list(memory._shown) == shown[2:] and memory._shown_bytes == 30_000
    assert first is not None  # its folder let go: a call's changes there cannot be told, and it says so
    (note,) = memory.collect(*first, "call", first[0].version)
    assert "changes not kept" in note and "showed too many stores" in note
