"""Unconfined host compute: tools run on this machine, as the user who runs agentjournal.

It is for trusted development, not a sandbox, and runs only where a process opted in
itself (``compute="host-unconfined"``, ``agentjournal serve --allow-unconfined-host``);
the default host compute is confined (:mod:`~agentjournal.infrastructure.compute.confined`).
What it does and does not enforce:

* The file tools (``read_file``, ``write_file``, ``list_files``) are confined to
  the work folder: paths are resolved, symlinks included, and refused when they
  lead out of it. Searches (``glob``, ``grep``) run the sandbox's own file helper
  (:mod:`~agentjournal.infrastructure.compute.sandbox_files`) as a child process, which walks
  without following links, and is killed at its time limit whatever its pattern does.
* A web fetch runs as a command would: a child process with a command's
  environment (:mod:`~agentjournal.infrastructure.compute.sandbox_fetch`).
* Commands are **not** confined. They start in the work folder but run as the
  user, and can read, change and reach anything the user can, network included.
  Use the confined host (the default) or ``compute="docker"`` for work you do not trust.
* Commands get a minimal environment (:func:`command_environment`), not the
  engine's: its secrets (``CIPHER_KEY``, ``POSTGRES_PASSWORD``, API keys) stay out.
* A command's time limit holds whatever it does: at the deadline, and when the
  command ends, everything it started is killed with SIGKILL from outside its
  process tree (see :mod:`agentjournal.infrastructure.compute.host_processes`), so no
  background process outlives the call. Output is capped.
* The work folder is derived by the engine, never read from the log: the
  ``working_dir`` the caller's config names, or one folder per session under the
  engine's data folder. Packages go into a virtual environment inside it.
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, cast
from uuid import UUID

from agentjournal.application.ports import (
    ComputeError,
    ExecResult,
    FileContents,
    FileEntry,
    FileListing,
    LineMatches,
    PathMatches,
    SnapshotLimits,
    WebPage,
    WorkspaceScan,
)
from agentjournal.application.service import data_home
from agentjournal.domain import ComputeBinding, NetworkAccess, network_access
from agentjournal.domain.policy import UNCONFINED_HOST
from agentjournal.infrastructure.compute import host_processes, sandbox_fetch, sandbox_files, sandbox_snapshot
from agentjournal.infrastructure.compute.folder_scans import FolderScans
from agentjournal.infrastructure.compute.sandbox_protocol import (
    alarm_seconds,
    check_answer,
    check_path,
    check_pattern,
    check_url,
    line_matches,
    path_matches,
    shown,
    web_page,
)

if TYPE_CHECKING:
    from agentjournal.application.api import ManagedConfig

# A requirement such as "pandas", "numpy>=2", "requests[socks]==2.32.3"; never an option.
PACKAGE_NAME = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._\-]*(\[[A-Za-z0-9,._\-]+\])?([<>=!~]=?[A-Za-z0-9.*+!\-]+)?$"
)

# Folders the engine keeps in a work folder (the packages' virtual environment, the
# commands' home), left out of list_files.
VENV, HOME = ".venv", ".home"

# What a command inherits from the engine's environment: how to find programs, and
# the locale, time zone and temporary folder. Nothing that can hold a secret.
INHERITED_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")

# The marks that let the engine find a command's processes, even ones that left its
# process tree: one per call, and one per work folder (what release kills).
CALL_MARK, WORKSPACE_MARK = "AGENTJOURNAL_CALL", "AGENTJOURNAL_WORKSPACE"

SUPERVISOR = host_processes.__file__
HELPER_GRACE = 5.0  # seconds past its own alarm before a helper is killed from here


def validate_packages(packages: Sequence[str]) -> list[str]:
    bad = [p for p in packages if not PACKAGE_NAME.match(p)]
    if bad:
        raise ComputeError(f"not a package name: {', '.join(map(repr, bad))}")
    return list(packages)


def command_environment(root: Path, env: Mapping[str, str], call: str) -> dict[str, str]:
    """The whole environment of a command in work folder ``root``.

    ``PATH`` and the locale come from the engine (``LANG`` defaults to ``C.UTF-8``),
    ``HOME`` is ``.home`` in the work folder (so tools' caches and settings stay
    there), ``TERM`` is ``dumb`` (there is no terminal), then the session's ``env``
    on top, the work folder's virtual environment first on ``PATH`` when there is
    one, and the marks the engine finds the command's processes by.
    """
    inherited = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    environment = {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        **inherited,
        "HOME": str(root / HOME),
        "TERM": "dumb",
    }
    environment.update(env)
    venv = root / VENV
    if (venv / "bin").is_dir():
        environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment['PATH']}"
        environment["VIRTUAL_ENV"] = str(venv)
    environment[CALL_MARK], environment[WORKSPACE_MARK] = call, str(root)
    return environment


class HostCompute:
    """Tools on the host, unconfined: files inside the work folder ``root`` (by default a
    folder per session under ``base``); commands anywhere the user can go (see the module
    documentation for what is and is not enforced)."""

    kind = UNCONFINED_HOST

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        base: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        max_output_bytes: int = 64_000,
    ) -> None:
        self._fixed_root = Path(root).expanduser() if root else None
        self._base = Path(base) if base else Path(tempfile.gettempdir()) / "agentjournal"
        self.env = dict(env or {})
        self.max_output_bytes = max_output_bytes
        self.root: Path | None = self._fixed_root
        self._running: set[int] = set()
        """The supervisors of the commands running now (their process groups)."""
        self.scans = FolderScans()
        """The snapshots of the work folder, incremental while its change journal holds."""

    @classmethod
    def from_config(cls, config: ManagedConfig) -> HostCompute:
        if network_access(config.networking) != NetworkAccess.HOST:
            raise ComputeError(
                f"the unconfined host compute cannot restrict the network ({config.networking!r}); "
                "use the confined host (the default) or compute='docker'"
            )
        return cls(
            config.working_dir or None,
            base=data_home(),
            env=config.env,
            max_output_bytes=config.max_output_bytes,
        )

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        """The work folder is the one this compute was given, or the session's own under
        ``base``. A previous binding is not trusted to say where: a log can be imported,
        and an import can name any folder (``/etc``). When it names another folder than
        this one, the binding returned differs, and the change is recorded."""
        root = self._fixed_root or self._base / "workspaces" / str(session_id)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        return ComputeBinding(kind=self.kind, reference=str(self.root))

    def _root(self) -> Path:
        if self.root is None:
            raise ComputeError("host compute is not attached to a session")
        return self.root

    def _resolve(self, path: str) -> Path:
        root = self._root()
        check_path(path)
        with _file_errors(path):  # too long for the system, or through a file
            target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ComputeError(f"path {path!r} is outside the work folder")
        return target

    def execute(self, command: str, timeout: float) -> ExecResult:
        """Run ``command`` with ``/bin/sh`` in the work folder, under a supervisor (the
        command's parent, so ``kill $PPID`` cannot reach the engine). The engine waits
        for the supervisor itself, without the command's cooperation: at ``timeout``,
        or when the command ends, it kills every process the command started."""
        root = self._root()
        call = uuid.uuid4().hex
        environment = command_environment(root, self.env, call)
        (root / HOME).mkdir(exist_ok=True)
        started = time.perf_counter()
        try:
            process = subprocess.Popen(  # noqa: S603 - running the command line is the tool's purpose
                [sys.executable, "-I", "-S", SUPERVISOR, command],
                cwd=root,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except (OSError, ValueError) as e:  # E2BIG, a NUL byte, a work folder gone
            raise ComputeError(f"could not start the command: {e}") from None
        reader = _CappedReader(process, self.max_output_bytes)
        ended = False
        self._running.add(process.pid)
        try:
            ended = _wait_for_exit(process.pid, timeout - (time.perf_counter() - started))
        finally:
            self._running.discard(process.pid)
            _end_command(process, f"{CALL_MARK}={call}".encode(), ended)
        output, truncated = reader.result()
        return ExecResult(
            output=output.decode("utf-8", errors="replace"),
            exit_code=process.returncode,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            truncated=truncated,
            timed_out=not ended,
        )

    def read_file(self, path: str) -> bytes:
        target = self._resolve(path)
        with _file_errors(path):
            if not target.is_file():
                raise ComputeError(f"no file {path!r}")
            return target.read_bytes()

    def write_file(self, path: str, data: bytes) -> None:
        target = self._resolve(path)
        with _file_errors(path):
            if target.is_dir():
                raise ComputeError(f"{path!r} is a folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def list_files(self, path: str, limit: int) -> FileListing:
        folder = self._resolve(path)
        with _file_errors(path):
            if not folder.is_dir():
                raise ComputeError(f"no folder {path!r}")
        root = self._root()
        entries: list[FileEntry] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d not in (VENV, HOME))
            for name in sorted(filenames):
                if len(entries) == limit:
                    return FileListing(tuple(entries), more=True)
                file = Path(dirpath) / name
                size = file.lstat().st_size
                entries.append(FileEntry(str(file.relative_to(root)), "file", size))
        return FileListing(tuple(entries))

    def glob(self, pattern: str, path: str, limit: int, timeout: float) -> PathMatches:
        return path_matches(self._search("glob", pattern, path, limit, timeout))

    def grep(self, pattern: str, path: str, limit: int, timeout: float) -> LineMatches:
        return line_matches(self._search("grep", pattern, path, limit, timeout))

    def _search(self, operation: str, pattern: str, path: str, limit: int, timeout: float) -> bytes:
        check_path(path)
        check_pattern(pattern)
        seconds = alarm_seconds(timeout)
        work = str(self._root())
        helper = [sandbox_files.__file__, operation, work, path, str(limit), pattern, str(seconds)]
        return self._helper(helper, operation, path, seconds, environment={})

    def fetch(self, url: str, limit: int, timeout: float) -> WebPage:
        check_url(url)
        seconds = alarm_seconds(timeout)
        environment = command_environment(self._root(), self.env, uuid.uuid4().hex)
        helper = [sandbox_fetch.__file__, url, str(limit), str(seconds)]
        return web_page(self._helper(helper, "fetch", url, seconds, environment))

    def _helper(
        self, helper: list[str], operation: str, subject: str, seconds: int, environment: dict[str, str]
    ) -> bytes:
        """Run a helper script (and its arguments) with this Python, isolated, in the work
        folder; return its stdout, or raise the ComputeError its answer stands for."""
        try:
            done = subprocess.run(  # noqa: S603 - a fixed script; the model's text is data in argv
                [sys.executable, "-I", "-S", *helper],
                cwd=self._root(),
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=seconds + HELPER_GRACE,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ComputeError(f"the {operation} did not finish in {seconds} s") from None
        except OSError as e:
            raise ComputeError(f"could not start the {operation}: {e}") from None
        check_answer(done.returncode, operation, subject, done.stderr, seconds)
        return done.stdout

    def snapshot(self, known: Mapping[str, str], limits: SnapshotLimits) -> WorkspaceScan:
        return self.scans.snapshot(self._root(), known, limits)

    def restore(self, files: Sequence[FileContents], remove: Sequence[str] = ()) -> None:
        """Delete ``remove`` and write ``files`` in this process, as
        :mod:`~agentjournal.infrastructure.compute.sandbox_snapshot` does in a sandbox: removals
        first (with the folders they leave empty), so a file can take a folder's place or the
        reverse; folders made on the way, never through a link."""
        work_fd = os.open(self._root(), sandbox_snapshot.FOLDER)
        try:
            keep = sandbox_snapshot.folders_of(file.path for file in files)
            for path in remove:
                with _file_errors(path):
                    sandbox_snapshot.remove(work_fd, path, keep)
            for file in files:
                with _file_errors(file.path):
                    sandbox_snapshot.restore(work_fd, file.path, file.mode, file.data)
        finally:
            os.close(work_fd)

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        if manager != "pip":
            raise ComputeError(f"host compute installs pip packages only, not {manager!r}")
        names = validate_packages(packages)
        venv = self._root() / VENV
        steps = [] if venv.is_dir() else [[sys.executable, "-m", "venv", str(venv)]]
        steps.append([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--", *names])
        output = []
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
            output.append(done.stdout + done.stderr)
            if done.returncode != 0:
                raise ComputeError(f"pip install {' '.join(names)} failed:\n{''.join(output)[-4000:]}")
        return "".join(output)

    def stop(self) -> None:
        """Kill the running commands' supervisors with their process groups; each call then
        ends as at its deadline, sweeping whatever its command started elsewhere."""
        for supervisor in list(self._running):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(supervisor, signal.SIGKILL)

    def release(self, binding: ComputeBinding) -> None:
        """Kill whatever still runs from the commands of ``binding``'s work folder, from
        this process or any other (a command running in another turn, a process that
        escaped its call). Sessions that share a ``working_dir`` share this fate. The work
        folder itself is kept for the user."""
        if binding.kind == self.kind:
            host_processes.kill_all(host_processes.marked(f"{WORKSPACE_MARK}={binding.reference}".encode()))


class OutputCap:
    """Keeps the first ``limit`` bytes of a stream of blocks, and whether more came."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.truncated = False

    def add(self, block: bytes) -> None:
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept.extend(block[:room])
        self.truncated = self.truncated or len(block) > room


class _CappedReader:
    """Drains a process's output in a thread, so the command never blocks on a full
    pipe, keeping only the first ``limit`` bytes."""

    def __init__(self, process: subprocess.Popen[bytes], limit: int) -> None:
        # Popen's pipe is buffered: read1 returns what has arrived, without waiting for more.
        self._pipe = cast(io.BufferedReader, process.stdout)
        self._cap = OutputCap(limit)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for block in iter(lambda: self._pipe.read1(65536), b""):
            self._cap.add(block)

    def result(self) -> tuple[bytes, bool]:
        # A process that escaped the sweep and kept the pipe open must not hold the call forever.
        self._thread.join(timeout=5)
        return bytes(self._cap.kept), self._cap.truncated


def _wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` (a child) ended within ``timeout`` seconds. It is left
    unreaped, so its pid, process group and session ids cannot be reused by another
    process while the engine kills what the command left behind."""
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux 5.3 or later
        return _poll_for_exit(pid, timeout)
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout) * 1000))
    finally:
        os.close(descriptor)


def _poll_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pause = 0.002
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
    return True


def _end_command(process: subprocess.Popen[bytes], mark: bytes, ended: bool) -> None:
    """Kill everything the command started, then its supervisor if it still runs (it may
    have been stopped), and reap it. The supervisor goes last: while it lives, orphans
    stay under it where the sweep finds them. Without ``/proc`` the sweep finds nothing,
    and the process group, killed in one signal, is what is left to kill."""
    host_processes.kill_all(host_processes.command_processes(process.pid, mark, same_ids=True))
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


@contextmanager
def _file_errors(path: str) -> Iterator[None]:
    """Turns an operating system error on a file (permission denied, a file where a
    folder should be, a full disk) into a :class:`ComputeError` the model can read."""
    try:
        yield
    except OSError as e:
        raise ComputeError(f"{shown(path)}: {e.strerror or e}") from None
