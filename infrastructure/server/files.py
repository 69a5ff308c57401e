"""A session's work folder as of any event, over HTTP, under ``/x-agentjournal/v1``.

* ``GET /x-agentjournal/v1/sessions/{id}/files?version=N``: the files as they were right
  after event N (default: now): ``{"version": N, "data": [{"path", "hash", "size", "mode",
  "stored"}, ...]}`` in path order; ``&path=FOLDER`` lists only the files below it.
* ``GET /x-agentjournal/v1/sessions/{id}/files?version=N&path=FILE``: that file's contents
  then, as ``application/octet-stream``, from the blob store (so after its sandbox is gone
  too). A file kept by hash only (over the size cap), or no file or folder there, is a 404.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentjournal.application.errors import FileNotRecorded
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.extensions import PREFIX
from agentjournal.infrastructure.server.ids import SESSION, parse_id
from agentjournal.infrastructure.server.query import query_version
from agentjournal.infrastructure.server.sessions import engine_of, existing_session


async def files(request: Request) -> Response:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    version = query_version(request)
    path = request.query_params.get("path", "")

    def answer() -> Response:
        existing_session(engine, session_id)
        found = engine.service.files_at(session_id, version)
        if path.strip("/") in found:
            try:
                return Response(found.read(path), media_type="application/octet-stream")
            except FileNotRecorded as e:
                raise ApiError(404, str(e)) from None
        paths = found.under(path)
        if path and not paths:
            raise ApiError(404, str(FileNotRecorded(path, found.version, "no such file or folder")))
        data: list[dict[str, Any]] = [
            {
                "path": p,
                "hash": found[p].hash,
                "size": found[p].size,
                "mode": found[p].mode,
                "stored": found[p].stored,
            }
            for p in paths
        ]
        return JSONResponse({"version": found.version, "data": data})

    return await asyncio.to_thread(answer)


routes = [Route(f"{PREFIX}/files", files, methods=["GET"])]
