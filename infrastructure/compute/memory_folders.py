"""Memory stores' folders on the host, which the confined host binds into its sandboxes at
``/mnt/memory/<slug>`` (read-only for a ``read_only`` store).

The engine fills a folder from the store and reads it back after a tool call. The tools
may have left anything in it (links to the engine's own files, fifos, a million files),
so reading never follows a link, reads only regular files, opens each with
``O_NOFOLLOW`` and checks it on the open descriptor, and stops at :data:`MAX_FILES`.
Filling it first removes what is there (``shutil.rmtree`` removes links, never what
they point to), so what the tools see is exactly the store.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

from agentjournal.application.ports import ComputeError

MAX_FILES = 2_000
"""The most files a memory folder is read back with; more is a ComputeError."""

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


def read_folder(folder: Path, max_file_bytes: int) -> dict[str, bytes | None]:
    """Every regular file under ``folder`` by its path relative to it: its bytes, or None
    when it is larger than ``max_file_bytes``. Links, and what is not a regular file or a
    folder, are left out."""
    found: dict[str, bytes | None] = {}
    if not folder.is_dir() or folder.is_symlink():
        return found
    for where, names, files in os.walk(folder, followlinks=False):
        names[:] = [n for n in names if not os.path.islink(os.path.join(where, n))]
        for name in files:
            if len(found) >= MAX_FILES:
                raise ComputeError(f"a memory store's folder holds more than {MAX_FILES} files")
            path = os.path.join(where, name)
            is_file, data = _read(path, max_file_bytes)
            if is_file:
                found[os.path.relpath(path, folder)] = data
    return found


def _read(path: str, limit: int) -> tuple[bool, bytes | None]:
    """Whether ``path`` is a regular file (opened without following a link), and its
    bytes (None when over ``limit``)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False, None  # a link, or gone meanwhile
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return False, None
        data = file.read(limit + 1)
        return True, (None if len(data) > limit else data)
