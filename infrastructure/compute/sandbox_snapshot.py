"""Snapshots of a work folder: each regular file's content hash, size and mode, reading
only the files that may have changed since the last snapshot.

Standard library only. The host computes walk with a :class:`Scan` in their own process,
told by a change journal what to visit
(:mod:`~agentjournal.infrastructure.compute.folder_scans`); the Docker compute runs this
file's source in the sandbox (``python3 -I -S -c SOURCE``), with a JSON request on stdin,
so a snapshot is one exec round trip however many files the folder holds (see
:func:`main` for the exchange).

**Cheap when little changed.** The caller hands in what the last scan found
(``previous``: path to ``[mtime_ns, size, inode, hash, stored]``). A file whose
modification time, size and inode, as its folder's listing stats it, are unchanged keeps
its hash without being opened, as ``git status`` does: one ``lstat`` per unchanged file. A file modified within ``RACY_NS`` of the scan that hashed it
could change again within the clock's resolution without its time changing, so the
caller keeps such an entry out of the next ``previous`` (:func:`reusable`), and the
file is read again next time.

**What is kept.** Folders and files whose name matches an ``ignore`` pattern
(``fnmatch``, e.g. ``node_modules``, ``*.pyc``) are skipped, and so are links (never
followed, never recorded), anything not a regular file, and whatever lies deeper than
``MAX_DEPTH`` names (the walk holds a descriptor and a call per level, so it is bounded
whatever a command nests). A file over ``cap`` bytes is hashed but not kept (``stored``
false). The contents of the files whose hash differs from the one the caller already
knows (``known``) come back with the scan.

The walk opens every name with ``O_NOFOLLOW`` from an open descriptor of the work
folder, so a link swapped in meanwhile cannot lead out of it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Collection, Iterable

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
CHUNK = 1 << 20
RACY_NS = 2_000_000_000  # a file changed this close to its scan is read again next time
MAX_DEPTH = 256  # names in a path: what lies deeper is left out, as the file tools refuse such paths

# One file as a scan found it: path, hash, size, mode, stored, mtime_ns, inode.
Entry = list


def scan(
    work_fd: int,
    previous: dict[str, list],
    known: dict[str, str],
    ignore: list[str],
    cap: int,
) -> tuple[int, list[Entry], dict[str, bytes]]:
    """Every regular file under the open folder ``work_fd``: the scan's start time (ns),
    the entries found, and the contents of the stored files whose hash differs from
    ``known`` (path to hash), by path."""
    walk = Scan(previous, known, ignore, cap)
    walk.folder(work_fd, "")
    return walk.started, walk.entries, walk.contents


def reusable(entry: Entry, started: int) -> bool:
    """Whether a later scan may trust ``entry``'s hash while its time, size and inode hold."""
    return entry[5] < started - RACY_NS


