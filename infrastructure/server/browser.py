"""The session browser: a web page served at ``/``, and the JSON it needs that the API
does not give.

The page is static files (``static/``: HTML, CSS and plain ES modules, no build step,
nothing fetched from elsewhere). It holds no data, so it loads without a key
(:func:`.auth.is_public`); it asks for a key once, keeps it in the browser tab's
``sessionStorage`` and sends it as ``x-api-key`` with every request for data. It reads
sessions through the API (``/v1/sessions/{id}``, its events and their stream) and the
log's extensions (``state``, ``log``, ``fork``, ``verify``), and through these routes,
under ``/x-agentjournal/v1``:

* ``GET  /x-agentjournal/v1/sessions?status=&q=&tool=&failed=&model=&limit=&offset=``:
  sessions, the most recently updated first; ``status`` is the engine's (idle, running,
  error, terminated), ``q`` a piece of the title or the start of the id; ``tool``,
  ``failed=true`` and ``model`` keep the sessions that called that tool, failed (a turn,
  or a tool call) or run that model (see :mod:`.inspector`, which also searches inside
  sessions and reads their files' history).
* ``GET  .../sessions/{id}/tree``: the session's ancestors and descendants, each with
  the parent's event it was forked at; flat, in pre-order, each with its depth.
* ``GET  .../sessions/{id}/diff?with={other}``: where two sessions' conversations part,
  and what each has after.
* ``GET  .../sessions/{id}/turns?version=N``: the turns as of event N, each with where
  its messages start, its usage, how and when it ended.
* ``GET  .../sessions/{id}/log/window?after=N&limit=M``: the log's events after
  version N, at most M; without ``after``, its last M events (the page scrolls a
  10,000-event log a window at a time). ``version`` in the answer is the log's length.
* ``GET  .../sessions/{id}/trace``: its turns with their model and tool calls, when each
  ran, how long it took and what it cost, and per-tool statistics (``views.session_trace``).
* ``POST .../sessions/{id}/terminate`` ``{"reason": "..."}``: close the session for good,
  its sandbox released first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from agentjournal.application import audit, browsing, tracing, views
from agentjournal.application.errors import VersionNotFound
from agentjournal.application.projection import SessionSummary
from agentjournal.domain import Status
from agentjournal.infrastructure.server.auth import BROWSER_ASSETS, BROWSER_PAGE
from agentjournal.infrastructure.server.bodies import read_json, to_json
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.inspector import query_filters
from agentjournal.infrastructure.server.query import MAX_VERSION, query_int, query_version
from agentjournal.infrastructure.server.sessions import engine_of, existing_session, session_json

STATIC = Path(__file__).with_name("static")

PAGE_HEADERS = {
    # Everything the page loads comes from this server; nothing may be sent elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

MAX_PAGE = 200
MAX_WINDOW = 1000
PREFIX = "/x-agentjournal/v1/sessions"


async def page(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


class Assets(StaticFiles):
    """The page's scripts and styles, revalidated on every load: after an upgrade the
    browser runs the new ones at once, and an unchanged file costs a 304."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def listing_json(summary: SessionSummary) -> dict[str, Any]:
    """A summary as the page shows it: the listing's fields, ids as the API writes them."""
    return views.session_listing(summary) | {
        "id": wire_id(SESSION, summary.id),
        "parent_id": wire_id(SESSION, summary.parent_id) if summary.parent_id else None,
    }


async def list_sessions(request: Request) -> JSONResponse:
    engine = engine_of(request)
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    offset = query_int(request, "offset", 0, 0, 2**31)
    text = request.query_params.get("q", "")
    filters = query_filters(request)
    found = await asyncio.to_thread(
        browsing.find_sessions, engine.service, filters.status, text, limit, offset, filters
    )
    return JSONResponse(
        {"data": [listing_json(s) for s in found.sessions], "offset": offset, "has_more": found.has_more}
    )


