"""Reading a log as evidence: verify its hash chain, export and import it (with the
contents of its files), tell it as a timeline, and compare two sessions.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic, resolve_topic

from agentjournal.application.errors import AgentJournalError, BlobDamaged, BlobMissing, SessionNotFound
from agentjournal.application.snapshots import ChunkChecker, SnapshotUnusable, StoredChunk
from agentjournal.application.tracing import Cost
from agentjournal.application.views import format_cost
from agentjournal.domain import AssistantMessage, FileState, Message, Session, ToolResult, UserMessage
from agentjournal.domain.chain import GENESIS, event_hash, event_type_name, payload_of
from agentjournal.domain.legacy import LEGACY_EXPORT_FORMATS, legacy_type_name
from agentjournal.domain.memory import MemoryStore, content_sha256

if TYPE_CHECKING:
    from agentjournal.application.service import SessionService

EXPORT_FORMAT = "agentjournal-events/1"
CONTENTS_FORMAT = "agentjournal-contents/1"
"""The format of an export's lines that hold file contents (see :func:`export_session`)."""


# -- verification ---------------------------------------------------------------------


class ChainBreak(msgspec.Struct, frozen=True):
    """The first event at which a log stops being the one that was written."""

    version: int
    problem: str


class Verification(msgspec.Struct, frozen=True):
    session_id: UUID
    events: int
    head: str
    """The hash of the last event: keep it elsewhere to detect a rewrite of the whole log."""
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _hash_matches(event: Any) -> bool:
    """Whether an event's content matches its hash, under today's type name or the one
    sessionlog 0.1 hashed (see ``agentjournal.domain.legacy``)."""
    return any(
        event_hash(name, event.originator_id, event.originator_version, event.timestamp,
                   event.previous_hash, payload_of(event)) == event.hash
        for name in (event_type_name(type(event)), legacy_type_name(type(event)))
    )  # fmt: skip


class _Unreadable(msgspec.Struct, frozen=True):
    """A stored snapshot that cannot be decoded, and why."""

    reason: str


def _snapshot_problem(kept: Any, folded: Session, chunks: ChunkChecker | None) -> str | None:
    """What is wrong with a stored snapshot against the events folded up to it: a chunk
    (see :class:`ChunkChecker`) or a whole snapshot of an older store."""
    if isinstance(kept, _Unreadable):
        return f"it cannot be read: {kept.reason}"
    if isinstance(kept, StoredChunk) and chunks is not None:
        try:
            return chunks.problem(kept, folded)
        except SnapshotUnusable as e:  # a part decoded only when checked
            return f"it cannot be read: {e}"
    return None if kept.state() == folded.state() else "its state differs"


