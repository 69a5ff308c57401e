"""What every built-in tool is made of: its spec, its handler, the bounds it runs
under, what it returns, and the readers of its arguments.

A handler takes the compute, the call's arguments (a JSON object) and the bounds,
and returns an :class:`Outcome`. Wrong arguments raise :class:`ToolArgumentError`
with a message written for the model, naming the argument and what it must be.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec

from agentjournal.application.ports import Compute, ToolSpec
from agentjournal.domain import AgentJournalError, SessionConfig, ToolCall

# The longest single argument Linux passes to a program (MAX_ARG_STRLEN, less its NUL):
# a longer command line cannot even be started, on the host or in a sandbox.
MAX_COMMAND_BYTES = 128 * 1024 - 1


class ToolLimits(msgspec.Struct, frozen=True):
    """Bounds on one tool call. The longest a command may run is ``max_timeout``,
    whatever the model asks for; ``web`` says whether a tool may fetch from the web
    (the session's networking is unrestricted)."""

    timeout: float = 120.0
    max_timeout: float = 600.0
    max_output_bytes: int = 64_000
    web: bool = True

    @classmethod
    def of(cls, config: SessionConfig) -> ToolLimits:
        """The bounds a session's recorded config sets."""
        return cls(
            timeout=config.command_timeout,
            max_output_bytes=config.max_output_bytes,
            web=web_allowed(config.networking),
        )

    @property
    def seconds(self) -> float:
        """How long an operation without a timeout of its own may take."""
        return min(self.timeout, self.max_timeout)


def web_allowed(networking: Mapping[str, object]) -> bool:
    """Whether recorded ``networking`` lets tools reach the web: only ``unrestricted``,
    which an empty record (a session from before networking was recorded) means."""
    return networking.get("type", "unrestricted") == "unrestricted"


class Outcome(msgspec.Struct, frozen=True):
    """What a handler returns: the text the model reads, and how the call went."""

    output: str
    is_error: bool = False
    exit_code: int | None = None
    truncated: bool = False
    duration_ms: float | None = None


Handler = Callable[[Compute, dict[str, Any], ToolLimits], Outcome]


class Tool(NamedTuple):
    """A built-in tool: what the model is offered, and what runs its calls."""

    spec: ToolSpec
    run: Handler


class ToolArgumentError(AgentJournalError):
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


def text(args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    """Argument ``name`` as text: required, unless it has a ``default`` for when it is
    missing or null. JSON can carry lone surrogates (``"\\ud800"``) that no file or
    command line can: they are refused here, not deep in an encoder."""
    value = args.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        needed = "must be a string" if default is not None else "is required and must be a string"
        raise ToolArgumentError(f"argument {name!r} {needed}, not {shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolArgumentError(
            f"argument {name!r} is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    return value


def path(args: dict[str, Any], name: str = "path", *, default: str | None = None) -> str:
    """A path argument: text without a NUL byte (an empty path is the ``default``)."""
    return without_nul(text(args, name, default=default) or default or "", name)


def pattern(args: dict[str, Any], name: str = "pattern") -> str:
    """A required, non-empty pattern argument without a NUL byte."""
    value = without_nul(text(args, name), name)
    if not value:
        raise ToolArgumentError(f"argument {name!r} must not be empty")
    return value


def command(args: dict[str, Any], name: str = "command") -> str:
    """A command line, short enough to be started."""
    value = without_nul(text(args, name), name)
    check_command_size(value)
    return value


def check_command_size(line: str) -> None:
    size = len(line.encode())
    if size > MAX_COMMAND_BYTES:
        raise ToolArgumentError(
            f"the command is {size:,} bytes; a command line holds at most {MAX_COMMAND_BYTES:,}: "
            "write a script to a file and run that"
        )


def flag(args: dict[str, Any], name: str) -> bool:
    """An optional true/false argument (false when missing or null)."""
    value = args.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ToolArgumentError(f"argument {name!r} must be true or false, not {shown(value)}")
    return value


def without_nul(value: str, name: str) -> str:
    if "\x00" in value:
        raise ToolArgumentError(
            f"argument {name!r} contains a NUL byte, which no path or command line can hold"
        )
    return value


def timeout(args: dict[str, Any], limits: ToolLimits) -> float:
    """The seconds the model asked for in ``timeout`` (the default when it did not), at
    most ``max_timeout``."""
    value = args.get("timeout")
    if value is None:
        return limits.seconds
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ToolArgumentError(
            f"argument 'timeout' must be a positive number of seconds, not {shown(value)}"
        )
    return min(float(value), limits.max_timeout)


def shown(value: object) -> str:
    """A short rendering of a bad argument for the error message."""
    return reprlib.repr(value)


def capped(data: bytes, limit: int) -> tuple[str, bool]:
    """Text for the model: at most ``limit`` bytes, invalid UTF-8 replaced."""
    truncated = len(data) > limit
    return data[:limit].decode("utf-8", errors="replace"), truncated
