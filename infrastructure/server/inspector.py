"""What the session browser reads to inspect sessions beyond one log: search across
sessions, and the history of a session's files. Under ``/x-agentjournal/v1``, with a key
like every other read.

* ``GET /x-agentjournal/v1/search?q=&tool=&failed=&model=&status=&limit=&offset=``: the
  places in every session's messages, tool calls, tool output and failures that hold all
  of ``q``'s words (each as the start of a word), the latest first; ``tool`` keeps the
  text of that tool's calls and output, ``failed=true`` the failures, ``model`` and
  ``status`` the sessions that run that model or have that status. Each hit names its
  session and event, so the page links to ``#/s/ID/e/N``. Read from the search index
  (:mod:`~agentjournal.application.search`), never by replaying logs.
* ``GET /x-agentjournal/v1/search/facets``: the tool names and models the filters can
  choose from.
* ``GET /x-agentjournal/v1/sessions/{id}/files/changes?version=N``: the work folder as of
  event N, each file with the event of its latest change.
* ``GET /x-agentjournal/v1/sessions/{id}/files/diff?path=FILE&version=N``: that file's
  latest change as of event N against the change before it, as a unified diff
  (:mod:`~agentjournal.application.file_history`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from agentjournal.application import file_history
from agentjournal.application.errors import FileNotRecorded, VersionNotFound
from agentjournal.application.search import Filters, UnsearchableQuery
from agentjournal.domain import Status
from agentjournal.infrastructure.server.bodies import to_json
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.extensions import PREFIX
from agentjournal.infrastructure.server.ids import SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_bool, query_int, query_version
from agentjournal.infrastructure.server.sessions import engine_of, existing_session

MAX_HITS = 200
MAX_QUERY_CHARS = 1000
SEARCH = "/x-agentjournal/v1/search"


def query_status(request: Request) -> Status | None:
    """The engine's status ``status`` names (idle, running, error, terminated), if any."""
    given = request.query_params.get("status") or None
    try:
        return Status(given) if given else None
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise ApiError(400, f"query parameter 'status' must be one of {choices}, not {given!r}") from None


def query_filters(request: Request) -> Filters:
    """The filters a search or a listing names: ``tool``, ``failed``, ``model``, ``status``."""
    return Filters(
        tool=request.query_params.get("tool", "").strip(),
        failed=query_bool(request, "failed"),
        model=request.query_params.get("model", "").strip(),
        status=query_status(request),
    )


async def search(request: Request) -> JSONResponse:
    engine = engine_of(request)
    text = request.query_params.get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise ApiError(400, f"query parameter 'q' takes at most {MAX_QUERY_CHARS} characters")
    filters = query_filters(request)
    limit = query_int(request, "limit", 50, 1, MAX_HITS)
    offset = query_int(request, "offset", 0, 0, 2**31)
    try:
        found = await asyncio.to_thread(engine.service.search.find, text, filters, limit, offset)
    except UnsearchableQuery as e:
        raise ApiError(400, str(e)) from None
    hits = [to_json(hit) | {"session_id": wire_id(SESSION, hit.session_id)} for hit in found.hits]
    return JSONResponse({"data": hits, "offset": offset, "has_more": found.has_more})


async def facets(request: Request) -> JSONResponse:
    engine = engine_of(request)
    return JSONResponse(await asyncio.to_thread(engine.service.search.facets))


async def file_changes(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    version = query_version(request)

    def read() -> dict[str, Any]:
        latest = existing_session(engine, session_id).version
        if version is not None and version > latest:
            raise VersionNotFound(session_id, version, latest)
        files = engine.service.files_at(session_id, version)
        changed = file_history.last_changes(engine.service.events.get(session_id, lte=files.version))
        data = [
            {"path": p, "size": files[p].size, "mode": files[p].mode, "stored": files[p].stored,
             "hash": files[p].hash, "changed_at": changed.get(p)}
            for p in files
        ]  # fmt: skip
        return {"version": files.version, "data": data}

    return JSONResponse(await asyncio.to_thread(read))


async def file_diff(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    version = query_version(request)
    path = request.query_params.get("path", "")
    if not path.strip("/"):
        raise ApiError(400, "query parameter 'path' (a file of the work folder) is required")

    def compare() -> file_history.FileDiff:
        latest = existing_session(engine, session_id).version
        if version is not None and version > latest:
            raise VersionNotFound(session_id, version, latest)
        try:
            return file_history.file_diff(engine.service, session_id, path, version)
        except FileNotRecorded as e:
            raise ApiError(404, str(e)) from None

    return JSONResponse(to_json(await asyncio.to_thread(compare)))


routes: list[BaseRoute] = [
    Route(SEARCH, search, methods=["GET"]),
    Route(f"{SEARCH}/facets", facets, methods=["GET"]),
    Route(f"{PREFIX}/files/changes", file_changes, methods=["GET"]),
    Route(f"{PREFIX}/files/diff", file_diff, methods=["GET"]),
]
