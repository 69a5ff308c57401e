"""The file tools' half that runs inside the Docker sandbox, as the sandbox's user.

The Docker compute runs this file's source with
``python3 -I -S -c SOURCE OPERATION WORK_FOLDER PATH LIMIT [PATTERN SECONDS]`` for
each file operation, so that finding a file and using it are one step inside the
sandbox (the host compute runs it the same way for its searches). A path is
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
* ``list``: ``MORE<NUL>`` (``1`` when there were more than LIMIT) then
  ``SIZE<TAB>PATH<NUL>`` for at most LIMIT regular files under a folder, paths relative
  to the work folder, skipping the work folder's ``.venv``.
* ``space``: ``SIZE FREE``, the work folder's size and free bytes.
* ``glob``: the files and folders under a folder whose paths (from that folder)
  match the doublestar PATTERN (see :func:`glob_regex`), newest first: ``MORE<NUL>``
  (``1`` when more matched than the LIMIT given, or the search stopped early) then
  ``PATH<NUL>`` for each, paths relative to the work folder, a folder's ending in ``/``.
* ``grep``: the lines matching the regular expression PATTERN in a file, or in the
  files under a folder: ``MORE<NUL>`` then ``PATH<NUL>LINE<NUL>TEXT<NUL>`` for at most
  LIMIT of them. Binary files, and ``.git`` and ``node_modules`` folders, are skipped.

A search never follows or lists a link, skips the engine's own folders at the top
of the work folder (``ENGINE_FOLDERS``), stops after ``MAX_VISITED`` names, and is
killed by ``SIGALRM`` after SECONDS, however its pattern backtracks.

A refusal exits with status ``REFUSED`` and one line on stderr: a reason word
(see ``REASONS``), then maybe a number. Only the standard library is used: this
runs on the sandbox's Python, not the engine's.
"""

from __future__ import annotations

import errno
import itertools
import os
import posixpath
import re
import signal
import stat
import sys
from collections.abc import Callable, Iterator

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

ENGINE_FOLDERS = (".venv", ".home")  # the packages' environment, the host commands' home
SKIPPED_BY_GREP = (".git", "node_modules")
MAX_VISITED = 100_000  # names a search looks at before it stops
LINE_BYTES = 64 * 1024  # a longer line is searched in pieces of this size
SHOWN_CHARS = 1000  # the most of a matching line that is shown, around the match
BINARY_PROBE = 8192  # a file with a NUL byte in its first bytes is binary

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
    try:
        found = list(itertools.islice(regular_files(top, names), limit + 1))
    finally:
        os.close(top)
    records = [b"%d\t%s" % (size, os.fsencode(shown)) for shown, size in found[:limit]]
    sys.stdout.buffer.write(b"\0".join([b"1" if len(found) > limit else b"0", *records]) + b"\0")


def regular_files(top: int, names: list[str]) -> Iterator[tuple[str, int]]:
    """The regular files below the open folder ``top`` (``names`` lead to it from the work
    folder), folder by folder in name order, never through a link: each one's path from
    the work folder and its size. The work folder's ``.venv`` is left out."""
    for root, folders, files, root_fd in os.fwalk(".", dir_fd=top):
        folders.sort()
        if root == "." and not names and ".venv" in folders:
            folders.remove(".venv")
        for file in sorted(files):
            try:
                info = os.stat(file, dir_fd=root_fd, follow_symlinks=False)
            except OSError:  # removed since the folder was read
                continue
            if stat.S_ISREG(info.st_mode):
                yield posixpath.normpath(posixpath.join(*names, root, file)), info.st_size


