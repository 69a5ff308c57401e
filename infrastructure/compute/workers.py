"""The compute of a self-hosted environment: the workers of its work queue.

Its sessions' tools (Anthropic's toolset) run on the workers, which the turn hands each
call to through the log and the work queue
(:mod:`~agentjournal.application.work_queue`); nothing runs here. This adapter is what
the turn loop attaches to all the same: it records where the tools run, and refuses
whatever would need the server to reach the worker's folder, which it cannot see
(restoring or snapshotting files, installing packages, running a command itself).

``web_fetch`` is the exception: as in the cloud, the server runs it itself
(:func:`fetch_here`), under the session's networking like any session's fetch
(``web_search`` answers that no search service is configured, as everywhere here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from agentjournal.application.ports import (
    ComputeError,
    ExecResult,
    FileContents,
    FileListing,
    LineMatches,
    PathMatches,
    SnapshotLimits,
    WebPage,
    WorkspaceScan,
)
from agentjournal.application.work_queue import WORKER_COMPUTE
from agentjournal.domain import ComputeBinding
from agentjournal.infrastructure.compute import sandbox_fetch
from agentjournal.infrastructure.compute.sandbox_protocol import (
    alarm_seconds,
    check_answer,
    check_url,
    web_page,
)

NOT_HERE = (
    "this session's tools run on its self-hosted environment's workers; the server cannot "
    "reach the worker's folder"
)

FETCH_GRACE = 5.0
"""Seconds past the fetch helper's own alarm before it is killed from here."""


class WorkerCompute:
    """Compute kind ``self_hosted``: the tools run on the environment's workers."""

    kind = WORKER_COMPUTE

    @classmethod
    def from_config(cls, config: Any) -> WorkerCompute:
        return cls()

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        return previous or ComputeBinding(WORKER_COMPUTE, f"workers:{session_id.hex}")

    def execute(self, command: str, timeout: float) -> ExecResult:
        raise ComputeError(NOT_HERE)

    def read_file(self, path: str) -> bytes:
        raise ComputeError(NOT_HERE)

    def write_file(self, path: str, data: bytes) -> None:
        raise ComputeError(NOT_HERE)

    def list_files(self, path: str, limit: int) -> FileListing:
        raise ComputeError(NOT_HERE)

    def glob(self, pattern: str, path: str, limit: int, timeout: float) -> PathMatches:
        raise ComputeError(NOT_HERE)

    def grep(self, pattern: str, path: str, limit: int, timeout: float) -> LineMatches:
        raise ComputeError(NOT_HERE)

    def fetch(self, url: str, limit: int, timeout: float) -> WebPage:
        return fetch_here(url, limit, timeout)

    def snapshot(self, known: Mapping[str, str], limits: SnapshotLimits) -> WorkspaceScan:
        raise ComputeError(NOT_HERE)

    def restore(self, files: Sequence[FileContents], remove: Sequence[str] = ()) -> None:
        raise ComputeError(NOT_HERE)

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        raise ComputeError(NOT_HERE)

    def stop(self) -> None:
        """Nothing runs here to stop (a worker's run ends with its work item's lease)."""

    def release(self, binding: ComputeBinding) -> None:
        """Nothing is kept here for a session (its worker's folder is the worker's)."""


def fetch_here(url: str, limit: int, timeout: float) -> WebPage:
    """Fetch ``url`` from this server, as the cloud runs a self-hosted session's
    ``web_fetch``: the sandboxes' fetch helper
    (:mod:`~agentjournal.infrastructure.compute.sandbox_fetch`: http and https only, at
    most ``limit`` bytes, killed by its own alarm) as a child process with an environment
    of its own (none of the engine's: no key, password or proxy credential) in an empty
    folder. Whether the session may fetch at all is the tool's to check, from its
    recorded networking, before this runs."""
    check_url(url)
    seconds = alarm_seconds(timeout)
    with tempfile.TemporaryDirectory(prefix="agentjournal-fetch-") as folder:
        environment = {"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": folder}
        try:
            done = subprocess.run(  # noqa: S603 - a fixed script; the model's URL is data in argv
                [sys.executable, "-I", "-S", sandbox_fetch.__file__, url, str(limit), str(seconds)],
                cwd=folder, env=environment, stdin=subprocess.DEVNULL, capture_output=True,
                timeout=seconds + FETCH_GRACE, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ComputeError(f"the fetch did not finish in {seconds} s") from None
        except OSError as e:
            raise ComputeError(f"could not start the fetch: {e}") from None
    check_answer(done.returncode, "fetch", url, done.stderr, seconds)
    return web_page(done.stdout)
