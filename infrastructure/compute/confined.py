"""Confined host compute (the default): tools run on this machine, each call in a
bubblewrap sandbox of its own (:mod:`~agentjournal.infrastructure.compute.bubblewrap`).

Every command, file operation, search and web fetch is one sandboxed process that sees
the session's work folder at ``/workspace`` (the only writable path, with a private
``/tmp``), the system read-only, nothing else of the host, its own processes only, a
clean environment (the session's ``env``, ``PATH``, the locale, ``HOME`` inside the work
folder) and the network the session's config gives: the host's for ``unrestricted``,
none for ``none`` and for ``limited`` that allows nothing, and for any other ``limited``
a network namespace of its own whose one way out is the session's egress proxy
(:mod:`~agentjournal.infrastructure.compute.egress_proxy`), reached through a Unix socket
bridged to the sandbox's loopback, with the proxy variables (``HTTP_PROXY``,
``HTTPS_PROXY`` and their lowercase twins) naming it. It runs as an unprivileged
user, never root, and ends with its call, its deadline or the engine, whichever comes
first, taking everything it started with it.

The file tools run the same helper as the Docker sandbox
(:mod:`~agentjournal.infrastructure.compute.sandbox_files`), with the sandbox's own
Python, so a path means the same on both computes (relative to the work folder, or
absolute under ``/workspace``) and is walked without following links. Snapshots of the
work folder are taken in the engine's process (reading, never following a link), as the
unconfined host takes them; restoring files runs in a sandbox, as the tools' user.

Who the tools run as: an engine that is not root runs them as itself. An engine running
as root runs them as the owner of the work folder, or as ``nobody`` for a folder it made
itself (it gives that folder to ``nobody``); a folder of root's that the engine did not
make is refused, since the tools cannot be given root's power over it.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from agentjournal.application.ports import (
    ComputeError,
    ExecResult,
    FileContents,
    SnapshotLimits,
    WebPage,
    WorkspaceScan,
)
from agentjournal.application.service import data_home
from agentjournal.domain import ComputeBinding, NetworkAccess, network_access
from agentjournal.domain.memory import MemoryQuota
from agentjournal.domain.policy import CONFINED_HOST
from agentjournal.infrastructure.compute import (
    bubblewrap,
    egress_proxy,
    host_processes,
    sandbox_fetch,
    sandbox_files,
    sandbox_snapshot,
)
from agentjournal.infrastructure.compute.bubblewrap import EGRESS_PORT, WORKSPACE, Finished, User, Walls
from agentjournal.infrastructure.compute.egress_proxy import EgressProxy
from agentjournal.infrastructure.compute.folder_scans import FolderScans
from agentjournal.infrastructure.compute.host import (
    HOME,
    VENV,
    WORKSPACE_MARK,
    validate_packages,
)
from agentjournal.infrastructure.compute.memory_folders import fill_folder, read_folder
from agentjournal.infrastructure.compute.sandbox_protocol import (
    FETCH_HEAD_BYTES,
    FILE_TIMEOUT,
    MAX_LISTING_BYTES,
    HelperFileTools,
    alarm_seconds,
    check_answer,
    check_path,
    check_url,
    helper_source,
    memory_place,
    memory_root,
    web_page,
)

if TYPE_CHECKING:
    from agentjournal.application.api import ManagedConfig

LOCALE_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
"""What a sandbox takes from the engine's environment: the locale and time zone."""

HELPER_GRACE = 5.0
"""Seconds past its own alarm before a helper's sandbox is ended from here."""

INSTALL_TIMEOUT = 900.0
"""Seconds an installation of a session's packages may take."""

NO_PYTHON = "; the host needs python3 in its system folders"

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
"""What names the egress proxy to a tool: the variables curl, pip, Python's urllib and
most HTTP clients read."""


