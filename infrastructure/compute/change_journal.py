"""The change journal of a host work folder: an inotify watch on each of its folders, set
up while a full scan walks them, so the next snapshot visits only the names that changed.

**What the kernel tells.** A watch on a folder reports, by name, each thing that happens to
what the folder holds: a file created, written, closed after a write, its metadata changed,
deleted, moved in or out (``WATCHED``). The events are queued synchronously with the
system call that causes them, so once a tool's command has returned, everything it did is
in the queue, and :meth:`ChangeJournal.changes` reads it without waiting. A name reported
as a folder (``IN_ISDIR``) is visited again whole, with new watches: a folder created or
moved in and filled before its watch existed is then not missed, and a folder deleted or
moved out takes its watches and what the last scan found under it along.

**When it cannot be trusted** :meth:`~ChangeJournal.changes` answers ``None``, and the caller
scans the whole folder again with a new journal: the queue overflowed (``IN_Q_OVERFLOW``, as
a command that changes more than ``max_queued_events`` names in one call makes it); a
watch could not be added (the user's watches ran out, ``ENOSPC``, or the folder holds more
folders than ``MAX_WATCHES``, as a model that makes 100,000 folders would); the work folder
itself was moved, deleted or unmounted; a folder's watch went away (``IN_IGNORED``,
``IN_MOVE_SELF``, ``IN_DELETE_SELF``, ``IN_UNMOUNT``) without its parent reporting the name
in the same read; an event came for a watch the journal does not know. A new process has
no journal, so it starts with a full scan.

**What it cannot see.** A write through a shared ``mmap`` sends no event itself, but the
descriptor opened to write sends ``IN_CLOSE_WRITE`` when it is closed, at the latest when its
process ends, and every process a tool call starts ends with the call. A write to a file
through another name (a hard link) is reported where that name lies, which may be a folder
no watch covers (an ignored name, such as ``node_modules``, or beyond the deepest path a
snapshot records): the caller looks at files with several names at every snapshot, and
scans the whole folder every so often as the safety net for what no event reports (see
:mod:`~agentjournal.infrastructure.compute.folder_scans`).

Linux only, through ``inotify_simple`` (a small, maintained ctypes binding of
``inotify_init1``, ``inotify_add_watch`` and ``inotify_rm_watch``); a watch is added
through ``/proc/self/fd`` to the folder the scan has open, so it is on that very folder,
never on one a link swapped in since leads to. Elsewhere, or when no inotify instance can
be had, :meth:`ChangeJournal.open` gives none and every snapshot is a full scan.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable, Collection
from typing import NamedTuple

from inotify_simple import Event, INotify, flags

WATCHED = (
    flags.CREATE
    | flags.DELETE
    | flags.MODIFY
    | flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.MOVE_SELF
    | flags.DELETE_SELF
    | flags.ONLYDIR
)
"""What a watch reports: every change to the names a folder holds, and its own end. Reads
(``IN_ACCESS``, ``IN_OPEN``, ``IN_CLOSE_NOWRITE``) are not asked for: a scan reads files."""

WATCH_ENDED = flags.IGNORED | flags.MOVE_SELF | flags.DELETE_SELF | flags.UNMOUNT
"""What a watch says of its own folder when the folder went away or moved."""

MAX_WATCHES = 16_384
"""Folders one journal watches at most: the user's watches are shared by every journal (and
every other program) of that user, so a work folder with more gives up its journal rather
than take them all; its snapshots are then full scans."""


MAX_OPEN_JOURNALS = 32
"""Journals this process holds open at once, whatever the number of sessions: a user has few
inotify instances (128 by default), shared with every other program of that user. A work
folder snapshotted while as many are open gets none, and full scans."""

_open_journals = threading.BoundedSemaphore(MAX_OPEN_JOURNALS)


class Changes(NamedTuple):
    """What changed since the last read, by path relative to the work folder: ``folders``
    to visit again whole, ``files`` (or names of any kind) to look at again."""

    folders: set[str]
    files: set[str]


def within(path: str, folders: Collection[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or lies inside one of them."""
    end = path.find("/")
    while end != -1:
        if path[:end] in folders:
            return True
        end = path.find("/", end + 1)
    return path in folders


