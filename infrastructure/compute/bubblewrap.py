"""One process in a sandbox of its own on this host, built by bubblewrap (``bwrap``).

Bubblewrap sets up Linux namespaces and mounts from a command line, with no daemon,
in a few milliseconds. What a process run here sees (:func:`command_line`):

* **Files**: the work folder at ``/workspace`` (its working directory) is the only
  writable path, besides a private ``/tmp`` and ``/dev/shm`` (each a tmpfs of
  ``SCRATCH_BYTES``). The system folders (``SYSTEM_FOLDERS``: ``/usr``, ``/etc``, the
  ``/bin`` and ``/lib`` links) are there read-only. Nothing else of the host is: no
  other work folder, no store, no data folder, no home folder, no ``/run``, ``/var``,
  ``/opt``, ``/srv`` or ``/mnt``. The data folder and the engine's home are hidden under
  an empty tmpfs even if they lie inside a system folder.
* **Processes**: its own PID namespace with its own ``/proc``, so no process of the
  engine (its environment, its command line) or of another sandbox is there to read or
  signal; its own IPC and host name namespaces.
* **Network**: the host's, or (``network`` False) a network namespace of its own with a
  loopback and nothing else; in that namespace, with ``egress`` (the Unix socket of an
  egress proxy), ``socat`` listens on the sandbox's own ``127.0.0.1:EGRESS_PORT`` and
  forwards to the socket, which is the only way out (:func:`with_egress`).
* **Environment**: exactly the one given; nothing of the engine's is inherited.
* **User**: never root (see :class:`User`). Inside a user namespace, uid 0 keeps root's
  power over host files (``/etc/shadow`` stays readable), so an engine running as root
  has bubblewrap switch to an unprivileged user with ``setpriv`` (util-linux), all
  capabilities dropped and no new privileges, before the process starts. An engine that
  is not root runs bubblewrap unprivileged, in a user namespace of its own, and the
  process cannot make further ones.

Its lifetime (:func:`run`) is bounded from outside. The sandbox's first process (its
``init``) ends when the process it started ends; when a PID namespace's init ends, the
kernel kills every process left in it, so nothing a command starts in the background,
detaches (``setsid``, ``nohup``) or double-forks outlives it. At its deadline the engine
kills bubblewrap, and ``--die-with-parent`` kills the init with it; the same happens when
the engine itself dies, even by SIGKILL. The engine knows the sandbox is gone when the
init's end of a pipe (``--sync-fd``) closes.
"""

from __future__ import annotations

import functools
import io
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agentjournal.application.ports import ComputeError
from agentjournal.application.service import data_home
from agentjournal.infrastructure.compute.host import OutputCap

WORKSPACE = "/workspace"
"""Where the work folder appears in the sandbox, as in the Docker sandbox."""

SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""The host's folders a sandbox sees, read-only (links, as on merged-/usr systems, as links)."""

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""Where a sandbox's programs are found: the system's folders (the engine's own ``PATH`` may
name folders the sandbox does not have)."""

SCRATCH_BYTES = 512 * 1024 * 1024
"""The size of the private ``/tmp`` and ``/dev/shm`` (tmpfs, so held in memory)."""

END_GRACE = 10.0
"""Seconds a killed sandbox has to be gone before the engine stops waiting for it."""

ERROR_BYTES = 4096
"""How much of a process's separate error output is kept."""

PUMP_GRACE = 5.0
"""Seconds the threads reading a sandbox's output have to finish once it is gone."""

SWITCH_USER = ("--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP")
"""What ``setpriv`` needs to switch to the tools' user; it drops all of it before the process starts."""

EGRESS_PORT = 3128
"""Where a sandbox reaches its egress proxy: its own loopback's port, bridged to the proxy."""

EGRESS_SOCKET = "/run/agentjournal/egress.sock"
"""Where the egress proxy's Unix socket appears in a sandbox."""

EGRESS_WAIT_STEPS = 500
"""How many times (10 ms apart) a sandbox looks for its bridge listening before it runs anyway."""


@dataclass(frozen=True)
class User:
    """Who a sandboxed process runs as: never root."""

    uid: int
    gid: int

    @classmethod
    def of_engine(cls) -> User:
        return cls(os.getuid(), os.getgid())

    @classmethod
    def nobody(cls) -> User:
        """The unprivileged user an engine running as root gives tools to, when nobody else
        owns their work folder: ``nobody``, which owns nothing on the host."""
        try:
            entry = pwd.getpwnam("nobody")
        except KeyError:
            return cls(65534, 65534)
        return cls(entry.pw_uid, entry.pw_gid)


def engine_is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class Walls:
    """What one sandboxed process may see and do: the host folder shown at ``/workspace``
    (the only writable path), who it runs as, whether it has the host's network, and,
    without it, the Unix socket of the egress proxy it reaches instead (None: nothing)."""

    work: Path
    user: User
    network: bool
    egress: Path | None = None
    memory: tuple[tuple[Path, str, bool], ...] = ()
    """Memory stores' folders: (host folder, path in the sandbox, read-only), each bound
    read-only or writable as it says."""


