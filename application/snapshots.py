"""Session snapshots that grow with the log, not with its square.

A session's state is mostly its conversation, which only ever grows. eventsourcing's
own snapshots copy the whole state each time, so a long session's snapshots together
hold its conversation many times over: storage quadratic in its length. Here each
snapshot is a *chunk* that continues an earlier one (``after``): it holds the messages
added since that chunk, the work folder's manifest only when it changed since, and the
rest of the state (a few dozen small values) whole. A chunk with ``after == 0`` holds
everything and starts a chain; every later chunk of the chain names its first
(``base``), so a load reads the rows from the base up to the latest chunk at or below
the version it wants, follows the ``after`` links back from that chunk, and joins the
messages. Chunks live in the store's snapshot table, encrypted and compressed like
events, and like events are never changed; the chunks of all sessions together hold
each message once.

Two processes that take chunks of one session at the same time make a branch, not a
break: each chunk links to the one it continues, and a load follows the links of the
chunk it starts from. Stores written before chunks existed hold eventsourcing's whole
snapshots: a load from one of those works as it always did, and the next chunk taken
after it starts a new chain.

The decoding is typed: the chunk's envelope, its messages and its manifest decode with
msgspec decoders built for their types, without a Python call per value; only the
rest of the latest chunk goes through the store's transcoder.

A snapshot only spares a load some folding: one that cannot be used (bytes that any
layer of its decoding refuses, or a chunk continuing one that is missing) raises
:class:`SnapshotUnusable`, and the load folds the events alone. Reading the store is
kept apart from decoding what it returned, so a store that fails still raises its own
error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, ProjectorFunction, Repository
from eventsourcing.persistence import AggregateRecorder, IntegrityError, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from agentjournal.domain import AgentJournalError, Session
from agentjournal.domain.values import FileState, Message

_NOT_REST = frozenset({"_id", "_version", "_pending_events", "messages", "files"})
"""Attributes a chunk keeps apart from the rest of the state, or not at all."""

_ABSENT = object()
"""What a state without an attribute compares as."""

_HINTS = frozenset({"files_changed_at"})
"""Attributes that say how the state was reached rather than what it is: a session loaded
from an old whole snapshot does not know when its files last changed."""


class SessionChunk(msgspec.Struct, frozen=True):
    """One stored snapshot of a session, continuing the chunk at version ``after``."""

    after: int
    """The version of the chunk this one continues; 0 when it holds the whole state."""
    base: int
    """The version of the chain's first chunk (this chunk's own version when ``after`` is 0)."""
    messages_from: int
    """How many messages the session had at ``after``: this chunk holds the rest."""
    message_count: int
    """How many messages the session had at this chunk."""
    messages: msgspec.Raw
    """The messages added since ``after`` (a MessagePack list of tagged messages)."""
    files: msgspec.Raw
    """The whole manifest if it changed since ``after`` (or always, when ``after`` is 0
    and the session has files), else nil: decoded only for the chunk whose files count."""
    rest: bytes
    """Every other attribute, through the store's transcoder: read only for the latest chunk."""


CHUNK_TOPIC = get_topic(SessionChunk)

_encoder = msgspec.msgpack.Encoder()
_chunk_decoder = msgspec.msgpack.Decoder(SessionChunk)
_messages_decoder = msgspec.msgpack.Decoder(list[Message])
_files_decoder = msgspec.msgpack.Decoder(dict[str, FileState] | None)
_NIL = msgspec.Raw(_encoder.encode(None))


class SnapshotUnusable(AgentJournalError):
    """A stored snapshot that cannot stand for its events: its bytes do not decode (the
    cipher, the compressor, the transcoder or the mapper refused them), or a chunk
    continues one that is missing."""


@contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Any error raised while decoding stored bytes, whichever layer raised it, as a
    :class:`SnapshotUnusable` saying what could not be read. Only decoding runs in here,
    never a read of the store, whose errors must reach the caller as they are."""
    try:
        yield
    except Exception as e:
        raise SnapshotUnusable(f"{what} cannot be read: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back, with the version it was taken at."""

    version: int
    chunk: SessionChunk


