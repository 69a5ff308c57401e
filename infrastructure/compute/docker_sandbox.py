"""Docker compute: one hardened container per session, found again from any process.

The container runs with no capabilities, no new privileges, a read-only root,
memory/CPU/pid limits and the network the session asked for: Docker's default
network, none, or (``limited`` networking that allows anything) an internal network it
shares with its egress proxy alone (:mod:`~agentjournal.infrastructure.compute.docker_egress`).
The tools run in it
as an unprivileged user (uid 1000). The container's own process, which only keeps
it up, runs as another user (``nobody``), so the tools can neither end it nor
hide from the engine's kill.

Every command runs for at most its timeout, measured here, not inside the sandbox.
When it ends, or its timeout passes, every process of the tools' user is killed
with SIGKILL by one ``kill -KILL -1`` from a second exec: a signal none can ignore,
delivered to all at once, so nothing a command starts (in the background, in a
new session, stopped, or forking) outlives it. A session's tool calls run one at
a time, so this never reaches another call's processes.

The work folder is a tmpfs of ``workspace_quota_bytes`` (1 GiB by default); a write
past it fails with "disk quota exceeded", which the model reads as a tool error.
tmpfs is the one size limit every Docker engine enforces (a sized volume needs
XFS project quotas under Docker's data root). Its files are held in memory, so
they count against the container's memory limit, which must be larger; and they
last as long as the container runs, for any number of processes that re-attach,
but not past a stop of the container (an engine restart, a reboot): a stopped
sandbox is replaced by a fresh one, recorded as a new ComputeAttached.

Files never go through Docker's archive API, which reads and writes as root and
resolves a path apart from using it. A small helper
(:mod:`agentjournal.infrastructure.compute.sandbox_files`) runs in the sandbox as the tools'
user and walks each path from the work folder with no-follow opens: resolving a
path and using it are one step, which no link swapped in can lead out of. A search
(glob, grep) is one run of the same helper, however many files it reads. A web
fetch runs a helper of its own (:mod:`agentjournal.infrastructure.compute.sandbox_fetch`)
as the tools' user, so it has the sandbox's network and nothing of the engine's.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import shlex
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import msgspec

from agentjournal.application.ports import (
    MEMORY_ROOT,
    ComputeError,
    ExecResult,
    FileContents,
    SnapshotLimits,
    WebPage,
    WorkspaceScan,
)
from agentjournal.domain import ComputeBinding, FileState, NetworkAccess, network_access
from agentjournal.domain.memory import MemoryQuota
from agentjournal.infrastructure.compute import egress_proxy, sandbox_fetch, sandbox_files, sandbox_snapshot
from agentjournal.infrastructure.compute.docker_egress import egress_log, remove_egress, start_egress
from agentjournal.infrastructure.compute.folder_scans import MAX_SCANS_KEPT
from agentjournal.infrastructure.compute.host import OutputCap, validate_packages
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
    size_text,
    web_page,
)

if TYPE_CHECKING:
    from agentjournal.application.api import ManagedConfig

DEFAULT_IMAGE = "agentjournal-sandbox:latest"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
"""What names the egress proxy to the tools of a sandbox under ``limited`` networking."""

LABEL = "agentjournal.managed"
SESSION_LABEL = "agentjournal.session"
# Sandboxes made before the work folder quota and the kill of all a command started
# lack this label; they are replaced, not reused.
LAYOUT_LABEL, LAYOUT = "agentjournal.layout", "3"
SANDBOX_USER = "1000:1000"
KEEPER_USER = "65534:65534"  # nobody: runs the process that keeps the container up
MEMORY_KEEPER = "0:0"
"""Who writes a read-only memory store's folder: the container's root, without capabilities,
so the files are root's and the tools' user (1000) can neither write nor chmod them."""
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # for the engine's own execs: no .venv of the model's
CA_PATH = "/etc/agentjournal/ca-bundle.pem"
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
DEFAULT_WORKSPACE_QUOTA = 1024**3
KILL_GRACE = 10.0  # seconds for a killed command's exec to report its end
CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")
NO_SPACE = b"No space left on device"  # strerror(ENOSPC), as commands print it
HELPER = helper_source(sandbox_files)
FETCH_HELPER = helper_source(sandbox_fetch)
SNAPSHOT_HELPER = helper_source(sandbox_snapshot)
NO_PYTHON = "; the image needs python3"


def host_ca_bundle() -> str | None:
    """The CA bundle this host is configured to trust for HTTPS, if one is configured:
    the usual environment variables first, then pip's ``cert`` setting."""
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"):
        path = os.environ.get(variable)
        if path and Path(path).is_file():
            return path
    import configparser

    for config in ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", Path.home() / ".config/pip/pip.conf"):
        parser = configparser.ConfigParser()
        try:
            parser.read(config)
        except configparser.Error:
            continue
        path = parser.get("global", "cert", fallback=None)
        if path and Path(path).is_file():
            return path
    return None


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Failures of the Docker engine (the sandbox removed meanwhile, the engine gone) as
    ComputeError: the compute is unusable, which stops the turn with a clear message."""
    import docker
    import requests

    try:
        yield
    except docker.errors.APIError as e:
        raise ComputeError(f"the Docker engine failed: {e.explanation or e}") from e
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise ComputeError(f"the Docker engine failed: {e}") from e


class _ScanHead(msgspec.Struct):
    """The first line of the snapshot helper's answer (see :func:`sandbox_snapshot.main`)."""

    started: int
    entries: list[tuple[str, str, int, int, bool, int, int]]
    sizes: list[tuple[str, int]]


