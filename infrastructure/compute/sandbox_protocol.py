"""The engine's side of the helpers that run where the tools run.

:mod:`~agentjournal.infrastructure.compute.sandbox_files` (the file operations and searches)
and :mod:`~agentjournal.infrastructure.compute.sandbox_fetch` (a web fetch) run in a sandbox
(Docker's, or bubblewrap's on the confined host), or as a child process on the unconfined
host; :mod:`~agentjournal.infrastructure.compute.sandbox_snapshot` restores files in a
sandbox. Every compute uses what is here: the helpers' sources and the limits on their
answers, the checks a model's path or pattern passes before anything starts (a NUL byte
cannot even be passed to a process), and the reading of a helper's answer (its exit
status, stdout and stderr) into the port's types or a :class:`ComputeError` the model
can act on.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import posixpath
import signal
from collections.abc import Sequence
from types import ModuleType

from agentjournal.application.ports import (
    MEMORY_ROOT,
    ComputeError,
    FileEntry,
    FileListing,
    LineMatch,
    LineMatches,
    PathMatches,
    WebPage,
)
from agentjournal.infrastructure.compute import sandbox_files, sandbox_snapshot

MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_PATTERN_BYTES = 8192
MAX_URL_BYTES = 8192
TIMED_OUT = (-signal.SIGALRM, 128 + signal.SIGALRM)
"""The exit status of a helper its alarm ended, as a child process and as a Docker exec report it."""

MAX_FILE_BYTES = 256 * 1024 * 1024
"""The largest file the file tools read from a sandbox (the engine holds it whole)."""
MAX_LISTING_BYTES = 16 * 1024 * 1024
"""The most any other answer of a helper in a sandbox may hold."""
FETCH_HEAD_BYTES = 64 * 1024
"""Room for the line about a fetched page (its URL) before the body."""
FILE_TIMEOUT = 300.0
"""Seconds a file operation in a sandbox may take (256 MiB through the engine)."""


@functools.cache
def helper_source(helper: ModuleType) -> str:
    """A helper module's source, for a sandbox's own Python to run (``python3 -I -S -c``):
    the sandbox cannot see the engine's files."""
    return inspect.getsource(helper)


def check_path(path: str) -> None:
    """Refuse, before anything runs, a path no file can have, or nested deeper than a
    snapshot of the work folder goes (:data:`sandbox_snapshot.MAX_DEPTH` names)."""
    _check_argument(path, "path", MAX_PATH_BYTES)
    names = sum(1 for name in path.split("/") if name not in ("", "."))
    if names > sandbox_snapshot.MAX_DEPTH:
        raise ComputeError(
            f"path {shown(path)} is too deep: {names} names, at most {sandbox_snapshot.MAX_DEPTH}"
        )


def memory_place(slug: str) -> str:
    """Where a sandbox shows the memory store of ``slug``."""
    return f"{MEMORY_ROOT}/{slug}"


def memory_root(path: str, places: Sequence[str]) -> str | None:
    """The memory store's folder (one of ``places``) that absolute ``path`` lies in, if any:
    the file helper then walks from there instead of the work folder, as confined to it."""
    full = posixpath.normpath(path) if path.startswith("/") else ""
    return next((p for p in places if full == p or full.startswith(p + "/")), None)


def check_pattern(pattern: str) -> None:
    """Refuse, before anything runs, a pattern no process can be given."""
    _check_argument(pattern, "pattern", MAX_PATTERN_BYTES)


def check_url(url: str) -> None:
    """Refuse, before anything runs, a URL no process can be given."""
    _check_argument(url, "URL", MAX_URL_BYTES)


def alarm_seconds(timeout: float) -> int:
    """The whole seconds a helper's alarm is set to for ``timeout``: at least one."""
    return max(1, math.ceil(timeout))


def _check_argument(value: str, what: str, limit: int) -> None:
    if "\0" in value:
        raise ComputeError(f"{what} {shown(value)} contains a NUL byte")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ComputeError(f"{what} {shown(value)} is not valid UTF-8 text") from None
    if size > limit:
        raise ComputeError(f"{what} {shown(value)} is too long: {size} bytes, at most {limit}")


def check_answer(
    exit_code: int | None, operation: str, path: str, errors: bytes, timeout: float, hint: str = ""
) -> None:
    """Raise the ComputeError a helper's exit status stands for, if it did not succeed: a
    refusal (the reason it wrote on stderr), its alarm (the time it was given), or a
    failure (with ``hint``, what may have caused it)."""
    if exit_code == 0:
        return
    said = errors.decode("utf-8", errors="replace")
    if exit_code in TIMED_OUT:
        raise ComputeError(f"the {operation} did not finish in {timeout:g} s: narrow the path or the pattern")
    if exit_code == sandbox_files.REFUSED:
        raise ComputeError(refusal(operation, path, said))
    raise ComputeError(f"the {operation} helper failed (exit {exit_code}){hint}:\n{said[-2000:]}")


