"""Ports: what the application needs from the outside world, as Protocols.

Adapters in ``infrastructure`` implement them (litellm for the model, Docker or
the host for compute); tests can plug in their own. The application only ever
speaks these types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable
from uuid import UUID

import msgspec

from agentjournal.domain import AssistantMessage, ComputeBinding, Message, Usage


class ToolSpec(msgspec.Struct, frozen=True):
    """A tool offered to the model: a name, what it does, and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, object]


class TextDelta(msgspec.Struct, frozen=True):
    """A piece of the assistant's text, as it streams in."""

    text: str


class ModelReply(msgspec.Struct, frozen=True):
    """The whole of one model response: its message (text and tool calls) and usage."""

    message: AssistantMessage
    usage: Usage
    model: str
    finish_reason: str = ""


class ModelError(Exception):
    """A model call failed. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, status_code: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


@runtime_checkable
class LanguageModel(Protocol):
    """Streams one completion: zero or more :class:`TextDelta`, then one :class:`ModelReply`."""

    def stream(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> Iterator[TextDelta | ModelReply]: ...


class ExecResult(msgspec.Struct, frozen=True):
    output: str
    exit_code: int | None
    duration_ms: float
    truncated: bool = False
    timed_out: bool = False


class FileEntry(msgspec.Struct, frozen=True):
    path: str
    kind: str
    size: int


class ComputeError(Exception):
    """A compute operation was refused or failed (bad path, missing file, engine down)."""


@runtime_checkable
class Compute(Protocol):
    """Where tools run. Paths are relative to the work folder, or absolute inside it."""

    kind: str

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        """Make ready the sandbox of ``session_id``: re-attach to ``previous`` if it still
        exists, provision a new one otherwise. Returns what to record so a later process
        can find it again."""
        ...

    def execute(self, command: str, timeout: float) -> ExecResult: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def list_files(self, path: str) -> list[FileEntry]: ...

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        """Install packages; return the installer's output. Raise ComputeError on failure."""
        ...

    def release(self, binding: ComputeBinding) -> None:
        """Remove the sandbox ``binding`` names, and its files: its session has ended.
        Nothing happens if it is already gone."""
        ...
