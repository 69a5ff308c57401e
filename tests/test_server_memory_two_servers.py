"""Two ``agentjournal serve`` processes on one PostgreSQL schema redact the same memory
version at once, while a client of one writes the store's other memory: each answers the
redacted version, the store records one redaction and every write, and the content is
gone from the contents table."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from agentjournal.application.store import open_store
from tests.serving import running_server

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(240),
    pytest.mark.postgres,
    pytest.mark.parametrize("store_env", ["postgres"], indirect=True),
]

SECRET = "token-5c1e-never-shown-again"


def test_two_servers_redact_one_version_at_once(model_server, store_env):
    with (
        running_server(model_server.base_url, store_env=store_env) as first,
        running_server(model_server.base_url, store_env=store_env) as second,
    ):
        stores = first.client().beta.memory_stores
        memstore = stores.create(name="Ops")
        memory = stores.memories.create(memstore.id, path="/keys.md", content=SECRET)
        other = stores.memories.create(memstore.id, path="/other.md", content="0")
        stores.memories.update(memory.id, memory_store_id=memstore.id, content="in the vault")
        leaked = stores.memory_versions.list(memstore.id, memory_id=memory.id).data[-1]
        start = threading.Barrier(5)
        answers: list[Any] = []
        errors: list[BaseException] = []

        def redact(server: Any) -> None:
            try:
                start.wait(timeout=30)
                versions = server.client().beta.memory_stores.memory_versions
                answers.append(versions.redact(leaked.id, memory_store_id=memstore.id))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def write() -> None:
            try:
                start.wait(timeout=30)
                for n in range(1, 6):
                    second.client().beta.memory_stores.memories.update(
                        other.id, memory_store_id=memstore.id, content=str(n)
                    )
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=redact, args=(s,)) for s in (first, second, first, second)]
        threads.append(threading.Thread(target=write))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert len(answers) == 4 and all(a == answers[0] for a in answers)
        assert answers[0].redacted_at is not None and answers[0].path is None

        versions = list(stores.memory_versions.list(memstore.id))
        assert [v.operation for v in versions].count("modified") == 1 + 5
        assert sum(v.redacted_at is not None for v in versions) == 1
        read = stores.memories.retrieve(other.id, memory_store_id=memstore.id)
        assert read.content == "5"

    service = open_store(store_env)
    assert service.memory_contents.get([leaked.id.removeprefix("memver_")]) == {}
    store_id = UUID(memstore.id.removeprefix("memstore_"))
    topics = [r.topic for r in service.recorder.select_events(store_id)]
    service.close()
    assert sum(t.endswith("MemoryVersionRedacted") for t in topics) == 1
