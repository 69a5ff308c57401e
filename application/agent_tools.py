"""Anthropic's agent tool set (``agent_toolset_20260401``): ``bash``, ``read``,
``write``, ``edit``, ``glob``, ``grep``, ``web_fetch`` and ``web_search``.

Their arguments are those of the official SDK's input types
(``BetaManagedAgentsAgentToolset20260401{Bash,Read,Write,Edit,Glob,Grep}Input``);
``web_fetch`` takes ``{"url"}`` and ``web_search`` ``{"query"}``, as Anthropic's own
server tools do. They run on the session's compute like the seed tools, under the
same bounds: paths confined to the work folder, the command timeout, the output cap.
Where this engine differs from Anthropic's runner, the tool's description tells the
model: each ``bash`` call gets a new shell, ``web_fetch`` needs unrestricted
networking, and there is no search service behind ``web_search``.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from agentjournal.application import tool_kit as kit
from agentjournal.application.ports import Compute, ToolSpec
from agentjournal.application.seed_tools import run_command
from agentjournal.application.tool_kit import Outcome, Tool, ToolArgumentError, ToolLimits

GLOB_LIMIT = 200  # paths one glob returns
GREP_LIMIT = 1000  # lines one grep returns
MAX_PAGE_BYTES = 5 * 1024 * 1024  # of a fetched page's body
WEB_FETCH_SECONDS = 60.0
NO_SEARCH_SERVICE = "no web search service is configured on this server"


def bash(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    """Run the command with bash (``bash -c``, the command one quoted word of the line
    ``sh`` runs), in a new shell for every call."""
    restart, seconds = kit.flag(args, "restart"), _milliseconds(args, limits)
    if restart and args.get("command") is None:
        return Outcome("nothing to restart: every command already runs in a new shell")
    line = f"exec bash -c {shlex.quote(kit.command(args))}"
    kit.check_command_size(line)
    return run_command(compute, line, seconds)


def _milliseconds(args: dict[str, Any], limits: ToolLimits) -> float:
    """``timeout_ms`` in seconds (the default when it is missing or 0), at most ``max_timeout``."""
    value = args.get("timeout_ms")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if value is not None and (not number or not math.isfinite(value) or value < 0):
        raise ToolArgumentError(
            f"argument 'timeout_ms' must be a number of milliseconds (0 or more), not {kit.shown(value)}"
        )
    if not value:
        return limits.seconds
    return min(value / 1000, limits.max_timeout)


def read(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    path, lines = kit.path(args, "file_path"), _view_range(args)
    data = compute.read_file(path)
    if lines is not None:
        data = _select(data, *lines, path)
    output, truncated = kit.capped(data, limits.max_output_bytes)
    if truncated:
        output += f"\n[cut at {limits.max_output_bytes} bytes: read the rest with view_range]"
    return Outcome(output, truncated=truncated)


def _view_range(args: dict[str, Any]) -> tuple[int, int] | None:
    value = args.get("view_range")
    if value is None:
        return None
    whole = isinstance(value, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
    if not whole or len(value) != 2:
        raise ToolArgumentError(
            f"argument 'view_range' must be [start_line, end_line], two whole numbers, not {kit.shown(value)}"
        )
    start, end = max(1, value[0]), value[1]
    if 0 < end < start:
        raise ToolArgumentError(
            f"view_range {value} selects no lines: end_line is before start_line "
            "(0 or a negative end_line reads to the end of the file)"
        )
    return start, end


def _select(data: bytes, start: int, end: int, path: str) -> bytes:
    """Lines ``start`` to ``end`` (from 1, inclusive; ``end`` of 0 or less: to the end)."""
    lines = data.split(b"\n")
    count = len(lines) - (1 if data.endswith(b"\n") or not data else 0)
    if start > count:
        raise ToolArgumentError(f"view_range starts at line {start}, but {path!r} has {count} lines")
    return b"\n".join(lines[start - 1 : end if end > 0 else None])


def write(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    path, content = kit.path(args, "file_path"), kit.text(args, "content").encode()
    compute.write_file(path, content)
    return Outcome(f"wrote {len(content)} bytes to {path}")


def edit(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    path = kit.path(args, "file_path")
    old, new = kit.text(args, "old_string"), kit.text(args, "new_string")
    every = kit.flag(args, "replace_all")
    if not old:
        raise ToolArgumentError("argument 'old_string' is empty: give the exact text to replace")
    if old == new:
        raise ToolArgumentError("'old_string' and 'new_string' are the same: there is nothing to change")
    try:
        content = compute.read_file(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ToolArgumentError(f"{path!r} is not UTF-8 text, which is all edit can change") from None
    count = content.count(old)
    if count == 0:
        raise ToolArgumentError(
            f"'old_string' was not found in {path!r}: it must match the file exactly, "
            "whitespace and indentation included (read the file to copy it)"
        )
    if count > 1 and not every:
        raise ToolArgumentError(
            f"'old_string' occurs {count} times in {path!r}: include more of the text around it "
            "to make it unique, or set replace_all to replace every one"
        )
    compute.write_file(path, content.replace(old, new, -1 if every else 1).encode())
    replaced = count if every else 1
    return Outcome(f"edited {path}: replaced {replaced} occurrence{'s' if replaced > 1 else ''}")


def glob(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    pattern = kit.pattern(args)
    if pattern.startswith("/"):
        raise ToolArgumentError(
            "the pattern must be relative: set 'path' to the folder to search, and the pattern below it"
        )
    if ".." in pattern.split("/"):
        raise ToolArgumentError("'..' cannot be part of a pattern: set 'path' to search another folder")
    found = compute.glob(pattern, kit.path(args, default="."), GLOB_LIMIT, limits.seconds)
    return _listing(found.paths, found.more, limits)


def grep(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    pattern = kit.pattern(args)
    found = compute.grep(pattern, kit.path(args, default="."), GREP_LIMIT, limits.seconds)
    return _listing([f"{m.path}:{m.line}:{m.text}" for m in found.matches], found.more, limits)


def _listing(lines: Sequence[str], more: bool, limits: ToolLimits) -> Outcome:
    """Search results, one a line, within the output limit: "no matches" when there are
    none, and a note when some are not shown."""
    if not lines:
        return Outcome("no matches")
    output, truncated = kit.capped("\n".join(lines).encode(), limits.max_output_bytes)
    if more or truncated:
        output += "\n[more matches not shown: narrow the pattern or the path]"
    return Outcome(output, truncated=truncated)


def web_fetch(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    url = kit.without_nul(kit.text(args, "url"), "url")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 address, say
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ToolArgumentError(f"argument 'url' must be an http or https URL, not {kit.shown(url)}")
    if not limits.web:
        return Outcome(
            "error: web_fetch needs unrestricted networking, and this session's networking is "
            "restricted: nothing was fetched",
            is_error=True,
        )
    # The HTML reader (html.parser) is loaded by the first fetch, not by every process
    # that only reads a log.
    from agentjournal.application.web_text import page_text

    page = compute.fetch(url, MAX_PAGE_BYTES, min(limits.seconds, WEB_FETCH_SECONDS))
    text = page_text(page)
    if text is None:
        return Outcome(f"error: {page.url} is {page.content_type}, which web_fetch cannot show as text",
                       is_error=True)  # fmt: skip
    output, truncated = kit.capped(
        f"{page.url} (HTTP {page.status}, {page.content_type})\n\n{text}".encode(), limits.max_output_bytes
    )
    if truncated or page.truncated:
        output += "\n[the page is cut short]"
    return Outcome(output, is_error=page.status >= 400, truncated=truncated or page.truncated)


def web_search(compute: Compute, args: dict[str, Any], limits: ToolLimits) -> Outcome:
    return Outcome(f"error: {NO_SEARCH_SERVICE}", is_error=True)


def _schema(properties: dict[str, Any], *required: str) -> dict[str, object]:
    return {"type": "object", "properties": properties, "required": list(required)}


_FILE_PATH = {
    "type": "string",
    "description": "The file's path, relative to the work folder (or absolute, inside it).",
}
_SEARCH_PATH = {
    "type": "string",
    "description": "The folder to search, relative to the work folder (default: the work folder).",
}

AGENT_TOOLS = {
    "bash": Tool(
        ToolSpec(
            "bash",
            "Run a bash command in the work folder and return its output (stdout and stderr "
            "together) and exit code; a non-zero exit code is reported as an error. Every call "
            "starts a new shell in the work folder: `cd`, variables and background processes do "
            "not carry over to the next call, so chain dependent steps in one command "
            "(`cd src && make test`). Nothing is read from standard input. The command is killed, "
            "with everything it started, at its timeout (`timeout_ms`; the server's default when "
            "omitted or 0, and never more than the server's maximum). Long output is cut: filter it "
            "(`| head`, `| tail`, `grep`). `restart` is accepted, and there is never a shell to restart.",
            _schema(
                {
                    "command": {"type": "string", "description": "The bash command line to run."},
                    "restart": {
                        "type": "boolean",
                        "description": "Accepted for compatibility; does nothing.",
                    },
                    "timeout_ms": {"type": "integer", "description": "Milliseconds before it is killed."},
                }
            ),
        ),
        bash,
    ),
    "read": Tool(
        ToolSpec(
            "read",
            "Read a text file and return its text exactly, without line numbers. `view_range: "
            "[start_line, end_line]` (counted from 1, both included; an end_line of 0 or less means "
            "to the end of the file) returns only those lines: use it for a large file, whose text "
            "is otherwise cut at the output limit. Bytes that are not UTF-8 are shown as U+FFFD.",
            _schema(
                {
                    "file_path": _FILE_PATH,
                    "view_range": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "minItems": 2,
                        "maxItems": 2,
                        "description": "[start_line, end_line], counted from 1.",
                    },
                },
                "file_path",
            ),
        ),
        read,
    ),
    "write": Tool(
        ToolSpec(
            "write",
            "Write a whole file: create it, or replace all it held, with `content`; missing folders "
            "are made. To change part of an existing file, use edit instead.",
            _schema(
                {
                    "file_path": _FILE_PATH,
                    "content": {"type": "string", "description": "The file's new text."},
                },
                "content",
                "file_path",
            ),
        ),
        write,
    ),
    "edit": Tool(
        ToolSpec(
            "edit",
            "Replace exact text in a file. `old_string` must match the file exactly (whitespace, "
            "indentation and line breaks included), so read the file first and copy it; unless "
            "`replace_all` is true it must occur exactly once, so include enough of the lines around "
            "it to make it unique. `new_string` takes its place (empty to delete it). Only UTF-8 "
            "text files can be edited.",
            _schema(
                {
                    "file_path": _FILE_PATH,
                    "old_string": {"type": "string", "description": "The exact text to replace."},
                    "new_string": {"type": "string", "description": "The text to put in its place."},
                    "replace_all": {
                        "type": "boolean",
                        "description": "Replace every occurrence instead of exactly one (default false).",
                    },
                },
                "file_path",
                "new_string",
                "old_string",
            ),
        ),
        edit,
    ),
    "glob": Tool(
        ToolSpec(
            "glob",
            "Find files and folders by a doublestar glob pattern, matched against each path below "
            "`path` (the work folder by default); newest first. `*` and `?` match within one name, "
            "`**` any number of folders (`**/*.py`: Python files at any depth; `src/*`: directly in "
            "src), `{a,b}` either alternative, `[abc]` one of the characters. Returns paths relative "
            f"to the work folder, a folder's ending in `/`, at most {GLOB_LIMIT}. Links are not followed.",
            _schema(
                {
                    "pattern": {
                        "type": "string",
                        "description": "A relative doublestar pattern, e.g. `**/*.go`.",
                    },
                    "path": _SEARCH_PATH,
                },
                "pattern",
            ),
        ),
        glob,
    ),
    "grep": Tool(
        ToolSpec(
            "grep",
            "Search file contents for a regular expression (Python `re` syntax, matched against each "
            "line) in the file `path`, or in every file below the folder `path` (the work folder by "
            "default). Returns `path:line:text` for each matching line, paths relative to the work "
            f"folder, at most {GREP_LIMIT}. Start the pattern with `(?i)` to ignore case; escape "
            "special characters to match them literally (`\\.`, `\\(`). Binary files and `.git` and "
            "`node_modules` folders are skipped, links are not followed, and of a very long line only "
            "the part around the match is shown. To search only some files, give a narrower `path`, "
            "or find them with glob.",
            _schema(
                {
                    "pattern": {"type": "string", "description": "The regular expression to search for."},
                    "path": {
                        "type": "string",
                        "description": "The file or folder to search, relative to the work folder "
                        "(default: the work folder).",
                    },
                },
                "pattern",
            ),
        ),
        grep,
    ),
    "web_fetch": Tool(
        ToolSpec(
            "web_fetch",
            "Fetch a web page (an http or https URL) from the work environment and return its text: "
            "HTML reduced to readable text with each link's address after it, other text types as "
            "they are. Works only where the environment has unrestricted network access. Images, "
            "PDFs and other binary types are not supported. A long page is cut at the output limit.",
            _schema({"url": {"type": "string", "description": "The URL to fetch."}}, "url"),
        ),
        web_fetch,
    ),
    "web_search": Tool(
        ToolSpec(
            "web_search",
            "Search the web. No web search service is configured on this server, so every call "
            "returns an error: use web_fetch on a URL you know instead.",
            _schema({"query": {"type": "string", "description": "What to search for."}}, "query"),
        ),
        web_search,
    ),
}
