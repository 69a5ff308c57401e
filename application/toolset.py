"""What a config's ``tools`` list means: built-in tools, custom tools, confirmations.

``ManagedConfig.tools`` takes the names of built-in tools (the seed tools of the local
managed agents documentation, ``["execute_command", "read_file"]``, or Anthropic's,
``["bash", "edit"]``), or the Anthropic Managed Agents shapes that PraisonAI passes
through:

* ``{"type": "agent_toolset_20260401", "configs": [...], "default_config": {...}}``:
  Anthropic's agent tools by their own names (``bash``, ``read``, ``write``, ``edit``,
  ``glob``, ``grep``, ``web_fetch``, ``web_search``), each enabled or not, each with a
  permission policy (``always_allow`` and ``auto`` run it, ``always_ask`` asks the
  client first);
* ``{"type": "custom", "name": ..., "description": ..., "input_schema": {...}}``:
  a tool the client runs itself;
* ``{"type": "mcp_toolset", "mcp_server_name": ..., "configs": [...], ...}``: the
  tools of an MCP server (:mod:`~agentjournal.application.mcp_tools`), each enabled or
  not, each ``always_ask`` (the default for MCP toolsets) or ``always_allow``. The
  server's URL comes from the agent's ``mcp_servers`` (:func:`mcp_servers`).

:func:`resolve_tools` turns either into a :class:`Toolset`, the part of a session's
config that the agent loop enforces: the model is offered exactly these tools, and
a call to any other is refused as a tool error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from agentjournal.application.agent_tools import AGENT_TOOLS
from agentjournal.application.errors import ConfigError
from agentjournal.application.ports import ToolSpec
from agentjournal.application.tools import TOOL_SPECS
from agentjournal.domain import CustomTool, McpServer, McpToolPolicy, SessionConfig

AGENT_TOOLSET = "agent_toolset_20260401"
MCP_TOOLSET = "mcp_toolset"

UNAVAILABLE = {
    "search_web": "it needs a web search service, and this server has none "
    "(web_fetch fetches a URL you know)",
}
"""Tools other managed agents offer and this engine does not, with what to do instead."""

UNENFORCED_WEB_FETCH_OPTIONS = ("allowed_domains", "blocked_domains", "url_sources", "max_content_tokens")
"""Options of Anthropic's web_fetch config this engine does not enforce: refused, not ignored."""


class Toolset(msgspec.Struct, frozen=True):
    builtin: tuple[str, ...]
    custom: tuple[CustomTool, ...] = ()
    confirm: tuple[str, ...] = ()
    """Names (built-in or custom) that need the client's confirmation before each call."""
    mcp_toolsets: tuple[McpServer, ...] = ()
    """The ``mcp_toolset`` entries, as servers without their URLs (see :func:`mcp_servers`)."""

    @property
    def mcp_servers(self) -> tuple[str, ...]:
        """The names of the MCP servers whose tools ``mcp_toolset`` entries ask for."""
        return tuple(toolset.name for toolset in self.mcp_toolsets)


def resolve_tools(tools: Sequence[str | Mapping[str, Any]], field: str = "ManagedConfig.tools") -> Toolset:
    """The toolset a ``tools`` list asks for. Raises :class:`ConfigError` naming the
    entry (``field[index]``) that is unknown or malformed, or a tool this engine does
    not have."""
    builtin: list[str] = []
    custom: list[CustomTool] = []
    confirm: list[str] = []
    mcp_toolsets: list[McpServer] = []
    for index, entry in enumerate(tools):
        where = f"{field}[{index}]"
        if isinstance(entry, str):
            builtin.append(_builtin_name(entry, where))
        elif isinstance(entry, Mapping) and entry.get("type") == AGENT_TOOLSET:
            enabled, asked = _agent_toolset(entry, where)
            builtin += enabled
            confirm += asked
        elif isinstance(entry, Mapping) and entry.get("type") == "custom":
            tool = _custom_tool(entry, where)
            custom.append(tool)
            if _policy(entry.get("permission_policy"), where) == "always_ask":
                confirm.append(tool.name)
        elif isinstance(entry, Mapping) and entry.get("type") == MCP_TOOLSET:
            mcp_toolsets.append(_mcp_toolset(entry, where))
        else:
            raise ConfigError(
                f"{where}: {entry!r} is not a tool name, an {AGENT_TOOLSET!r} or {MCP_TOOLSET!r} toolset "
                "or a custom tool"
            )
    names = [*builtin, *(t.name for t in custom)]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{field}: {duplicated} named more than once")
    servers = [toolset.name for toolset in mcp_toolsets]
    if len(set(servers)) < len(servers):
        raise ConfigError(f"{field}: more than one {MCP_TOOLSET!r} for one MCP server")
    return Toolset(tuple(builtin), tuple(custom), tuple(dict.fromkeys(confirm)), tuple(mcp_toolsets))