def verify(service: SessionService, session_id: UUID) -> Verification:
    """Check every stored event of a session against the hash chain, and every stored
    snapshot against the events it stands for: sessions load from their latest snapshot,
    so a snapshot altered in the store would change the session without touching an event.
    Then check the contents of every file the log names as kept against its hash in the
    blob store, so the chain vouches for the files too; and for a memory store, each
    version's sealed content against the digest its event carries (a redacted version's,
    or a deleted store's, is gone by design)."""
    records = service.recorder.select_events(session_id)
    if not records:
        raise SessionNotFound(session_id)
    kept = service.session_snapshots
    snapshots: dict[int, Any] = {}
    for row in kept.recorder.select_events(session_id) if kept else ():
        try:
            snapshots[row.originator_version] = kept.read(row)  # type: ignore[union-attr]
        except SnapshotUnusable as e:  # a damaged row: bad bytes, a failed decryption
            snapshots[row.originator_version] = _Unreadable(str(e))
    chunks = ChunkChecker(kept) if kept else None
    folded: Any = None

    def broken(version: int, problem: str, count: int, head: str) -> Verification:
        return Verification(session_id, count, head, ChainBreak(version, problem))

    previous_hash = GENESIS
    named: dict[str, tuple[int, str]] = {}
    """Each content hash the log names, with the first event and path that name it."""
    sealed: dict[str, int] = {}
    """Each memory version whose content is sealed outside the log, with its event."""
    for expected, record in enumerate(records, start=1):
        if record.originator_version != expected:
            return broken(expected, f"event {expected} is missing (the log goes on at "
                          f"{record.originator_version})", expected - 1, previous_hash)  # fmt: skip
        try:
            event: Any = service.mapper.to_domain_event(record)
        except Exception as e:  # a damaged record: bad bytes, a failed decryption
            return broken(expected, f"event {expected} cannot be read: {e}", expected - 1, previous_hash)
        if getattr(event, "hash", None) is None:
            return broken(expected, f"event {expected} carries no hash", expected - 1, previous_hash)
        if not _hash_matches(event):
            return broken(expected, f"event {expected} was altered: its content does not match its hash",
                          expected - 1, previous_hash)  # fmt: skip
        chained_from = _parent_hash(service, event) if expected == 1 else previous_hash
        if event.previous_hash != chained_from:
            problem = (
                f"event {expected} does not chain from its parent's event {event.lineage.parent_version}"
                if expected == 1 and isinstance(event, Session.SessionForked)
                else f"event {expected} does not follow event {expected - 1}: an event was altered "
                "and re-hashed, removed or reordered here"
            )
            return broken(expected, problem, expected - 1, previous_hash)
        previous_hash = event.hash
        for path, state in _files_named(event).items():
            if state.stored:
                named.setdefault(state.hash, (expected, path))
        if isinstance(event, MemoryStore.MemoryChanged):
            sealed[event.version_id] = expected
        folded = event.mutate(folded)
        kept_here = snapshots.get(expected)
        if kept_here is not None:
            wrong = _snapshot_problem(kept_here, folded, chunks)
            if wrong:
                return broken(expected, f"the snapshot at event {expected} does not match the events up to it "
                              f"({wrong})", expected, previous_hash)  # fmt: skip
    count = len(records)
    summary = service.summaries.get(session_id)
    if summary is not None and summary.version > count:
        return broken(count + 1, f"events {count + 1} to {summary.version} were removed "
                      "(the summary table had seen them)", count, previous_hash)  # fmt: skip
    for digest, (version, path) in sorted(named.items(), key=lambda item: item[1]):
        try:
            service.blobs.get(digest)
        except BlobMissing:
            return broken(version, f"event {version} names contents of {path!r} that the store does not hold",
                          count, previous_hash)  # fmt: skip
        except BlobDamaged:
            return broken(version, f"the stored contents of {path!r} (event {version}) were altered: "
                          "they do not match their hash", count, previous_hash)  # fmt: skip
    if isinstance(folded, MemoryStore) and not folded.deleted:
        unsealed = _sealed_content_problem(service, folded, sealed)
        if unsealed is not None:
            return broken(unsealed[0], unsealed[1], count, previous_hash)
    return Verification(session_id, count, previous_hash)


def _sealed_content_problem(
    service: SessionService, store: MemoryStore, sealed: Mapping[str, int]
) -> tuple[int, str] | None:
    """The first memory version (its event, and what is wrong) whose sealed content is
    missing or does not match the digest its event carries; None when all match."""
    expected = {v.id: v.content_sha256 for v in store.versions if v.id in sealed and v.content_sha256}
    kept = service.memory_contents.get(expected)
    for version_id, digest in sorted(expected.items(), key=lambda item: sealed[item[0]]):
        event = sealed[version_id]
        if version_id not in kept:
            return event, f"event {event} names a memory version whose content the store does not hold"
        if content_sha256(kept[version_id]) != digest:
            return (
                event,
                f"the content of the memory version of event {event} was altered: it does not match its hash",
            )
    return None


def _files_named(event: Any) -> Mapping[str, FileState]:
    """The files an event records: a change's, or those a fork starts with."""
    if isinstance(event, Session.WorkspaceChanged):
        return event.changed
    if isinstance(event, Session.SessionForked):
        return event.files or {}
    return {}


def _parent_hash(service: SessionService, event: Any) -> str:
    if not isinstance(event, Session.SessionForked):
        return GENESIS
    lineage = event.lineage
    parent = service.recorder.select_events(
        lineage.parent_id, gt=lineage.parent_version - 1, lte=lineage.parent_version
    )
    if not parent:
        # An imported fork without its parent: the link cannot be checked here, so trust it.
        return str(event.previous_hash)
    return str(service.mapper.to_domain_event(parent[0]).hash)  # type: ignore[attr-defined]


def verify_store(service: SessionService) -> list[Verification]:
    """Verify every session in the store, found through the notification log itself."""
    sessions: dict[UUID, None] = {}
    start = None
    while batch := service.recorder.select_notifications(start, 1000, inclusive_of_start=False):
        sessions.update(dict.fromkeys(n.originator_id for n in batch))  # type: ignore[misc]
        start = batch[-1].id
    return [verify(service, sid) for sid in sessions]


# -- export and import ------------------------------------------------------------------


class ExportedEvent(msgspec.Struct, frozen=True):
    """A line of an export that holds one event, exactly as stored."""

    format: str
    topic: str
    event: msgspec.Raw