async def fork_tree(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def tree() -> browsing.ForkTree:
        existing_session(engine, session_id)
        return browsing.fork_tree(engine.service, session_id)

    found = await asyncio.to_thread(tree)
    missing = found.missing_parent
    return JSONResponse(
        {
            "session_id": wire_id(SESSION, session_id),
            "missing_parent": wire_id(SESSION, missing) if missing else None,
            "truncated": found.truncated,
            "nodes": list(_pre_order(found.root)),
        }
    )


def _pre_order(root: browsing.ForkNode) -> list[dict[str, Any]]:
    """The tree flat, parents before their children: a chain of forks may be deeper than
    nested JSON (or a recursive walk) can go."""
    nodes, stack = [], [(root, 0)]
    while stack:
        node, depth = stack.pop()
        nodes.append(listing_json(node.session) | {"forked_at": node.forked_at, "depth": depth})
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return nodes


async def diff(request: Request) -> JSONResponse:
    engine = engine_of(request)
    left = parse_id(SESSION, request.path_params["session_id"])
    other = request.query_params.get("with")
    if not other:
        raise ApiError(400, "query parameter 'with' (the session to compare with) is required")
    right = parse_id(SESSION, other)

    def compare() -> dict[str, Any]:
        existing_session(engine, left)
        existing_session(engine, right)
        return views.session_diff(audit.diff(engine.service, left, right))

    compared = await asyncio.to_thread(compare)
    return JSONResponse(compared | {"left": wire_id(SESSION, left), "right": wire_id(SESSION, right)})


async def turns(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    version = query_version(request)

    def fold() -> list[browsing.TurnSummary]:
        latest = existing_session(engine, session_id).version
        if version is not None and version > latest:
            raise VersionNotFound(session_id, version, latest)
        return browsing.turns(engine.service, session_id, version)

    return JSONResponse({"data": to_json(await asyncio.to_thread(fold))})


async def log_window(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    limit = query_int(request, "limit", 200, 1, MAX_WINDOW)
    given = query_int(request, "after", -1, 0, MAX_VERSION)

    def window() -> dict[str, Any]:
        latest = existing_session(engine, session_id).version
        after = given if given >= 0 else max(0, latest - limit)
        # No version is past MAX_VERSION, and the stores take no number beyond it.
        entries = engine.service.audit_log(session_id, after=after, until=min(after + limit, MAX_VERSION))
        return {"data": [views.audit_entry(e) for e in entries], "version": latest}

    return JSONResponse(await asyncio.to_thread(window))


async def session_trace(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def read() -> dict[str, Any]:
        existing_session(engine, session_id)
        return views.session_trace(tracing.session_trace(engine.service.events.get(session_id)))

    shown = await asyncio.to_thread(read)
    return JSONResponse(shown | {"session_id": wire_id(SESSION, session_id)})


class TerminateBody(msgspec.Struct):
    reason: str = ""


async def terminate(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    body = await read_json(request, TerminateBody)

    def close() -> dict[str, Any]:
        session = existing_session(engine, session_id)
        if session.status == Status.RUNNING:
            engine.runner.interrupt(session_id)
        engine.service.terminate(session_id, body.reason, engine.runtimes.release)
        engine.runtimes.end(session_id)
        engine.doorbell.ring(session_id)
        return session_json(engine, existing_session(engine, session_id))

    return JSONResponse(await asyncio.to_thread(close))


def _session_route(path: str, endpoint: Any, method: str = "GET") -> Route:
    return Route(f"{PREFIX}/{{session_id}}/{path}", endpoint, methods=[method])


routes: list[BaseRoute] = [
    Route(BROWSER_PAGE, page, methods=["GET", "HEAD"]),
    Mount(BROWSER_ASSETS.rstrip("/"), Assets(directory=STATIC), name="browser"),
    Route(PREFIX, list_sessions, methods=["GET"]),
    _session_route("tree", fork_tree),
    _session_route("diff", diff),
    _session_route("turns", turns),
    _session_route("log/window", log_window),
    _session_route("trace", session_trace),
    _session_route("terminate", terminate, "POST"),
]