class SessionSnapshots:
    """Takes and reads a store's session chunks, in its snapshot ``recorder``, through the
    application's ``mapper`` (its cipher, compressor and transcoder)."""

    def __init__(self, recorder: AggregateRecorder, mapper: Mapper[UUID]) -> None:
        self.recorder = recorder
        self.mapper = mapper

    # -- taking ----------------------------------------------------------------------

    def take(self, session: Session) -> None:
        """Record a chunk of ``session`` as it is now (all its events saved), continuing
        the latest chunk stored at or below its version, or starting a chain when there is
        none or it cannot be read. A chunk already taken at this version (by another
        process) is left as it is."""
        try:
            latest = self._latest(session.id, session.version)
        except SnapshotUnusable:
            latest = None
        if isinstance(latest, StoredChunk) and latest.version == session.version:
            return
        if isinstance(latest, StoredChunk):
            files_changed = session.files_changed_at > latest.version
            chunk = self._chunk(
                session, latest.version, latest.chunk.base, latest.chunk.message_count, files_changed
            )
        else:
            chunk = self._chunk(session, 0, session.version, 0, True)
        try:
            self.recorder.insert_events([self._stored(session.id, session.version, chunk)])
        except IntegrityError:
            pass  # another process took a chunk at this version first; it holds the same state

    def _chunk(self, session: Session, after: int, base: int, known: int, with_files: bool) -> SessionChunk:
        rest = {name: value for name, value in vars(session).items() if name not in _NOT_REST}
        files = session.__dict__.get("files")
        return SessionChunk(
            after=after,
            base=base,
            messages_from=known,
            message_count=len(session.messages),
            messages=msgspec.Raw(_encoder.encode(session.messages[known:])),
            files=msgspec.Raw(_encoder.encode(files)) if with_files and files is not None else _NIL,
            rest=self.mapper.transcoder.encode(rest),
        )

    def _stored(self, session_id: UUID, version: int, chunk: SessionChunk) -> StoredEvent:
        state = _encoder.encode(chunk)
        if self.mapper.compressor:
            state = self.mapper.compressor.compress(state)
        if self.mapper.cipher:
            state = self.mapper.cipher.encrypt(state)
        return StoredEvent(
            originator_id=session_id, originator_version=version, topic=CHUNK_TOPIC, state=state
        )

    # -- reading -----------------------------------------------------------------------

    def load(self, aggregate_id: UUID, version: int | None) -> Any:
        """The aggregate as of its latest snapshot at or below ``version`` (default: any),
        or None when it has none: the caller folds the events after its version.
        :class:`SnapshotUnusable` when that snapshot or its chain cannot be used."""
        latest = self._latest(aggregate_id, version)
        if latest is None or not isinstance(latest, StoredChunk):
            return latest
        return self._session(aggregate_id, self.chain(aggregate_id, latest))

    def chain(self, session_id: UUID, tip: StoredChunk) -> list[StoredChunk]:
        """The chunks from ``tip``'s base to ``tip``, in order, following its links."""
        if tip.chunk.after == 0:
            return [tip]
        rows = self.recorder.select_events(session_id, gt=tip.chunk.base - 1, lte=tip.version - 1)
        by_version = {row.originator_version: row for row in rows}
        chain = [tip]
        while chain[-1].chunk.after:
            row = by_version.get(chain[-1].chunk.after)
            if row is None or row.topic != CHUNK_TOPIC or row.originator_version >= chain[-1].version:
                msg = f"session {session_id}: the snapshot at {chain[-1].version} continues a missing one"
                raise SnapshotUnusable(msg)
            chain.append(StoredChunk(row.originator_version, self._decode(row)))
        chain.reverse()
        return chain

    def chunks(self, session_id: UUID) -> Iterator[StoredChunk | Any]:
        """Every snapshot stored for the session, oldest first: chunks, and the whole
        snapshots of stores written before them (as eventsourcing's ``Snapshot``)."""
        for row in self.recorder.select_events(session_id):
            yield self.read(row)

    def messages(self, chunk: SessionChunk) -> list[Message]:
        """The messages a chunk adds."""
        with _decoding("the snapshot's messages"):
            return _messages_decoder.decode(chunk.messages)

    def files(self, chunk: SessionChunk) -> dict[str, FileState] | None:
        """The manifest a chunk holds, or None when it holds none."""
        with _decoding("the snapshot's files"):
            return _files_decoder.decode(chunk.files)

    def rest(self, chunk: SessionChunk) -> dict[str, Any]:
        """Every other attribute the chunk holds (only those: a name kept apart, or not at
        all, is never taken from here)."""
        return {name: value for name, value in self.stored_rest(chunk).items() if name not in _NOT_REST}

    def stored_rest(self, chunk: SessionChunk) -> dict[str, Any]:
        """The rest of the state exactly as the chunk holds it."""
        with _decoding("the snapshot's state"):
            rest = self.mapper.transcoder.decode(chunk.rest)
            if not isinstance(rest, dict):
                raise TypeError(f"a map of attributes was expected, not {type(rest).__name__}")
            return rest

    def _latest(self, aggregate_id: UUID, version: int | None) -> StoredChunk | Any:
        rows = self.recorder.select_events(aggregate_id, lte=version, desc=True, limit=1)
        return self.read(rows[0]) if rows else None

    def read(self, row: StoredEvent) -> StoredChunk | Any:
        """One stored snapshot: a chunk, or an old whole snapshot's aggregate."""
        if row.topic == CHUNK_TOPIC:
            return StoredChunk(row.originator_version, self._decode(row))
        with _decoding(f"the snapshot at {row.originator_version}"):
            return self.mapper.to_domain_event(row).mutate(None)  # type: ignore[attr-defined]

    def _decode(self, row: StoredEvent) -> SessionChunk:
        with _decoding(f"the snapshot at {row.originator_version}"):
            state = row.state
            if self.mapper.cipher:
                state = self.mapper.cipher.decrypt(state)
            if self.mapper.compressor:
                state = self.mapper.compressor.decompress(state)
            return _chunk_decoder.decode(state)

    def _session(self, session_id: UUID, chain: list[StoredChunk]) -> Session:
        messages: list[Message] = []
        for stored in chain:
            messages.extend(self.messages(stored.chunk))
        files = next((self.files(s.chunk) for s in reversed(chain) if s.chunk.files != _NIL), None)
        tip = chain[-1]
        state = self.rest(tip.chunk)
        state.update(_id=session_id, _version=tip.version, _pending_events=[], messages=messages)
        if files is not None:
            state["files"] = files
        session = object.__new__(Session)
        object.__setattr__(session, "__dict__", state)
        return session