def mcp_servers(
    toolset: Toolset, servers: Sequence[Mapping[str, Any]], field: str = "mcp_servers"
) -> tuple[McpServer, ...]:
    """The MCP servers a session records: each ``{"type": "url", "name", "url"}`` entry of
    ``servers`` joined with its ``mcp_toolset``. Every toolset must name a server and
    every server be named by a toolset (a ConfigError otherwise)."""
    urls: dict[str, str] = {}
    for index, server in enumerate(servers):
        name, url = server.get("name"), server.get("url")
        if server.get("type", "url") != "url" or not isinstance(name, str) or not isinstance(url, str):
            raise ConfigError(f"{field}[{index}]: {dict(server)!r} is not {{'type': 'url', 'name', 'url'}}")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{field}[{index}].url: {url!r} is not an http or https URL")
        if name in urls:
            raise ConfigError(f"{field}: names must be unique ({name!r} twice)")
        urls[name] = url
    undefined = sorted(set(toolset.mcp_servers) - set(urls))
    if undefined:
        raise ConfigError(f"tools: mcp_toolset entries name servers {undefined} that {field} does not define")
    unused = sorted(set(urls) - set(toolset.mcp_servers))
    if unused:
        raise ConfigError(f"{field}: {unused} are not referenced by any mcp_toolset in tools")
    return tuple(msgspec.structs.replace(t, url=urls[t.name]) for t in toolset.mcp_toolsets)


def check_handlers(
    custom: Sequence[CustomTool], confirm: Sequence[str], on_custom_tool: Any, on_tool_confirmation: Any
) -> None:
    """Custom tools and confirmations need someone to answer them: a ConfigError when the
    handler for either is missing, raised before anything runs."""
    if custom and on_custom_tool is None:
        names = [t.name for t in custom]
        raise ConfigError(f"custom tools {names} need on_custom_tool to answer them")
    if confirm and on_tool_confirmation is None:
        raise ConfigError(
            f"tools {list(confirm)} ask for confirmation (always_ask); give on_tool_confirmation to answer"
        )


def tool_specs(config: SessionConfig) -> list[ToolSpec]:
    """What the model is offered in a session: its built-in and custom tools."""
    specs = [TOOL_SPECS[name] for name in config.tools]
    specs += [ToolSpec(t.name, t.description, dict(t.input_schema)) for t in config.custom_tools]
    return specs


def _builtin_name(name: str, where: str) -> str:
    if name in TOOL_SPECS:
        return name
    if name in UNAVAILABLE:
        raise ConfigError(f"{where}: {name!r} is not available: {UNAVAILABLE[name]}")
    raise ConfigError(f"{where}: unknown tool {name!r}; choose from {list(TOOL_SPECS)}")