class Scan:
    """One scan: what it found so far (``entries``, ``contents``), and how it finds more.

    A scan visits what it is told to: a folder with everything under it (:meth:`folder`),
    or one name (:meth:`name`), so a caller that knows what changed since the last scan
    (a change journal) visits that alone. ``watch``, when given, is called with each
    folder's open descriptor and path (``""`` for the top) before the folder is listed:
    what the caller needs to hear of the folder's later changes. ``linked`` gathers the
    files that have more than one name (hard links): a write through another name is
    not reported where this one lies, so such a file is to be looked at every time."""

    def __init__(
        self,
        previous: dict[str, list],
        known: dict[str, str],
        ignore: list[str],
        cap: int,
        watch: Callable[[int, str], None] | None = None,
    ) -> None:
        self.started = time.time_ns()
        self.previous, self.known, self.cap, self.watch = previous, known, cap, watch
        # Every ``ignore`` pattern as one expression, so a name is tried once.
        self.ignored = re.compile("|".join(fnmatch.translate(pattern) for pattern in ignore) or r"(?!)")
        self.entries: list[Entry] = []
        self.contents: dict[str, bytes] = {}
        self.linked: set[str] = set()

    def kept(self, name: str, path: str) -> bool:
        """Whether a name at ``path`` can be recorded: not ignored, UTF-8 text."""
        if self.ignored.match(name):
            return False
        try:
            path.encode()
        except UnicodeEncodeError:
            return False  # a name that is not UTF-8 text cannot be recorded as a path
        return True

    def folder(self, folder: int, prefix: str) -> None:
        """Scan the open folder ``folder`` at ``prefix`` (``""`` or a path ending in ``/``)
        and everything under it."""
        if prefix.count("/") >= MAX_DEPTH:  # what it holds would be deeper than a path may go
            return
        if self.watch is not None:
            self.watch(folder, prefix[:-1])
        try:
            with os.scandir(folder) as found:
                names = sorted(
                    (item.name, item.is_dir(follow_symlinks=False), _lstat(item)) for item in found
                )
        except OSError:  # a folder the tools' user cannot read: nothing of it can be kept
            return
        for name, is_folder, listed in names:
            path = prefix + name
            if self.kept(name, path):
                self._visit(folder, name, path, is_folder, listed)

    def name(self, folder: int, name: str, path: str) -> None:
        """Scan what ``name`` in the open folder ``folder`` (at ``path``) is now: a file, a
        folder with everything under it, or nothing."""
        try:
            info = os.lstat(name, dir_fd=folder)
        except OSError:
            return
        is_folder = stat.S_ISDIR(info.st_mode)
        self._visit(folder, name, path, is_folder, info if stat.S_ISREG(info.st_mode) else None)

    def _visit(
        self, folder: int, name: str, path: str, is_folder: bool, listed: os.stat_result | None
    ) -> None:
        if is_folder:
            try:
                inner = os.open(name, FOLDER, dir_fd=folder)
            except OSError:  # gone, or swapped for a link, since it was listed
                return
            try:
                self.folder(inner, path + "/")
            finally:
                os.close(inner)
        elif listed is not None:
            before = self.previous.get(path)
            if (
                before is not None
                and _unchanged(before, listed)
                and not (before[4] and self.known.get(path) != before[3])
            ):
                # As the last scan found it, and the caller has its contents: not opened.
                self.entries.append([path, before[3], listed.st_size, stat.S_IMODE(listed.st_mode), before[4],
                                     listed.st_mtime_ns, listed.st_ino])  # fmt: skip
                if listed.st_nlink > 1:
                    self.linked.add(path)
            else:
                self._file(folder, name, path)

    def _file(self, folder: int, name: str, path: str) -> None:
        try:
            fd = os.open(name, FILE, dir_fd=folder)
        except OSError:  # gone, or swapped for a link or a pipe, since it was listed
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return
            mode, size = stat.S_IMODE(info.st_mode), info.st_size
            before = self.previous.get(path)
            if before is not None and _unchanged(before, info):
                digest, stored, data = before[3], before[4], None
                if stored and self.known.get(path) != digest:  # the caller lacks these contents
                    data = _read(fd, size)
                    digest, size = hashlib.sha256(data).hexdigest(), len(data)
            elif size <= self.cap:
                data = _read(fd, size)
                digest, stored, size = hashlib.sha256(data).hexdigest(), True, len(data)
            else:
                digest, stored, data = _hash(fd), False, None
            if data is not None and self.known.get(path) != digest:
                self.contents[path] = data
            self.entries.append([path, digest, size, mode, stored, info.st_mtime_ns, info.st_ino])
            if info.st_nlink > 1:
                self.linked.add(path)
        finally:
            os.close(fd)


def _lstat(item: os.DirEntry) -> os.stat_result | None:
    """The status of a regular file as listed (never through a link); None for anything else."""
    try:
        info = item.stat(follow_symlinks=False)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _unchanged(before: list, info: os.stat_result) -> bool:
    """Whether a file's time, size and inode are as the last scan found them."""
    return before[:3] == [info.st_mtime_ns, info.st_size, info.st_ino]


def _read(fd: int, size: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, max(size, CHUNK)):
        chunks.append(chunk)
    return b"".join(chunks)