class ChunkChecker:
    """Checks a session's chunks, oldest first, against the state its events fold to at
    each chunk's version (see :func:`agentjournal.application.audit.verify`): a chunk holds
    exactly the messages added since the chunk it continues, the manifest when it changed
    and the rest of the state, so a chunk altered in the store is caught where it is."""

    def __init__(self, snapshots: SessionSnapshots) -> None:
        self.snapshots = snapshots
        self._seen: dict[int, tuple[SessionChunk, Any]] = {}
        """Chunks checked so far, by version, with the manifest the events gave there."""

    def problem(self, stored: StoredChunk, folded: Session) -> str | None:
        """What is wrong with ``stored``, taken at ``folded.version``, or None."""
        chunk, files = stored.chunk, folded.__dict__.get("files")
        parent = self._seen.get(chunk.after) if chunk.after < stored.version else None
        self._seen[stored.version] = (chunk, files)
        if chunk.after:
            if (
                parent is None
                or parent[0].base != chunk.base
                or parent[0].message_count != chunk.messages_from
            ):
                return "it does not continue the snapshot it names"
            unchanged_files = parent[1]
        elif chunk.base != stored.version or chunk.messages_from:
            return "it names a start that is not its own"
        else:
            unchanged_files = None
        if chunk.message_count != len(folded.messages) or (
            self.snapshots.messages(chunk) != folded.messages[chunk.messages_from :]
        ):
            return "its messages differ"
        if (self.snapshots.files(chunk) if chunk.files != _NIL else unchanged_files) != files:
            return "its files differ"
        rest = self.snapshots.stored_rest(chunk)
        if rest.keys() & _NOT_REST:
            return "its state holds what it must not"
        kept = object.__new__(Session)
        object.__setattr__(kept, "__dict__", rest)
        names = (vars(kept).keys() | vars(folded).keys()) - _NOT_REST - _HINTS
        if any(getattr(kept, name, _ABSENT) != getattr(folded, name, _ABSENT) for name in names):
            return "its state differs"
        return None


class ChunkedRepository(Repository[UUID]):
    """eventsourcing's repository, loading sessions from their chunks (and any aggregate
    from an old whole snapshot), then folding the events after it."""

    def _reconstruct_aggregate(
        self, aggregate_id: UUID, version: int | None, projector_func: ProjectorFunction[Any, Any]
    ) -> Any:
        start = None
        if self.snapshot_store is not None:
            snapshots = SessionSnapshots(self.snapshot_store.recorder, self.snapshot_store.mapper)
            try:
                start = snapshots.load(aggregate_id, version)
            except SnapshotUnusable:
                start = None  # a broken chain or a damaged chunk: the events alone tell everything
        events = self.event_store.get(aggregate_id, gt=start.version if start else None, lte=version)
        aggregate = projector_func(start, events)
        if aggregate is None:
            msg = f"Aggregate {aggregate_id!r} version {version!r} not found."
            raise AggregateNotFoundError(msg)
        return aggregate
