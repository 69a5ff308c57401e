"""Agent and environment definitions from the cloud API's request bodies, checked field by field.

A create body becomes a definition; an update body changes the current one the
cloud API's way: an omitted field keeps its value, ``metadata`` is a patch (a key
set to null is deleted), and lists are replaced whole. Whatever is wrong raises
:class:`ConfigError` naming the field (``tools[2].name``, ``metadata``).

The catalog keeps any definition the cloud API accepts, so that it can be read
back as it was given, with two exceptions: the built-in tools go through
:func:`~agentjournal.application.toolset.resolve_tools` at once (a tool this
engine does not have is refused up front, as it is for the Python API), and the
fields a definition does not keep (``execution_identity``, ``multiagent``,
``scope``) are refused unless they ask for the default, never dropped. What a
session needs that this engine cannot give yet (skills, cargo, gem or go packages)
is refused when a session is made from the definition (:func:`~agentjournal.application.catalog.session_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from agentjournal.application.errors import ConfigError, ConfigTypeChange
from agentjournal.application.fields import check_metadata, converted, patched
from agentjournal.application.toolset import resolve_tools
from agentjournal.domain import (
    AgentDefinition,
    CloudConfig,
    EnvironmentConfig,
    EnvironmentDefinition,
    LimitedNetwork,
    Networking,
    Packages,
    SelfHostedConfig,
)
from agentjournal.domain.egress import host_rules

AGENT_FIELDS = frozenset(
    {"name", "model", "system", "description", "tools", "mcp_servers", "skills", "metadata",
     "execution_identity", "multiagent"}
)  # fmt: skip
UNKEPT_AGENT_FIELDS = frozenset({"execution_identity", "multiagent"})
"""Accepted when they ask for the default (see :func:`_defaults_only`), not kept."""
ENVIRONMENT_FIELDS = frozenset({"name", "description", "config", "metadata", "scope"})

MAX_TOOLS = 256
MAX_MCP_SERVERS = 20
MODEL_FIELDS = frozenset({"id", "effort", "inference_geo", "speed"})
EFFORTS = ("low", "medium", "high", "xhigh", "max")
SPEEDS = ("standard", "fast")
SKILL_TYPES = ("anthropic", "custom")


# -- agents ---------------------------------------------------------------------------------


def agent_definition(fields: Mapping[str, Any]) -> AgentDefinition:
    """A new agent's definition from a create body."""
    _known(fields, AGENT_FIELDS)
    for required in ("name", "model"):
        if fields.get(required) is None:
            raise ConfigError(f"{required}: required")
    _defaults_only(fields)
    # An empty system prompt or description is none, as an update's "" clears one.
    values = {
        k: v
        for k, v in fields.items()
        if v is not None and k not in UNKEPT_AGENT_FIELDS and not (k in ("system", "description") and v == "")
    }
    return checked_agent(converted(values, AgentDefinition))


def updated_agent(current: AgentDefinition, changes: Mapping[str, Any]) -> AgentDefinition:
    """``current`` with an update body applied: omitted fields keep their values; ``system``
    and ``description`` are cleared by null or ""; ``tools``, ``mcp_servers`` and ``skills``
    are replaced whole (null clears them); ``metadata`` is a patch."""
    _known(changes, AGENT_FIELDS)
    _defaults_only(changes)
    values = msgspec.structs.asdict(current)
    for name, value in changes.items():
        if name in ("name", "model") and value is None:
            raise ConfigError(f"{name}: cannot be cleared")
        if name in ("system", "description"):
            values[name] = value or None
        elif name in ("tools", "mcp_servers", "skills"):
            values[name] = value or ()
        elif name == "metadata":
            values[name] = patched(current.metadata, value, deletes=(None,))
        elif name in ("name", "model"):
            values[name] = value
    return checked_agent(converted(msgspec.to_builtins(values), AgentDefinition))


