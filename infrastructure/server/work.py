"""Self-hosted environments over HTTP: the work queue Anthropic's worker serves, and the
worker keys that open it (:mod:`agentjournal.application.work_queue`).

The cloud's routes, for a worker holding the environment's worker key
(``Authorization: Bearer ajwk_...``):

* ``GET  /v1/environments/{id}/work/poll?block_ms=&reclaim_older_than_ms=``: a work item
  (``Anthropic-Worker-ID`` names the worker), or ``null`` (HTTP 200) when none comes
  within ``block_ms``;
* ``POST /v1/environments/{id}/work/{work_id}/ack``, ``/heartbeat?expected_last_heartbeat=``
  (412 with ``error.details.current_state`` when the lease is another's), ``/stop``
  ``{"force": bool}`` (409 once stopped);
* ``GET  /v1/environments/{id}/work`` (a page) and ``/work/stats``.

With an API key: ``GET``/``POST /v1/environments/{id}/work/{work_id}`` (retrieve, update
metadata), and this server's extension for the keys, which the cloud mints in its console:

* ``POST /x-agentjournal/v1/environments/{id}/worker_keys`` ``{"name": ...}``: a new key,
  its ``secret`` shown this once (the store keeps its SHA-256 only);
* ``GET  /x-agentjournal/v1/environments/{id}/worker_keys``: the keys, never their secrets;
* ``POST /x-agentjournal/v1/environments/{id}/worker_keys/{key_id}/revoke``.

:func:`worker_key_refusal` is the gate the API-key middleware hands a worker key to: a
key opens only its environment's work routes and the sessions of that environment
(retrieve, events list, stream and send); unknown or revoked is 401, anything else 403,
the two codes on which Anthropic's worker stops rather than retrying for ever.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from uuid import UUID

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from agentjournal.application.errors import SessionNotFound
from agentjournal.application.work_queue import (
    DEFAULT_RECLAIM_MS,
    NO_HEARTBEAT,
    Heartbeat,
    StaleHeartbeat,
    WorkConflict,
    WorkerKey,
    WorkerKeyRefused,
    WorkItem,
    WorkNotFound,
    stamp,
)
from agentjournal.domain import SelfHostedConfig
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError, error_response, not_found
from agentjournal.infrastructure.server.ids import ENVIRONMENT, SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_int
from agentjournal.infrastructure.server.sessions import engine_of

WORK = "/v1/environments/{environment_id}/work"
KEYS = "/x-agentjournal/v1/environments/{environment_id}/worker_keys"
POLL_INTERVAL = 0.2
"""How often a long poll looks at the queue again while it waits."""
MAX_PAGE = 100
MAX_WORKER_NAME = 128
"""Characters of a worker's own name (``Anthropic-Worker-ID``) kept; the log records it."""

_WORK_PATH = re.compile(r"^/v1/environments/([^/]+)/work(?:/.*)?$")
_SESSION_PATH = re.compile(r"^/v1/sessions/([^/]+)(?:/events(?:/stream)?)?$")
_API_KEY_ONLY = re.compile(r"^/v1/environments/[^/]+/work/(?!poll$|stats$)[^/]+$")
"""Retrieve and update of an item take an API key, as in the cloud; never a worker key.
(Stop takes either: the worker's own, or the owner's graceful stop.)"""


# -- the gate -------------------------------------------------------------------------------


def worker_key_refusal(scope: Scope, secret: str) -> tuple[int, str] | None:
    """Why a request presenting worker key ``secret`` is refused (status, message), or None;
    an accepted key is left in ``scope["state"]["worker_key"]`` for the routes. Runs in a
    thread: it reads the store."""
    engine = scope["app"].state.engine
    try:
        key: WorkerKey = engine.service.work.key_for(secret)
    except WorkerKeyRefused as e:
        return e.status, str(e)
    path: str = scope["path"]
    work = _WORK_PATH.match(path)
    if work and not _API_KEY_ONLY.match(path):
        if _uuid(ENVIRONMENT, work.group(1)) != key.environment_id:
            return 403, "this worker key opens another environment's work"
    elif (session := _SESSION_PATH.match(path)) and scope["method"] in ("GET", "POST"):
        if scope["method"] == "POST" and not path.endswith("/events"):
            return 403, "a worker key may read a session and post its events, nothing else"
        if _session_environment(engine, session.group(1)) != key.environment_id:
            return 403, "this worker key opens only the sessions of its own environment"
    else:
        return 403, "a worker key opens only its environment's work and sessions"
    scope.setdefault("state", {})["worker_key"] = key
    return None


def _uuid(kind: str, given: str) -> str:
    try:
        return str(parse_id(kind, given))
    except ApiError:
        return ""


def _session_environment(engine: Any, given: str) -> str:
    session_id = _uuid(SESSION, given)
    if not session_id:
        return ""
    try:
        return str(engine.service.get_session(UUID(session_id)).config.environment_id)
    except SessionNotFound:
        return ""


