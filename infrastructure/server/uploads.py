"""``/v1/files``: the Files API, as the Managed Agents API shows it.

An upload is a ``multipart/form-data`` body whose ``file`` field streams into the
blob store as it arrives (:mod:`agentjournal.infrastructure.server.multipart`),
under its own size limit (``ServerSettings.max_upload_bytes``, the cloud's 500 MB by
default; the JSON bodies' limit does not apply), refused with a 413 once passed.
A download streams the stored parts back one at a time. Deleting records an event:
the file is then not found here, and sessions that mounted it keep what they recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from agentjournal.application.catalog_projection import FileView
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT
from agentjournal.infrastructure.server.agents import page_json
from agentjournal.infrastructure.server.ids import FILE, parse_id, wire_id
from agentjournal.infrastructure.server.multipart import read_file_field
from agentjournal.infrastructure.server.query import query_int
from agentjournal.infrastructure.server.sessions import engine_of
from agentjournal.infrastructure.server.wire import wire_time

LISTED_AT_MOST = 1000
"""The largest ``limit`` a client may ask for, as the cloud documents; a page holds at
most :data:`~agentjournal.application.paging.MAX_LIMIT` files, and its cursor leads on."""


def file_json(stored: FileView) -> dict[str, Any]:
    """The API's ``file`` metadata object."""
    return {
        "type": "file",
        "id": wire_id(FILE, stored.id),
        "filename": stored.contents.filename,
        "mime_type": stored.contents.mime_type,
        "size_bytes": stored.contents.size,
        "created_at": wire_time(stored.created_at),
        "downloadable": True,
        "expires_at": None,
    }


async def upload_file(request: Request) -> JSONResponse:
    engine = engine_of(request)
    upload = engine.uploads.begin()
    field = await read_file_field(
        request, upload.write, engine.uploads.limit, request.app.state.client_timeout
    )
    name = field.filename or "unnamed"
    stored = await asyncio.to_thread(engine.uploads.finish, upload, name, field.media_type())
    return JSONResponse(file_json(stored))


async def list_files(request: Request) -> JSONResponse:
    uploads = engine_of(request).uploads
    limit = query_int(request, "limit", DEFAULT_LIMIT, 1, LISTED_AT_MOST)
    page = await asyncio.to_thread(
        uploads.list_files, limit=min(limit, MAX_LIMIT), page=request.query_params.get("page")
    )
    return JSONResponse(page_json(page, file_json))


async def retrieve_file(request: Request) -> JSONResponse:
    uploads = engine_of(request).uploads
    file_id = parse_id(FILE, request.path_params["file_id"])
    return JSONResponse(file_json(await asyncio.to_thread(uploads.get, file_id)))


async def download_file(request: Request) -> StreamingResponse:
    uploads = engine_of(request).uploads
    file_id = parse_id(FILE, request.path_params["file_id"])
    stored = await asyncio.to_thread(uploads.get, file_id)
    parts = await asyncio.to_thread(uploads.content, file_id)
    headers = {
        "content-length": str(stored.contents.size),
        "content-disposition": f"attachment; filename*=UTF-8''{quote(stored.contents.filename)}",
    }
    return StreamingResponse(parts, media_type=stored.contents.mime_type, headers=headers)


async def delete_file(request: Request) -> JSONResponse:
    uploads = engine_of(request).uploads
    file_id = parse_id(FILE, request.path_params["file_id"])
    await asyncio.to_thread(uploads.delete, file_id)
    return JSONResponse({"type": "file_deleted", "id": wire_id(FILE, file_id)})


routes = [
    Route("/v1/files", upload_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
    Route("/v1/files/{file_id}/content", download_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
]