def checked_agent(definition: AgentDefinition) -> AgentDefinition:
    """``definition`` when every field holds what the cloud API accepts and its built-in and
    custom tools are ones this engine has; else a ConfigError naming the field."""
    if not definition.name.strip():
        raise ConfigError("name: must not be empty")
    _check_model(definition.model)
    check_metadata(definition.metadata)
    if len(definition.tools) > MAX_TOOLS:
        raise ConfigError(f"tools: at most {MAX_TOOLS} tools, not {len(definition.tools)}")
    toolset = resolve_tools(definition.tools, field="tools")
    servers = [_mcp_server(server, f"mcp_servers[{i}]") for i, server in enumerate(definition.mcp_servers)]
    if len(servers) > MAX_MCP_SERVERS:
        raise ConfigError(f"mcp_servers: at most {MAX_MCP_SERVERS} servers, not {len(servers)}")
    if len(set(servers)) < len(servers):
        raise ConfigError("mcp_servers: names must be unique")
    undefined = sorted(set(toolset.mcp_servers) - set(servers))
    if undefined:
        raise ConfigError(
            f"tools: mcp_toolset entries name servers {undefined} that mcp_servers does not define"
        )
    unused = sorted(set(servers) - set(toolset.mcp_servers))
    if unused:
        raise ConfigError(f"mcp_servers: {unused} are not referenced by any mcp_toolset in tools")
    for index, skill in enumerate(definition.skills):
        _check_skill(skill, f"skills[{index}]")
    return definition


def _check_model(model: str | dict[str, Any]) -> None:
    if isinstance(model, str):
        if not model.strip():
            raise ConfigError("model: must not be empty")
        return
    _known(model, MODEL_FIELDS, "model.")
    if not isinstance(model.get("id"), str) or not model["id"].strip():
        raise ConfigError("model.id: a model id is required")
    if model.get("speed") not in (None, *SPEEDS):
        raise ConfigError(f"model.speed: {model['speed']!r} is not one of {list(SPEEDS)}")
    effort = model.get("effort")
    level = effort.get("type") if isinstance(effort, Mapping) else effort
    if level not in (None, *EFFORTS):
        raise ConfigError(f"model.effort: {effort!r} is not one of {list(EFFORTS)}")
    if not isinstance(model.get("inference_geo"), (str, type(None))):
        raise ConfigError("model.inference_geo: must be a string")


def _mcp_server(server: Mapping[str, Any], where: str) -> str:
    """The name of a ``{"type": "url", "name": ..., "url": ...}`` server."""
    _known(server, frozenset({"type", "name", "url"}), f"{where}.")
    if server.get("type") != "url":
        raise ConfigError(f"{where}.type: must be 'url'")
    name, url = server.get("name"), server.get("url")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise ConfigError(f"{where}.name: 1 to 255 characters")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}.url: required")
    return name


def _check_skill(skill: Mapping[str, Any], where: str) -> None:
    _known(skill, frozenset({"type", "skill_id", "version"}), f"{where}.")
    if skill.get("type") not in SKILL_TYPES:
        raise ConfigError(f"{where}.type: {skill.get('type')!r} is not one of {list(SKILL_TYPES)}")
    if not isinstance(skill.get("skill_id"), str) or not skill["skill_id"]:
        raise ConfigError(f"{where}.skill_id: required")
    if not isinstance(skill.get("version"), (str, type(None))):
        raise ConfigError(f"{where}.version: must be a string")


def _defaults_only(fields: Mapping[str, Any]) -> None:
    """Fields a definition does not keep are accepted only when they ask for the default."""
    identity = fields.get("execution_identity")
    if identity is not None and identity != {"type": "service_account"}:
        raise ConfigError(
            "execution_identity: only the default, {'type': 'service_account'}, is supported here"
        )
    if fields.get("multiagent") is not None:
        raise ConfigError("multiagent: multiagent orchestration is not supported here")


# -- environments ---------------------------------------------------------------------------


def environment_definition(fields: Mapping[str, Any]) -> EnvironmentDefinition:
    """A new environment's definition from a create body."""
    _known(fields, ENVIRONMENT_FIELDS)
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name: required, and must not be empty")
    _check_scope(fields.get("scope"))
    config = fields.get("config")
    return _checked_environment(
        EnvironmentDefinition(
            name=name,
            description=converted(fields.get("description"), str | None, "description"),
            config=CloudConfig() if config is None else _config(config, None),
            metadata=converted(fields.get("metadata") or {}, dict[str, str], "metadata"),
        )
    )