class ExportedContents(msgspec.Struct, frozen=True):
    """A line of an export that holds the contents of a file the session's log names, by
    their SHA-256 (hex); ``data`` travels as base64."""

    format: str
    hash: str
    data: bytes


class _ExportLine(msgspec.Struct, frozen=True):
    """What every line of an export says first: what it holds."""

    format: str


def export_session(service: SessionService, session_id: UUID) -> Iterator[bytes]:
    """The session as JSON Lines: its log, one event a line, exactly as stored; then the
    contents of every file its log names as kept, one a line, each once, as plaintext
    (whatever the store's cipher), so the import holds the same, verifiable session.
    Contents the store lacks, or holds altered, are left out: the import then verifies
    as broken as the session does here, at the same event."""
    events = list(service.events.get(session_id))
    if not events:
        raise SessionNotFound(session_id)
    for event in events:
        line = ExportedEvent(EXPORT_FORMAT, get_topic(type(event)), msgspec.Raw(msgspec.json.encode(event)))
        yield msgspec.json.encode(line) + b"\n"
    for digest in _contents_named(events):
        try:
            data = service.blobs.get(digest)
        except (BlobMissing, BlobDamaged):
            continue
        yield msgspec.json.encode(ExportedContents(CONTENTS_FORMAT, digest, data)) + b"\n"


def import_session(service: SessionService, lines: Iterable[bytes | str]) -> UUID:
    """Store an exported session as it was: same session id, versions, timestamps and
    hashes, so it verifies, and the contents of its files, sealed with this store's
    cipher. Refuses the whole import, storing nothing, when a line is not an exported
    event or file contents, when contents do not hash to the name they carry or belong
    to no file of the session, or when the session is already in this store. An export
    of events alone (written before exports carried contents) imports as it is."""
    events: list[Any] = []
    contents: dict[str, bytes] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if msgspec.json.decode(line, type=_ExportLine).format == CONTENTS_FORMAT:
                exported = msgspec.json.decode(line, type=ExportedContents)
            else:
                events.append(_exported_event(line))
                continue
        except (msgspec.DecodeError, msgspec.ValidationError, AgentJournalError, ValueError) as e:
            raise AgentJournalError(
                f"line {number} of the import is not an exported event or file contents: {e}"
            ) from None
        if hashlib.sha256(exported.data).hexdigest() != exported.hash:
            raise AgentJournalError(
                f"line {number} of the import holds file contents that do not match their hash "
                f"{exported.hash}: they were altered"
            )
        contents[exported.hash] = exported.data
    if not events:
        raise AgentJournalError("nothing to import: no events")
    session_ids = {e.originator_id for e in events}
    if len(session_ids) != 1:
        raise AgentJournalError(f"an import holds one session's events; these hold {len(session_ids)}")
    (session_id,) = session_ids
    if service.recorder.select_events(session_id, limit=1):
        raise AgentJournalError(f"session {session_id} is already in this store")
    versions = [e.originator_version for e in events]
    if versions != list(range(1, len(events) + 1)):
        raise AgentJournalError("the import's events are not numbered 1, 2, 3, ... in order")
    unnamed = sorted(contents.keys() - _contents_named(events))
    if unnamed:
        raise AgentJournalError(f"the import holds contents that no file of the session has: {unnamed[0]}")
    service.blobs.add(contents.values())
    service.events.put(events)
    return session_id


def _exported_event(line: bytes | str) -> Any:
    """The event an export's line holds, of the class its topic names."""
    exported = msgspec.json.decode(line, type=ExportedEvent)
    if exported.format != EXPORT_FORMAT and exported.format not in LEGACY_EXPORT_FORMATS:
        raise AgentJournalError(f"format {exported.format!r}, expected {EXPORT_FORMAT!r}")
    event_class = resolve_topic(exported.topic)
    if not (isinstance(event_class, type) and issubclass(event_class, Session.Event)):
        raise AgentJournalError(f"{exported.topic!r} is not a session event")
    return msgspec.json.decode(exported.event, type=event_class)


def _contents_named(events: Iterable[Any]) -> dict[str, None]:
    """The hashes of the contents ``events`` name as kept, in the order first named: a
    fork's include those of the files it took from its parent."""
    return {state.hash: None for event in events for state in _files_named(event).values() if state.stored}


# -- timeline ----------------------------------------------------------------------------


class TimelineEntry(msgspec.Struct, frozen=True):
    version: int
    timestamp: datetime
    actor: str
    """user, assistant, model (a call's tokens, latency and cost), tool, files or session."""
    text: str


