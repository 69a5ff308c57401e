"""The four tools of the local managed agents documentation (and PraisonAI):
``execute_command``, ``read_file``, ``write_file`` and ``list_files``.

They are a config's default tools, and the tools sessions recorded before the
Anthropic tool set existed were given, so their names and behaviour stay as they are.
"""

from __future__ import annotations

from typing import Any

from agentjournal.application import tool_kit as kit
from agentjournal.application.ports import Compute, ToolSpec
from agentjournal.application.tool_kit import Outcome, Tool, ToolLimits

EXECUTE_COMMAND = "execute_command"
READ_FILE = "read_file"
WRITE_FILE = "write_file"
LIST_FILES = "list_files"

LIST_LIMIT = 1000  # files one listing shows

_PATH = {"type": "string", "description": "A path relative to the work folder."}


def execute_command(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    return run_command(compute, kit.command(args), kit.timeout(args, limits))


def run_command(compute: Compute, line: str, seconds: float) -> Outcome:
    """Run a command line for at most ``seconds``: its output, and an error when it failed
    or was killed."""
    done = compute.execute(line, seconds)
    output = done.output
    if done.timed_out:
        output += f"\n[killed after {seconds:g} s]"
    return Outcome(
        output,
        exit_code=done.exit_code,
        truncated=done.truncated,
        is_error=done.timed_out or done.exit_code != 0,
        duration_ms=done.duration_ms,
    )


def read_file(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    output, truncated = kit.capped(compute.read_file(kit.path(args)), limits.max_output_bytes)
    return Outcome(output, truncated=truncated)


def write_file(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    path, content = kit.path(args), kit.text(args, "content").encode()
    compute.write_file(path, content)
    return Outcome(f"wrote {len(content)} bytes")


def list_files(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    """The files under a folder, one a line; a listing cut short (more files than
    ``LIST_LIMIT``, or more text than the output cap) says so, and is recorded as
    truncated."""
    listing = compute.list_files(kit.path(args, default="."), LIST_LIMIT)
    lines = [f"{e.kind}\t{e.size}\t{e.path}" for e in listing.entries]
    output, truncated = kit.capped("\n".join(lines).encode(), limits.max_output_bytes)
    if listing.more or truncated:
        output += "\n[more files not shown: list a folder below this one]"
    return Outcome(output, truncated=listing.more or truncated)


SEED_TOOLS = {
    EXECUTE_COMMAND: Tool(
        ToolSpec(
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
        execute_command,
    ),
    READ_FILE: Tool(
        ToolSpec(
            name=READ_FILE,
            description="Read a text file.",
            parameters={"type": "object", "properties": {"path": _PATH}, "required": ["path"]},
        ),
        read_file,
    ),
    WRITE_FILE: Tool(
        ToolSpec(
            name=WRITE_FILE,
            description="Write text to a file, creating folders as needed and replacing what was there.",
            parameters={
                "type": "object",
                "properties": {"path": _PATH, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
        ),
        write_file,
    ),
    LIST_FILES: Tool(
        ToolSpec(
            name=LIST_FILES,
            description="List the files under a folder (the work folder by default).",
            parameters={"type": "object", "properties": {"path": _PATH}},
        ),
        list_files,
    ),
}
