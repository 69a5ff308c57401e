"""Docker compute: one hardened container per session, found again after a restart.

The container runs as an unprivileged user with no capabilities, no new
privileges, a read-only root, memory/CPU/pid limits and the network the session
asked for. The work folder is a named volume, so files outlive a container
restart. Files move through the Docker archive API (tar streams), never through
a shell, so no name or content needs quoting. Commands are killed at their
timeout (with their children) and their output is capped.
"""

from __future__ import annotations

import io
import os
import posixpath
import secrets
import shlex
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from agentjournal.application.ports import ComputeError, ExecResult, FileEntry
from agentjournal.domain import ComputeBinding
from agentjournal.infrastructure.host import OutputCap, validate_packages

if TYPE_CHECKING:
    from agentjournal.application.api import ManagedConfig

DEFAULT_IMAGE = "agentjournal-sandbox:latest"
LABEL = "agentjournal.managed"
SESSION_LABEL = "agentjournal.session"
SANDBOX_USER = "1000:1000"
CA_PATH = "/etc/agentjournal/ca-bundle.pem"
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
MAX_FILE_BYTES = 256 * 1024 * 1024


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


class DockerCompute:
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
        max_output_bytes: int = 64_000,
        client: Any = None,
    ) -> None:
        network = dict(networking or {"type": "unrestricted"})
        kind = network.get("type")
        if kind == "limited":
            raise ComputeError(
                "networking type 'limited' (allowed_hosts) is not enforced by the Docker compute; "
                "use {'type': 'unrestricted'} or {'type': 'none'}"
            )
        if kind not in ("unrestricted", "none"):
            raise ComputeError(f"unknown networking type {kind!r}")
        if not posixpath.isabs(working_dir) or posixpath.normpath(working_dir) == "/":
            raise ComputeError(f"working_dir must be an absolute folder below /, not {working_dir!r}")
        self.image = image
        self.working_dir = posixpath.normpath(working_dir)
        self.env = dict(env or {})
        self.network_disabled = kind == "none"
        self.ca_bundle = ca_bundle if ca_bundle is not None else host_ca_bundle()
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            raise ComputeError(f"CA bundle {self.ca_bundle!r} is not a file")
        self.memory = memory
        self.cpus = cpus
        self.pids_limit = pids_limit
        self.max_output_bytes = max_output_bytes
        self._client = client
        self.container: Any = None

    @classmethod
    def from_config(cls, config: ManagedConfig) -> DockerCompute:
        return cls(
            config.image or DEFAULT_IMAGE,
            working_dir=config.working_dir or "/workspace",
            env=config.env,
            networking=config.networking,
            ca_bundle=config.ca_bundle,
            max_output_bytes=config.max_output_bytes,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env()
                self._client.ping()
            except docker.errors.DockerException as e:
                self._client = None
                raise ComputeError(f"no Docker engine to run the sandbox in: {e}") from e
        return self._client

    # -- lifecycle ------------------------------------------------------------------------

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        import docker

        if previous is not None and previous.kind == self.kind:
            try:
                container = self.client.containers.get(previous.reference)
            except docker.errors.NotFound:
                container = None
            if container is not None:
                if container.status != "running":
                    container.start()
                self.container = container
                return previous
        self.container = self._create(session_id)
        return ComputeBinding(kind=self.kind, reference=self.container.id, image=self.image)

    def _create(self, session_id: UUID) -> Any:
        import docker

        volume = f"agentjournal-{session_id}"
        labels = {LABEL: "1", SESSION_LABEL: str(session_id)}
        volumes: dict[str, dict[str, str]] = {volume: {"bind": self.working_dir, "mode": "rw"}}
        environment = {
            "HOME": "/home/sandbox",
            "PATH": f"{self.working_dir}/.venv/bin:/usr/local/bin:/usr/bin:/bin",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **self.env,
        }
        if self.ca_bundle:
            volumes[str(Path(self.ca_bundle).resolve())] = {"bind": CA_PATH, "mode": "ro"}
            environment.update(dict.fromkeys(CA_VARIABLES, CA_PATH))
        try:
            self.client.volumes.create(volume, labels=labels)
            return self.client.containers.run(
                self.image,
                ["sleep", "infinity"],
                name=f"agentjournal-{str(session_id)[:8]}-{secrets.token_hex(3)}",
                detach=True,
                init=True,
                user=SANDBOX_USER,
                working_dir=self.working_dir,
                environment=environment,
                volumes=volumes,
                read_only=True,
                tmpfs={
                    "/tmp": "rw,nosuid,nodev,size=512m",
                    "/home/sandbox": "rw,nosuid,nodev,size=256m,uid=1000,gid=1000",
                },
                security_opt=["no-new-privileges"],
                cap_drop=["ALL"],
                mem_limit=self.memory,
                nano_cpus=int(self.cpus * 1e9),
                pids_limit=self.pids_limit,
                network_mode="none" if self.network_disabled else "bridge",
                labels=labels,
            )
        except docker.errors.ImageNotFound:
            raise ComputeError(
                f"sandbox image {self.image!r} not found: build it with scripts/build-sandbox-image "
                "(offline) or docker build -t agentjournal-sandbox:latest infrastructure/sandbox"
            ) from None
        except docker.errors.APIError as e:
            raise ComputeError(f"could not start the sandbox: {e.explanation or e}") from e

    def release(self, binding: ComputeBinding) -> None:
        import docker

        try:
            remove_sandbox(self.client.containers.get(binding.reference))
        except docker.errors.NotFound:
            pass
        if self.container is not None and self.container.id == binding.reference:
            self.container = None

    def _running(self) -> Any:
        if self.container is None:
            raise ComputeError("the Docker sandbox is not attached to a session")
        return self.container

    # -- commands -------------------------------------------------------------------------

    def execute(self, command: str, timeout: float) -> ExecResult:
        output, exit_code, duration_ms, truncated = self._exec_timed(["sh", "-c", command], timeout)
        return ExecResult(
            output=output.decode("utf-8", errors="replace"),
            exit_code=exit_code,
            duration_ms=duration_ms,
            truncated=truncated,
            timed_out=exit_code in (124, 137) and duration_ms >= timeout * 1000,
        )

    def _exec_timed(self, argv: Sequence[str], timeout: float) -> tuple[bytes, int | None, float, bool]:
        # coreutils timeout runs the command in its own process group and signals the
        # whole group, so background children die with it; KILL follows TERM after 2 s.
        return self._exec(["timeout", "--kill-after=2", f"{timeout:g}", *argv], timeout + 10)

    def _exec(self, argv: Sequence[str], deadline: float) -> tuple[bytes, int | None, float, bool]:
        api = self.client.api
        container = self._running()
        started = time.perf_counter()
        exec_id = api.exec_create(container.id, list(argv), stdout=True, stderr=True, user=SANDBOX_USER)["Id"]
        cap = OutputCap(self.max_output_bytes)
        for block in api.exec_start(exec_id, stream=True):
            cap.add(block)
            if time.perf_counter() - started > deadline:
                break
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        return bytes(cap.kept), exit_code, round((time.perf_counter() - started) * 1000, 3), cap.truncated

    def _run_checked(self, argv: Sequence[str], what: str, timeout: float = 900) -> str:
        output, exit_code, _, _ = self._exec_timed(argv, timeout)
        text = output.decode("utf-8", errors="replace")
        if exit_code != 0:
            raise ComputeError(f"{what} failed (exit {exit_code}):\n{text[-4000:]}")
        return text

    # -- files ----------------------------------------------------------------------------

    def _confine(self, path: str) -> str:
        """The canonical path of ``path`` inside the work folder (symlinks resolved in the
        container), or ComputeError."""
        joined = posixpath.normpath(posixpath.join(self.working_dir, path))
        self._check_inside(joined, path)
        resolved = self._run_checked(["realpath", "-m", "--", joined], "resolving a path").rstrip("\n")
        self._check_inside(resolved, path)
        return resolved

    def _check_inside(self, candidate: str, path: str) -> None:
        if candidate != self.working_dir and not candidate.startswith(self.working_dir + "/"):
            raise ComputeError(f"path {path!r} is outside the work folder")

    def read_file(self, path: str) -> bytes:
        import docker

        target = self._confine(path)
        try:
            stream, stat = self._running().get_archive(target)
        except docker.errors.NotFound:
            raise ComputeError(f"no file {path!r}") from None
        if stat.get("size", 0) > MAX_FILE_BYTES:
            raise ComputeError(f"{path!r} is larger than {MAX_FILE_BYTES} bytes")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            if member is None or not member.isfile():
                raise ComputeError(f"{path!r} is not a regular file")
            extracted = archive.extractfile(member)
            assert extracted is not None
            return extracted.read()

    def write_file(self, path: str, data: bytes) -> None:
        target = self._confine(path)
        relative = posixpath.relpath(target, self.working_dir)
        if relative == ".":
            raise ComputeError(f"{path!r} is the work folder, not a file")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                folder = tarfile.TarInfo("/".join(parts[:depth]))
                folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o755, 1000, 1000
                archive.addfile(folder)
            info = tarfile.TarInfo(relative)
            info.size, info.mode, info.uid, info.gid, info.mtime = (
                len(data),
                0o644,
                1000,
                1000,
                int(time.time()),
            )
            archive.addfile(info, io.BytesIO(data))
        try:
            ok = self._running().put_archive(self.working_dir, buffer.getvalue())
        except Exception as e:  # docker raises APIError for a file where a folder should be
            raise ComputeError(f"could not write {path!r}: {e}") from e
        if not ok:
            raise ComputeError(f"could not write {path!r}")

    def list_files(self, path: str) -> list[FileEntry]:
        folder = self._confine(path)
        listing = self._run_checked(
            ["find", folder, "-mindepth", "1", "-path", f"{self.working_dir}/.venv", "-prune",
             "-o", "-type", "f", "-printf", r"%s\t%P\0"],
            "listing files",
        )  # fmt: skip
        entries = []
        prefix = posixpath.relpath(folder, self.working_dir)
        for record in filter(None, listing.split("\0")):
            size, _, name = record.partition("\t")
            shown = name if prefix == "." else f"{prefix}/{name}"
            entries.append(FileEntry(shown, "file", int(size)))
        return sorted(entries, key=lambda e: e.path)

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
                "add them to the image instead (infrastructure/sandbox/Dockerfile)"
            )
        return "".join(self._run_checked(step, f"{manager} install {' '.join(names)}") for step in steps)


def remove_sandbox(container: Any) -> None:
    """Remove a sandbox container and its work volume."""
    import docker

    volumes = [m["Name"] for m in container.attrs.get("Mounts", []) if m.get("Type") == "volume"]
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
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
    import docker

    client = client or docker.from_env()
    label = f"{SESSION_LABEL}={session_id}" if session_id else LABEL
    yield from client.containers.list(all=True, filters={"label": label})
