"""Host compute: tools run on this machine, confined to one work folder.

For trusted development only. Paths are resolved (symlinks included) and must
stay inside the work folder; commands run there in their own process group,
are killed with the group at their timeout, and their output is capped.
Packages go into a virtual environment inside the work folder, not into the
Python that runs agentjournal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from agentjournal.application.ports import ComputeError, ExecResult, FileEntry
from agentjournal.application.service import data_home
from agentjournal.domain import ComputeBinding

if TYPE_CHECKING:
    from agentjournal.application.api import ManagedConfig

# A requirement such as "pandas", "numpy>=2", "requests[socks]==2.32.3"; never an option.
PACKAGE_NAME = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._\-]*(\[[A-Za-z0-9,._\-]+\])?([<>=!~]=?[A-Za-z0-9.*+!\-]+)?$"
)
MAX_LISTED = 1000


def validate_packages(packages: Sequence[str]) -> list[str]:
    bad = [p for p in packages if not PACKAGE_NAME.match(p)]
    if bad:
        raise ComputeError(f"not a package name: {', '.join(map(repr, bad))}")
    return list(packages)


class HostCompute:
    """Tools on the host, inside ``root`` (by default a folder per session under ``base``)."""

    kind = "host"

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

    @classmethod
    def from_config(cls, config: ManagedConfig) -> HostCompute:
        if config.networking.get("type") != "unrestricted":
            raise ComputeError(
                f"the host compute cannot restrict the network ({config.networking!r}); use compute='docker'"
            )
        return cls(
            config.working_dir or None,
            base=data_home(),
            env=config.env,
            max_output_bytes=config.max_output_bytes,
        )

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        if self._fixed_root is not None:
            root = self._fixed_root
        elif previous is not None and previous.kind == self.kind:
            root = Path(previous.reference)
        else:
            root = self._base / "workspaces" / str(session_id)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        return ComputeBinding(kind=self.kind, reference=str(self.root))

    def _root(self) -> Path:
        if self.root is None:
            raise ComputeError("host compute is not attached to a session")
        return self.root

    def _resolve(self, path: str) -> Path:
        root = self._root()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ComputeError(f"path {path!r} is outside the work folder")
        return target

    def execute(self, command: str, timeout: float) -> ExecResult:
        root = self._root()
        env = {**os.environ, **self.env}
        venv = root / ".venv" / "bin"
        if venv.is_dir():
            env["PATH"] = f"{venv}{os.pathsep}{env.get('PATH', '')}"
            env["VIRTUAL_ENV"] = str(venv.parent)
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S602 - running the command line is the tool's purpose
            command,
            shell=True,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reader = _CappedReader(process, self.max_output_bytes)
        timed_out = False
        try:
            process.wait(timeout=max(0.0, timeout - (time.perf_counter() - started)))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            process.wait()
        output, truncated = reader.result()
        return ExecResult(
            output=output.decode("utf-8", errors="replace"),
            exit_code=process.returncode,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            truncated=truncated,
            timed_out=timed_out,
        )

    def read_file(self, path: str) -> bytes:
        target = self._resolve(path)
        if not target.is_file():
            raise ComputeError(f"no file {path!r}")
        return target.read_bytes()

    def write_file(self, path: str, data: bytes) -> None:
        target = self._resolve(path)
        if target.is_dir():
            raise ComputeError(f"{path!r} is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def list_files(self, path: str) -> list[FileEntry]:
        folder = self._resolve(path)
        if not folder.is_dir():
            raise ComputeError(f"no folder {path!r}")
        root = self._root()
        entries = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d != ".venv")
            for name in sorted(filenames):
                file = Path(dirpath) / name
                size = file.lstat().st_size
                entries.append(FileEntry(str(file.relative_to(root)), "file", size))
                if len(entries) >= MAX_LISTED:
                    return entries
        return entries

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        if manager != "pip":
            raise ComputeError(f"host compute installs pip packages only, not {manager!r}")
        names = validate_packages(packages)
        venv = self._root() / ".venv"
        steps = [] if venv.is_dir() else [[sys.executable, "-m", "venv", str(venv)]]
        steps.append([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--", *names])
        output = []
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
            output.append(done.stdout + done.stderr)
            if done.returncode != 0:
                raise ComputeError(f"pip install {' '.join(names)} failed:\n{''.join(output)[-4000:]}")
        return "".join(output)

    def release(self, binding: ComputeBinding) -> None:
        """Nothing runs between calls on the host; the work folder is kept for the user."""


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
        self._pipe = process.stdout
        self._cap = OutputCap(limit)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._pipe is not None
        for block in iter(lambda: self._pipe.read1(65536), b""):  # type: ignore[union-attr]
            self._cap.add(block)

    def result(self) -> tuple[bytes, bool]:
        # A background child that kept the pipe open must not hold the tool call forever.
        self._thread.join(timeout=5)
        return bytes(self._cap.kept), self._cap.truncated


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
