"""Memory stores' folders on the host, which the confined host binds into its sandboxes at
``/mnt/memory/<slug>`` (read-only for a ``read_only`` store).

The engine fills a folder from the store and reads it back after a tool call. The tools
may have left anything in it (links to the engine's own files, fifos, a million files),
so reading never follows a link, reads only regular files, opens each with
``O_NOFOLLOW`` and checks it on the open descriptor, and is bounded by the store's
:class:`~agentjournal.domain.memory.MemoryQuota`: the files are counted and their sizes
summed from the folders' listings before any is read, and a file is never read past the
size a memory may have.
Filling it first removes what is there (``shutil.rmtree`` removes links, never what
they point to), so what the tools see is exactly the store.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

from agentjournal.domain.memory import MemoryQuota

FILE_MODE, FOLDER_MODE = 0o644, 0o755


def fill_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Make ``folder`` hold exactly ``files`` (paths relative to it)."""
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.is_symlink() or folder.exists():
        folder.unlink()
    folder.mkdir(parents=True, mode=FOLDER_MODE)
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        target.write_bytes(data)
        target.chmod(FILE_MODE)


def read_folder(folder: Path, max_file_bytes: int, quota: MemoryQuota) -> dict[str, bytes | None]:
    """Every regular file under ``folder`` by its path relative to it: its bytes, or None
    when it is larger than ``max_file_bytes``. Links, and what is not a regular file or a
    folder, are left out. Raises
    :class:`~agentjournal.domain.memory.MemoryQuotaExceeded` when there are more files
    than ``quota.memories``, or those within ``max_file_bytes`` hold more than
    ``quota.total_bytes`` (as listed, or as read, should they grow meanwhile)."""
    listed = _listed(folder, quota)
    within = sum(size for size in listed.values() if size <= max_file_bytes)
    if within > quota.total_bytes:
        raise quota.folder_of_too_many_bytes()
    found: dict[str, bytes | None] = {}
    read = 0
    for path, size in listed.items():
        is_file, data = _read(str(folder / path), max_file_bytes if size <= max_file_bytes else -1)
        if not is_file:
            continue
        found[path] = data
        read += len(data or b"")
        if read > quota.total_bytes:
            raise quota.folder_of_too_many_bytes()
    return found


def _listed(folder: Path, quota: MemoryQuota) -> dict[str, int]:
    """The size of every regular file under ``folder`` as its folder lists it (no link
    followed), by its path relative to ``folder``; more than ``quota.memories`` of them
    raises, the walk going no further."""
    sizes: dict[str, int] = {}
    if not folder.is_dir() or folder.is_symlink():
        return sizes
    for where, names, files in os.walk(folder, followlinks=False):
        names[:] = [n for n in names if not os.path.islink(os.path.join(where, n))]
        for name in files:
            path = os.path.join(where, name)
            try:
                info = os.lstat(path)
            except OSError:  # gone meanwhile
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if len(sizes) >= quota.memories:
                raise quota.folder_of_too_many_files()
            sizes[os.path.relpath(path, folder)] = info.st_size
    return sizes


def _read(path: str, limit: int) -> tuple[bool, bytes | None]:
    """Whether ``path`` is a regular file (opened without following a link), and its
    bytes: None when over ``limit`` (read no further than one byte past it; a negative
    ``limit``, for a file listed as too large, reads none)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False, None  # a link, or gone meanwhile
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return False, None
        if limit < 0:
            return True, None
        data = file.read(limit + 1)
        return True, (None if len(data) > limit else data)