def timeline(service: SessionService, session_id: UUID) -> list[TimelineEntry]:
    """Who said and did what, in order: prompts, replies, tool calls with their exit codes
    and durations, the files each call created, changed or deleted, usage per turn,
    failures, forks."""
    entries = []
    turn_usage: dict[str, int] = {"in": 0, "out": 0}
    turn_cost = Cost()
    files: Mapping[str, FileState] = {}
    for e in service.events.get(session_id):

        def add(actor: str, text: str, e: Any = e) -> None:
            entries.append(TimelineEntry(e.originator_version, e.timestamp, actor, text))

        match e:
            case Session.SessionStarted():
                add("session", f"started: model {e.config.model}, compute {e.config.compute}")
            case Session.SessionForked():
                files = e.files or {}
                add("session", f"forked from {e.lineage.parent_id} at event {e.lineage.parent_version}"
                    f" ({len(e.messages)} messages, {len(files)} files inherited)")  # fmt: skip
            case Session.WorkspaceChanged():
                add("files", _workspace_change(e, files))
                files = {**{p: f for p, f in files.items() if p not in e.deleted}, **e.changed}
            case Session.UserMessageAdded():
                add("user", e.content)
            case Session.TurnStarted():
                turn_usage, turn_cost = {"in": 0, "out": 0}, Cost()
                add("session", f"turn {e.turn} started")
            case Session.AssistantMessageAdded():
                calls = "".join(f"\n  calls {c.name} {c.arguments}" for c in e.message.tool_calls)
                add("assistant", e.message.content + calls)
            case Session.ToolResultRecorded():
                r = e.result
                flags = " (truncated)" if r.truncated else ""
                add(
                    "tool",
                    f"{r.name} -> exit {r.exit_code}, {r.duration_ms:.0f} ms{flags}: {_first_line(r.output)}",
                )
            case Session.UsageRecorded():
                turn_usage["in"] += e.usage.input_tokens
                turn_usage["out"] += e.usage.output_tokens
                turn_cost += Cost.of(e.call.cost_usd if e.call else None)
                add("model", _model_call(e))
            case Session.TurnCompleted():
                add("session", f"turn ended ({e.stop_reason.value}{': ' + e.detail if e.detail else ''}); "
                    f"tokens {turn_usage['in']} in / {turn_usage['out']} out, cost {format_cost(turn_cost)}")  # fmt: skip
            case Session.TurnFailed():
                shown = f"; the reply had shown: {e.partial}" if e.partial else ""
                add("session", f"turn failed: {e.error_type}: {e.error}{shown}")
            case Session.ComputeAttached():
                ref = e.binding.reference
                add("session", f"sandbox {e.binding.kind} {ref[:12] if e.binding.kind == 'docker' else ref}")
            case Session.PackagesInstalled():
                add("session", f"installed {e.install.manager} {' '.join(e.install.packages)}")
            case Session.SessionTerminated():
                add("session", f"terminated {e.reason}".rstrip())
    if not entries:
        raise SessionNotFound(session_id)
    return entries


def _model_call(event: Any) -> str:
    """One model call: its model, tokens, and, when timed, its latency and price."""
    usage = event.usage
    text = f"{event.model}: {usage.input_tokens} in / {usage.output_tokens} out tokens"
    call = event.call
    if call is None:
        return text
    return (
        f"{text}, {call.duration_ms:.0f} ms (first token {call.first_token_ms:.0f} ms), "
        f"cost {format_cost(Cost.of(call.cost_usd))}"
    )


def _workspace_change(event: Any, before: Mapping[str, FileState]) -> str:
    """What a ``WorkspaceChanged`` did to the files, and what caused it."""
    cause = (
        f"restored as of event {event.restored_from}" if event.restored_from
        else f"after {event.tool_call_id}" if event.tool_call_id else "sandbox filled"
    )  # fmt: skip
    parts = [
        f"{verb} {', '.join(paths)}"
        for verb, paths in (
            ("created", [p for p in event.changed if p not in before]),
            ("changed", [p for p in event.changed if p in before]),
            ("deleted", list(event.deleted)),
        )
        if paths
    ]
    unkept = [p for p, f in event.changed.items() if not f.stored]
    if unkept:
        parts.append(f"kept by hash and size only (over a size cap): {', '.join(unkept)}")
    return f"{cause}: {'; '.join(parts)}"


