"""``/v1/agents``: agents and their versions, as the Managed Agents API shows them.

An agent here is the engine's ``Agent`` aggregate, kept by the
:class:`~agentjournal.application.catalog.Catalog`: its definition as the client
gave it, one version per change. The API shows every definition fully populated,
as the cloud does: the model as an object, each toolset with its default config
and a config for every tool it names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application.agent_tools import AGENT_TOOLS
from agentjournal.application.catalog import Catalog
from agentjournal.application.catalog_projection import AgentView
from agentjournal.application.errors import AgentNotFound, AgentVersionNotFound
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from agentjournal.application.toolset import AGENT_TOOLSET, MCP_TOOLSET
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import AGENT, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_bool, query_int, query_time, query_version
from agentjournal.infrastructure.server.sessions import engine_of
from agentjournal.infrastructure.server.wire import wire_time

ALWAYS_ALLOW = {"type": "always_allow"}
ALWAYS_ASK = {"type": "always_ask"}


# -- the wire shape -------------------------------------------------------------------------


def agent_json(agent: AgentView) -> dict[str, Any]:
    """The API's ``agent`` object for one version of an agent."""
    return {
        **session_agent_json(agent),
        "metadata": dict(agent.definition.metadata),
        "created_at": wire_time(agent.created_at),
        "updated_at": wire_time(agent.updated_at),
        "archived_at": wire_time(agent.archived_at) if agent.archived_at else None,
    }


def session_agent_json(agent: AgentView) -> dict[str, Any]:
    """The agent as a session shows the version it runs: without metadata and times."""
    definition = agent.definition
    return {
        "type": "agent",
        "id": wire_id(AGENT, agent.id),
        "version": agent.version,
        "name": definition.name,
        "description": definition.description,
        "system": definition.system,
        "model": _model(definition.model),
        "tools": [_tool(tool) for tool in definition.tools],
        "mcp_servers": [dict(server) for server in definition.mcp_servers],
        "skills": [{**skill, "version": skill.get("version") or "latest"} for skill in definition.skills],
        "execution_identity": {"type": "service_account"},
        "multiagent": None,
    }


def _model(model: str | Mapping[str, Any]) -> dict[str, Any]:
    given = {"id": model} if isinstance(model, str) else dict(model)
    effort = given.get("effort")
    return {
        "id": given["id"],
        "speed": given.get("speed") or "standard",
        "effort": {"type": effort} if isinstance(effort, str) else effort,
        "inference_geo": given.get("inference_geo"),
    }


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool["type"] == AGENT_TOOLSET:
        return _agent_toolset(tool)
    if tool["type"] == MCP_TOOLSET:
        default = _config(tool.get("default_config"), True, ALWAYS_ASK)
        return {
            "type": MCP_TOOLSET,
            "mcp_server_name": tool["mcp_server_name"],
            "default_config": default,
            "configs": [
                {"name": c["name"], **_config(c, default["enabled"], default["permission_policy"])}
                for c in tool.get("configs") or ()
            ],
        }
    return {
        "type": "custom",
        "name": tool["name"],
        "description": tool.get("description") or "",
        "input_schema": tool.get("input_schema") or {"type": "object", "properties": {}},
    }


def _agent_toolset(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The toolset with its default config and one config per tool of the set."""
    default = _config(tool.get("default_config"), True, ALWAYS_ALLOW)
    given = {c["name"]: c for c in tool.get("configs") or ()}
    configs = []
    for name in AGENT_TOOLS:
        config = given.get(name) or {}
        resolved = _config(config, default["enabled"], default["permission_policy"])
        extras = {
            k: v for k, v in config.items() if k not in ("name", "type", "enabled", "permission_policy")
        }
        configs.append({"type": name, "name": name, **resolved, **extras})
    return {"type": AGENT_TOOLSET, "default_config": default, "configs": configs}


def _config(given: Mapping[str, Any] | None, enabled: bool, policy: Mapping[str, Any]) -> dict[str, Any]:
    given = given or {}
    return {
        "enabled": enabled if given.get("enabled") is None else bool(given["enabled"]),
        "permission_policy": dict(given.get("permission_policy") or policy),
    }


def page_json(page: Page[Any], item: Any) -> dict[str, Any]:
    return {"data": [item(entry) for entry in page.items], "next_page": page.next_page}


def session_agent_of(catalog: Catalog, agent_id: str, version: int) -> dict[str, Any] | None:
    """The agent version a session was created from (``agent_id`` and ``version`` as its
    config records them), or None when the catalog has no such agent."""
    try:
        return session_agent_json(catalog.get_agent(UUID(agent_id), version or None))
    except (AgentNotFound, AgentVersionNotFound, ValueError):
        return None


# -- routes ---------------------------------------------------------------------------------


async def create_agent(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    body = await read_json(request, dict[str, Any])
    return JSONResponse(agent_json(await asyncio.to_thread(catalog.create_agent, body)))


async def retrieve_agent(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    agent_id = parse_id(AGENT, request.path_params["agent_id"])
    version = query_version(request)
    return JSONResponse(agent_json(await asyncio.to_thread(catalog.get_agent, agent_id, version)))


async def update_agent(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    agent_id = parse_id(AGENT, request.path_params["agent_id"])
    body = await read_json(request, dict[str, Any])
    version = body.pop("version", None)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ApiError(400, f"version: must be a whole number of at least 1, not {version!r}")
    return JSONResponse(agent_json(await asyncio.to_thread(catalog.update_agent, agent_id, body, version)))


async def list_agents(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    page = await asyncio.to_thread(
        catalog.list_agents,
        include_archived=query_bool(request, "include_archived"),
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        page=request.query_params.get("page"),
        created_gte=query_time(request, "created_at[gte]"),
        created_lte=query_time(request, "created_at[lte]"),
    )
    return JSONResponse(page_json(page, agent_json))


async def archive_agent(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    agent_id = parse_id(AGENT, request.path_params["agent_id"])
    return JSONResponse(agent_json(await asyncio.to_thread(catalog.archive_agent, agent_id)))


async def list_versions(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    agent_id = parse_id(AGENT, request.path_params["agent_id"])
    page = await asyncio.to_thread(
        catalog.agent_versions,
        agent_id,
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        page=request.query_params.get("page"),
    )
    return JSONResponse(page_json(page, agent_json))


routes = [
    Route("/v1/agents", create_agent, methods=["POST"]),
    Route("/v1/agents", list_agents, methods=["GET"]),
    Route("/v1/agents/{agent_id}", retrieve_agent, methods=["GET"]),
    Route("/v1/agents/{agent_id}", update_agent, methods=["POST"]),
    Route("/v1/agents/{agent_id}/archive", archive_agent, methods=["POST"]),
    Route("/v1/agents/{agent_id}/versions", list_versions, methods=["GET"]),
]
