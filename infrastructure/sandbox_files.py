"""The file tools' half that runs inside the Docker sandbox, as the sandbox's user.

The Docker compute runs this file's source with
``python3 -I -S -c SOURCE OPERATION WORK_FOLDER PATH LIMIT`` for each file operation,
so that finding a file and using it are one step inside the sandbox. A path is
walked one name at a time from an open descriptor of the work folder, and every
name is opened with ``O_NOFOLLOW``: the kernel never follows a symbolic link on
the way, so a link swapped in while the walk runs cannot lead out. A link met on
the way is read and resolved here, against the work folder, and followed only if
it stays inside. The work folder is a filesystem of its own, so no rename or hard
link can bring an outside file into it either.

Operations (LIMIT bounds what each may produce):

* ``read``: the bytes of a regular file of at most LIMIT bytes, on stdout. Its type
  and size are checked on the open descriptor before a byte is read.
* ``write``: stdin becomes the file. It is written beside the file under a
  temporary name and renamed over it, so a failed write (a full work folder)
  leaves the old file as it was. Missing folders on the way are made.
* ``list``: ``SIZE<TAB>PATH<NUL>`` for at most LIMIT regular files under a folder,
  paths relative to the work folder, skipping the work folder's ``.venv``.
* ``space``: ``SIZE FREE``, the work folder's size and free bytes.

A refusal exits with status ``REFUSED`` and one line on stderr: a reason word
(see ``REASONS``), then maybe a number. Only the standard library is used: this
runs on the sandbox's Python, not the engine's.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import sys
from collections.abc import Callable

REFUSED = 3
MAX_LINKS = 40  # as the kernel: a path through more links than this is a loop
CHUNK = 1 << 20
FOLDER = os.O_RDONLY | os.O_DIRECTORY
REASONS = {
    errno.ENOENT: "missing",
    errno.ENOTDIR: "notdir",
    errno.EISDIR: "isdir",
    errno.ELOOP: "loop",
    errno.ENAMETOOLONG: "toolong",
    errno.ENOSPC: "quota",
    errno.EDQUOT: "quota",
    errno.EACCES: "denied",
    errno.EPERM: "denied",
}

# What to do at the end of a walk: called with the open folder that holds the last name,
# that name (None when the path is the work folder itself), and all the names of the path
# as walked, links resolved.
Last = Callable[[int, "str | None", list[str]], None]


class Refused(Exception):
    """Ends the operation: a reason word for the engine, and maybe a number."""


class LinkMet(Exception):
    """A name on the path is a symbolic link; ``target`` is its text (or the name itself,
    to walk the same path again, when it stopped being a link while it was read)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def names_below(work: str, path: str) -> list[str]:
    """The names that lead from the work folder to ``path`` (relative to the work folder, or
    absolute), ``..`` taken by name. A path that leaves the work folder is refused."""
    full = posixpath.normpath(posixpath.join(work, path))
    if full != work and not full.startswith(work + "/"):
        raise Refused("outside")
    return [name for name in full[len(work) :].split("/") if name]