def _first_line(text: str, width: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "\u2026"


# -- diff -------------------------------------------------------------------------------


class FileDiff(msgspec.Struct, frozen=True):
    """One path whose file differs between two work folders: ``added`` (only on the right),
    ``deleted`` (only on the left) or ``changed``; each side's file, where it has one."""

    path: str
    change: str
    left: FileState | None
    right: FileState | None


class SessionDiff(msgspec.Struct, frozen=True):
    """Where two sessions' conversations part, what each has after that, and which files
    of their work folders differ."""

    left: UUID
    right: UUID
    shared_messages: int
    left_only: list[Message]
    right_only: list[Message]
    relation: str
    files: list[FileDiff] = []


def diff(
    service: SessionService,
    left_id: UUID,
    right_id: UUID,
    left_version: int | None = None,
    right_version: int | None = None,
) -> SessionDiff:
    """Compare two sessions (or one session at two versions), each as of its version
    (default: now)."""
    left, right = service.get_session(left_id, left_version), service.get_session(right_id, right_version)
    shared = 0
    for a, b in zip(left.messages, right.messages, strict=False):
        if a != b:
            break
        shared += 1
    return SessionDiff(
        left_id, right_id, shared, left.messages[shared:], right.messages[shared:], _relation(service, left, right),
        files_diff(left.files, right.files),
    )  # fmt: skip


def files_diff(left: Mapping[str, FileState], right: Mapping[str, FileState]) -> list[FileDiff]:
    """The paths whose files differ between two manifests, in path order."""
    changes = []
    for path in sorted(set(left) | set(right)):
        a, b = left.get(path), right.get(path)
        if a != b:
            change = "added" if a is None else "deleted" if b is None else "changed"
            changes.append(FileDiff(path, change, a, b))
    return changes


def text_diff(service: SessionService, change: FileDiff, context: int = 3) -> list[str] | None:
    """A unified diff of a changed file's two contents, when both were kept and are UTF-8
    text; None otherwise (binary, or kept by hash only)."""
    sides = []
    for state in (change.left, change.right):
        if state is not None and not state.stored:
            return None
        try:
            sides.append(service.blobs.get(state.hash).decode() if state is not None else "")
        except UnicodeDecodeError:
            return None
    a, b = (side.splitlines(keepends=True) for side in sides)
    return list(difflib.unified_diff(a, b, f"a/{change.path}", f"b/{change.path}", n=context))


def _relation(service: SessionService, left: Session, right: Session) -> str:
    """How two sessions are related through their forks: one the other at two versions,
    one descended from the other (a child, a grandchild ...), both descended from a
    common ancestor, or not at all."""
    if left.id == right.id:
        return f"{left.id} as of events {left.version} and {right.version}"
    left_line, right_line = _ancestry(service, left), _ancestry(service, right)
    right_ancestors = [ancestor for ancestor, _ in right_line]
    left_ancestors = [ancestor for ancestor, _ in left_line]
    if left.id in right_ancestors:
        return _descent(right.id, right_line[: right_ancestors.index(left.id) + 1])
    if right.id in left_ancestors:
        return _descent(left.id, left_line[: left_ancestors.index(right.id) + 1])
    common = next((ancestor for ancestor in left_ancestors if ancestor in right_ancestors), None)
    if common is None:
        return "unrelated sessions"
    if left_ancestors[0] == right_ancestors[0]:
        return f"both were forked from {common}"
    return (
        f"both descend from {common}: {_descent(left.id, left_line[: left_ancestors.index(common) + 1])}; "
        f"{_descent(right.id, right_line[: right_ancestors.index(common) + 1])}"
    )


def _ancestry(service: SessionService, session: Session) -> list[tuple[UUID, int]]:
    """The sessions this one descends from, nearest first, each with the event of it
    the line was forked at. An ancestor this store lacks (an imported fork) ends it."""
    line: list[tuple[UUID, int]] = []
    lineage = session.lineage
    while lineage is not None and lineage.parent_id not in {session.id, *(a for a, _ in line)}:
        line.append((lineage.parent_id, lineage.parent_version))
        try:
            lineage = service.get_session(lineage.parent_id).lineage
        except SessionNotFound:
            break
    return line


def _descent(descendant: UUID, line: list[tuple[UUID, int]]) -> str:
    """``descendant`` was forked from its parent at event N, which was forked from ..."""
    (parent, version), *further = line
    text = f"{descendant} was forked from {parent} at event {version}"
    return text + "".join(f", which was forked from {a} at event {v}" for a, v in further)


def describe(message: Message) -> str:
    if isinstance(message, UserMessage):
        return f"user: {message.content}"
    if isinstance(message, AssistantMessage):
        calls = ", ".join(c.name for c in message.tool_calls)
        return f"assistant: {message.content}" + (f" [calls {calls}]" if calls else "")
    assert isinstance(message, ToolResult)
    return f"tool {message.name} -> exit {message.exit_code}: {_first_line(message.output)}"
