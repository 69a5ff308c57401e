"""The four shell tools, offered to the model and run on a :class:`Compute`.

A tool that fails (bad arguments, a refused path, a non-zero exit) is still a
result: the model reads the error and can try again. Only the compute itself
breaking stops the turn.
"""

from __future__ import annotations

import json
import math
import reprlib
import time
from typing import Any

import msgspec

from agentjournal.application.ports import Compute, ComputeError, ToolSpec
from agentjournal.domain import ToolCall, ToolResult

EXECUTE_COMMAND = "execute_command"
READ_FILE = "read_file"
WRITE_FILE = "write_file"
LIST_FILES = "list_files"

DEFAULT_TOOLS = (EXECUTE_COMMAND, READ_FILE, WRITE_FILE, LIST_FILES)

# The longest single argument Linux passes to a program (MAX_ARG_STRLEN, less its NUL):
# a longer command line cannot even be started, on the host or in a sandbox.
MAX_COMMAND_BYTES = 128 * 1024 - 1

_PATH = {"type": "string", "description": "A path relative to the work folder."}

TOOL_SPECS: dict[str, ToolSpec] = {
    EXECUTE_COMMAND: ToolSpec(
        name=EXECUTE_COMMAND,
        description="Run a shell command in the work folder and return its output and exit code.",
        parameters={
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command line to run."},
                "timeout": {"type": "number", "description": "Seconds before it is killed."},
            },
            "required": ["command"],
        },
    ),
    READ_FILE: ToolSpec(
        name=READ_FILE,
        description="Read a text file.",
        parameters={"type": "object", "properties": {"path": _PATH}, "required": ["path"]},
    ),
    WRITE_FILE: ToolSpec(
        name=WRITE_FILE,
        description="Write text to a file, creating folders as needed and replacing what was there.",
        parameters={
            "type": "object",
            "properties": {"path": _PATH, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    ),
    LIST_FILES: ToolSpec(
        name=LIST_FILES,
        description="List the files under a folder (the work folder by default).",
        parameters={"type": "object", "properties": {"path": _PATH}},
    ),
}


class ToolLimits(msgspec.Struct, frozen=True):
    """Bounds on one tool call. The longest a command may run is ``max_timeout``,
    whatever the model asks for."""

    timeout: float = 120.0
    max_timeout: float = 600.0
    max_output_bytes: int = 64_000


def run_tool(compute: Compute, call: ToolCall, limits: ToolLimits) -> ToolResult:
    """Run one tool call. Raises :class:`ComputeError` only when the compute is unusable."""
    started = time.perf_counter()

    def result(output: str, *, exit_code: int | None = None, truncated: bool = False,
               is_error: bool = False, duration_ms: float | None = None) -> ToolResult:  # fmt: skip
        return ToolResult(
            tool_call_id=call.id,
            name=call.name,
            output=output,
            exit_code=exit_code,
            duration_ms=duration_ms if duration_ms is not None else _ms_since(started),
            truncated=truncated,
            is_error=is_error,
        )

    try:
        args = tool_arguments(call)
        if call.name == EXECUTE_COMMAND:
            command, timeout = _command(args), _timeout(args, limits)
            done = compute.execute(command, timeout)
            output = done.output
            if done.timed_out:
                output += f"\n[killed after {timeout:g} s]"
            return result(
                output,
                exit_code=done.exit_code,
                truncated=done.truncated,
                is_error=done.timed_out or done.exit_code != 0,
                duration_ms=done.duration_ms,
            )
        if call.name == READ_FILE:
            data = compute.read_file(_path(args))
            text, truncated = _cap(data, limits.max_output_bytes)
            return result(text, truncated=truncated)
        if call.name == WRITE_FILE:
            path, content = _path(args), _text(args, "content").encode()
            compute.write_file(path, content)
            return result(f"wrote {len(content)} bytes")
        if call.name == LIST_FILES:
            entries = compute.list_files(_path(args, default="."))
            lines = [f"{e.kind}\t{e.size}\t{e.path}" for e in entries]
            text, truncated = _cap("\n".join(lines).encode(), limits.max_output_bytes)
            return result(text, truncated=truncated)
        return result(f"unknown tool {call.name!r}", is_error=True)
    except (ToolArgumentError, ComputeError) as e:
        return result(f"error: {e}", is_error=True)


class ToolArgumentError(Exception):
    """The model's arguments do not fit the tool: a message for the model, not a failure."""


def tool_arguments(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as the JSON object every tool takes, built-in or custom; a
    :class:`ToolArgumentError` for the model otherwise."""
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as e:
        raise ToolArgumentError(f"arguments are not valid JSON: {e}") from None
    if not isinstance(args, dict):
        raise ToolArgumentError("arguments must be a JSON object")
    return args


def _text(args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    """Argument ``name`` as text: required, unless it has a ``default`` for when it is
    missing or null. JSON can carry lone surrogates (``"\\ud800"``) that no file or
    command line can: they are refused here, not deep in an encoder."""
    value = args.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        needed = "must be a string" if default is not None else "is required and must be a string"
        raise ToolArgumentError(f"argument {name!r} {needed}, not {_shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolArgumentError(
            f"argument {name!r} is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    return value


def _path(args: dict[str, Any], *, default: str | None = None) -> str:
    return _without_nul(_text(args, "path", default=default) or default or "", "path")


def _command(args: dict[str, Any]) -> str:
    command = _without_nul(_text(args, "command"), "command")
    size = len(command.encode())
    if size > MAX_COMMAND_BYTES:
        raise ToolArgumentError(
            f"the command is {size:,} bytes; a command line holds at most {MAX_COMMAND_BYTES:,}: "
            "write a script with write_file and run that"
        )
    return command


def _without_nul(value: str, name: str) -> str:
    if "\x00" in value:
        raise ToolArgumentError(
            f"argument {name!r} contains a NUL byte, which no path or command line can hold"
        )
    return value


def _timeout(args: dict[str, Any], limits: ToolLimits) -> float:
    """The seconds the model asked for (the default when it did not), at most ``max_timeout``."""
    value = args.get("timeout")
    if value is None:
        return min(limits.timeout, limits.max_timeout)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ToolArgumentError(
            f"argument 'timeout' must be a positive number of seconds, not {_shown(value)}"
        )
    return min(float(value), limits.max_timeout)


def _shown(value: object) -> str:
    """A short rendering of a bad argument for the error message."""
    return reprlib.repr(value)


def _cap(data: bytes, limit: int) -> tuple[str, bool]:
    """Text for the model: at most ``limit`` bytes, invalid UTF-8 replaced."""
    truncated = len(data) > limit
    return data[:limit].decode("utf-8", errors="replace"), truncated


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
