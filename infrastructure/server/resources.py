"""Session resources: files mounted at creation and through ``/v1/sessions/{id}/resources``.

A ``file`` resource names an uploaded file (``file_id``) and where the session sees it
(``mount_path``, ``/mnt/session/uploads/<file_id>`` by default); see
:mod:`agentjournal.application.resources` for what mounting records and
:mod:`agentjournal.application.mounts` for where the path lies in the work folder.
Adding (a file), listing, retrieving and deleting work as the cloud documents; an
update takes a repository's new token, which nothing needs once the clone is done (it
is kept nowhere), and is refused for a file. Memory stores are refused by name until
they are built.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import SESSION, parse_id
from agentjournal.infrastructure.server.mounts import file_mount, resource_json
from agentjournal.infrastructure.server.sessions import engine_of, existing_session


async def add_resource(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    mount = file_mount(await read_json(request, dict[str, Any]), "body")

    def add() -> dict[str, Any]:
        existing_session(engine, session_id)
        return resource_json(
            engine.resources.mount_file(session_id, mount.file_id, mount.mount_path, engine.runtimes)
        )

    return JSONResponse(await asyncio.to_thread(add))


async def list_resources(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def listed() -> list[dict[str, Any]]:
        existing_session(engine, session_id)
        return [resource_json(r) for r in engine.resources.resources(session_id)]

    return JSONResponse({"data": await asyncio.to_thread(listed), "next_page": None})


async def retrieve_resource(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    resource_id = request.path_params["resource_id"]

    def found() -> dict[str, Any]:
        existing_session(engine, session_id)
        return resource_json(engine.resources.resource(session_id, resource_id))

    return JSONResponse(await asyncio.to_thread(found))


async def update_resource(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    resource_id = request.path_params["resource_id"]
    body = await read_json(request, dict[str, Any])
    if not isinstance(body.get("authorization_token"), str):
        raise ApiError(400, "authorization_token: required, the repository's new token")

    def rotate() -> dict[str, Any]:
        existing_session(engine, session_id)
        return resource_json(engine.resources.rotate_token(session_id, resource_id))

    return JSONResponse(await asyncio.to_thread(rotate))


async def delete_resource(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    resource_id = request.path_params["resource_id"]

    def delete() -> None:
        existing_session(engine, session_id)
        engine.resources.remove(session_id, resource_id)

    await asyncio.to_thread(delete)
    return JSONResponse({"type": "session_resource_deleted", "id": resource_id})


PATH = "/v1/sessions/{session_id}/resources"

routes = [
    Route(PATH, add_resource, methods=["POST"]),
    Route(PATH, list_resources, methods=["GET"]),
    Route(PATH + "/{resource_id}", retrieve_resource, methods=["GET"]),
    Route(PATH + "/{resource_id}", update_resource, methods=["POST"]),
    Route(PATH + "/{resource_id}", delete_resource, methods=["DELETE"]),
]
