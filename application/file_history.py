"""When each file of a session's work folder changed, and what a change did to it.

The manifest at any event is a fold of the log (``WorkspaceChanged``, and a fork's
``SessionForked`` holding its parent's files), so a file's history is too: every event
that added, changed or deleted it. :func:`file_diff` compares the file as one change
left it with what the change before had left (nothing, for the change that added it),
reading both contents from the blob store, so it works after the sandbox is gone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from agentjournal.application.errors import FileNotRecorded
from agentjournal.domain import FileState, Session

if TYPE_CHECKING:
    from agentjournal.application.ports import BlobStore
    from agentjournal.application.service import SessionService

DIFF_BYTES = 1_000_000
"""Contents larger than this (either side) are not compared line by line."""

DIFF_LINES = 5000
"""A diff longer than this is cut, and says so."""


class FileChange(msgspec.Struct, frozen=True):
    """What event ``version`` did to a file: left it as ``state``, or deleted it (None).
    ``inherited``: the file came with a fork, as its parent had it."""

    version: int
    state: FileState | None
    inherited: bool = False


def history(events: Iterable[object]) -> dict[str, list[FileChange]]:
    """Every file's changes in these events (a session's log, in order), oldest first."""
    found: dict[str, list[FileChange]] = {}
    for event in events:
        match event:
            case Session.SessionForked(files=files) if files:
                for path, state in files.items():
                    found.setdefault(path, []).append(
                        FileChange(event.originator_version, state, inherited=True)
                    )
            case Session.WorkspaceChanged():
                for path in event.deleted:
                    found.setdefault(path, []).append(FileChange(event.originator_version, None))
                for path, state in event.changed.items():
                    found.setdefault(path, []).append(FileChange(event.originator_version, state))
    return found


class FileDiff(msgspec.Struct, frozen=True):
    """A file's latest change at or before an event, against the change before it.

    ``change``: ``added``, ``modified``, ``deleted`` or ``inherited`` (a fork's file as its
    parent had it). ``changed_at`` is that change's event, ``previous_at`` the one before
    (None when the file was new). ``diff`` is a unified diff of the text, None when it
    cannot be shown, and ``note`` then says why (binary, too large, contents not kept).
    """

    path: str
    version: int
    change: str
    changed_at: int
    previous_at: int | None
    diff: str | None
    note: str = ""
    truncated: bool = False


def file_diff(service: SessionService, session_id: UUID, path: str, version: int | None = None) -> FileDiff:
    """``path``'s latest change as of ``version`` (default: now), against the change
    before it. ``FileNotRecorded`` if the log never named the file up to there."""
    path = path.strip("/")
    events = list(service.events.get(session_id, lte=version))
    at = events[-1].originator_version if events else 0
    changes = history(events).get(path)
    if not changes:
        raise FileNotRecorded(path, at, "the log names no such file up to this event")
    latest = changes[-1]
    before = changes[-2] if len(changes) > 1 else None
    if latest.inherited:
        kind = "inherited"
    elif latest.state is None:
        kind = "deleted"
    elif before is None or before.state is None:
        kind = "added"
    else:
        kind = "modified"
    old = before.state if before else None
    text, note, truncated = _compare(service.blobs, path, old, latest.state)
    return FileDiff(path, at, kind, latest.version, before.version if before else None, text, note, truncated)


def _compare(
    blobs: BlobStore, path: str, old: FileState | None, new: FileState | None
) -> tuple[str | None, str, bool]:
    sides: list[list[str]] = []
    for state in (old, new):
        if state is None:
            sides.append([])
            continue
        if not state.stored:
            return (
                None,
                f"kept by hash and size only ({state.size} bytes): its contents were not recorded",
                False,
            )
        if state.size > DIFF_BYTES:
            return None, f"too large to compare line by line ({state.size} bytes)", False
        try:
            text = blobs.get(state.hash).decode()
        except UnicodeDecodeError:
            return None, "binary contents (not UTF-8 text)", False
        sides.append(text.splitlines(keepends=True))
    lines = list(difflib.unified_diff(sides[0], sides[1], f"a/{path}", f"b/{path}"))
    truncated = len(lines) > DIFF_LINES
    shown = "".join(line if line.endswith("\n") else line + "\n" for line in lines[:DIFF_LINES])
    return shown, "" if lines else "the same contents", truncated


def last_changes(events: Iterable[object]) -> dict[str, int]:
    """Each file's latest change (the event's version), files deleted included."""
    return {path: changes[-1].version for path, changes in history(events).items()}
