"""Snapshots of host work folders, taken in the engine's process with
:mod:`~agentjournal.infrastructure.compute.sandbox_snapshot`, incremental where a change
journal (:mod:`~agentjournal.infrastructure.compute.change_journal`) says what changed.

A **full scan** walks the whole folder, trusting what the last snapshot of the same folder
found for each file whose time, size and inode hold, and sets up a new journal's watches on
the way. An **incremental snapshot** visits only what the journal reports: each folder
created, moved or deleted is visited again whole (and what the last snapshot found under
it forgotten), each other name is looked at again and any file there read again whatever
its time says (so a rewrite in place with its old time put back is seen). Every snapshot
also looks at the files with several names (a write through another name is reported where
that name lies) and at those whose contents the caller lacks. Its cost is then that of what
changed, not of the folder. A file found changed too recently for its time to be trusted
(:func:`~agentjournal.infrastructure.compute.sandbox_snapshot.reusable`) needs no second
look while the journal holds, since a later write is an event; it is left out of what the
next full scan trusts, as before.

A full scan is taken when there is no journal (the first snapshot in this process, inotify
unavailable, the journal given up), when the journal cannot be trusted, when the limits
changed, and every ``FULL_SCAN_EVERY`` snapshots whatever the journal says: the safety net
for the writes no event reports (through a hard link made from a folder that is not
watched, and whatever else a kernel leaves unreported). Such a write changes the file's
modification time, so the full scan reads it: it is recorded at most that many tool calls
late. A new name found linked to a file the journal did not report has that file read
again at once.

The walk opens every name without following links, so it reads nothing outside the folder.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentjournal.application.ports import ComputeError, SnapshotLimits, WorkspaceScan
from agentjournal.domain import FileState
from agentjournal.infrastructure.compute import sandbox_snapshot
from agentjournal.infrastructure.compute.change_journal import ChangeJournal, Changes, within
from agentjournal.infrastructure.compute.sandbox_snapshot import Entry, Scan

MAX_SCANS_KEPT = 64
"""Work folders whose last snapshot is kept, to skip unchanged files in the next."""

MAX_JOURNALS = 4
"""Work folders, the most recently snapshotted, that keep a change journal: each holds an
inotify instance, of which a user has few (128 by default)."""

FULL_SCAN_EVERY = 20
"""Snapshots after which the next is a full scan, whatever the journal says."""


@dataclass
class FolderState:
    """What the snapshots of one work folder know between two of them."""

    limits: SnapshotLimits
    journal: ChangeJournal | None
    previous: dict[str, list] = field(default_factory=dict)
    """The files whose hash a later snapshot may trust while their time, size and inode
    hold (``[mtime_ns, size, inode, hash, stored]``, as :mod:`sandbox_snapshot` takes them)."""
    linked: set[str] = field(default_factory=set)
    """Files with several names, looked at in every snapshot: a write through another name
    is reported where that name lies, which may be a folder no watch covers."""
    since_full_scan: int = 0
    entries: dict[str, Entry] = field(default_factory=dict)
    """Every file the last snapshot found, by path; and the same as the snapshot answers
    (``files``) and as the caller is expected to know it (``hashes``), kept up to date with
    it so a snapshot costs what changed."""
    files: dict[str, FileState] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)

    def found(self, walk: Scan) -> None:
        """Take in what ``walk`` found."""
        for e in walk.entries:
            self.entries[e[0]] = e
            self.files[e[0]] = FileState(hash=e[1], size=e[2], mode=e[3], stored=e[4])
            self.hashes[e[0]] = e[1]
        self.previous.update(_trusted(walk))
        self.linked = walk.linked

    def drop(self, path: str) -> None:
        """Forget the file at ``path`` until a walk finds it again."""
        del self.entries[path], self.files[path], self.hashes[path]

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


class FolderScans:
    """Snapshots of host work folders, each trusting what the last one of the same folder
    found, and visiting only what changed where a change journal can say.
    ``journals`` makes a new journal (None where there can be none)."""

    def __init__(self, journals: Callable[[], ChangeJournal | None] = ChangeJournal.open) -> None:
        self._journals = journals
        self._found: OrderedDict[Path, FolderState] = OrderedDict()
        self.full_scans = 0
        """How many snapshots were full scans (the others were incremental)."""

    def snapshot(self, root: Path, known: Mapping[str, str], limits: SnapshotLimits) -> WorkspaceScan:
        state = self._found.pop(root, None)
        try:
            work_fd = os.open(root, sandbox_snapshot.FOLDER)
        except OSError as e:
            if state is not None:
                state.close()
            raise ComputeError(f"cannot read the work folder: {e.strerror}") from None
        try:
            state, contents = self._take(work_fd, state, dict(known), limits)
        except OSError as e:
            raise ComputeError(f"cannot read the work folder: {e.strerror}") from None
        finally:
            os.close(work_fd)
        self._found[root] = state
        for older, kept in enumerate(reversed(self._found.values())):
            if older >= MAX_JOURNALS:
                kept.close()
        while len(self._found) > MAX_SCANS_KEPT:
            self._found.popitem(last=False)[1].close()
        return WorkspaceScan(files=dict(state.files), contents=contents)

    def _take(
        self, work_fd: int, state: FolderState | None, known: dict[str, str], limits: SnapshotLimits
    ) -> tuple[FolderState, dict[str, bytes]]:
        """The folder's state after this snapshot, and the contents the caller lacks."""
        if (
            state is not None
            and state.journal is not None
            and state.limits == limits
            and state.since_full_scan + 1 < FULL_SCAN_EVERY
        ):
            walk = Scan(
                state.previous, known, list(limits.ignore), limits.max_file_bytes, state.journal.watch
            )
            changes = state.journal.changes(walk.kept)
            if changes is not None:
                self._visit_changes(work_fd, state, changes, walk)
                return state, walk.contents
        return self._full_scan(work_fd, state, known, limits)

    def _full_scan(
        self, work_fd: int, state: FolderState | None, known: dict[str, str], limits: SnapshotLimits
    ) -> tuple[FolderState, dict[str, bytes]]:
        self.full_scans += 1
        previous = state.previous if state is not None and state.limits == limits else {}
        if state is not None:
            state.close()
        journal = self._journals()
        watch = journal.watch if journal is not None else None
        walk = Scan(previous, known, list(limits.ignore), limits.max_file_bytes, watch)
        walk.folder(work_fd, "")
        if journal is not None and not journal.intact:
            journal.close()
            journal = None
        state = FolderState(limits, journal)
        state.found(walk)
        return state, walk.contents

    @staticmethod
    def _visit_changes(work_fd: int, state: FolderState, changes: Changes, walk: Scan) -> None:
        """Bring ``state`` up to date by visiting what ``changes`` names with ``walk`` (a
        scan trusting ``state.previous``, watching with ``state.journal``)."""
        assert state.journal is not None
        state.since_full_scan += 1
        folders, files = changes
        if folders:  # what was under them is found again, or is gone
            state.journal.forget(folders)
            for path in [path for path in state.entries if within(path, folders)]:
                state.drop(path)
                state.previous.pop(path, None)
        for path in files:
            state.previous.pop(path, None)  # read again, whatever its time says
        lacking: set[str] = set()
        if walk.known != state.hashes:  # else the caller holds every content it was given
            lacking = {path for path, e in state.entries.items() if e[4] and walk.known.get(path) != e[1]}
        names = {path for path in files | state.linked | lacking if not within(path, folders)}
        for path in names & state.entries.keys():
            state.drop(path)
        for path in sorted(folders | names):
            parent = path.rpartition("/")[0]
            if path not in folders or not within(parent, folders):  # else visited with a folder that holds it
                _visit(work_fd, walk, path)
        # A name found linked to a file the journal did not report: that file may have been
        # written through the new name, so it is read again too.
        linked_now = {e[6] for e in walk.entries if e[0] in walk.linked and e[0] not in state.linked}
        for path in [path for path, e in state.entries.items() if e[6] in linked_now] if linked_now else ():
            state.drop(path)
            state.previous.pop(path, None)
            _visit(work_fd, walk, path)
        if not state.journal.intact:  # a folder visited whole could not be watched
            state.close()
        state.found(walk)


def _trusted(walk: Scan) -> dict[str, list]:
    """What a later scan may trust of the files ``walk`` found."""
    return {
        e[0]: [e[5], e[2], e[6], e[1], e[4]]
        for e in walk.entries
        if sandbox_snapshot.reusable(e, walk.started)
    }


def _visit(work_fd: int, walk: Scan, path: str) -> None:
    """Have ``walk`` visit what ``path`` (relative to ``work_fd``) is now, if anything."""
    parent, _, name = path.rpartition("/")
    holder = _open_folder(work_fd, parent)
    if holder is not None:
        try:
            walk.name(holder, name, path)
        finally:
            os.close(holder)


def _open_folder(work_fd: int, path: str) -> int | None:
    """An open descriptor of folder ``path`` (relative to ``work_fd``; ``""`` for it), never
    reached through a link; None when it is not a folder (any more)."""
    folder = os.dup(work_fd)
    for part in path.split("/") if path else ():
        try:
            inner = os.open(part, sandbox_snapshot.FOLDER, dir_fd=folder)
        except OSError:
            os.close(folder)
            return None
        os.close(folder)
        folder = inner
    return folder
