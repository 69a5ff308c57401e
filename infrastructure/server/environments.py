"""``/v1/environments``: where sessions run, as the Managed Agents API shows it.

An environment here is the engine's ``Environment`` aggregate, kept by the
:class:`~agentjournal.application.catalog.Catalog`. A cloud config is shown whole
(its networking with every field, its packages with all six managers), as the
cloud does. Deleting records an event: the environment is not found afterwards,
and its log keeps it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application.catalog_projection import EnvironmentView
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT
from agentjournal.infrastructure.server.agents import page_json
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.ids import ENVIRONMENT, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_bool, query_int
from agentjournal.infrastructure.server.sessions import engine_of
from agentjournal.infrastructure.server.wire import wire_time


def environment_json(environment: EnvironmentView) -> dict[str, Any]:
    """The API's ``environment`` object."""
    definition = environment.definition
    return {
        "type": "environment",
        "id": wire_id(ENVIRONMENT, environment.id),
        "name": definition.name,
        "description": definition.description,
        "metadata": dict(definition.metadata),
        "config": msgspec.json.decode(msgspec.json.encode(definition.config)),
        "scope": "organization",
        "created_at": wire_time(environment.created_at),
        "updated_at": wire_time(environment.updated_at),
        "archived_at": wire_time(environment.archived_at) if environment.archived_at else None,
    }


async def create_environment(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    body = await read_json(request, dict[str, Any])
    return JSONResponse(environment_json(await asyncio.to_thread(catalog.create_environment, body)))


async def retrieve_environment(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    environment_id = parse_id(ENVIRONMENT, request.path_params["environment_id"])
    return JSONResponse(environment_json(await asyncio.to_thread(catalog.get_environment, environment_id)))


async def update_environment(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    environment_id = parse_id(ENVIRONMENT, request.path_params["environment_id"])
    body = await read_json(request, dict[str, Any])
    updated = await asyncio.to_thread(catalog.update_environment, environment_id, body)
    return JSONResponse(environment_json(updated))


async def list_environments(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    page = await asyncio.to_thread(
        catalog.list_environments,
        include_archived=query_bool(request, "include_archived"),
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        page=request.query_params.get("page"),
    )
    return JSONResponse(page_json(page, environment_json))


async def archive_environment(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    environment_id = parse_id(ENVIRONMENT, request.path_params["environment_id"])
    return JSONResponse(
        environment_json(await asyncio.to_thread(catalog.archive_environment, environment_id))
    )


async def delete_environment(request: Request) -> JSONResponse:
    catalog = engine_of(request).catalog
    environment_id = parse_id(ENVIRONMENT, request.path_params["environment_id"])
    await asyncio.to_thread(catalog.delete_environment, environment_id)
    return JSONResponse({"type": "environment_deleted", "id": wire_id(ENVIRONMENT, environment_id)})


routes = [
    Route("/v1/environments", create_environment, methods=["POST"]),
    Route("/v1/environments", list_environments, methods=["GET"]),
    Route("/v1/environments/{environment_id}", retrieve_environment, methods=["GET"]),
    Route("/v1/environments/{environment_id}", update_environment, methods=["POST"]),
    Route("/v1/environments/{environment_id}/archive", archive_environment, methods=["POST"]),
    Route("/v1/environments/{environment_id}", delete_environment, methods=["DELETE"]),
]
