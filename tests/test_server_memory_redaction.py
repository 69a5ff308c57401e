"""Redacting memory versions, through the official SDK against a real ``agentjournal
serve``: a redacted version keeps its place, author and time and loses its content and
path, the content is gone from the store's database files (the log never held it), the
store's chain still verifies, and ``verify`` finds a sealed content that was altered."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID

import anthropic
import pytest

from agentjournal.application.audit import verify
from agentjournal.application.store import open_store

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]

SECRET = "db-password: 7f3a-unguessable-91c2"


def database_bytes(store: Path) -> bytes:
    """Everything SQLite keeps of the store on disk: the file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in (store, Path(f"{store}-wal")) if p.exists())


def test_a_redacted_version_is_gone_from_the_api_and_the_files_and_the_chain_verifies(api_server, store):
    versions = api_server.client().beta.memory_stores.memory_versions
    stores = api_server.client().beta.memory_stores
    memstore = stores.create(name="Ops")
    memory = stores.memories.create(memstore.id, path="/db.md", content=SECRET)
    stores.memories.update(memory.id, memory_store_id=memstore.id, content="ask the vault")
    current, leaked = versions.list(memstore.id, memory_id=memory.id)
    assert SECRET.encode() in database_bytes(store)  # sealed in the store until redacted

    with pytest.raises(anthropic.BadRequestError, match="current version"):
        versions.redact(current.id, memory_store_id=memstore.id)
    redacted = versions.redact(leaked.id, memory_store_id=memstore.id)
    assert redacted.id == leaked.id and redacted.operation == "created"
    assert redacted.redacted_at is not None and redacted.redacted_by is not None
    assert redacted.redacted_by.type == "api_actor" and redacted.created_by == leaked.created_by
    assert (redacted.content, redacted.path, redacted.content_sha256, redacted.content_size_bytes) == (
        None, None, None, None,
    )  # fmt: skip
    assert versions.retrieve(leaked.id, memory_store_id=memstore.id) == redacted
    assert versions.redact(leaked.id, memory_store_id=memstore.id) == redacted  # again: the same
    listed = list(versions.list(memstore.id, view="full"))
    assert [v.id for v in listed] == [current.id, leaked.id] and listed[1] == redacted
    assert listed[0].content == "ask the vault"
    assert stores.memories.retrieve(memory.id, memory_store_id=memstore.id).content == "ask the vault"

    assert SECRET.encode() not in database_bytes(store)
    store_id = UUID(memstore.id.removeprefix("memstore_"))
    verified = verify(open_store(store), store_id)
    assert verified.broken is None and verified.events == 1 + 3  # created, two versions, the redaction

    # A sealed content changed behind the store's back no longer matches its event's digest.
    with sqlite3.connect(store) as db:
        db.execute("UPDATE memory_contents_v1 SET body = ? WHERE version_id = ?",
                   (b"ask anyone", current.id.removeprefix("memver_")))  # fmt: skip
    broken = verify(open_store(store), store_id).broken
    assert broken is not None and broken.version == 3 and "altered" in broken.problem


def test_redacting_what_is_not_there_is_an_error_of_the_api(api_server):
    stores = api_server.client().beta.memory_stores
    memstore = stores.create(name="Ops")
    with pytest.raises(anthropic.NotFoundError) as missing:
        stores.memory_versions.redact("memver_" + "0" * 32, memory_store_id=memstore.id)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        stores.memory_versions.redact("memver_" + "0" * 32, memory_store_id="memstore_" + "0" * 32)
    memory = stores.memories.create(memstore.id, path="/a.md", content="x")
    stores.memories.delete(memory.id, memory_store_id=memstore.id)
    deleted, created = stores.memory_versions.list(memstore.id)
    # A deleted memory has no current version: each of its versions may be redacted.
    assert stores.memory_versions.redact(deleted.id, memory_store_id=memstore.id).path is None
    assert stores.memory_versions.redact(created.id, memory_store_id=memstore.id).redacted_at is not None