def space(work_fd: int) -> tuple[int, int]:
    """The work folder's size and free bytes."""
    info = os.fstatvfs(work_fd)
    return info.f_blocks * info.f_frsize, info.f_bavail * info.f_frsize


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression a doublestar glob pattern stands for, matched against a
    whole path relative to the folder searched. ``*`` and ``?`` match within one name
    (a leading dot included), ``**`` as a whole name spans any number of folders (none
    included), ``[...]`` is a class of characters (``[!...]`` its complement), ``{a,b}``
    either alternative, and ``\\`` makes the next character literal."""
    try:
        return re.compile(_glob_part(pattern, 0, "")[0], re.DOTALL)
    except (ValueError, re.error) as problem:
        raise Refused("badpattern", problem) from None


def _glob_part(pattern: str, at: int, closing: str) -> tuple[str, int]:
    """The regular expression for ``pattern`` from ``at`` up to one of the ``closing``
    characters (inside braces) or its end, and where it stopped."""
    out: list[str] = []
    while at < len(pattern) and pattern[at] not in closing:
        char, after = pattern[at], pattern[at + 2 : at + 3]
        if pattern.startswith("**", at) and (at == 0 or pattern[at - 1] == "/") and after in ("/", ""):
            if after == "/":
                out.append("(?:[^/]*/)*")  # zero or more folders
            elif out and out[-1] == "/":
                out[-1] = "(?:/.*)?"  # the folder itself, and all below it
            else:
                out.append(".*")
            at += 3 if after else 2
            continue
        if char == "*":
            out.append("[^/]*")
            while pattern.startswith("*", at + 1):
                at += 1
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", at + 2)
            if end < 0:
                raise ValueError("a '[' has no closing ']'")
            body = pattern[at + 1 : end]
            negated = body[:1] in ("!", "^")
            body = (body[1:] if negated else body).replace("\\", "\\\\")
            out.append(f"[^/{body}]" if negated else f"[{body}]")
            at = end
        elif char == "{":
            options = []
            while True:
                option, at = _glob_part(pattern, at + 1, ",}")
                options.append(option)
                if at >= len(pattern):
                    raise ValueError("a '{' has no closing '}'")
                if pattern[at] == "}":
                    break
            out.append("(?:" + "|".join(options) + ")")
        elif char == "\\" and at + 1 < len(pattern):
            at += 1
            out.append(re.escape(pattern[at]))
        else:
            out.append(re.escape(char))
        at += 1
    return "".join(out), at


def grep_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as problem:
        raise Refused("badpattern", problem) from None


Entry = tuple[str, str, int, os.stat_result]
"""A file or folder a search meets: its path from where the search started, its name,
the open folder that holds it, and its status (not following a link)."""


def entries(top: int, names: list[str], skipped: tuple[str, ...]) -> Iterator[Entry | None]:
    """The regular files and folders below the open folder ``top`` (``names`` lead to it
    from the work folder), folders first, in name order, never through a link. Yields
    None and ends when it has looked at ``MAX_VISITED`` names."""
    visited = 0
    for root, folders, files, root_fd in os.fwalk(".", dir_fd=top):
        at_work_folder = root == "." and not names
        folders[:] = sorted(
            f for f in folders if f not in skipped and not (at_work_folder and f in ENGINE_FOLDERS)
        )
        for name in [*folders, *sorted(files)]:
            visited += 1
            if visited > MAX_VISITED:
                yield None
                return
            try:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:  # removed since the folder was read
                continue
            if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                yield posixpath.normpath(posixpath.join(root, name)), name, root_fd, info


def glob(folder: int, name: str | None, names: list[str], limit: int, pattern: str) -> None:
    matcher = glob_regex(pattern)
    top = open_at(folder, name, FOLDER) if name is not None else os.dup(folder)
    found: list[tuple[float, str]] = []
    more = False
    try:
        for entry in entries(top, names, ()):
            if entry is None:
                more = True
                break
            relative, _, _, info = entry
            if matcher.fullmatch(relative):
                shown = posixpath.join(*names, relative) + ("/" if stat.S_ISDIR(info.st_mode) else "")
                found.append((-info.st_mtime, shown))
    finally:
        os.close(top)
    found.sort()
    records = [b"1" if more or len(found) > limit else b"0"]
    records += [os.fsencode(shown) for _, shown in found[:limit]]
    sys.stdout.buffer.write(b"\0".join(records) + b"\0")


def grep(folder: int, name: str | None, names: list[str], limit: int, pattern: str) -> None:
    matcher = grep_regex(pattern)
    start = open_at(folder, name, os.O_RDONLY | os.O_NONBLOCK) if name is not None else os.dup(folder)
    found: list[tuple[str, int, str]] = []
    try:
        kind = os.fstat(start).st_mode
        if stat.S_ISREG(kind):
            search_file(os.dup(start), posixpath.join(*names), matcher, found, limit)
            stopped = False
        elif stat.S_ISDIR(kind):
            stopped = search_folder(start, names, matcher, found, limit)
        else:
            raise Refused("notfile")
    finally:
        os.close(start)
    records = [b"1" if stopped or len(found) > limit else b"0"]
    for shown, number, text in found[:limit]:
        records += [os.fsencode(shown), b"%d" % number, text.encode("utf-8", errors="replace")]
    sys.stdout.buffer.write(b"\0".join(records) + b"\0")


def search_folder(top: int, names: list[str], matcher: re.Pattern[str], found: list[tuple[str, int, str]],
                  limit: int) -> bool:  # fmt: skip
    """Search the regular files below the open folder ``top``; whether it stopped before
    the end (``found`` holds more than ``limit``, or too many names were looked at)."""
    for entry in entries(top, names, SKIPPED_BY_GREP):
        if entry is None or len(found) > limit:
            return True
        relative, name, root_fd, info = entry
        if not stat.S_ISREG(info.st_mode):
            continue
        try:
            fd = open_at(root_fd, name, os.O_RDONLY | os.O_NONBLOCK)
        except (LinkMet, OSError):  # made a link, or unreadable, since it was seen
            continue
        search_file(fd, posixpath.join(*names, relative), matcher, found, limit)
    return False


def search_file(fd: int, shown: str, matcher: re.Pattern[str], found: list[tuple[str, int, str]],
                limit: int) -> None:  # fmt: skip
    """Add the lines of the open file ``fd`` (closed here) that ``matcher`` finds to
    ``found``, up to one more than ``limit``. A binary file is skipped."""
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or b"\0" in file.read(BINARY_PROBE):
            return
        file.seek(0)
        number, whole, last = 0, True, 0
        while block := file.readline(LINE_BYTES):
            if whole:
                number += 1
            whole = block.endswith(b"\n")
            text = block.decode("utf-8", errors="replace").rstrip("\r\n").replace("\0", "\ufffd")
            match = matcher.search(text) if number != last else None
            if match:
                found.append((shown, number, around(text, match.start())))
                last = number
                if len(found) > limit:
                    return


def around(text: str, at: int) -> str:
    """At most ``SHOWN_CHARS`` of a line, around position ``at``; a cut marked ``[...]``."""
    begin = max(0, min(at - SHOWN_CHARS // 2, len(text) - SHOWN_CHARS))
    end = begin + SHOWN_CHARS
    return ("[...] " if begin else "") + text[begin:end] + (" [...]" if end < len(text) else "")


def run(operation: str, work: str, work_fd: int, path: str, limit: int, extra: list[str]) -> None:
    if operation in ("glob", "grep"):
        pattern, seconds = extra[0], int(extra[1])
        signal.alarm(seconds)  # the default action of SIGALRM ends the process
        search = glob if operation == "glob" else grep
        walk(work, work_fd, path, lambda folder, name, names: search(folder, name, names, limit, pattern))
    elif operation == "read":
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
    operation, work, path, limit, *extra = argv[1:]
    work_fd = os.open(work, FOLDER | os.O_CLOEXEC)
    try:
        run(operation, work, work_fd, path, int(limit), extra)
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