def refusal(operation: str, path: str, said: str) -> str:
    """A helper's refusal (a reason word, maybe a detail) as a message for the model."""
    reason, _, detail = said.strip().partition(" ")
    where = shown(path)
    if operation in ("list", "glob") and reason in ("missing", "notdir"):
        return f"no folder {where}"
    if reason == "quota":
        return f"disk quota exceeded: the work folder holds at most {size_text(int(detail))}"
    messages = {
        "outside": f"path {where} is outside the work folder",
        "missing": f"no file or folder {where}" if operation == "grep" else f"no file {where}",
        "notdir": f"{where}: a part of the path is not a folder",
        "notfile": f"{where} is not a regular file" + (" or a folder" if operation == "grep" else ""),
        "isdir": f"{where} is a folder, not a file",
        "toolarge": f"{where} is larger than {detail} bytes",
        "loop": f"{where}: too many levels of symbolic links",
        "toolong": f"path {where} is too long",
        "denied": f"{where}: permission denied",
        "badpattern": f"invalid pattern: {detail}",
        "unreachable": f"could not fetch {where}: {detail}",
    }
    return messages.get(reason, f"{where}: {detail or reason}")


def path_matches(output: bytes) -> PathMatches:
    """A ``glob`` answer: ``MORE<NUL>`` then ``PATH<NUL>`` for each match."""
    more, *paths = output.split(b"\0")[:-1]
    return PathMatches(tuple(_text(p) for p in paths), more == b"1")


def line_matches(output: bytes) -> LineMatches:
    """A ``grep`` answer: ``MORE<NUL>`` then ``PATH<NUL>LINE<NUL>TEXT<NUL>`` for each match."""
    more, *fields = output.split(b"\0")[:-1]
    matches = (
        LineMatch(_text(fields[i]), int(fields[i + 1]), _text(fields[i + 2]))
        for i in range(0, len(fields), 3)
    )
    return LineMatches(tuple(matches), more == b"1")


def web_page(output: bytes) -> WebPage:
    """A fetch's answer: one line of JSON about the response, then its body."""
    head, _, body = output.partition(b"\n")
    about = json.loads(head)
    return WebPage(
        url=about["url"],
        status=about["status"],
        content_type=about["content_type"],
        charset=about["charset"],
        body=body,
        truncated=about["truncated"],
    )


def shown(value: str) -> str:
    return repr(value) if len(value) <= 100 else repr(value[:100]) + "..."


def size_text(count: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def _text(field: bytes) -> str:
    return field.decode("utf-8", errors="replace")


class HelperFileTools:
    """The file tools of a compute whose files are reached through the file helper
    (:mod:`~agentjournal.infrastructure.compute.sandbox_files`) run where the tools run: the
    confined host and the Docker sandbox differ only in how they run it (``_files``)."""

    def _files(
        self,
        operation: str,
        path: str,
        *,
        limit: int = 0,
        data: bytes | None = None,
        extra: Sequence[str] = (),
        seconds: float = FILE_TIMEOUT,
    ) -> bytes:
        """Run one operation of the file helper where the tools run; what it wrote."""
        raise NotImplementedError

    def read_file(self, path: str) -> bytes:
        return self._files("read", path, limit=MAX_FILE_BYTES)

    def write_file(self, path: str, data: bytes) -> None:
        self._files("write", path, data=data)

    def list_files(self, path: str, limit: int) -> FileListing:
        more, *records = self._files("list", path, limit=limit).split(b"\0")[:-1]
        entries = []
        for record in records:
            size, _, name = record.partition(b"\t")
            entries.append(FileEntry(name.decode("utf-8", errors="replace"), "file", int(size)))
        return FileListing(tuple(sorted(entries, key=lambda e: e.path)), more == b"1")

    def glob(self, pattern: str, path: str, limit: int, timeout: float) -> PathMatches:
        return path_matches(self._search("glob", pattern, path, limit, timeout))

    def grep(self, pattern: str, path: str, limit: int, timeout: float) -> LineMatches:
        return line_matches(self._search("grep", pattern, path, limit, timeout))

    def _search(self, operation: str, pattern: str, path: str, limit: int, timeout: float) -> bytes:
        check_pattern(pattern)
        seconds = alarm_seconds(timeout)
        return self._files(operation, path, limit=limit, extra=(pattern, str(seconds)), seconds=seconds)