def sandbox_environment(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """The whole environment of a tool in work folder ``root`` (as the sandbox shows it at
    ``/workspace``): the system ``PATH`` (the work folder's virtual environment first, when
    there is one), the engine's locale, ``HOME`` in the work folder (so tools' caches and
    settings stay there), ``TERM`` ``dumb``, then the session's ``env`` on top."""
    environment = {
        "PATH": bubblewrap.SYSTEM_PATH,
        "LANG": "C.UTF-8",
        **{name: os.environ[name] for name in LOCALE_VARIABLES if name in os.environ},
        "HOME": f"{WORKSPACE}/{HOME}",
        "TERM": "dumb",
        **env,
    }
    if (root / VENV / "bin").is_dir():
        environment["PATH"] = f"{WORKSPACE}/{VENV}/bin:{environment['PATH']}"
        environment["VIRTUAL_ENV"] = f"{WORKSPACE}/{VENV}"
    return environment


class ConfinedHostCompute(HelperFileTools):
    """Tools on the host, each call in a bubblewrap sandbox that sees the work folder
    ``root`` (by default a folder per session under ``base``) at ``/workspace``, with the
    host's network, none, or only what ``egress`` (an egress proxy) allows (see the module
    documentation for every wall). ``scans`` takes the work folder's snapshots (a new
    :class:`FolderScans` by default)."""

    kind = CONFINED_HOST

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        base: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        network: bool = True,
        egress: EgressProxy | None = None,
        max_output_bytes: int = 64_000,
        scans: FolderScans | None = None,
    ) -> None:
        self._fixed_root = Path(root).expanduser() if root else None
        self._base = Path(base) if base else Path(tempfile.gettempdir()) / "agentjournal"
        self.env = dict(env or {})
        self.network = network and egress is None
        self.egress = egress
        if egress is not None:
            weakref.finalize(self, egress.stop)
        self.max_output_bytes = max_output_bytes
        self.walls: Walls | None = None
        self._running: set[subprocess.Popen[bytes]] = set()
        """Bubblewrap's processes for the calls running now."""
        self.scans = scans or FolderScans()
        """The snapshots of the work folder, incremental while its change journal holds."""
        self._memory_base = self._base / "memory"
        """Where the attached session's memory stores' folders are kept on the host."""

    @classmethod
    def from_config(cls, config: ManagedConfig) -> ConfinedHostCompute:
        """The compute a config asks for, or a ComputeError saying why this host cannot give
        it: no working bubblewrap, or an allow-list that is not one. An allow-list gets an
        egress proxy of its own, started when a tool first needs it."""
        access = network_access(config.networking)
        egress = None
        if access == NetworkAccess.ALLOW_LIST:
            egress = EgressProxy(egress_proxy.rules_for(config.networking))
        reason = bubblewrap.unavailable()
        if reason is not None:
            raise ComputeError(bubblewrap.problem_text(reason))
        return cls(
            config.working_dir or None,
            base=data_home(),
            env=config.env,
            network=access == NetworkAccess.HOST,
            egress=egress,
            max_output_bytes=config.max_output_bytes,
        )

    # -- the work folder ------------------------------------------------------------------

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        """The work folder is the one this compute was given, or the session's own under
        ``base``; never one a previous binding names (a log can be imported, and an import
        can name any folder). When it differs from the previous one, the change is recorded."""
        root = self._fixed_root or self._base / "workspaces" / str(session_id)
        made = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        user = _tools_user(root, made=made, engine_owned=self._fixed_root is None)
        _make_home(root, user)
        self.walls = Walls(root, user, self.network)
        self._memory_base = self._base / "memory" / str(session_id)
        return ComputeBinding(kind=self.kind, reference=str(root))

    def _walls(self, network: bool | None = None) -> Walls:
        """The walls of a sandbox with the session's network (``network`` None: the host's,
        none, or its egress proxy, started now if it is not running), or with the host's
        network or none, whatever the session's (helpers that need no network get none)."""
        if self.walls is None:
            raise ComputeError("the confined host compute is not attached to a session")
        if network is None and self.egress is not None:
            return replace(self.walls, network=False, egress=self.egress.start().socket)
        if network is None or network == self.walls.network:
            return self.walls
        return replace(self.walls, network=network)

    # -- memory stores --------------------------------------------------------------------

    def show_memory(self, slug: str, read_only: bool, files: Mapping[str, bytes]) -> None:
        """Fill the store's host folder and bind it at ``/mnt/memory/<slug>`` in every
        sandbox from now on, read-only when asked (bubblewrap's ``--ro-bind``)."""
        if self.walls is None:
            raise ComputeError("the confined host compute is not attached to a session")
        walls = self.walls
        folder = self._memory_base / slug
        fill_folder(folder, files)
        if bubblewrap.engine_is_root():
            _hand_over(folder, walls.user)
        place = memory_place(slug)
        memory = tuple(m for m in walls.memory if m[1] != place) + ((folder, place, read_only),)
        self.walls = replace(walls, memory=memory)

    def memory_files(self, slug: str, max_file_bytes: int, quota: MemoryQuota) -> dict[str, bytes | None]:
        return read_folder(self._memory_base / slug, max_file_bytes, quota)

    def _environment(self) -> dict[str, str]:
        """A tool's environment (:func:`sandbox_environment`), naming the egress proxy when
        the session has one."""
        environment = sandbox_environment(self.env, self._walls(False).work)
        if self.egress is not None:
            environment |= dict.fromkeys(PROXY_VARIABLES, f"http://127.0.0.1:{EGRESS_PORT}")
        return environment

    def _helper_environment(self) -> dict[str, str]:
        """A helper's environment: a tool's, with the system's ``PATH`` alone, so the work
        folder's virtual environment (the model's to fill) cannot stand in for the sandbox's
        Python."""
        environment = self._environment()
        environment.pop("VIRTUAL_ENV", None)
        return environment | {"PATH": bubblewrap.SYSTEM_PATH}

    def _marks(self) -> dict[str, str]:
        """What finds a work folder's sandboxes from any process (:meth:`release`)."""
        return {WORKSPACE_MARK: str(self._walls().work)}

    # -- commands -------------------------------------------------------------------------

    def execute(self, command: str, timeout: float) -> ExecResult:
        """Run ``command`` with ``/bin/sh`` in the work folder, in a sandbox that ends at
        ``timeout``, or when the command ends, with every process it started. Requests the
        egress proxy refused meanwhile are named at the end of the output (a refused HTTPS
        tunnel shows the client only a status)."""
        position = self.egress.log_position() if self.egress is not None else 0
        done = self._run(["/bin/sh", "-c", command], timeout, limit=self.max_output_bytes)
        output = done.output.decode("utf-8", errors="replace")
        if self.egress is not None:
            output += egress_proxy.refusal_note(self.egress.refusals_since(position))
        return ExecResult(
            output=output,
            exit_code=done.exit_code,
            duration_ms=done.duration_ms,
            truncated=done.truncated,
            timed_out=done.timed_out,
        )

    def _run(
        self,
        argv: Sequence[str],
        timeout: float,
        *,
        limit: int,
        stdin: bytes | None = None,
        errors_apart: bool = False,
        network: bool | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> Finished:
        return bubblewrap.run(
            self._walls(network),
            argv,
            self._environment() if environment is None else environment,
            timeout,
            limit=limit,
            stdin=stdin,
            errors_apart=errors_apart,
            marks=self._marks(),
            running=self._running,
        )

    def stop(self) -> None:
        """End the calls running now: killing bubblewrap ends its sandbox with everything in
        it, and each call returns as a command killed does."""
        for process in list(self._running):
            process.kill()

    def close(self) -> None:
        """Stop the session's egress proxy, if it has one running (a later call starts it again)."""
        if self.egress is not None:
            self.egress.stop()

    def release(self, binding: ComputeBinding) -> None:
        """End every sandbox still running for ``binding``'s work folder, from this process or
        any other (a command running in another turn): killing bubblewrap ends its sandbox.
        The work folder itself is kept for the user."""
        if binding.kind == self.kind:
            host_processes.kill_all(host_processes.marked(f"{WORKSPACE_MARK}={binding.reference}".encode()))

    # -- files ----------------------------------------------------------------------------

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
        """Run one operation of the file helper in a sandbox without network (see
        :mod:`~agentjournal.infrastructure.compute.sandbox_files`) and return what it wrote."""
        check_path(path)
        source = helper_source(sandbox_files)
        root = memory_root(path, [place for _, place, _ in self._walls(network=False).memory]) or WORKSPACE
        argv = ["python3", "-I", "-S", "-c", source, operation, root, path, str(limit), *extra]
        done = self._helper(operation, argv, data, max(limit, MAX_LISTING_BYTES), seconds, network=False)
        check_answer(done.exit_code, operation, path, done.errors, seconds, hint=NO_PYTHON)
        return done.output

    def _helper(
        self,
        operation: str,
        argv: Sequence[str],
        data: bytes | None,
        limit: int,
        seconds: float,
        *,
        network: bool,
    ) -> Finished:
        """Run the helper of ``operation`` in a sandbox, with ``data`` as its stdin, for at most
        ``seconds`` and a grace to report; an answer longer than ``limit`` is refused."""
        done = self._run(
            argv,
            seconds + HELPER_GRACE,
            limit=limit,
            stdin=data,
            errors_apart=True,
            network=network,
            environment=self._helper_environment(),
        )
        if done.timed_out:
            raise ComputeError(f"the {operation} did not finish in {seconds:g} s")
        if done.truncated:
            raise ComputeError(f"the sandbox sent more than {limit} bytes")
        return done

    def fetch(self, url: str, limit: int, timeout: float) -> WebPage:
        """Fetch ``url`` with :mod:`~agentjournal.infrastructure.compute.sandbox_fetch` in a
        sandbox with the session's network, as the tools' user."""
        check_url(url)
        seconds = alarm_seconds(timeout)
        argv = ["python3", "-I", "-S", "-c", helper_source(sandbox_fetch), url, str(limit), str(seconds)]
        done = self._helper("fetch", argv, None, limit + FETCH_HEAD_BYTES, seconds, network=self.network)
        check_answer(done.exit_code, "fetch", url, done.errors, seconds, hint=NO_PYTHON)
        return web_page(done.output)

    def snapshot(self, known: Mapping[str, str], limits: SnapshotLimits) -> WorkspaceScan:
        return self.scans.snapshot(self._walls().work, known, limits)

    def restore(self, files: Sequence[FileContents], remove: Sequence[str] = ()) -> None:
        """Write ``files`` and delete ``remove`` with :mod:`~agentjournal.infrastructure.compute.sandbox_snapshot`
        in one sandbox, the contents streamed on its stdin, as the tools' user, never through a link."""
        head = {
            "op": "restore",
            "work": WORKSPACE,
            "files": [[f.path, f.mode, len(f.data)] for f in files],
            "remove": list(remove),
        }
        request = msgspec.json.encode(head) + b"\n" + b"".join(f.data for f in files)
        argv = ["python3", "-I", "-S", "-c", helper_source(sandbox_snapshot)]
        done = self._helper("restore", argv, request, MAX_LISTING_BYTES, FILE_TIMEOUT, network=False)
        if done.exit_code != 0:
            detail = done.errors.decode(errors="replace")[-2000:]
            raise ComputeError(f"restoring the work folder failed (exit {done.exit_code}): {detail}")

    # -- packages -------------------------------------------------------------------------

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        """Install pip packages into a virtual environment in the work folder, from a
        sandbox with the session's network (the installer runs confined, too; under
        ``limited`` networking, through the egress proxy)."""
        if manager != "pip":
            raise ComputeError(f"the host compute installs pip packages only, not {manager!r}")
        names = validate_packages(packages)
        if not self.network and self.egress is None:
            raise ComputeError("packages cannot be installed without networking")
        venv = f"{WORKSPACE}/{VENV}"
        script = (
            f"test -x {venv}/bin/pip || python3 -m venv {venv} && "
            f"{venv}/bin/pip install --quiet --disable-pip-version-check -- {shlex.join(names)}"
        )
        done = self._run(["/bin/sh", "-c", script], INSTALL_TIMEOUT, limit=MAX_LISTING_BYTES)
        output = done.output.decode("utf-8", errors="replace")
        if done.timed_out or done.exit_code != 0:
            raise ComputeError(f"pip install {' '.join(names)} failed:\n{output[-4000:]}")
        return output


def _tools_user(root: Path, *, made: bool, engine_owned: bool) -> User:
    """Who the tools of work folder ``root`` run as. An engine that is not root: itself. An
    engine running as root: ``nobody`` in a folder it made (given to ``nobody``, with what
    an older version left in it when the folder is the engine's own), the owner of a folder
    someone else owns, and never root: a folder of root's it did not make is refused."""
    if not bubblewrap.engine_is_root():
        return User.of_engine()
    owner = root.stat()
    if owner.st_uid != 0:
        return User(owner.st_uid, owner.st_gid)
    if not (made or engine_owned):
        raise ComputeError(
            f"the work folder {str(root)!r} belongs to root, and confined tools never run as root: "
            "give it to the user the tools should run as (chown), or name a folder that does not "
            "exist yet (it is made for them)"
        )
    nobody = User.nobody()
    _hand_over(root, nobody)
    return nobody


def _hand_over(root: Path, user: User) -> None:
    """Give the folders, regular files and links (the links themselves) under ``root`` to
    ``user``. A file with other names elsewhere (a hard link) is left as it is: changing it
    would change a file outside the folder."""
    for folder, names, files in os.walk(root):
        os.chown(folder, user.uid, user.gid, follow_symlinks=False)
        for name in (*names, *files):
            path = os.path.join(folder, name)
            info = os.lstat(path)
            mine = stat.S_ISLNK(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink == 1)
            if mine:
                os.chown(path, user.uid, user.gid, follow_symlinks=False)


def _make_home(root: Path, user: User) -> None:
    """The tools' home folder in the work folder, made for ``user`` when missing (a name
    there already, even a link, is left as it is)."""
    work = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.mkdir(HOME, 0o755, dir_fd=work)
        os.chown(HOME, user.uid, user.gid, dir_fd=work, follow_symlinks=False)
    except FileExistsError:
        pass
    finally:
        os.close(work)
