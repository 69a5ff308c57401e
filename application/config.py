"""``ManagedConfig``: how an agent's sessions are set up, checked field by field.

Its fields and defaults are those of PraisonAI's ``LocalManagedConfig`` (the
local managed agents documentation), plus what a local engine needs: where the
model is (``api_base``, ``api_key``), the bounds of a tool call, the sandbox image.

Part of a config is recorded when a session starts (:meth:`ManagedConfig.session_config`)
and governs that session from then on. The rest is the caller's own and is never
recorded: the API key, ``env`` values (their names are recorded), the callbacks, and
where the model server is.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from agentjournal.application.errors import ConfigError
from agentjournal.application.redaction import Redactor, process_secrets
from agentjournal.application.tools import DEFAULT_TOOLS
from agentjournal.application.toolset import check_handlers, mcp_servers, resolve_tools
from agentjournal.domain import SessionConfig
from agentjournal.domain.egress import host_rules

PACKAGE_MANAGERS = ("pip", "apt", "npm")
NETWORKING_TYPES = ("unrestricted", "none", "limited")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CALLBACKS = ("on_tool_confirmation", "on_custom_tool")
"""Fields holding the caller's functions: checked as callables, never recorded."""

RECORDED = (
    "model", "system", "name", "packages", "networking", "working_dir",
    "max_turns", "metadata", "command_timeout", "max_output_bytes", "workspace_quota_bytes",
)  # fmt: skip
"""Fields a session records and keeps, besides its tools, env names and compute."""

ToolConfirmation = Callable[[dict[str, Any]], bool]
"""Called with ``{"name", "input", "tool_use_id"}`` before a tool that needs confirmation;
returns whether it may run."""

CustomToolHandler = Callable[[str, dict[str, Any]], Any]
"""Called with a custom tool's name and input; returns its result (text, or anything
JSON can encode)."""


class ManagedConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How an agent's sessions are set up. Wrong names, types or values raise
    :class:`ConfigError` at once, naming the field; a callback its tools need and
    nobody gave, when an agent is built (:meth:`check_callbacks`).

    ``tools`` takes tool names or Anthropic-style tool dicts (see
    :mod:`agentjournal.application.toolset`). ``api_key`` goes to the model provider
    and nowhere else. ``env`` values reach the tools' environment; the log keeps
    their names only and redacts the values wherever they appear. The callbacks are
    not recorded; what they decide is (each answer is an event).
    """

    model: str = "gpt-4o"
    system: str = "You are a helpful coding assistant."
    name: str = "Agent"
    tools: list[str | dict[str, Any]] = msgspec.field(default_factory=lambda: list(DEFAULT_TOOLS))
    max_turns: int = 25
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    packages: dict[str, list[str]] | None = None
    networking: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "unrestricted"})
    host_packages_ok: bool = False
    working_dir: str = ""
    env: dict[str, str] = msgspec.field(default_factory=dict)
    session_title: str | None = None
    on_tool_confirmation: Any = None
    on_custom_tool: Any = None
    api_base: str | None = None
    api_key: str | None = None
    model_timeout: float = 120.0
    """Seconds to wait for the model to answer one request."""
    model_max_attempts: int = 3
    """Requests made for one model call, the first included, before the turn fails."""
    command_timeout: float = 120.0
    max_output_bytes: int = 64_000
    max_prompt_chars: int = 1_000_000
    workspace_quota_bytes: int = 1024**3
    """The most the Docker sandbox's work folder holds (it lives in the sandbox's memory)."""
    image: str | None = None
    ca_bundle: str | None = None
    mcp_servers: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """``[{"type": "url", "name", "url"}]``: the MCP servers that ``mcp_toolset`` entries of
    ``tools`` name (recorded, with their toolsets' policies)."""
    vault_ids: list[str] = msgspec.field(default_factory=list)
    """Vaults (of the agent's store) whose credentials authenticate sessions to their MCP
    servers, matched by URL; recorded by id."""
    mcp_credentials: dict[str, str] = msgspec.field(default_factory=dict)
    """Bearer tokens by MCP server URL, sent to that server only: never recorded, and
    redacted wherever they would appear."""

    @staticmethod
    def _check_allowed_hosts(hosts: object) -> None:
        """``limited`` networking's ``allowed_hosts`` is a list of entries the egress proxy
        can enforce exactly (see :mod:`~agentjournal.domain.egress`), or a ConfigError."""
        if not isinstance(hosts, (list, tuple)) or not all(isinstance(entry, str) for entry in hosts):
            raise ConfigError("ManagedConfig.networking.allowed_hosts: a list of host names")
        try:
            host_rules(hosts)
        except ValueError as e:
            raise ConfigError(f"ManagedConfig.networking.allowed_hosts: {e}") from None

    def __post_init__(self) -> None:
        for field in msgspec.structs.fields(self):
            if field.name not in CALLBACKS:
                _check_type(field.name, getattr(self, field.name), field.type)
        for name in CALLBACKS:
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ConfigError(f"ManagedConfig.{name} must be a function, not {getattr(self, name)!r}")
        toolset = resolve_tools(self.tools)
        mcp_servers(toolset, self.mcp_servers, "ManagedConfig.mcp_servers")
        for manager, names in (self.packages or {}).items():
            if manager not in PACKAGE_MANAGERS:
                raise ConfigError(
                    f"ManagedConfig.packages: unknown manager {manager!r}; use {list(PACKAGE_MANAGERS)}"
                )
            if any(not n.strip() or n.startswith("-") for n in names):
                raise ConfigError(f"ManagedConfig.packages[{manager!r}]: {names!r} holds a non-name")
        kind = self.networking.get("type")
        if kind not in NETWORKING_TYPES:
            raise ConfigError(
                f"ManagedConfig.networking: type {kind!r} is not one of {list(NETWORKING_TYPES)}"
            )
        if kind == "limited":
            self._check_allowed_hosts(self.networking.get("allowed_hosts") or [])
        bad_env = [k for k in self.env if not ENV_NAME.match(k)]
        if bad_env:
            raise ConfigError(f"ManagedConfig.env: {bad_env} are not environment variable names")
        try:
            msgspec.json.encode(self.metadata)
        except TypeError as e:
            raise ConfigError(f"ManagedConfig.metadata: {e}") from None
        if self.max_turns < 1 or self.model_max_attempts < 1:
            raise ConfigError("ManagedConfig.max_turns and model_max_attempts must be at least 1")
        bounds = (
            self.command_timeout,
            self.max_output_bytes,
            self.max_prompt_chars,
            self.model_timeout,
            self.workspace_quota_bytes,
        )
        if min(bounds) <= 0:
            raise ConfigError(
                "ManagedConfig.command_timeout, max_output_bytes, max_prompt_chars, model_timeout and "
                "workspace_quota_bytes must be positive"
            )

    def __repr__(self) -> str:
        shown = {
            f.name: ("***" if f.name == "api_key" and self.api_key else getattr(self, f.name))
            for f in msgspec.structs.fields(self)
        }
        shown["env"] = {k: "***" for k in self.env}
        shown["mcp_credentials"] = {k: "***" for k in self.mcp_credentials}
        return "ManagedConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ManagedConfig:
        """A config from a plain dict, as PraisonAI's backends accept one."""
        unknown = sorted(set(values) - set(cls.__struct_fields__))
        if unknown:
            raise ConfigError(f"ManagedConfig: unknown field `{unknown[0]}`")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as given (the API key and env values included: this is the
        caller's own object, not a record)."""
        return msgspec.structs.asdict(self)

    def check_callbacks(self) -> None:
        """The callbacks this config's tools need are there: ``on_custom_tool`` for custom
        tools, ``on_tool_confirmation`` for ``always_ask`` policies; a :class:`ConfigError`
        otherwise. Checked where an agent is built, not here at construction: PraisonAI's
        code passes the callbacks to the agent beside the config."""
        toolset = resolve_tools(self.tools)
        servers = mcp_servers(toolset, self.mcp_servers, "ManagedConfig.mcp_servers")
        asking = [f"mcp toolset {s.name!r}" for s in servers if s.permission == "always_ask" or any(
            t.permission == "always_ask" for t in s.tools
        )]  # fmt: skip
        try:
            check_handlers(
                toolset.custom, (*toolset.confirm, *asking), self.on_custom_tool, self.on_tool_confirmation
            )
        except ConfigError as e:
            raise ConfigError(f"ManagedConfig.tools: {e}") from None

    def session_config(self, compute: str) -> SessionConfig:
        """What the log keeps of this config: no key, no env values, no callbacks."""
        toolset = resolve_tools(self.tools)
        return SessionConfig(
            model=self.model,
            system=self.system,
            name=self.name,
            tools=toolset.builtin,
            custom_tools=toolset.custom,
            confirm_tools=toolset.confirm,
            packages={m: tuple(n) for m, n in (self.packages or {}).items() if n},
            networking=dict(self.networking),
            working_dir=self.working_dir,
            env_names=tuple(sorted(self.env)),
            max_turns=self.max_turns,
            compute=compute,
            metadata=dict(self.metadata),
            command_timeout=self.command_timeout,
            max_output_bytes=self.max_output_bytes,
            workspace_quota_bytes=self.workspace_quota_bytes,
            mcp_servers=mcp_servers(toolset, self.mcp_servers, "ManagedConfig.mcp_servers"),
            vault_ids=tuple(dict.fromkeys(_vault_id(v) for v in self.vault_ids)),
        )

    def governed_by(self, recorded: SessionConfig) -> ManagedConfig:
        """This config with every recorded field taken from ``recorded``: what a resumed
        session runs under. Only ``env`` values whose names were recorded are kept."""
        return msgspec.structs.replace(
            self,
            **{name: _plain(getattr(recorded, name)) for name in RECORDED},
            env={k: v for k, v in self.env.items() if k in recorded.env_names},
        )

    def redactor(self, extra: Mapping[str, str] | None = None) -> Redactor:
        """What redacts this config's secrets, this process's own and ``extra`` (named
        secrets from elsewhere, such as vaults) from the record."""
        return Redactor(process_secrets() | self.secrets() | dict(extra or {}))

    def secrets(self) -> dict[str, str]:
        named = {f"env:{k}": v for k, v in self.env.items()}
        if self.api_key:
            named["api_key"] = self.api_key
        named |= {f"mcp:{url}": token for url, token in self.mcp_credentials.items()}
        return named


LocalManagedConfig = ManagedConfig
"""The same class, under the name the local managed agents documentation uses."""


def _check_type(name: str, value: Any, expected: Any) -> None:
    try:
        msgspec.convert(value, expected, strict=True)
    except msgspec.ValidationError as e:
        shown = "" if name == "api_key" else f" (got {type(value).__name__} {value!r})"
        raise ConfigError(f"ManagedConfig.{name}: {e}{shown}") from None


def _vault_id(text: str) -> str:
    """A vault id as a session records it (the UUID's text), from its API form (``vlt_...``) or the UUID."""
    try:
        return str(uuid.UUID(text.removeprefix("vlt_")))
    except ValueError:
        raise ConfigError(f"ManagedConfig.vault_ids: {text!r} is not a vault id") from None


def _plain(value: Any) -> Any:
    """A recorded value in the shape a ManagedConfig field takes (lists, not tuples)."""
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
    return value