def _agent_toolset(entry: Mapping[str, Any], where: str) -> tuple[list[str], list[str]]:
    """The tools of Anthropic's set that a toolset enables, and those of them that need
    confirmation. A config naming a tool outside the set is refused, enabled or not."""
    default = entry.get("default_config") or {}
    default_enabled = default.get("enabled", True) is not False
    default_policy = _policy(default.get("permission_policy"), f"{where}.default_config")
    configs: dict[str, Mapping[str, Any]] = {}
    for number, config in enumerate(_mappings(entry.get("configs") or (), f"{where}.configs")):
        name = config.get("name")
        if not isinstance(name, str):
            raise ConfigError(f"{where}.configs[{number}]: a tool config needs a 'name'")
        if name not in AGENT_TOOLS:
            raise ConfigError(
                f"{where}.configs[{number}]: {name!r} is not a tool of {AGENT_TOOLSET!r}; "
                f"its tools are {list(AGENT_TOOLS)} (name other built-in tools in ManagedConfig.tools)"
            )
        unenforced = [option for option in UNENFORCED_WEB_FETCH_OPTIONS if config.get(option) is not None]
        if name == "web_fetch" and unenforced:
            raise ConfigError(
                f"{where}.configs[{number}]: web_fetch's {unenforced} are not enforced by this engine; "
                "leave them out: web_fetch reaches what the session's networking allows"
            )
        configs[name] = config
    enabled, asked = [], []
    for name in AGENT_TOOLS:
        config = configs.get(name, {})
        if config.get("enabled", default_enabled) is False:
            continue
        enabled.append(name)
        policy = _policy(config.get("permission_policy"), f"{where}.configs") or default_policy
        if policy == "always_ask":
            asked.append(name)
    return enabled, asked


def _custom_tool(entry: Mapping[str, Any], where: str) -> CustomTool:
    name, schema = entry.get("name"), entry.get("input_schema") or {"type": "object", "properties": {}}
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: a custom tool needs a non-empty 'name'")
    if name in TOOL_SPECS:
        raise ConfigError(f"{where}: custom tool {name!r} has the name of a built-in tool")
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise ConfigError(f"{where}: input_schema of {name!r} must be a JSON schema of type 'object'")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description of {name!r} must be a string")
    return CustomTool(name=name, description=description, input_schema=dict(schema))


def _mcp_toolset(entry: Mapping[str, Any], where: str) -> McpServer:
    """An ``mcp_toolset`` entry as the server it names (its URL still unknown), its
    configs and policies checked. MCP tools are asked about unless a policy says
    ``always_allow`` (``auto`` is taken as ``always_ask``: nothing here judges a call)."""
    server = entry.get("mcp_server_name")
    if not isinstance(server, str) or not server.strip():
        raise ConfigError(f"{where}: an {MCP_TOOLSET!r} needs a non-empty 'mcp_server_name'")
    default = entry.get("default_config") or {}
    if not isinstance(default, Mapping):
        raise ConfigError(f"{where}.default_config: {default!r} is not a mapping")
    default_policy = _policy(default.get("permission_policy"), f"{where}.default_config")
    tools: list[McpToolPolicy] = []
    for number, config in enumerate(_mappings(entry.get("configs") or (), f"{where}.configs")):
        name, enabled = config.get("name"), config.get("enabled")
        if not isinstance(name, str):
            raise ConfigError(f"{where}.configs[{number}]: a tool config needs a 'name'")
        if not isinstance(enabled, (bool, type(None))):
            raise ConfigError(f"{where}.configs[{number}].enabled: must be true or false")
        policy = _policy(config.get("permission_policy"), f"{where}.configs[{number}]")
        tools.append(McpToolPolicy(name, enabled, _mcp_permission(policy) if policy else ""))
    return McpServer(
        name=server,
        url="",
        enabled=default.get("enabled", True) is not False,
        permission=_mcp_permission(default_policy or "always_ask"),
        tools=tuple(tools),
    )


def _mcp_permission(policy: str) -> str:
    return "always_allow" if policy == "always_allow" else "always_ask"


def _policy(policy: Any, where: str) -> str | None:
    if policy is None:
        return None
    kind = policy.get("type") if isinstance(policy, Mapping) else None
    if kind not in ("always_allow", "always_ask", "auto"):
        raise ConfigError(
            f"{where}: permission_policy {policy!r} is not of type 'always_allow', 'always_ask' or 'auto'"
        )
    return str(kind)


def _mappings(items: Iterable[Any], where: str) -> Iterable[Mapping[str, Any]]:
    for number, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}[{number}]: {item!r} is not a mapping")
        yield item