def _hash(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _parts(path: str) -> list[str]:
    """The names of ``path``, a plain path inside the work folder (never ``..``, ``.`` or empty)."""
    parts = path.split("/")
    if not path or any(part in ("", ".", "..") for part in parts):
        raise OSError(22, "not a path inside the work folder", path)
    return parts


def _parent(work_fd: int, path: str) -> tuple[int, str]:
    """An open descriptor of the folder that holds ``path`` (the caller closes it), and the
    last name; folders on the way are made, and never reached through a link."""
    parts = _parts(path)
    folder = os.dup(work_fd)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, FOLDER, dir_fd=folder)
            except FileNotFoundError:
                os.mkdir(part, 0o755, dir_fd=folder)
                inner = os.open(part, FOLDER, dir_fd=folder)
            os.close(folder)
            folder = inner
    except BaseException:
        os.close(folder)
        raise
    return folder, parts[-1]


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder on the way to ``paths``: ``a`` and ``a/b`` for ``a/b/c.txt``."""
    return {"/".join(parts[:depth]) for parts in map(_parts, paths) for depth in range(1, len(parts))}


def restore(work_fd: int, path: str, mode: int, data: bytes) -> None:
    """Write ``data`` to ``path`` (relative to the open folder ``work_fd``) with permission
    bits ``mode``, making the folders on the way; an empty folder in the file's place is
    removed first. Every name is opened with ``O_NOFOLLOW``: a link on the way, or in the
    file's place, is refused (``ELOOP`` or ``ENOTDIR``), never followed."""
    folder, name = _parent(work_fd, path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(name, flags, 0o600, dir_fd=folder)
        except IsADirectoryError:  # the file became a folder since: unless it holds something, it goes
            os.rmdir(name, dir_fd=folder)
            fd = os.open(name, flags, 0o600, dir_fd=folder)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode & 0o7777)
        finally:
            os.close(fd)
    finally:
        os.close(folder)


def remove(work_fd: int, path: str, keep: Collection[str] = ()) -> None:
    """Delete the file at ``path`` if it is there (a link in its place is deleted, not
    followed), then each folder on its way that this left empty, deepest first, but for
    those in ``keep`` (folders that files are about to be written into). A folder is
    removed by name from the open folder that holds it, and ``rmdir`` removes no link and
    no folder that holds anything, so nothing outside the path is ever touched."""
    parts = _parts(path)
    holders = [os.dup(work_fd)]
    """Open descriptors of the folders on the way: ``holders[i]`` holds ``parts[i]``."""
    try:
        for part in parts[:-1]:
            try:
                holders.append(os.open(part, FOLDER, dir_fd=holders[-1]))
            except FileNotFoundError:
                return
        try:
            os.unlink(parts[-1], dir_fd=holders[-1])
        except FileNotFoundError:
            pass
        for depth in reversed(range(len(parts) - 1)):
            if "/".join(parts[: depth + 1]) in keep:
                break
            try:
                os.rmdir(parts[depth], dir_fd=holders[depth])
            except OSError:  # it holds more (files the log does not know, or still to remove)
                break
    finally:
        for holder in holders:
            os.close(holder)


def main() -> int:
    """Read a JSON request line on stdin and answer it.

    ``{"op": "scan", "work", "previous", "known", "ignore", "cap"}``: write one JSON line
    (``started``, ``entries`` and ``sizes``, the length of each content that follows, by
    path) and then those contents, back to back.

    ``{"op": "restore", "work", "files": [[path, mode, size], ...], "remove": [path, ...]}``,
    followed on stdin by the files' contents back to back: delete those to remove, and the
    folders that leaves empty (see :func:`remove`), then write each file (see
    :func:`restore`). Removing first lets a file take the place of a folder, or the reverse."""
    stdin = sys.stdin.buffer
    request = json.loads(stdin.readline())
    work_fd = os.open(request["work"], FOLDER)
    if request["op"] == "restore":
        keep = folders_of(path for path, _, _ in request["files"])
        for path in request.get("remove", []):
            remove(work_fd, path, keep)
        for path, mode, size in request["files"]:
            data = stdin.read(size)
            if len(data) != size:
                raise OSError(5, "the contents ended early", path)
            restore(work_fd, path, mode, data)
        return 0
    started, entries, contents = scan(
        work_fd, request["previous"], request["known"], request["ignore"], request["cap"]
    )
    head = {"started": started, "entries": entries, "sizes": [[p, len(d)] for p, d in contents.items()]}
    out = sys.stdout.buffer
    out.write(json.dumps(head).encode() + b"\n")
    for data in contents.values():
        out.write(data)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