def command_line(walls: Walls, argv: Sequence[str], sync_fd: int, marks: Sequence[str] = ()) -> list[str]:
    """Bubblewrap's command line for running ``argv`` within ``walls``; the sandbox's init
    holds ``sync_fd`` open until it ends, and the variables ``marks`` name stay out of it."""
    line = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not walls.network:
        line.append("--unshare-net")
    if not engine_is_root():
        line += ["--unshare-user", "--disable-userns"]
    line += ["--die-with-parent", "--new-session", "--sync-fd", str(sync_fd)]
    for name in marks:
        line += ["--unsetenv", name]
    line += _system_folders(walls.network)
    line += ["--proc", "/proc", "--dev", "/dev"]
    for scratch in ("/tmp", "/dev/shm"):
        line += ["--size", str(SCRATCH_BYTES), "--perms", "1777", "--tmpfs", scratch]
    line += ["--bind", str(walls.work), WORKSPACE, "--chdir", WORKSPACE]
    if walls.egress is not None and not walls.network:
        line += ["--perms", "0755", "--dir", os.path.dirname(EGRESS_SOCKET)]
        line += ["--bind", str(walls.egress), EGRESS_SOCKET]
        argv = with_egress(argv)
    for parent in _parents([place for _, place, _ in walls.memory]):  # bubblewrap's own are 0700
        line += ["--perms", "0755", "--dir", parent]
    for folder, place, read_only in walls.memory:
        line += ["--ro-bind" if read_only else "--bind", str(folder), place]
    if engine_is_root():
        user = walls.user
        line += [*SWITCH_USER, "--", "setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]  # fmt: skip
    return [*line, "--", *argv]


def with_egress(argv: Sequence[str]) -> list[str]:
    """``argv`` run after ``socat`` (in the background, ended with the sandbox) listens on
    the sandbox's ``127.0.0.1:EGRESS_PORT`` and forwards each connection to the egress
    proxy's socket. The command starts once the port is listening, as the kernel's table
    of the namespace's sockets shows, so its first request finds the bridge there."""
    listening = f"0100007F:{EGRESS_PORT:04X} 00000000:0000 0A"
    script = (
        f"socat TCP-LISTEN:{EGRESS_PORT},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{EGRESS_SOCKET} "
        ">/dev/null 2>&1 </dev/null & "
        f"i=0; until grep -q '{listening}' /proc/net/tcp || [ $i -ge {EGRESS_WAIT_STEPS} ]; "
        "do sleep 0.01; i=$((i+1)); done; "
        'exec "$@"'
    )
    return ["/bin/sh", "-c", script, "sh", *argv]


def _parents(places: Sequence[str]) -> list[str]:
    """The folders above ``places`` (absolute paths), outermost first, each once."""
    parents: dict[str, None] = {}
    for place in places:
        parts = place.strip("/").split("/")[:-1]
        parents.update(dict.fromkeys("/" + "/".join(parts[: n + 1]) for n in range(len(parts))))
    return list(parents)


def _system_folders(network: bool) -> list[str]:
    """The read-only binds of the system folders (as links where the host has links), of
    the name servers' file where ``/etc/resolv.conf`` links out of them, and an empty tmpfs
    over the engine's own folders where they lie inside one."""
    binds = []
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):
            binds += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            binds += ["--ro-bind", folder, folder]
    resolver = os.path.realpath("/etc/resolv.conf")
    if network and not _inside_system(resolver) and os.path.isfile(resolver):
        binds += ["--ro-bind", resolver, resolver]
    for private in (data_home(), Path.home()):
        if _inside_system(str(private)) and private.is_dir():
            binds += ["--tmpfs", str(private)]
    return binds


def _inside_system(path: str) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in SYSTEM_FOLDERS)


@dataclass(frozen=True)
class Finished:
    """How a sandboxed process went: its output (with its errors, unless kept apart), the
    start of its separate error output, its exit status (negative: the signal that ended
    bubblewrap), how long it took, whether its output was cut at the limit, and whether
    its deadline ended it."""

    output: bytes
    errors: bytes
    exit_code: int | None
    duration_ms: float
    truncated: bool
    timed_out: bool