class _Ran(NamedTuple):
    """How one command in the sandbox went."""

    output: bytes
    exit_code: int | None
    duration_ms: float
    truncated: bool
    timed_out: bool


class DockerCompute(HelperFileTools):
    """A :class:`~application.ports.Compute` in a Docker container."""

    kind = "docker"

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        working_dir: str = "/workspace",
        env: Mapping[str, str] | None = None,
        networking: Mapping[str, Any] | None = None,
        ca_bundle: str | None = None,
        memory: str = "2g",
        cpus: float = 1.0,
        pids_limit: int = 512,
        workspace_quota_bytes: int = DEFAULT_WORKSPACE_QUOTA,
        max_output_bytes: int = 64_000,
        client: Any = None,
    ) -> None:
        network = dict(networking or {"type": "unrestricted"})
        kind = network.get("type")
        if kind not in ("unrestricted", "none", "limited"):
            raise ComputeError(f"unknown networking type {kind!r}")
        access = network_access(network)
        self.egress_rules = egress_proxy.rules_for(network) if access == NetworkAccess.ALLOW_LIST else None
        """What the sandbox's egress proxy allows, under ``limited`` networking that allows anything."""
        if not posixpath.isabs(working_dir) or posixpath.normpath(working_dir) == "/":
            raise ComputeError(f"working_dir must be an absolute folder below /, not {working_dir!r}")
        if workspace_quota_bytes <= 0:
            raise ComputeError(f"workspace_quota_bytes must be positive, not {workspace_quota_bytes!r}")
        self.image = image
        self.working_dir = posixpath.normpath(working_dir)
        self.env = dict(env or {})
        self.network_disabled = access == NetworkAccess.NONE
        self.ca_bundle = ca_bundle if ca_bundle is not None else host_ca_bundle()
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            raise ComputeError(f"CA bundle {self.ca_bundle!r} is not a file")
        self.memory = memory
        self.cpus = cpus
        self.pids_limit = pids_limit
        self.workspace_quota_bytes = workspace_quota_bytes
        self.max_output_bytes = max_output_bytes
        self._client = client
        self._scans: dict[tuple[str, str], dict[str, list[Any]]] = {}
        self._memory_places: list[str] = []
        """The memory stores' folders shown in the sandbox, for the file tools."""
        """What the last snapshot of each sandbox found, for the next to skip unchanged files."""
        self.container: Any = None
        self._egress_logs: dict[str, Path | None] = {}
        """The request log of each sandbox's egress proxy, by container id."""

    @classmethod
    def from_config(cls, config: ManagedConfig) -> DockerCompute:
        return cls(
            config.image or DEFAULT_IMAGE,
            working_dir=config.working_dir or "/workspace",
            env=config.env,
            networking=config.networking,
            ca_bundle=config.ca_bundle,
            workspace_quota_bytes=config.workspace_quota_bytes,
            max_output_bytes=config.max_output_bytes,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_engine()
        return self._client

    # -- lifecycle ------------------------------------------------------------------------

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        container = self._reusable(session_id, previous)
        if container is not None and previous is not None:
            self.container = container
            return previous
        self.container = self._create(session_id)
        return ComputeBinding(kind=self.kind, reference=self.container.id, image=self.image)

    def _reusable(self, session_id: UUID, previous: ComputeBinding | None) -> Any:
        """The running sandbox of this session that ``previous`` names, if there is one. A
        binding can come from an imported log: a container that is not this session's sandbox
        is neither used nor touched. A stopped sandbox lost its work folder, and one of an
        older layout lacks the quota and the kill: both are removed, to be replaced."""
        if previous is None or previous.kind != self.kind:
            return None
        container = find_sandbox(self.client, previous.reference)
        if container is None or container.labels.get(SESSION_LABEL) != str(session_id):
            return None
        if container.status != "running" or container.labels.get(LAYOUT_LABEL) != LAYOUT:
            remove_sandbox(container)
            return None
        return container

    def _create(self, session_id: UUID) -> Any:
        import docker

        if self.workspace_quota_bytes >= docker.utils.parse_bytes(self.memory):
            raise ComputeError(
                f"the work folder quota ({size_text(self.workspace_quota_bytes)}) must be below the memory "
                f"limit ({self.memory}): the work folder is held in the container's memory"
            )
        labels = {LABEL: "1", SESSION_LABEL: str(session_id), LAYOUT_LABEL: LAYOUT}
        volumes: dict[str, dict[str, str]] = {}
        environment = {
            "HOME": "/home/sandbox",
            "PATH": f"{self.working_dir}/.venv/bin:{SYSTEM_PATH}",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **self.env,
        }
        if self.ca_bundle:
            volumes[str(Path(self.ca_bundle).resolve())] = {"bind": CA_PATH, "mode": "ro"}
            environment.update(dict.fromkeys(CA_VARIABLES, CA_PATH))
        owned = "rw,nosuid,nodev,uid=1000,gid=1000,mode=0755"
        name = f"agentjournal-{str(session_id)[:8]}-{secrets.token_hex(3)}"
        network_mode = "none" if self.network_disabled else "bridge"
        if self.egress_rules is not None:
            egress = start_egress(self.client, name, self.egress_rules)
            network_mode = egress.network
            environment.update(dict.fromkeys(PROXY_VARIABLES, egress.url))
        try:
            return self.client.containers.run(
                self.image,
                ["sleep", "infinity"],
                name=name,
                detach=True,
                init=True,
                user=KEEPER_USER,
                working_dir=self.working_dir,
                environment=environment,
                volumes=volumes,
                read_only=True,
                tmpfs={
                    self.working_dir: f"{owned},exec,size={self.workspace_quota_bytes}",
                    "/tmp": "rw,nosuid,nodev,size=512m",
                    "/home/sandbox": f"{owned},size=256m",
                    # Sticky and open to all: the tools' user makes read_write stores' folders,
                    # root the read_only ones, which the tools cannot change or remove.
                    MEMORY_ROOT: "rw,nosuid,nodev,size=64m,mode=1777",
                },
                security_opt=["no-new-privileges"],
                cap_drop=["ALL"],
                mem_limit=self.memory,
                nano_cpus=int(self.cpus * 1e9),
                pids_limit=self.pids_limit,
                network_mode=network_mode,
                labels=labels,
            )
        except docker.errors.ImageNotFound:
            remove_egress(self.client, name)
            raise ComputeError(
                f"sandbox image {self.image!r} not found: build it with scripts/build-sandbox-image "
                "(offline) or docker build -t agentjournal-sandbox:latest infrastructure/compute/sandbox"
            ) from None
        except docker.errors.APIError as e:
            remove_egress(self.client, name)
            raise ComputeError(f"could not start the sandbox: {e.explanation or e}") from e

    def release(self, binding: ComputeBinding) -> None:
        release_sandbox(binding, self.client)
        if self.container is not None and self.container.id == binding.reference:
            self.container = None

    def _running(self) -> Any:
        if self.container is None:
            raise ComputeError("the Docker sandbox is not attached to a session")
        return self.container

    # -- commands -------------------------------------------------------------------------

    def execute(self, command: str, timeout: float) -> ExecResult:
        """Run ``command`` in the sandbox; requests its egress proxy refused meanwhile are
        named at the end of the output (a refused HTTPS tunnel shows the client only a status)."""
        log = self._egress_log() if self.egress_rules is not None else None
        position = egress_proxy.log_position(log) if log is not None else 0
        ran = self._run(["sh", "-c", command], timeout)
        output = ran.output.decode("utf-8", errors="replace")
        if ran.exit_code != 0 and NO_SPACE in ran.output:
            output += self._quota_note()
        if log is not None:
            output += egress_proxy.refusal_note(egress_proxy.refusals_since(log, position))
        return ExecResult(
            output=output,
            exit_code=ran.exit_code,
            duration_ms=ran.duration_ms,
            truncated=ran.truncated,
            timed_out=ran.timed_out,
        )

    def _egress_log(self) -> Path | None:
        """The request log of this sandbox's egress proxy, found once per sandbox."""
        container = self._running()
        if container.id not in self._egress_logs:
            self._egress_logs[container.id] = egress_log(self.client, container.name)
        return self._egress_logs[container.id]

    def _quota_note(self) -> str:
        """What to tell the model when a command ran out of space: whether it was the work
        folder's quota (and not, say, /tmp that filled up)."""
        size, free = map(int, self._files("space", ".").split())
        if free > 1024 * 1024:
            return ""
        return f"\n[disk quota exceeded: the work folder holds at most {size_text(size)}]"

    @_engine_errors()
    def _run(self, argv: Sequence[str], timeout: float) -> _Ran:
        """Run ``argv`` as the tools' user for at most ``timeout`` seconds, then kill every
        process it started. Its output (stdout and stderr in order) is read by a thread, so
        the deadline holds whether the command writes, waits, or was stopped."""
        started = time.perf_counter()
        exec_id = self._exec_create(argv)
        cap = OutputCap(self.max_output_bytes)
        with self._attached(exec_id, timeout=None) as output:
            reader = threading.Thread(target=_drain, args=(output, cap), daemon=True)
            reader.start()
            ended = self._wait(exec_id, reader, started + timeout)
            self._kill_all()
            reader.join(KILL_GRACE)
        return _Ran(
            output=bytes(cap.kept),
            exit_code=self._exit_code(exec_id),
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            truncated=cap.truncated,
            timed_out=not ended,
        )

    def _wait(self, exec_id: str, reader: threading.Thread, until: float) -> bool:
        """Wait until the exec's process ends (True) or ``until`` passes (False). The end of its
        output is only a hint: a command may close its output and carry on."""
        pause = 0.01
        while True:
            left = max(0.0, min(pause, until - time.perf_counter()))
            if reader.is_alive():
                reader.join(left)
            else:
                time.sleep(left)
            if not self._exec_running(exec_id):
                return True
            if time.perf_counter() >= until:
                return False
            pause = min(pause * 2, 0.5)

    def stop(self) -> None:
        if self.container is not None:
            self._kill_all()

    def _kill_all(self) -> None:
        """Kill every process of the tools' user with SIGKILL, from a new exec: kill(-1) as that
        user reaches all of them at once (so none can fork away) except the shell sending it;
        the container's own process runs as another user and stays. The engine moves the
        exec's shell into the container's cgroup rather than forking it there, and the builtin
        ``kill`` forks nothing, so this works even when a command has filled the pid limit."""
        api = self.client.api
        api.exec_start(self._exec_create(["/bin/sh", "-c", "kill -KILL -1"], path=SYSTEM_PATH))

    def _exec_create(
        self, argv: Sequence[str], *, stdin: bool = False, path: str | None = None, user: str = SANDBOX_USER
    ) -> str:
        created = self.client.api.exec_create(
            self._running().id,
            list(argv),
            stdout=True,
            stderr=True,
            stdin=stdin,
            user=user,
            environment={"PATH": path} if path else None,
        )
        return str(created["Id"])

    @contextmanager
    def _attached(self, exec_id: str, timeout: float | None) -> Iterator[socket.socket]:
        """Start an exec and yield the socket that carries its stdin and its output frames,
        with ``timeout`` for each wait on it. Closing it on leaving also ends a reader that
        still waits on it."""
        sock = self.client.api.exec_start(exec_id, socket=True)
        raw: socket.socket = getattr(sock, "_sock", sock)
        raw.settimeout(timeout)
        try:
            yield raw
        finally:
            sock.close()
            raw.close()

    def _exec_running(self, exec_id: str) -> bool:
        return bool(self.client.api.exec_inspect(exec_id)["Running"])

    def _exit_code(self, exec_id: str) -> int | None:
        """The exit status of an exec whose process has ended or been killed (None if the
        engine does not report it in time)."""
        give_up = time.perf_counter() + KILL_GRACE
        while (state := self.client.api.exec_inspect(exec_id))["Running"] and time.perf_counter() < give_up:
            time.sleep(0.01)
        return None if state["Running"] else state["ExitCode"]

    def _run_checked(self, argv: Sequence[str], what: str, timeout: float = 900) -> str:
        ran = self._run(argv, timeout)
        text = ran.output.decode("utf-8", errors="replace")
        if ran.timed_out:
            raise ComputeError(f"{what} did not finish in {timeout:g} s:\n{text[-4000:]}")
        if ran.exit_code != 0:
            raise ComputeError(f"{what} failed (exit {ran.exit_code}):\n{text[-4000:]}")
        return text

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
        """Run one operation of the file helper in the sandbox (see
        :mod:`~agentjournal.infrastructure.compute.sandbox_files`) and return what it wrote."""
        check_path(path)
        root = memory_root(path, self._memory_places) or self.working_dir
        argv = ["python3", "-I", "-S", "-c", HELPER, operation, root, path, str(limit), *extra]
        exit_code, output, errors = self._helper(argv, data, max(limit, MAX_LISTING_BYTES), seconds)
        check_answer(exit_code, operation, path, errors, seconds, hint=NO_PYTHON)
        return output

    def snapshot(self, known: Mapping[str, str], limits: SnapshotLimits) -> WorkspaceScan:
        """Scan the work folder with :mod:`~agentjournal.infrastructure.compute.sandbox_snapshot` in
        one exec: what the last scan of this sandbox found goes in on stdin, so unchanged
        files are not read, and the changed files' contents come back with the listing.
        The answer is the sandbox's word, so it is decoded against a fixed shape."""
        container = self._running()
        key = (container.id, self.working_dir)
        previous = self._scans.pop(key, {})
        head, contents = self._scan(self.working_dir, previous, known, limits.ignore, limits.max_file_bytes)
        self._scans[key] = {
            e[0]: [e[5], e[2], e[6], e[1], e[4]]
            for e in head.entries
            if sandbox_snapshot.reusable(list(e), head.started)
        }
        while len(self._scans) > MAX_SCANS_KEPT:
            self._scans.pop(next(iter(self._scans)))
        files = {e[0]: FileState(hash=e[1], size=e[2], mode=e[3], stored=e[4]) for e in head.entries}
        return WorkspaceScan(files=files, contents=contents)

    def _scan(
        self,
        work: str,
        previous: Mapping[str, Any],
        known: Mapping[str, str],
        ignore: Sequence[str],
        cap: int,
        most_contents: int | None = None,
    ) -> tuple[_ScanHead, dict[str, bytes]]:
        """The snapshot helper's scan of folder ``work``, decoded against a fixed shape: the
        answer is the sandbox's word, of at most ``most_contents`` bytes of contents (by
        default the work folder's quota) and a listing, or :class:`AnswerTooLarge`."""
        request = msgspec.json.encode(
            {"op": "scan", "work": work, "previous": dict(previous), "known": dict(known),
             "ignore": list(ignore), "cap": cap}
        )  # fmt: skip
        argv = ["python3", "-I", "-S", "-c", SNAPSHOT_HELPER]
        most = self.workspace_quota_bytes if most_contents is None else most_contents
        exit_code, output, errors = self._helper(
            argv, request + b"\n", most + MAX_LISTING_BYTES, FILE_TIMEOUT
        )
        if exit_code != 0:
            raise ComputeError(
                f"the workspace snapshot failed (exit {exit_code}): {errors.decode(errors='replace')[-2000:]}"
            )
        line, _, body = output.partition(b"\n")
        try:
            head = msgspec.json.decode(line, type=_ScanHead)
        except msgspec.DecodeError as e:
            raise ComputeError(f"the workspace snapshot's answer is not one: {e}") from None
        contents, at = {}, 0
        for path, size in head.sizes:
            contents[path] = body[at : at + size]
            at += size
        if at != len(body):
            raise ComputeError("the workspace snapshot's contents do not add up to their sizes")
        return head, contents

    def restore(self, files: Sequence[FileContents], remove: Sequence[str] = ()) -> None:
        """Write ``files`` and delete ``remove`` with :mod:`~agentjournal.infrastructure.compute.sandbox_snapshot`
        in one exec, the contents streamed on its stdin, as the tools' user, never through a link."""
        self._running()
        self._restore(self.working_dir, files, remove, SANDBOX_USER)

    def _restore(self, work: str, files: Sequence[FileContents], remove: Sequence[str], user: str) -> None:
        head = {
            "op": "restore",
            "work": work,
            "files": [[f.path, f.mode, len(f.data)] for f in files],
            "remove": list(remove),
        }
        request = msgspec.json.encode(head) + b"\n" + b"".join(f.data for f in files)
        argv = ["python3", "-I", "-S", "-c", SNAPSHOT_HELPER]
        exit_code, _, errors = self._helper(argv, request, MAX_LISTING_BYTES, FILE_TIMEOUT, user)
        if exit_code != 0:
            detail = errors.decode(errors="replace")[-2000:]
            raise ComputeError(f"restoring the work folder failed (exit {exit_code}): {detail}")

    # -- memory stores --------------------------------------------------------------------

    def show_memory(self, slug: str, read_only: bool, files: Mapping[str, bytes]) -> None:
        """Make ``/mnt/memory/<slug>`` hold exactly ``files``: written by the tools' user for a
        read_write store, by the container's root (without capabilities) for a read_only one,
        whose files the tools' user can then neither change nor remove."""
        self._running()
        place, user = memory_place(slug), MEMORY_KEEPER if read_only else SANDBOX_USER
        argv = ["sh", "-c", 'rm -rf -- "$1" && mkdir -m 0755 -- "$1"', "sh", place]
        exit_code, _, errors = self._helper(argv, None, MAX_LISTING_BYTES, FILE_TIMEOUT, user)
        if exit_code != 0:
            raise ComputeError(
                f"the memory folder {place} could not be made (exit {exit_code}): "
                f"{errors.decode(errors='replace')[-500:]}"
            )
        mode = 0o444 if read_only else 0o644
        self._restore(place, [FileContents(p, mode, data) for p, data in files.items()], (), user)
        if place not in self._memory_places:
            self._memory_places.append(place)

    def memory_files(self, slug: str, max_file_bytes: int, quota: MemoryQuota) -> dict[str, bytes | None]:
        """The store's folder as the snapshot helper scans it, the engine buffering no more
        of its answer than ``quota.total_bytes`` of contents and a listing: a longer answer
        is a folder past the bound, whatever the sandbox claims."""
        try:
            head, contents = self._scan(memory_place(slug), {}, {}, (), max_file_bytes, quota.total_bytes)
        except AnswerTooLarge:
            raise quota.folder_of_too_many_bytes() from None
        if len(head.entries) > quota.memories:
            raise quota.folder_of_too_many_files()
        found = {e[0]: contents.get(e[0]) if e[4] else None for e in head.entries}
        if sum(len(data) for data in found.values() if data is not None) > quota.total_bytes:
            raise quota.folder_of_too_many_bytes()
        return {
            path: None if data is not None and len(data) > max_file_bytes else data
            for path, data in found.items()
        }

    def fetch(self, url: str, limit: int, timeout: float) -> WebPage:
        """Fetch ``url`` with :mod:`~agentjournal.infrastructure.compute.sandbox_fetch`, in the
        sandbox as the tools' user: with the sandbox's network, or none."""
        check_url(url)
        seconds = alarm_seconds(timeout)
        argv = ["python3", "-I", "-S", "-c", FETCH_HELPER, url, str(limit), str(seconds)]
        exit_code, output, errors = self._helper(argv, None, limit + FETCH_HEAD_BYTES, seconds)
        check_answer(exit_code, "fetch", url, errors, seconds, hint=NO_PYTHON)
        return web_page(output)

    @_engine_errors()
    def _helper(
        self, argv: Sequence[str], data: bytes | None, limit: int, seconds: float, user: str = SANDBOX_USER
    ) -> tuple[int | None, bytes, bytes]:
        """Run a helper in the sandbox as ``user``, with ``data`` as its stdin, waiting at most
        ``seconds`` (and the time to report) for each part of its answer; its exit status, its
        stdout (at most ``limit`` bytes) and the start of its stderr."""
        exec_id = self._exec_create(argv, stdin=data is not None, path=SYSTEM_PATH, user=user)
        with self._attached(exec_id, timeout=seconds + KILL_GRACE) as channel:
            output, errors = _exchange(channel, data, limit)
        return self._exit_code(exec_id), output, errors

    # -- packages -------------------------------------------------------------------------

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        names = validate_packages(packages)
        if self.network_disabled:
            raise ComputeError("packages cannot be installed with networking {'type': 'none'}")
        if manager == "pip":
            venv = f"{self.working_dir}/.venv"
            steps = [
                ["sh", "-c", f"test -x {shlex.quote(venv)}/bin/pip || python3 -m venv {shlex.quote(venv)}"],
                [f"{venv}/bin/pip", "install", "--no-cache-dir", "--", *names],
            ]
        elif manager == "npm":
            steps = [["npm", "install", "--prefix", self.working_dir, "--", *names]]
        else:
            raise ComputeError(
                f"{manager!r} packages need root, which the sandbox does not have: "
                "add them to the image instead (infrastructure/compute/sandbox/Dockerfile)"
            )
        return "".join(self._run_checked(step, f"{manager} install {' '.join(names)}") for step in steps)


class AnswerTooLarge(ComputeError):
    """A helper in the sandbox answered more than the engine buffers for it."""


def _exchange(channel: socket.socket, data: bytes | None, limit: int) -> tuple[bytes, bytes]:
    """Send ``data`` (if any) as an exec's stdin and return its stdout and the start of its
    stderr, buffering at most ``limit`` bytes whatever the sandbox sends."""
    output, errors = bytearray(), bytearray()
    try:
        if data is not None:
            channel.sendall(data)
            channel.shutdown(socket.SHUT_WR)
        for stream, block in _frames(channel):
            if stream == 2:
                errors += block[: 4096 - len(errors)]
                continue
            output += block
            if len(output) > limit:
                raise AnswerTooLarge(f"the sandbox sent more than {limit} bytes")
    except OSError as e:
        raise ComputeError(f"a file operation in the sandbox failed: {e}") from e
    return bytes(output), bytes(errors)


def _drain(output: socket.socket, cap: OutputCap) -> None:
    """Keep what a command writes (stdout and stderr, in order) until its output ends."""
    try:
        for _, block in _frames(output):
            cap.add(block)
    except OSError:  # closed by the caller: the command is over
        pass


def _frames(raw: socket.socket) -> Iterator[tuple[int, bytes]]:
    """The frames of a non-TTY exec's output: (1 for stdout or 2 for stderr, the bytes)."""
    while len(header := _receive(raw, 8)) == 8:
        stream, size = struct.unpack(">BxxxL", header)
        yield stream, _receive(raw, size)


def _receive(raw: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``raw``, or fewer at its end."""
    received = bytearray()
    while len(received) < size and (block := raw.recv(min(size - len(received), 1 << 20))):
        received += block
    return bytes(received)


def docker_engine() -> Any:
    """A client of the Docker engine this process is configured for, or ComputeError."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        raise ComputeError(f"no Docker engine to run the sandbox in: {e}") from e
    return client


def find_sandbox(client: Any, reference: str) -> Any:
    """The sandbox container ``reference`` names, or None if there is none: no container, or
    one the engine did not make (a binding may come from an imported log)."""
    import docker

    if not CONTAINER_ID.match(reference):
        return None
    try:
        container = client.containers.get(reference)
    except docker.errors.NotFound:
        return None
    return container if container.labels.get(LABEL) == "1" else None


def release_sandbox(binding: ComputeBinding, client: Any = None) -> None:
    """Remove the sandbox a recorded binding names, with every process and file in it.

    Needs nothing but the binding, so any process can release a session's sandbox
    (``terminate`` from the command line, a process that never attached it).
    Nothing happens when it is already gone, or when the binding names no sandbox
    of the engine's: another kind of compute, or a container it did not make.
    """
    if binding.kind != DockerCompute.kind:
        return
    container = find_sandbox(client or docker_engine(), binding.reference)
    if container is not None:
        remove_sandbox(container)


def remove_sandbox(container: Any) -> None:
    """Remove a sandbox container, which kills all its processes and drops its tmpfs work
    folder, and the work volume a sandbox of an older layout had."""
    import docker

    volumes = [m["Name"] for m in container.attrs.get("Mounts", []) if m.get("Type") == "volume"]
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        if e.status_code != 409:  # 409: another process is removing it already
            raise
    remove_egress(container.client, container.name)
    for name in volumes:
        try:
            container.client.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if e.status_code != 409:  # 409: a newer sandbox of the session uses it now
                raise


def sandboxes(client: Any = None, session_id: UUID | None = None) -> Iterator[Any]:
    """The project's containers (all of them, or one session's)."""
    client = client or docker_engine()
    label = f"{SESSION_LABEL}={session_id}" if session_id else LABEL
    yield from client.containers.list(all=True, filters={"label": label})
