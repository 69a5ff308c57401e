"""Session snapshots as chunks: each holds what changed since the one it continues, so a
long session's snapshots hold each message once, and a load joins them. Every test runs
on a real SQLite store; the interval is small so that chunks are many."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from eventsourcing.cipher import AESCipher

from agentjournal import SessionService
from agentjournal.application import audit
from agentjournal.application.service import project_session
from agentjournal.domain import (
    AssistantMessage,
    FileState,
    Session,
    SessionConfig,
    ToolCall,
    ToolResult,
    Usage,
)

CONFIG = SessionConfig(model="m", system="s", name="chunks", tools=())
LEGACY = Path(__file__).parent / "fixtures" / "sessionlog-0.1"


class ChunkingService(SessionService):
    """The real service, with a chunk each time the log passes a multiple of 10 events."""

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Session: 10}


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "chunks.db")}


@pytest.fixture
def service(store: dict[str, str]) -> Iterator[ChunkingService]:
    app = ChunkingService(store)
    yield app
    app.close()


def turn(session: Session, n: int, files: dict[str, FileState] | None = None) -> None:
    """One turn with a tool call: seven or eight events."""
    session.begin_turn(f"prompt {n}", "w")
    call = ToolCall(f"c{n}", "read_file", '{"path": "a"}')
    session.add_assistant_message(AssistantMessage("reading", (call,)))
    session.start_tool_call(call)
    session.record_tool_result(ToolResult(call.id, call.name, f"contents {n}", 0))
    if files is not None:
        session.record_workspace(files, call.id)
    session.add_assistant_message(AssistantMessage(f"answer {n}"))
    session.record_usage("m", Usage(5, 2))
    session.complete_turn()


def grow(service: SessionService, turns: int, files_every: int = 0) -> Session:
    session = Session.start(CONFIG)
    service.save(session)
    for n in range(turns):
        manifest = (
            {f"f{n}.txt": FileState(f"{n:064x}", n, 0o644, stored=False)}
            if files_every and n % files_every == 0
            else None
        )
        turn(session, n, manifest)
        service.save(session)
    return session


def raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(msgspec.msgpack.encode(value))


def store_chunk(store: dict[str, str], version: int, state: bytes) -> None:
    """Replace the stored bytes of the session's chunk at ``version``, as a tamperer would."""
    with sqlite3.connect(store["SQLITE_DBNAME"]) as db:
        db.execute("UPDATE stored_snapshots SET state = ? WHERE originator_version = ?", (state, version))


def replayed(service: SessionService, session: Session, version: int) -> Session:
    folded = project_session(None, list(service.events.get(session.id, lte=version)))
    assert folded is not None
    return folded


def test_a_load_at_any_version_is_the_fold_of_the_events(service: ChunkingService) -> None:
    session = grow(service, 12, files_every=5)
    for version in range(1, session.version + 1):
        assert vars(service.get_session(session.id, version)) == vars(replayed(service, session, version))
    assert audit.verify(service, session.id).ok


def test_the_chunks_hold_each_message_once(service: ChunkingService) -> None:
    session = grow(service, 30)
    chunks = list(service.session_snapshots.chunks(session.id))
    assert len(chunks) >= session.version // 10 - 1
    assert chunks[0].chunk.after == 0
    assert [c.chunk.after for c in chunks[1:]] == [c.version for c in chunks[:-1]]
    stored = [m for c in chunks for m in service.session_snapshots.messages(c.chunk)]
    assert stored == session.messages[: chunks[-1].chunk.message_count]


def test_a_manifest_is_kept_only_by_the_chunks_after_it_changed(service: ChunkingService) -> None:
    session = grow(service, 30, files_every=10)
    chunks = list(service.session_snapshots.chunks(session.id))
    with_files = [c for c in chunks if service.session_snapshots.files(c.chunk) is not None]
    assert 0 < len(with_files) < len(chunks)
    changes = [
        e.originator_version
        for e in service.events.get(session.id)
        if isinstance(e, Session.WorkspaceChanged)
    ]
    for before, chunk in zip(chunks, chunks[1:]):
        changed = any(before.version < v <= chunk.version for v in changes)
        assert (service.session_snapshots.files(chunk.chunk) is not None) == changed


def test_two_chunks_continuing_one_chunk_both_load(service: ChunkingService) -> None:
    """Two processes taking chunks of one session at once make a branch, not a break."""
    session = grow(service, 6)
    chunks = list(service.session_snapshots.chunks(session.id))
    between = chunks[-2].version + 3
    service.take_snapshot(session.id, between)
    branch = [c for c in service.session_snapshots.chunks(session.id) if c.version == between]
    assert branch and branch[0].chunk.after == chunks[-2].version
    for version in (between, between + 1, session.version):
        assert vars(service.get_session(session.id, version)) == vars(replayed(service, session, version))
    assert audit.verify(service, session.id).ok


def test_a_chain_with_a_chunk_gone_loads_from_the_events(
    service: ChunkingService, store: dict[str, str]
) -> None:
    session = grow(service, 8)
    chunks = list(service.session_snapshots.chunks(session.id))
    with sqlite3.connect(store["SQLITE_DBNAME"]) as db:
        db.execute("DELETE FROM stored_snapshots WHERE originator_version = ?", (chunks[1].version,))
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))


