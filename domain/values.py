"""Value objects of a session: immutable msgspec Structs.

The ones a long session holds by the thousand (messages, tool calls, usage, files) are
declared ``gc=False``: being frozen and made of strings and numbers, they cannot be part
of a reference cycle, so the cyclic garbage collector need not track them, and loading
a long conversation does not set it off again and again.

Every event payload is built from these, so they are the schema of the log.
They evolve the msgspec way: a new field gets a default, and old events still
decode. Renaming or removing a field needs an upcaster on the event instead.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import ClassVar

import msgspec


class Status(str, enum.Enum):
    """Where a session stands, in the managed-agents vocabulary."""

    IDLE = "idle"
    """Ready for input."""
    RUNNING = "running"
    """A turn is in progress."""
    ERROR = "error"
    """The last turn failed; the session is still usable."""
    TERMINATED = "terminated"
    """Closed for good."""


class StopReason(str, enum.Enum):
    """Why a turn ended."""

    END_TURN = "end_turn"
    MAX_TURNS = "max_turns"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    REQUIRES_ACTION = "requires_action"
    """The turn waits for the client: a custom tool's result or a tool call's confirmation."""


class ToolCall(msgspec.Struct, frozen=True, gc=False):
    """A model's request to run one tool. ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


class UserMessage(msgspec.Struct, frozen=True, tag="user", gc=False):
    content: str


class AssistantMessage(msgspec.Struct, frozen=True, tag="assistant", gc=False):
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    model: str = ""


class ToolResult(msgspec.Struct, frozen=True, tag="tool", gc=False):
    """What running a tool gave back, as the model will see it."""

    tool_call_id: str
    name: str
    output: str
    exit_code: int | None = None
    duration_ms: float = 0.0
    truncated: bool = False
    is_error: bool = False


Message = UserMessage | AssistantMessage | ToolResult


class Usage(msgspec.Struct, frozen=True, gc=False):
    """Token counts. Added up, never overwritten."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
        )


class ModelCall(msgspec.Struct, frozen=True, gc=False):
    """When one model call ran and what it cost, as the turn that made it measured.

    ``started_at`` is the wall-clock moment the request went out (UTC);
    ``duration_ms`` runs from there to the whole reply (retries included, measured
    on a monotonic clock); ``first_token_ms`` to the first thing the call gave back
    (its first text, or the whole reply when it streamed none). ``cost_usd`` is the
    price of the call's usage in litellm's bundled price table, or None when that
    table does not know the model: unknown, never zero."""

    started_at: datetime
    duration_ms: float
    first_token_ms: float
    cost_usd: float | None = None

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.duration_ms)


class CustomTool(msgspec.Struct, frozen=True):
    """A tool the client runs itself: the model calls it, the client answers."""

    name: str
    description: str = ""
    input_schema: dict[str, object] = {}


class McpToolPolicy(msgspec.Struct, frozen=True):
    """One MCP tool's own settings in its toolset (``configs[]``): whether the model is
    offered it and whether each call needs the client's confirmation. ``None`` (or "")
    takes the toolset's default."""

    name: str
    enabled: bool | None = None
    permission: str = ""
    """``always_allow`` or ``always_ask``; "" for the toolset's default."""


class McpServer(msgspec.Struct, frozen=True):
    """An MCP server a session's model may use, and its toolset's policy.

    ``name`` and ``url`` are the agent's ``mcp_servers`` entry, the rest its
    ``mcp_toolset``: tools are offered when ``enabled`` (or their own config enables
    them) and need the client's confirmation under ``always_ask``, the default for MCP
    toolsets. No credential is part of it: those come from vaults when the turn runs.
    """

    name: str
    url: str
    enabled: bool = True
    permission: str = "always_ask"
    tools: tuple[McpToolPolicy, ...] = ()

    def policy_of(self, tool: str) -> tuple[bool, str]:
        """Whether ``tool`` is offered, and its permission policy."""
        for config in self.tools:
            if config.name == tool:
                enabled = self.enabled if config.enabled is None else config.enabled
                return enabled, config.permission or self.permission
        return self.enabled, self.permission


