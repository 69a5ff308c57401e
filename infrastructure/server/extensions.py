"""The log's own powers over HTTP, under ``/x-agentjournal/v1``: a prefix no cloud route
can take.

* ``GET  /x-agentjournal/v1/sessions/{id}/state?version=N``: the session as of event N
  (replayed from the log; default: now).
* ``GET  /x-agentjournal/v1/sessions/{id}/log``: every event of the log, payloads and hashes.
* ``POST /x-agentjournal/v1/sessions/{id}/fork`` ``{"version": N}``: a new session whose
  history is this one's up to event N (default: now); returns the new session, in the
  API's shape.
* ``GET  /x-agentjournal/v1/sessions/{id}/verify``: the hash chain checked, event by event.
* ``GET  /x-agentjournal/v1/sessions/{id}/export``: the log and its files' contents as
  JSON Lines, as ``agentjournal export`` writes it (``agentjournal import`` reads it back).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentjournal.application import audit, views
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.ids import SESSION, parse_id
from agentjournal.infrastructure.server.query import query_version
from agentjournal.infrastructure.server.sessions import engine_of, existing_session, session_json

PREFIX = "/x-agentjournal/v1/sessions/{session_id}"


async def state(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    version = query_version(request)

    def replay() -> dict[str, Any]:
        existing_session(engine, session_id)
        return views.session_state(engine.service.get_session(session_id, version))

    return JSONResponse(await asyncio.to_thread(replay))


async def log(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def entries() -> list[dict[str, Any]]:
        existing_session(engine, session_id)
        return [views.audit_entry(e) for e in engine.service.audit_log(session_id)]

    return JSONResponse({"data": await asyncio.to_thread(entries)})


class ForkBody(msgspec.Struct):
    version: int | None = None


async def fork(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    body = await read_json(request, ForkBody)

    def fork_() -> dict[str, Any]:
        existing_session(engine, session_id)
        forked = engine.service.fork(session_id, body.version)
        return session_json(engine, engine.service.get_session(forked))

    return JSONResponse(await asyncio.to_thread(fork_))


async def verify(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def check() -> dict[str, Any]:
        existing_session(engine, session_id)
        return views.verification(audit.verify(engine.service, session_id))

    return JSONResponse(await asyncio.to_thread(check))


async def export(request: Request) -> Response:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def lines() -> bytes:
        existing_session(engine, session_id)
        return b"".join(audit.export_session(engine.service, session_id))

    return Response(await asyncio.to_thread(lines), media_type="application/x-ndjson")


routes = [
    Route(f"{PREFIX}/state", state, methods=["GET"]),
    Route(f"{PREFIX}/log", log, methods=["GET"]),
    Route(f"{PREFIX}/fork", fork, methods=["POST"]),
    Route(f"{PREFIX}/verify", verify, methods=["GET"]),
    Route(f"{PREFIX}/export", export, methods=["GET"]),
]