def open_at(folder: int, name: str, flags: int) -> int:
    """Open ``name`` in ``folder`` without following a link: a link raises LinkMet."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except OSError as error:
        # O_NOFOLLOW fails with ELOOP on a link, or ENOTDIR with O_DIRECTORY.
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        try:
            raise LinkMet(os.readlink(name, dir_fd=folder)) from None
        except OSError:
            if error.errno == errno.ELOOP or is_folder_or_link(folder, name):
                raise LinkMet(name) from None  # it was a link a moment ago: walk again
            raise error from None


def is_folder_or_link(folder: int, name: str) -> bool:
    try:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) or stat.S_ISLNK(mode)


def open_folder(folder: int, name: str, make: bool) -> int:
    try:
        return open_at(folder, name, FOLDER)
    except FileNotFoundError:
        if not make:
            raise
    try:
        os.mkdir(name, 0o755, dir_fd=folder)
    except FileExistsError:
        pass
    return open_at(folder, name, FOLDER)


def walk(work: str, work_fd: int, path: str, last: Last, *, make_folders: bool = False) -> None:
    """Walk ``path`` from the work folder and call ``last`` on its last name. At a link the
    walk starts again from the work folder, on the path the link makes."""
    names = names_below(work, path)
    for _ in range(MAX_LINKS + 1):
        folder = os.dup(work_fd)
        try:
            for depth, name in enumerate(names):
                try:
                    if depth == len(names) - 1:
                        return last(folder, name, names)
                    inner = open_folder(folder, name, make_folders)
                except LinkMet as link:
                    rest = names[depth + 1 :]
                    names = names_below(work, posixpath.join(work, *names[:depth], link.target, *rest))
                    break
                os.close(folder)
                folder = inner
            else:
                return last(folder, None, names)
        finally:
            os.close(folder)
    raise Refused("loop")


def read(folder: int, name: str | None, limit: int) -> None:
    if name is None:
        raise Refused("notfile")
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    fd = open_at(folder, name, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused("notfile")
        if info.st_size > limit:
            raise Refused("toolarge", limit)
        sent = 0
        while block := os.read(fd, CHUNK):
            sent += len(block)
            if sent > limit:  # it grew while it was read
                raise Refused("toolarge", limit)
            sys.stdout.buffer.write(block)
        sys.stdout.buffer.flush()
    finally:
        os.close(fd)


def write(folder: int, name: str | None, _: list[str]) -> None:
    if name is None:
        raise Refused("isdir")
    try:  # write through a link, as to any path, if it stays in the work folder
        raise LinkMet(os.readlink(name, dir_fd=folder))
    except OSError:
        pass
    temporary = f".agentjournal-{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o644, dir_fd=folder)
    try:
        while block := sys.stdin.buffer.read(CHUNK):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        os.unlink(temporary, dir_fd=folder)
        raise
    finally:
        os.close(fd)


def listing(folder: int, name: str | None, names: list[str], limit: int) -> None:
    top = open_at(folder, name, FOLDER) if name is not None else os.dup(folder)
    listed = 0
    try:
        for root, folders, files, root_fd in os.fwalk(".", dir_fd=top):
            folders.sort()
            if root == "." and not names and ".venv" in folders:
                folders.remove(".venv")
            for file in sorted(files):
                try:
                    info = os.stat(file, dir_fd=root_fd, follow_symlinks=False)
                except OSError:  # removed since the folder was read
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                shown = posixpath.normpath(posixpath.join(*names, root, file))
                sys.stdout.buffer.write(b"%d\t%s\0" % (info.st_size, os.fsencode(shown)))
                listed += 1
                if listed >= limit:
                    return
    finally:
        os.close(top)


def space(work_fd: int) -> tuple[int, int]:
    """The work folder's size and free bytes."""
    info = os.fstatvfs(work_fd)
    return info.f_blocks * info.f_frsize, info.f_bavail * info.f_frsize


def run(operation: str, work: str, work_fd: int, path: str, limit: int) -> None:
    if operation == "read":
        walk(work, work_fd, path, lambda folder, name, _: read(folder, name, limit))
    elif operation == "write":
        walk(work, work_fd, path, write, make_folders=True)
    elif operation == "list":
        walk(work, work_fd, path, lambda folder, name, names: listing(folder, name, names, limit))
    elif operation == "space":
        sys.stdout.write("%d %d" % space(work_fd))
    else:
        raise Refused("unknown", operation)


def main(argv: list[str]) -> int:
    operation, work, path, limit = argv[1], argv[2], argv[3], int(argv[4])
    work_fd = os.open(work, FOLDER | os.O_CLOEXEC)
    try:
        run(operation, work, work_fd, path, limit)
        return 0
    except (Refused, OSError) as problem:
        if isinstance(problem, OSError):
            reason = REASONS.get(problem.errno or 0, "error")
            detail = space(work_fd)[0] if reason == "quota" else os.strerror(problem.errno or 0)
            problem = Refused(reason, detail)
        if operation == "write":  # let the engine finish sending, so it hears the refusal
            while sys.stdin.buffer.read(CHUNK):
                pass
        sys.stderr.write(" ".join(map(str, problem.args)) + "\n")
        return REFUSED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