class SessionConfig(msgspec.Struct, frozen=True):
    """What a session was set up with, and what governs it from then on.

    A resumed session runs under its recorded config, not under whatever a later
    caller brings; changing it is a deliberate, recorded event. Secrets are not
    part of it: ``env_names`` holds the names of the environment variables given,
    never their values.

    ``tools`` are the built-in tools the model may call; ``custom_tools`` those the
    client runs; ``confirm_tools`` the names (of either kind) that need the client's
    confirmation before each call. The bounds on a command (``command_timeout``,
    ``max_output_bytes``, ``workspace_quota_bytes``) are recorded so that no resume can
    widen them.
    """

    model: str
    system: str
    name: str
    tools: tuple[str, ...]
    packages: dict[str, tuple[str, ...]] = {}
    networking: dict[str, object] = {}
    working_dir: str = ""
    env_names: tuple[str, ...] = ()
    max_turns: int = 10
    compute: str = "host"
    custom_tools: tuple[CustomTool, ...] = ()
    confirm_tools: tuple[str, ...] = ()
    metadata: dict[str, object] = {}
    command_timeout: float = 120.0
    max_output_bytes: int = 64_000
    workspace_quota_bytes: int = 1024**3
    agent_id: str = ""
    """The agent definition the session runs, when it was created from one (the cloud API's
    agents); ``agent_version`` is the version it is pinned to."""
    agent_version: int = 0
    environment_id: str = ""
    """The environment (the cloud API's compute definition) the session was created in."""
    snapshot_ignore: tuple[str, ...] = (".venv", ".home", "__pycache__", "node_modules")
    """Names (``fnmatch`` patterns) of the files and folders workspace snapshots leave out:
    by default the engine's own folders (packages, the commands' home) and caches."""
    snapshot_file_bytes: int = 10 * 1024**2
    """Workspace snapshots keep the contents of files up to this size; larger ones are
    recorded by hash and size only."""
    snapshot_total_bytes: int = 1024**3
    """The most file contents a session's work folder keeps at once: the files a snapshot
    finds changed beyond it (in path order) are recorded by hash and size only."""
    mcp_servers: tuple[McpServer, ...] = ()
    """The MCP servers whose tools the model is offered, with their toolsets' policies."""
    vault_ids: tuple[str, ...] = ()
    """The vaults whose credentials authenticate the session to its MCP servers (their ids;
    the secrets stay in the vaults)."""

    __added_fields__: ClassVar[frozenset[str]] = frozenset(
        {
            "custom_tools",
            "confirm_tools",
            "metadata",
            "command_timeout",
            "max_output_bytes",
            "workspace_quota_bytes",
            "agent_id",
            "agent_version",
            "environment_id",
            "snapshot_ignore",
            "snapshot_file_bytes",
            "snapshot_total_bytes",
            "mcp_servers",
            "vault_ids",
        }
    )
    """Fields newer than the first logs: hashed only when they differ from their defaults."""

    @property
    def tool_names(self) -> frozenset[str]:
        """Every tool the model may call in this session, built-in or custom."""
        return frozenset(self.tools) | {tool.name for tool in self.custom_tools}


class Lineage(msgspec.Struct, frozen=True):
    """Where a forked session came from: its parent and the parent's version it shares."""

    parent_id: uuid.UUID
    parent_version: int


class ComputeBinding(msgspec.Struct, frozen=True):
    """The sandbox a session's tools run in, so a later process can find it again."""

    kind: str
    reference: str
    image: str = ""


class PackageInstall(msgspec.Struct, frozen=True):
    manager: str
    packages: tuple[str, ...]
    where: str
    output: str = ""


class FileState(msgspec.Struct, frozen=True, gc=False):
    """One regular file of a work folder as a snapshot found it: the SHA-256 of its
    contents (hex), its size in bytes and its permission bits.

    ``stored`` is False for a file over the snapshot's size cap: the log vouches for its
    hash and size, but its contents were not kept, so it cannot be read back or restored.
    """

    hash: str
    size: int
    mode: int
    stored: bool = True