def updated_environment(current: EnvironmentDefinition, changes: Mapping[str, Any]) -> EnvironmentDefinition:
    """``current`` with an update body applied: omitted (or null) ``name`` and ``config``
    keep their values, and so do the parts of a cloud config left out; ``description``
    null clears it; ``metadata`` is a patch (null or "" deletes a key)."""
    _known(changes, ENVIRONMENT_FIELDS)
    _check_scope(changes.get("scope"))
    updated = current
    if changes.get("name") is not None:
        name = converted(changes["name"], str, "name")
        if not name.strip():
            raise ConfigError("name: must not be empty")
        updated = msgspec.structs.replace(updated, name=name)
    if "description" in changes:
        updated = msgspec.structs.replace(
            updated, description=converted(changes["description"], str | None, "description")
        )
    if changes.get("config") is not None:
        updated = msgspec.structs.replace(updated, config=_config(changes["config"], current.config))
    if "metadata" in changes:
        updated = msgspec.structs.replace(
            updated, metadata=patched(current.metadata, changes["metadata"], deletes=(None, ""))
        )
    return _checked_environment(updated)


def _config(given: Any, current: EnvironmentConfig | None) -> EnvironmentConfig:
    """A config from its body; on update (``current`` given) the type must stay, and a
    cloud config's parts left out keep their values."""
    body = converted(given, dict[str, Any], "config")
    kind = body.get("type")
    if kind not in ("cloud", "self_hosted"):
        raise ConfigError(f"config.type: {kind!r} is not 'cloud' or 'self_hosted'")
    if current is not None and kind != type(current).__struct_config__.tag:
        raise ConfigTypeChange(
            f"config.type: an environment's config type cannot change after creation "
            f"(it is {type(current).__struct_config__.tag!r})"
        )
    if kind == "self_hosted":
        _known(body, frozenset({"type"}), "config.")
        return SelfHostedConfig()
    _known(body, frozenset({"type", "networking", "packages"}), "config.")
    before = current if isinstance(current, CloudConfig) else CloudConfig()
    networking = before.networking
    if body.get("networking") is not None:
        networking = _networking(body["networking"], networking if current is not None else None)
    packages = before.packages
    if body.get("packages") is not None:
        packages = _packages(body["packages"])
    return CloudConfig(packages=packages, networking=networking)


def _networking(given: Any, current: Networking | None) -> Networking:
    body = converted(given, dict[str, Any], "config.networking")
    kind = body.get("type")
    if kind == "unrestricted":
        _known(body, frozenset({"type"}), "config.networking.")
        return converted(body, Networking, "config.networking")
    if kind != "limited":
        raise ConfigError(f"config.networking.type: {kind!r} is not 'unrestricted' or 'limited'")
    _known(body, frozenset(LimitedNetwork.__struct_fields__) | {"type"}, "config.networking.")
    kept = msgspec.to_builtins(current) if isinstance(current, LimitedNetwork) else {}
    values = kept | {k: v for k, v in body.items() if v is not None}
    networking = converted(values, Networking, "config.networking")
    _check_allowed_hosts(networking, "config.networking.allowed_hosts")
    return networking


def _check_allowed_hosts(networking: Any, field: str) -> None:
    """Every entry of a ``limited`` networking's ``allowed_hosts`` is one the egress proxy
    can enforce exactly (see :mod:`~agentjournal.domain.egress`), or a ConfigError."""
    if isinstance(networking, LimitedNetwork):
        try:
            host_rules(networking.allowed_hosts)
        except ValueError as e:
            raise ConfigError(f"{field}: {e}") from None


def _packages(given: Any) -> Packages:
    body = converted(given, dict[str, Any], "config.packages")
    _known(body, frozenset(Packages.__struct_fields__) | {"type"}, "config.packages.")
    packages = converted({k: v for k, v in body.items() if v is not None}, Packages, "config.packages")
    for manager, names in packages.wanted().items():
        if any(not name.strip() or name.startswith("-") for name in names):
            raise ConfigError(f"config.packages.{manager}: {list(names)!r} holds a non-name")
    return packages


def _checked_environment(definition: EnvironmentDefinition) -> EnvironmentDefinition:
    check_metadata(definition.metadata)
    config = definition.config
    if (
        isinstance(config, CloudConfig)
        and isinstance(config.networking, LimitedNetwork)
        and config.packages.wanted()
        and not config.networking.allow_package_managers
    ):
        raise ConfigError(
            "config.packages: under limited networking, packages need networking.allow_package_managers"
        )
    return definition


def _check_scope(scope: Any) -> None:
    if scope not in (None, "organization"):
        raise ConfigError(
            f"scope: {scope!r} is not supported here; environments are visible organization-wide"
        )


# -- shared -----------------------------------------------------------------------------------


def _known(fields: Mapping[str, Any], known: frozenset[str], prefix: str = "") -> None:
    if not isinstance(fields, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'body'}: must be an object, not {fields!r}")
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field; expected one of {sorted(known)}")