def worker_of(request: Request, environment_id: UUID) -> WorkerKey:
    """The worker key this request was let in with, for ``environment_id``'s work."""
    key: WorkerKey | None = getattr(request.state, "worker_key", None)
    if key is None:
        raise ApiError(
            401, "the work queue takes the environment's worker key (Authorization: Bearer ajwk_...)"
        )
    if key.environment_id != str(environment_id):
        raise ApiError(403, "this worker key opens another environment's work")
    return key


def _no_worker_key(request: Request) -> None:
    if getattr(request.state, "worker_key", None) is not None:
        raise ApiError(403, "this call takes an API key, not a worker key")


# -- the shapes -----------------------------------------------------------------------------


def work_json(item: WorkItem) -> dict[str, Any]:
    return {
        "type": "work",
        "id": item.id,
        "environment_id": wire_id(ENVIRONMENT, UUID(item.environment_id)),
        "data": {"type": "session", "id": wire_id(SESSION, UUID(item.session_id))},
        "state": item.state,
        "created_at": stamp(item.created_at),
        "acknowledged_at": _time(item.acknowledged_at),
        "started_at": _time(item.started_at),
        "latest_heartbeat_at": _time(item.latest_heartbeat_at),
        "stop_requested_at": _time(item.stop_requested_at),
        "stopped_at": _time(item.stopped_at),
        "metadata": dict(item.metadata),
        "secret": None,
    }


def heartbeat_json(beat: Heartbeat) -> dict[str, Any]:
    return {"type": "work_heartbeat", "state": beat.state, "last_heartbeat": beat.last_heartbeat,
            "lease_extended": beat.lease_extended, "ttl_seconds": beat.ttl_seconds}  # fmt: skip


def key_json(key: WorkerKey) -> dict[str, Any]:
    """A worker key as listings show it: its last characters, never the key."""
    return {"type": "worker_key", "id": key.id, "environment_id": wire_id(ENVIRONMENT, UUID(key.environment_id)),
            "name": key.name, "hint": f"...{key.hint}", "created_at": stamp(key.created_at),
            "revoked_at": _time(key.revoked_at)}  # fmt: skip


def _time(moment: float | None) -> str | None:
    return None if moment is None else stamp(moment)


# -- the work routes ------------------------------------------------------------------------


def _environment(request: Request) -> UUID:
    return parse_id(ENVIRONMENT, request.path_params["environment_id"])


async def _call(call: Any, *args: Any) -> Any:
    """Run a queue call in a thread, its refusals in the API's shape."""
    try:
        return await asyncio.to_thread(call, *args)
    except WorkNotFound as e:
        raise not_found("work", e.work_id) from None
    except WorkConflict as e:
        raise ApiError(409, str(e)) from None


async def poll(request: Request) -> JSONResponse:
    engine = engine_of(request)
    environment_id = _environment(request)
    key = worker_of(request, environment_id)
    block_ms = query_int(request, "block_ms", 0, 1, 999) if "block_ms" in request.query_params else 0
    reclaim_ms = query_int(request, "reclaim_older_than_ms", DEFAULT_RECLAIM_MS, 0, 86_400_000)
    name = " ".join((request.headers.get("anthropic-worker-id") or "worker").split())[:MAX_WORKER_NAME]
    holder = f"{key.id}/{name}"
    deadline = time.monotonic() + block_ms / 1000
    while True:
        item = await _call(engine.service.work.poll, str(environment_id), holder, reclaim_ms)
        if item is not None:
            return JSONResponse(work_json(item))
        if time.monotonic() >= deadline or await request.is_disconnected():
            return JSONResponse(None)
        await asyncio.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


async def ack(request: Request) -> JSONResponse:
    engine = engine_of(request)
    environment_id = _environment(request)
    worker_of(request, environment_id)
    item = await _call(engine.service.work.ack, str(environment_id), request.path_params["work_id"])
    return JSONResponse(work_json(item))


async def heartbeat(request: Request) -> Response:
    engine = engine_of(request)
    environment_id = _environment(request)
    worker_of(request, environment_id)
    expected = request.query_params.get("expected_last_heartbeat") or NO_HEARTBEAT
    try:
        beat = await _call(engine.service.work.heartbeat, str(environment_id), request.path_params["work_id"],
                           expected)  # fmt: skip
    except StaleHeartbeat as e:
        refused = error_response(412, str(e), "precondition_failed_error")
        body = msgspec.json.decode(bytes(refused.body))
        body["error"]["details"] = {"current_state": heartbeat_json(e.current)}
        return JSONResponse(body, 412, {"request-id": body["request_id"], "x-should-retry": "false"})
    return JSONResponse(heartbeat_json(beat))


class StopBody(msgspec.Struct):
    force: bool = False