@pytest.mark.parametrize(
    ("alter", "problem"),
    [
        (lambda c: msgspec.structs.replace(c, messages=raw([])), "messages differ"),
        (lambda c: msgspec.structs.replace(c, after=c.after - 1), "does not continue"),
        (lambda c: msgspec.structs.replace(c, files=raw({"x": FileState("0" * 64, 1, 0, stored=False)})),
         "files differ"),
    ],
)  # fmt: skip
def test_an_altered_chunk_is_found_by_verify(
    service: ChunkingService, store: dict[str, str], alter: Any, problem: str
) -> None:
    session = grow(service, 6)
    target = list(service.session_snapshots.chunks(session.id))[2]
    store_chunk(store, target.version, msgspec.msgpack.encode(alter(target.chunk)))
    result = audit.verify(service, session.id)
    assert result.broken is not None and result.broken.version == target.version
    assert problem in result.broken.problem


def test_chunks_are_encrypted_with_the_store(store: dict[str, str]) -> None:
    service = ChunkingService({**store, "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher",
                               "CIPHER_KEY": AESCipher.create_key(32)})  # fmt: skip
    session = grow(service, 3)
    assert list(service.session_snapshots.chunks(session.id))
    with sqlite3.connect(store["SQLITE_DBNAME"]) as db:
        rows = [state for (state,) in db.execute("SELECT state FROM stored_snapshots")]
    assert rows and not any(b"prompt" in row or b"answer" in row for row in rows)
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))
    service.close()


def test_an_old_store_with_whole_snapshots_goes_on_in_chunks(tmp_path: Path) -> None:
    """A store written before chunks holds eventsourcing's whole snapshots: the next chunk
    after one starts a chain, and every version still loads as the fold of its events."""
    shutil.copyfile(LEGACY / "sessions.db", tmp_path / "sessions.db")
    service = ChunkingService({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                               "SQLITE_DBNAME": str(tmp_path / "sessions.db")})  # fmt: skip
    (session_id,) = {s.id for s in service.list_summaries() if s.parent_id is None}
    session = service.get_session(session_id)
    old_kind = [s for s in service.session_snapshots.chunks(session_id) if not hasattr(s, "chunk")]
    assert old_kind, "the fixture should hold whole snapshots"
    for n in range(3):
        turn(session, 100 + n)
        service.save(session)
    new_kind = [s for s in service.session_snapshots.chunks(session_id) if hasattr(s, "chunk")]
    assert new_kind and new_kind[0].chunk.after == 0
    for version in range(1, session.version + 1):
        assert service.get_session(session_id, version).state() == replayed(service, session, version).state()
    assert audit.verify(service, session_id).ok
    service.close()