def run(
    walls: Walls,
    argv: Sequence[str],
    environment: Mapping[str, str],
    timeout: float,
    *,
    limit: int,
    stdin: bytes | None = None,
    errors_apart: bool = False,
    marks: Mapping[str, str] | None = None,
    running: set[subprocess.Popen[bytes]] | None = None,
) -> Finished:
    """Run ``argv`` in a sandbox within ``walls``, with exactly ``environment``, for at most
    ``timeout`` seconds, and return once the sandbox is gone: the process and everything it
    started. ``stdin`` is written to it (none by default); the first ``limit`` bytes of its
    output are kept, with its error output (or its first ``ERROR_BYTES`` apart from it, with
    ``errors_apart``). The output is read by threads, so the deadline holds whether the
    process writes, waits, or stops. ``marks`` are variables set on bubblewrap alone, not in
    the sandbox, by which the engine finds it from any process (a sandbox's own processes
    cannot be read from outside its namespace by a mark they could remove). Bubblewrap's
    process is in ``running`` while the sandbox runs: killing it ends the sandbox early."""
    started = time.perf_counter()
    marks = dict(marks or {})
    sandbox_ends, init_holds = os.pipe()
    try:
        process = subprocess.Popen(  # noqa: S603 - the sandbox's own command line
            command_line(walls, argv, init_holds, tuple(marks)),
            env={**environment, **marks},
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if errors_apart else subprocess.STDOUT,
            pass_fds=(init_holds,),
            start_new_session=True,
        )
    except (OSError, ValueError) as e:  # E2BIG, a NUL byte, bwrap gone
        os.close(sandbox_ends)
        raise ComputeError(f"could not start the sandbox: {e}") from None
    finally:
        os.close(init_holds)
    live = running if running is not None else set()
    live.add(process)
    with _pumped(process, stdin, limit) as (output, errors):
        ended = _closed(sandbox_ends, timeout - (time.perf_counter() - started))
        if not ended:
            process.kill()  # bubblewrap; --die-with-parent takes the sandbox's init with it
        live.discard(process)
        process.wait()
        if not ended:
            _closed(sandbox_ends, END_GRACE)
        os.close(sandbox_ends)
    return Finished(
        output=bytes(output.kept),
        errors=bytes(errors.kept),
        exit_code=process.returncode,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        truncated=output.truncated,
        timed_out=not ended,
    )


def _closed(descriptor: int, timeout: float) -> bool:
    """Whether every writer of the pipe ``descriptor`` reads from closed it within ``timeout``
    seconds (nothing is ever written to it, so it wakes its reader only by closing). A poll,
    not a select: a busy server's descriptors may be numbered past what select can watch."""
    waiting = select.poll()
    waiting.register(descriptor, select.POLLIN)
    return bool(waiting.poll(max(0.0, timeout) * 1000))


def _pump(pipe: io.BufferedReader, cap: OutputCap) -> None:
    """Read ``pipe`` to its end, keeping what ``cap`` keeps."""
    for block in iter(lambda: pipe.read1(65536), b""):
        cap.add(block)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write ``data`` to a process's input and close it; a process that stops reading ends
    the feed, not the engine."""
    try:
        pipe.write(data)
        pipe.close()
    except OSError:  # it ended without reading it all
        pass


@contextmanager
def _pumped(
    process: subprocess.Popen[bytes], stdin: bytes | None, limit: int
) -> Iterator[tuple[OutputCap, OutputCap]]:
    """Threads that read a process's output (and error output, when apart) and feed its
    input while it runs, and what they keep. They end with the process's pipes, which
    nothing holds once the sandbox is gone."""
    output, errors = OutputCap(limit), OutputCap(ERROR_BYTES)
    work: list[tuple[Callable[..., None], object, object]] = [(_pump, process.stdout, output)]
    if process.stderr is not None:
        work.append((_pump, process.stderr, errors))
    if stdin is not None:
        work.append((_feed, process.stdin, stdin))
    threads = [threading.Thread(target=target, args=args, daemon=True) for target, *args in work]
    for thread in threads:
        thread.start()
    try:
        yield output, errors
    finally:
        for thread in threads:
            thread.join(PUMP_GRACE)


PROBE = "open('probe', 'w').write('confined')"


@functools.cache
def unavailable() -> str | None:
    """Why bubblewrap cannot confine tools on this host, or None when it can. Found once
    per process by building one sandbox with every wall a tool gets and running the
    sandbox's Python in it (the file tools' helpers need it): reading a kernel setting
    or a binary's presence would miss what forbids it (a disabled user namespace, a
    security module, a container that denies mounts)."""
    if sys.platform != "linux":
        return "bubblewrap runs on Linux only"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed"
    with tempfile.TemporaryDirectory(prefix="agentjournal-probe-") as folder:
        user = User.nobody() if engine_is_root() else User.of_engine()
        os.chown(folder, user.uid, user.gid)
        walls = Walls(Path(folder), user, network=False)
        try:
            finished = run(walls, ["python3", "-I", "-S", "-c", PROBE], {"PATH": SYSTEM_PATH}, 60,
                           limit=ERROR_BYTES, errors_apart=True)  # fmt: skip
        except ComputeError as e:
            return str(e)
        said = (finished.errors or finished.output).decode(errors="replace").strip()
        probe = Path(folder) / "probe"
        if finished.exit_code != 0 or not probe.is_file() or probe.read_text() != "confined":
            return f"a test sandbox failed (exit {finished.exit_code}): {said or 'no message'}"
    return None


def problem_text(reason: str) -> str:
    """What to tell a user whose tools cannot be confined here, and the ways out."""
    return (
        f"tools cannot be confined on this host: {reason}. Install bubblewrap (Debian and Ubuntu: "
        "apt-get install bubblewrap) where unprivileged user namespaces are allowed, or run the "
        "tools in Docker (compute='docker'); for trusted development only, compute='host-unconfined' "
        "runs them unconfined, as the engine's user"
    )
