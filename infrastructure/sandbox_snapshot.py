"""Snapshots of a work folder: each regular file's content hash, size and mode, reading
only the files that may have changed since the last snapshot.

Standard library only. The host compute calls :func:`scan` in its own process; the
Docker compute runs this file's source in the sandbox (``python3 -I -S -c SOURCE``),
with a JSON request on stdin, so a snapshot is one exec round trip however many files
the folder holds (see :func:`main` for the exchange).

**Cheap when little changed.** The caller hands in what the last scan found
(``previous``: path to ``[mtime_ns, size, inode, hash, stored]``). A file whose
modification time, size and inode are unchanged keeps its hash without being read,
as ``git status`` does. A file modified within ``RACY_NS`` of the scan that hashed it
could change again within the clock's resolution without its time changing, so the
caller keeps such an entry out of the next ``previous`` (:func:`reusable`), and the
file is read again next time.

**What is kept.** Folders and files whose name matches an ``ignore`` pattern
(``fnmatch``, e.g. ``node_modules``, ``*.pyc``) are skipped, and so are links (never
followed, never recorded) and anything not a regular file. A file over ``cap`` bytes
is hashed but not kept (``stored`` false). The contents of the files whose hash
differs from the one the caller already knows (``known``) come back with the scan.

The walk opens every name with ``O_NOFOLLOW`` from an open descriptor of the work
folder, so a link swapped in meanwhile cannot lead out of it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
import sys
import time

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
CHUNK = 1 << 20
RACY_NS = 2_000_000_000  # a file changed this close to its scan is read again next time

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
    started = time.time_ns()
    entries: list[Entry] = []
    contents: dict[str, bytes] = {}
    _scan_folder(work_fd, "", previous, known, ignore, cap, entries, contents)
    return started, entries, contents


def reusable(entry: Entry, started: int) -> bool:
    """Whether a later scan may trust ``entry``'s hash while its time, size and inode hold."""
    return entry[5] < started - RACY_NS


def _scan_folder(
    folder: int,
    prefix: str,
    previous: dict[str, list],
    known: dict[str, str],
    ignore: list[str],
    cap: int,
    entries: list[Entry],
    contents: dict[str, bytes],
) -> None:
    try:
        with os.scandir(folder) as found:
            names = sorted(
                (item.name, item.is_dir(follow_symlinks=False), item.is_file(follow_symlinks=False))
                for item in found
            )
    except OSError:  # a folder the tools' user cannot read: nothing of it can be kept
        return
    for name, is_folder, is_file in names:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in ignore):
            continue
        path = prefix + name
        try:
            path.encode()
        except UnicodeEncodeError:
            continue  # a name that is not UTF-8 text cannot be recorded as a path
        if is_folder:
            try:
                inner = os.open(name, FOLDER, dir_fd=folder)
            except OSError:  # gone, or swapped for a link, since it was listed
                continue
            try:
                _scan_folder(inner, path + "/", previous, known, ignore, cap, entries, contents)
            finally:
                os.close(inner)
        elif is_file:
            _scan_file(folder, name, path, previous, known, cap, entries, contents)


def _scan_file(
    folder: int,
    name: str,
    path: str,
    previous: dict[str, list],
    known: dict[str, str],
    cap: int,
    entries: list[Entry],
    contents: dict[str, bytes],
) -> None:
    try:
        fd = os.open(name, FILE, dir_fd=folder)
    except OSError:  # gone, or swapped for a link or a pipe, since it was listed
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        mode, size = stat.S_IMODE(info.st_mode), info.st_size
        before = previous.get(path)
        if before is not None and before[:3] == [info.st_mtime_ns, size, info.st_ino]:
            digest, stored, data = before[3], before[4], None
            if stored and known.get(path) != digest:  # the caller lacks these contents
                data = _read(fd, size)
                digest, size = hashlib.sha256(data).hexdigest(), len(data)
        elif size <= cap:
            data = _read(fd, size)
            digest, stored, size = hashlib.sha256(data).hexdigest(), True, len(data)
        else:
            digest, stored, data = _hash(fd), False, None
        if data is not None and known.get(path) != digest:
            contents[path] = data
        entries.append([path, digest, size, mode, stored, info.st_mtime_ns, info.st_ino])
    finally:
        os.close(fd)


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


def main() -> int:
    """Read a JSON request on stdin (``work``, ``previous``, ``known``, ``ignore``,
    ``cap``); write one JSON line (``started``, ``entries`` and ``sizes``, the length of
    each content that follows, by path) and then those contents, back to back."""
    request = json.load(sys.stdin)
    work_fd = os.open(request["work"], FOLDER)
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
