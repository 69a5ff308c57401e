"""The compute of a self-hosted environment: the workers of its work queue.

Its sessions' tools (Anthropic's toolset) run on the workers, which the turn hands each
call to through the log and the work queue
(:mod:`~agentjournal.application.work_queue`); nothing runs here. This adapter is what
the turn loop attaches to all the same: it records where the tools run, and refuses
whatever would need the server to reach the worker's folder, which it cannot see
(restoring or snapshotting files, installing packages, running a command itself).
"""

from __future__ import annotations

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

NOT_HERE = (
    "this session's tools run on its self-hosted environment's workers; the server cannot "
    "reach the worker's folder"
)


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
        raise ComputeError("web_fetch is not served for self-hosted environments yet")

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