def test_a_snapshot_the_store_refuses_fails_no_step(
    service: ChunkingService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The events are saved before the chunk is written: a store that refuses the chunk
    (here, a lock held too long) leaves the step recorded, and the next chunk is taken."""
    from eventsourcing.persistence import OperationalError

    session = Session.start(CONFIG)
    service.save(session)
    recorder = service.session_snapshots.recorder
    insert = recorder.insert_events

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(recorder, "insert_events", locked)
    turn(session, 1)
    turn(session, 2)
    service.save(session)  # passes a multiple of the interval
    assert "no snapshot of session" in caplog.text
    assert list(service.session_snapshots.chunks(session.id)) == []
    assert service.get_session(session.id).version == session.version
    monkeypatch.setattr(recorder, "insert_events", insert)
    turn(session, 3)
    service.save(session)
    assert [c.chunk.after for c in service.session_snapshots.chunks(session.id)] == [0]
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))


def test_a_chunk_that_continues_itself_is_found_and_never_followed(
    service: ChunkingService, store: dict[str, str]
) -> None:
    session = grow(service, 6)
    target = list(service.session_snapshots.chunks(session.id))[2]
    looped = msgspec.structs.replace(
        target.chunk, after=target.version, messages_from=target.chunk.message_count, messages=raw([])
    )
    store_chunk(store, target.version, msgspec.msgpack.encode(looped))
    result = audit.verify(service, session.id)
    assert result.broken is not None and result.broken.version == target.version
    assert "does not continue" in result.broken.problem
    service.take_snapshot(session.id)  # a chunk continuing the looped one
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))


def test_a_chunk_whose_state_names_the_files_is_found_and_its_files_not_loaded(
    service: ChunkingService, store: dict[str, str]
) -> None:
    session = grow(service, 6)
    target = list(service.session_snapshots.chunks(session.id))[-1]
    rest = service.mapper.transcoder.decode(target.chunk.rest)
    rest["files"] = {"planted.txt": FileState("0" * 64, 1, 0o644, stored=False)}
    planted = msgspec.structs.replace(target.chunk, rest=service.mapper.transcoder.encode(rest))
    store_chunk(store, target.version, msgspec.msgpack.encode(planted))
    result = audit.verify(service, session.id)
    assert result.broken is not None and "holds what it must not" in result.broken.problem
    assert dict(service.get_session(session.id, target.version).files) == {}


def test_a_damaged_chunk_is_reported_by_verify_and_loads_from_the_events(
    service: ChunkingService, store: dict[str, str]
) -> None:
    session = grow(service, 6)
    target = list(service.session_snapshots.chunks(session.id))[-1]
    store_chunk(store, target.version, b"\x00 not a chunk")
    result = audit.verify(service, session.id)
    assert result.broken is not None and result.broken.version == target.version
    assert "cannot be read" in result.broken.problem
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))


ZLIB = {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}


def aes() -> dict[str, str]:
    return {"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": AESCipher.create_key(32)}


@pytest.mark.parametrize("layers", [lambda: ZLIB, aes, lambda: {**ZLIB, **aes()}],
                         ids=["compressor", "cipher", "cipher-and-compressor"])  # fmt: skip
def test_a_damaged_chunk_loads_from_the_events_whichever_layer_refuses_it(
    store: dict[str, str], layers: Any
) -> None:
    """The compressor's error (``zlib.error``) or the cipher's: the session loads from its
    events, ``verify`` names the chunk, and the next chunk starts a chain of its own."""
    service = ChunkingService({**store, **layers()})
    session = grow(service, 6)
    target = list(service.session_snapshots.chunks(session.id))[-1]
    store_chunk(store, target.version, b"\x00 not a chunk")
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))
    result = audit.verify(service, session.id)
    assert result.broken is not None and result.broken.version == target.version
    assert "cannot be read" in result.broken.problem
    for n in range(3):
        turn(session, 100 + n)
        service.save(session)
    after = [c for c in service.session_snapshots.recorder.select_events(session.id)
             if c.originator_version > target.version]  # fmt: skip
    assert after and service.session_snapshots.read(after[0]).chunk.after == 0
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))
    service.close()


def test_a_chunk_whose_state_the_transcoder_refuses_loads_from_the_events(
    service: ChunkingService, store: dict[str, str]
) -> None:
    """A value naming a class that does not exist: the transcoder's own error."""
    session = grow(service, 6)
    target = list(service.session_snapshots.chunks(session.id))[-1]
    rest = msgspec.msgpack.encode({"title": msgspec.msgpack.Ext(1, b"nowhere.at.all:Gone\x00\x80")})
    store_chunk(
        store, target.version, msgspec.msgpack.encode(msgspec.structs.replace(target.chunk, rest=rest))
    )
    assert vars(service.get_session(session.id)) == vars(replayed(service, session, session.version))
    result = audit.verify(service, session.id)
    assert result.broken is not None and "cannot be read" in result.broken.problem


def test_an_old_whole_snapshot_the_mapper_refuses_loads_from_the_events(tmp_path: Path) -> None:
    """A snapshot of a store written before chunks, naming a class that does not exist."""
    shutil.copyfile(LEGACY / "sessions.db", tmp_path / "sessions.db")
    store = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "sessions.db")}
    with sqlite3.connect(store["SQLITE_DBNAME"]) as db:
        db.execute("UPDATE stored_snapshots SET topic = 'nowhere.at.all:Gone'")
    service = ChunkingService(store)
    (session_id,) = {s.id for s in service.list_summaries() if s.parent_id is None}
    session = service.get_session(session_id)
    assert session.state() == replayed(service, session, session.version).state()
    result = audit.verify(service, session_id)
    assert result.broken is not None and "cannot be read" in result.broken.problem
    service.close()


def test_a_store_that_fails_while_loading_a_chunk_raises(
    service: ChunkingService, store: dict[str, str]
) -> None:
    """Only what the store returned may be found unusable: the store's own failure (here,
    its snapshot table gone) is raised, not folded around."""
    from eventsourcing.persistence import PersistenceError

    session = grow(service, 3)
    with sqlite3.connect(store["SQLITE_DBNAME"]) as db:
        db.execute("DROP TABLE stored_snapshots")
    with pytest.raises(PersistenceError, match="no such table"):
        service.get_session(session.id)


def test_a_chunk_that_cannot_be_encoded_fails_no_step(
    service: ChunkingService, caplog: pytest.LogCaptureFixture
) -> None:
    """A usage total past MessagePack's largest integer (2**64 - 1) cannot go into a chunk,
    though each event that reached it could: the events are saved, the step goes on, and
    the session loads as the fold of its events."""
    session = Session.start(CONFIG)
    service.save(session)
    turn(session, 0)
    session.begin_turn("prompt", "w")
    session.record_usage("m", Usage(2**63))
    session.record_usage("m", Usage(2**63))
    service.save(session)  # passes a multiple of the interval: a chunk is due
    assert "no snapshot of session" in caplog.text and "OverflowError" in caplog.text
    assert list(service.session_snapshots.chunks(session.id)) == []
    loaded = service.get_session(session.id)
    assert loaded.version == session.version and loaded.usage.input_tokens == 5 + 2**64
    assert vars(loaded) == vars(replayed(service, session, session.version))
