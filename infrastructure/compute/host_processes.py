"""Finding and killing every process a host command started, whatever it did to hide.

A shell command can put children in the background, detach them with ``nohup``,
move them to a new session with ``setsid`` (out of its process group), or stop or
kill its own parent. This module gives :class:`~agentjournal.infrastructure.compute.host.HostCompute`
the means to end all of them, from outside the command's process tree:

* :func:`supervise` is the small parent every host command runs under (this file
  runs as a script for that, standard library only, so it starts in milliseconds).
  It makes itself the *child subreaper* of its descendants (Linux ``prctl``): a
  process the command orphans is re-parented to it, not to ``init``, so it stays
  findable as a descendant. When the shell exits, the supervisor kills every
  process left under it.
* :func:`kill_all` is the engine's own sweep, which does not need the supervisor's
  cooperation (it may have been stopped or killed). It kills with SIGKILL every
  process that descends from the supervisor, shares its process group or session,
  or carries a mark in its environment (a variable the engine set for the call or
  the work folder), and repeats until none is left, so children forked meanwhile
  are caught too.

The process table comes from ``/proc``; where there is none (not Linux), only the
process group is killed. A process that kills the supervisor, starts a new session
and clears its environment at once still escapes: host compute is for trusted
work, and the Docker sandbox is the boundary for the rest.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

PROC = "/proc"
PR_SET_CHILD_SUBREAPER = 36
SHELL = "/bin/sh"

# How long a sweep keeps killing before it gives up on a process that will not die
# (one in uninterruptible sleep, say); SIGKILL ends any other within milliseconds.
SWEEP_SECONDS = 5.0


class Process(NamedTuple):
    pid: int
    ppid: int
    pgid: int
    sid: int
    zombie: bool


def processes() -> list[Process]:
    """Every process in ``/proc`` now (none where there is no ``/proc``)."""
    try:
        names = os.listdir(PROC)
    except OSError:
        return []
    table = []
    for name in names:
        if name.isdigit() and (process := _read_stat(int(name))) is not None:
            table.append(process)
    return table


def _read_stat(pid: int) -> Process | None:
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:  # it ended meanwhile
        return None
    # "pid (command name) state ppid pgrp session ...": the name may hold spaces and ")".
    fields = stat[stat.rindex(b")") + 2 :].split()
    return Process(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0] == b"Z")


def has_mark(pid: int, mark: bytes) -> bool:
    """Whether the environment ``pid`` started with holds the ``NAME=value`` entry ``mark``."""
    try:
        with open(f"{PROC}/{pid}/environ", "rb") as file:
            environ = file.read()
    except OSError:  # ended, or not ours to read
        return False
    return mark in environ.split(b"\0")


def descendants(root: int, table: list[Process]) -> set[int]:
    """The pids under ``root`` in ``table``: children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for process in table:
        children.setdefault(process.ppid, []).append(process.pid)
    found: set[int] = set()
    pending = list(children.get(root, ()))
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, ()))
    return found


def kill_all(select: Callable[[list[Process]], set[int]], *, seconds: float = SWEEP_SECONDS) -> None:
    """SIGKILL the living processes ``select`` picks from the process table, again and
    again until it picks none: a process may fork between one look and the kill."""
    deadline = time.monotonic() + seconds
    for pause in _backoff():
        table = processes()
        living = {p.pid for p in table if not p.zombie} - {os.getpid()}
        victims = select(table) & living
        if not victims or time.monotonic() > deadline:
            return
        for pid in victims:
            _kill(pid)
        time.sleep(pause)


def command_processes(supervisor: int, mark: bytes, *, same_ids: bool) -> Callable[[list[Process]], set[int]]:
    """A selector of what one command started: the descendants of its ``supervisor``,
    the processes carrying ``mark``, and with ``same_ids`` those in the supervisor's
    process group or session (only safe while its pid cannot be reused: it is alive,
    or dead and not yet reaped)."""

    def select(table: list[Process]) -> set[int]:
        chosen = descendants(supervisor, table)
        if same_ids:
            chosen |= {p.pid for p in table if supervisor in (p.pgid, p.sid)}
        chosen |= {p.pid for p in table if p.pid not in chosen and has_mark(p.pid, mark)}
        return chosen - {supervisor}

    return select


def marked(mark: bytes) -> Callable[[list[Process]], set[int]]:
    """A selector of the processes carrying ``mark``."""
    return lambda table: {p.pid for p in table if has_mark(p.pid, mark)}


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _backoff() -> Iterator[float]:
    pause = 0.002
    while True:
        yield pause
        pause = min(pause * 2, 0.05)


# -- the supervisor ----------------------------------------------------------------------


def supervise(command: str) -> int:
    """Run ``command`` with ``/bin/sh -c``, then kill whatever it left running.
    Returns the shell's exit status (128 + N when signal N ended it), or 126 when
    the shell could not be started."""
    _become_subreaper()
    try:
        # Python ignores SIGPIPE and SIGXFSZ; the shell must not inherit that.
        shell = os.posix_spawn(
            SHELL, [SHELL, "-c", command], os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ)
        )
    except OSError as e:
        print(f"agentjournal: cannot run the command: {e}", flush=True)
        return 126
    status = _reap_until(shell)
    _kill_children()
    return status


def _become_subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl (not Linux): the engine's sweep is all there is


def _reap_until(shell: int) -> int:
    """Wait for the shell, reaping the orphans that end meanwhile; its exit status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == shell:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def _kill_children() -> None:
    """Kill every process under this one. Killing a child re-parents its own children
    here (this process is their subreaper), so repeat until there is none to wait for.
    Without ``/proc`` there is no telling them apart: the engine kills the process group."""
    if not os.path.isdir(PROC):
        return
    me = os.getpid()
    while True:
        for process in processes():
            if process.ppid == me and not process.zombie:
                _kill(process.pid)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1]))
