"""Annotations over HTTP, an extension under ``/x-agentjournal/v1`` (see
:mod:`agentjournal.application.annotating`):

* ``POST /x-agentjournal/v1/sessions/{id}/annotations`` ``{"version": N, "note": "...",
  "score": 0.5}``: a note, a score or both about event N of the session, recorded in the
  session's annotation log (its own log and head hash stay as they are; a terminated
  session is annotated too). Returns the annotation, naming the event by version, type
  and hash.
* ``GET /x-agentjournal/v1/sessions/{id}/annotations``: the session's annotations, oldest
  first (``data``), and the check of their log (``verification``: ``ok`` or where it is
  broken; null for a session never annotated).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application import annotating, views
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.ids import SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.sessions import engine_of, existing_session

PATH = "/x-agentjournal/v1/sessions/{session_id}/annotations"


class AnnotationBody(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    """The annotated event's version in the session's log."""
    note: str = ""
    score: float | None = None


async def annotate(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    body = await read_json(request, AnnotationBody)

    def record() -> dict[str, Any]:
        existing_session(engine, session_id)
        redact = engine.runtimes.config.redactor()
        made = annotating.annotate(engine.service, session_id, body.version, body.note, body.score, redact)
        return annotating.annotation_view(made, wire_id(SESSION, session_id))

    return JSONResponse(await asyncio.to_thread(record))


async def list_annotations(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def read() -> dict[str, Any]:
        existing_session(engine, session_id)
        shown = wire_id(SESSION, session_id)
        records = annotating.annotations_of(engine.service, session_id)
        checked = annotating.verify_annotations(engine.service, session_id)
        return {
            "data": [annotating.annotation_view(r, shown) for r in records],
            "verification": views.verification(checked) if checked else None,
        }

    return JSONResponse(await asyncio.to_thread(read))


routes = [
    Route(PATH, annotate, methods=["POST"]),
    Route(PATH, list_annotations, methods=["GET"]),
]