async def stop(request: Request) -> JSONResponse:
    """A worker ends its item (forced, when its session went idle), or the environment's
    owner asks the worker to finish (graceful: ``stopping``, which its next beat hears)."""
    engine = engine_of(request)
    environment_id = _environment(request)
    if getattr(request.state, "worker_key", None) is not None:
        worker_of(request, environment_id)
    body = await read_json(request, StopBody)
    item = await _call(
        engine.service.work.stop, str(environment_id), request.path_params["work_id"], body.force
    )
    await asyncio.to_thread(_offer_again_if_awaited, engine, item)
    return JSONResponse(work_json(item))


def _offer_again_if_awaited(engine: Any, item: WorkItem) -> None:
    """A worker that stops while the session still waits for it (it stopped as a new call
    came) leaves the call to a new item."""
    session = engine.service.get_session(UUID(item.session_id))
    if session.pending_remote:
        engine.service.work.offer(item.environment_id, item.session_id)


async def list_work(request: Request) -> JSONResponse:
    engine = engine_of(request)
    environment_id = _environment(request)
    worker_of(request, environment_id)
    limit = query_int(request, "limit", 20, 1, MAX_PAGE)
    items, next_page = await _call(engine.service.work.page, str(environment_id), request.query_params.get("page"),
                                   limit)  # fmt: skip
    return JSONResponse({"data": [work_json(i) for i in items], "next_page": next_page})


async def stats(request: Request) -> JSONResponse:
    engine = engine_of(request)
    environment_id = _environment(request)
    worker_of(request, environment_id)
    found = await _call(engine.service.work.stats, str(environment_id))
    return JSONResponse({"type": "work_queue_stats", "depth": found.depth, "pending": found.pending,
                         "oldest_queued_at": _time(found.oldest_queued_at),
                         "workers_polling": found.workers_polling})  # fmt: skip


async def retrieve(request: Request) -> JSONResponse:
    engine = engine_of(request)
    _no_worker_key(request)
    item = await _call(engine.service.work.get, str(_environment(request)), request.path_params["work_id"])
    return JSONResponse(work_json(item))


class UpdateBody(msgspec.Struct):
    metadata: dict[str, str | None] = {}


async def update(request: Request) -> JSONResponse:
    engine = engine_of(request)
    _no_worker_key(request)
    body = await read_json(request, UpdateBody)
    item = await _call(engine.service.work.update_metadata, str(_environment(request)),
                       request.path_params["work_id"], body.metadata)  # fmt: skip
    return JSONResponse(work_json(item))


# -- the keys extension -----------------------------------------------------------------------


class MintBody(msgspec.Struct):
    name: str = ""


def _self_hosted(engine: Any, environment_id: UUID) -> None:
    environment = engine.catalog.get_environment(environment_id)
    if not isinstance(environment.definition.config, SelfHostedConfig):
        raise ApiError(400, "worker keys are for self_hosted environments; this one is 'cloud'")


async def mint_key(request: Request) -> JSONResponse:
    engine = engine_of(request)
    _no_worker_key(request)
    environment_id = _environment(request)
    body = await read_json(request, MintBody)

    def mint() -> dict[str, Any]:
        _self_hosted(engine, environment_id)
        minted = engine.service.work.mint_key(str(environment_id), body.name)
        return {**key_json(minted.key), "secret": minted.secret}

    return JSONResponse(await asyncio.to_thread(mint))


async def list_keys(request: Request) -> JSONResponse:
    engine = engine_of(request)
    _no_worker_key(request)
    environment_id = _environment(request)

    def keys() -> list[dict[str, Any]]:
        _self_hosted(engine, environment_id)
        return [key_json(k) for k in engine.service.work.keys(str(environment_id))]

    return JSONResponse({"data": await asyncio.to_thread(keys)})


async def revoke_key(request: Request) -> JSONResponse:
    engine = engine_of(request)
    _no_worker_key(request)
    environment_id = _environment(request)
    key_id = request.path_params["key_id"]
    try:
        key = await asyncio.to_thread(engine.service.work.revoke_key, str(environment_id), key_id)
    except WorkNotFound:
        raise not_found("worker key", key_id) from None
    return JSONResponse(key_json(key))


routes = [
    Route(f"{WORK}/poll", poll, methods=["GET"]),
    Route(f"{WORK}/stats", stats, methods=["GET"]),
    Route(WORK, list_work, methods=["GET"]),
    Route(f"{WORK}/{{work_id}}", retrieve, methods=["GET"]),
    Route(f"{WORK}/{{work_id}}", update, methods=["POST"]),
    Route(f"{WORK}/{{work_id}}/ack", ack, methods=["POST"]),
    Route(f"{WORK}/{{work_id}}/heartbeat", heartbeat, methods=["POST"]),
    Route(f"{WORK}/{{work_id}}/stop", stop, methods=["POST"]),
    Route(KEYS, mint_key, methods=["POST"]),
    Route(KEYS, list_keys, methods=["GET"]),
    Route(f"{KEYS}/{{key_id}}/revoke", revoke_key, methods=["POST"]),
]