class ChangeJournal:
    """The watches on one work folder's folders, and the reading of their events."""

    def __init__(
        self,
        notify: INotify,
        max_watches: int = MAX_WATCHES,
        *,
        slot: threading.BoundedSemaphore | None = None,
    ) -> None:
        """A journal on ``notify``; ``slot`` is the count of open journals it was taken
        from (as :meth:`open` takes one), given back when it ends."""
        self._notify = notify
        self._closed = weakref.finalize(self, _end, notify, slot)
        """Ends the journal once, on :meth:`close` or when it is collected."""
        self.max_watches = max_watches
        self._paths: dict[int, str] = {}
        """Each watch's folder, by path (``""`` for the work folder itself)."""
        self._watches: dict[str, int] = {}
        """The same, the other way round."""
        self._retired: set[int] = set()
        """Watches removed here, whose last events (``IN_IGNORED`` at least) may still come."""
        self.intact = True
        """False once a watch could not be added: the journal then misses changes."""

    @classmethod
    def open(cls) -> ChangeJournal | None:
        """A new journal, or None where inotify is not to be had (not Linux, no ``/proc``,
        the user's inotify instances used up, ``MAX_OPEN_JOURNALS`` open in this process)."""
        if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/fd"):
            return None
        slot = _open_journals
        if not slot.acquire(blocking=False):
            return None
        try:
            return cls(INotify(nonblocking=True), slot=slot)
        except OSError:
            slot.release()
            return None

    def watch(self, folder: int, path: str) -> None:
        """Watch the open folder ``folder``, at ``path``. Never raises: a watch that cannot
        be added makes the journal not :attr:`intact`."""
        if not self.intact:
            return
        if len(self._watches) >= self.max_watches:
            self.intact = False
            return
        try:
            watch = self._notify.add_watch(f"/proc/self/fd/{folder}", WATCHED)
        except OSError:  # ENOSPC: the user's watches ran out; EACCES: a folder it cannot read
            self.intact = False
            return
        earlier = self._paths.get(watch)  # the same folder under another path: it moved
        if earlier is not None:
            self._watches.pop(earlier, None)
        self._paths[watch] = path
        self._watches[path] = watch

    def forget(self, folders: Collection[str]) -> None:
        """Stop watching ``folders`` and every folder inside them: they were deleted, moved
        or are about to be visited again whole (which watches them anew)."""
        if not folders:
            return
        for path in [path for path in self._watches if within(path, folders)]:
            watch = self._watches.pop(path)
            del self._paths[watch]
            self._retired.add(watch)
            try:
                self._notify.rm_watch(watch)
            except OSError:  # the kernel dropped it already: its folder is gone
                pass

    def changes(self, kept: Callable[[str, str], bool]) -> Changes | None:
        """What changed since the last call (or since the watches were set up), read
        without waiting; None when the journal cannot be trusted to have seen it all.
        ``kept(name, path)`` says whether a name is one a scan records; others are skipped."""
        if not self.intact:
            return None
        folders: set[str] = set()
        files: set[str] = set()
        ended: list[str] = []
        for event in self._read():
            if event.mask & flags.Q_OVERFLOW:
                return None
            folder = self._paths.get(event.wd)
            if folder is None:
                if event.wd not in self._retired:
                    return None  # a watch this journal does not know of
                if event.mask & flags.IGNORED:
                    self._retired.discard(event.wd)
                continue
            if not event.name:  # about the watched folder itself
                if event.mask & WATCH_ENDED:
                    ended.append(folder)
                continue  # its metadata: its parent reports that by name
            path = f"{folder}/{event.name}" if folder else event.name
            if not kept(event.name, path):
                continue
            (folders if event.mask & flags.ISDIR else files).add(path)
        if any(not folder or not within(folder, folders) for folder in ended):
            return None  # the work folder itself, or a folder no parent's event accounts for
        return Changes(folders, {path for path in files if not within(path, folders)})

    def _read(self) -> list[Event]:
        events: list[Event] = []
        while batch := self._notify.read(timeout=0):
            events.extend(batch)
        return events

    def close(self) -> None:
        """Remove every watch, all at once."""
        self._closed()


def _end(notify: INotify, slot: threading.BoundedSemaphore | None) -> None:
    """Close ``notify`` (every watch goes with it), and give its journal's ``slot`` back."""
    notify.close()
    if slot is not None:
        slot.release()
