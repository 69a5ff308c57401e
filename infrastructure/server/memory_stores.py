"""``/v1/memory_stores``, its ``memories`` and ``memory_versions``: memory that outlives
sessions, in the shapes of the SDK's ``beta.memory_stores``.

Stores are the engine's ``MemoryStore`` aggregates (:mod:`agentjournal.application.memory_stores`).
A memory's ``content`` comes with ``view=full`` (the default of a retrieve) and is null with
``view=basic`` (the default of lists, create and update); its digest and size always come.
A version written by a session names it as a ``session_actor``. ``redact`` erases what a
version wrote (see :meth:`~agentjournal.application.memory_stores.MemoryStores.redact_version`)
and answers the version as the cloud shows a redacted one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application.catalog_projection import MemoryStoreView
from agentjournal.application.memory_stores import Prefix
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT
from agentjournal.domain.memory import (
    ApiAuthor,
    Author,
    Memory,
    MemoryStore,
    MemoryVersion,
)
from agentjournal.infrastructure.server.agents import page_json
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import MEMORY_STORE, SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_bool, query_int
from agentjournal.infrastructure.server.sessions import engine_of
from agentjournal.infrastructure.server.wire import wire_time

MEMORY = "mem_"
VERSION = "memver_"
STORE_FIELDS = frozenset({"name", "description", "metadata"})
MEMORY_FIELDS = frozenset({"path", "content", "precondition"})
FULL_PAGE = 20
"""The most items a page holds with ``view=full``, as the cloud documents."""


def store_json(store: MemoryStore | MemoryStoreView) -> dict[str, Any]:
    """The API's ``memory_store`` object."""
    if isinstance(store, MemoryStore):
        created, updated = store.created_on, store.changed_at or store.created_on
    else:
        created, updated = store.created_at, store.updated_at
    return {
        "type": "memory_store",
        "id": wire_id(MEMORY_STORE, store.id),
        "name": store.name,
        "description": store.description,
        "metadata": dict(store.metadata),
        "created_at": wire_time(created),
        "updated_at": wire_time(updated),
        "archived_at": wire_time(store.archived_at) if store.archived_at else None,
    }


def memory_json(store_id: UUID, memory: Memory, content: str | None) -> dict[str, Any]:
    """The API's ``memory``; ``content`` is None for ``view=basic``."""
    return {
        "type": "memory",
        "id": MEMORY + memory.id,
        "memory_store_id": wire_id(MEMORY_STORE, store_id),
        "memory_version_id": VERSION + memory.version_id,
        "path": memory.path,
        "content": content,
        "content_sha256": memory.content_sha256,
        "content_size_bytes": memory.size,
        "created_at": wire_time(memory.created_at),
        "updated_at": wire_time(memory.updated_at),
    }


def author_json(author: Author) -> dict[str, Any]:
    if isinstance(author, ApiAuthor):
        return {"type": "api_actor", "api_key_id": author.api_key_id or "apikey_local"}
    return {"type": "session_actor", "session_id": wire_id(SESSION, UUID(author.session_id))}


def version_json(store_id: UUID, version: MemoryVersion, content: str | None) -> dict[str, Any]:
    """The API's ``memory_version``; ``content`` is None for ``view=basic``, a deletion and
    a redacted version (whose path, digest and size are None too, as the cloud shows)."""
    return {
        "type": "memory_version",
        "id": VERSION + version.id,
        "memory_id": MEMORY + version.memory_id,
        "memory_store_id": wire_id(MEMORY_STORE, store_id),
        "operation": version.operation,
        "path": version.path,
        "content": content,
        "content_sha256": version.content_sha256,
        "content_size_bytes": version.size,
        "created_at": wire_time(version.created_at),
        "created_by": author_json(version.author),
        "redacted_at": wire_time(version.redacted_at) if version.redacted_at else None,
        "redacted_by": author_json(version.redacted_by) if version.redacted_by else None,
    }


def _contents(request: Request, store_id: UUID, version_ids: Iterable[str], full: bool) -> dict[str, str]:
    """The contents a ``view=full`` answer shows (none for ``view=basic``); call off the loop."""
    return engine_of(request).memory_stores.contents(store_id, version_ids) if full else {}


# -- stores ---------------------------------------------------------------------------------


async def create_store(request: Request) -> JSONResponse:
    body = await _body(request, STORE_FIELDS)
    if "name" not in body:
        raise ApiError(400, "name: required")
    stores = engine_of(request).memory_stores
    store = await asyncio.to_thread(
        stores.create, body["name"], body.get("description") or "", body.get("metadata")
    )
    return JSONResponse(store_json(store))


async def list_stores(request: Request) -> JSONResponse:
    page = await asyncio.to_thread(
        engine_of(request).memory_stores.list,
        include_archived=query_bool(request, "include_archived"),
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        page=request.query_params.get("page"),
    )
    return JSONResponse(page_json(page, store_json))


async def retrieve_store(request: Request) -> JSONResponse:
    store = await asyncio.to_thread(engine_of(request).memory_stores.get, _store_id(request))
    return JSONResponse(store_json(store))


async def update_store(request: Request) -> JSONResponse:
    body = await _body(request, STORE_FIELDS)
    store = await asyncio.to_thread(
        engine_of(request).memory_stores.update,
        _store_id(request), body.get("name"), body.get("description"), body.get("metadata"),
    )  # fmt: skip
    return JSONResponse(store_json(store))


async def archive_store(request: Request) -> JSONResponse:
    store = await asyncio.to_thread(engine_of(request).memory_stores.archive, _store_id(request))
    return JSONResponse(store_json(store))


async def delete_store(request: Request) -> JSONResponse:
    store_id = _store_id(request)
    await asyncio.to_thread(engine_of(request).memory_stores.delete, store_id)
    return JSONResponse({"type": "memory_store_deleted", "id": wire_id(MEMORY_STORE, store_id)})


# -- memories -------------------------------------------------------------------------------


async def create_memory(request: Request) -> JSONResponse:
    body = await _body(request, MEMORY_FIELDS - {"precondition"})
    if not isinstance(body.get("path"), str):
        raise ApiError(400, "path: required, a string")
    store_id = _store_id(request)
    content = body.get("content") or ""
    memory = await asyncio.to_thread(
        engine_of(request).memory_stores.create_memory, store_id, body["path"], content
    )
    return JSONResponse(memory_json(store_id, memory, content if _full(request, default=False) else None))


async def list_memories(request: Request) -> JSONResponse:
    store_id = _store_id(request)
    full = _full(request, default=False)
    page = await asyncio.to_thread(
        engine_of(request).memory_stores.list_memories,
        store_id,
        path_prefix=request.query_params.get("path_prefix", ""),
        depth=query_int(request, "depth", 0, 0, 20),
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, FULL_PAGE if full else MAX_LIMIT),
        page=request.query_params.get("page"),
    )

    shown = [entry.version_id for entry in page.items if isinstance(entry, Memory)]
    contents = await asyncio.to_thread(_contents, request, store_id, shown, full)

    def item(entry: Memory | Prefix) -> dict[str, Any]:
        if isinstance(entry, Prefix):
            return {"type": "memory_prefix", "path": str(entry)}
        return memory_json(store_id, entry, contents.get(entry.version_id))

    return JSONResponse(page_json(page, item))


async def retrieve_memory(request: Request) -> JSONResponse:
    store_id = _store_id(request)
    full = _full(request, True)

    def found() -> dict[str, Any]:
        stores = engine_of(request).memory_stores
        store = stores.get(store_id)
        if not full:
            return memory_json(store_id, store.memory(_memory_id(request)), None)
        return memory_json(store_id, *stores.content(store, _memory_id(request)))

    return JSONResponse(await asyncio.to_thread(found))


async def update_memory(request: Request) -> JSONResponse:
    body = await _body(request, MEMORY_FIELDS)
    precondition = body.get("precondition")
    expected = None
    if precondition is not None:
        if not isinstance(precondition, dict) or precondition.get("type") != "content_sha256":
            raise ApiError(400, "precondition.type: must be 'content_sha256'")
        expected = precondition.get("content_sha256")
        if not isinstance(expected, str):
            raise ApiError(400, "precondition.content_sha256: required, a hex digest")
    store_id = _store_id(request)
    full = _full(request, default=False)

    def update() -> dict[str, Any]:
        memory = engine_of(request).memory_stores.update_memory(
            store_id, _memory_id(request), path=body.get("path"), content=body.get("content"),
            expected_sha256=expected,
        )  # fmt: skip
        shown = _contents(request, store_id, [memory.version_id], full)
        return memory_json(store_id, memory, shown.get(memory.version_id))

    return JSONResponse(await asyncio.to_thread(update))


async def delete_memory(request: Request) -> JSONResponse:
    memory_id = _memory_id(request)
    await asyncio.to_thread(engine_of(request).memory_stores.delete_memory, _store_id(request), memory_id)
    return JSONResponse({"type": "memory_deleted", "id": MEMORY + memory_id})


# -- versions -------------------------------------------------------------------------------


async def list_versions(request: Request) -> JSONResponse:
    store_id = _store_id(request)
    full = _full(request, default=False)
    session = request.query_params.get("session_id")
    memory = request.query_params.get("memory_id")
    operation = request.query_params.get("operation")
    if operation is not None and operation not in ("created", "modified", "deleted"):
        raise ApiError(400, f"operation: {operation!r} is not one of created, modified, deleted")
    page = await asyncio.to_thread(
        engine_of(request).memory_stores.list_versions,
        store_id,
        memory_id=memory.removeprefix(MEMORY) if memory else None,
        session_id=str(parse_id(SESSION, session)) if session else None,
        operation=operation,
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, FULL_PAGE if full else MAX_LIMIT),
        page=request.query_params.get("page"),
    )
    contents = await asyncio.to_thread(_contents, request, store_id, (v.id for v in page.items), full)
    return JSONResponse(page_json(page, lambda v: version_json(store_id, v, contents.get(v.id))))


async def retrieve_version(request: Request) -> JSONResponse:
    store_id = _store_id(request)
    full = _full(request, True)
    version_id = _version_id(request)

    def found() -> dict[str, Any]:
        stores = engine_of(request).memory_stores
        store = stores.get(store_id)
        version = store.memory_version(version_id)
        shown = stores.contents(store, [version.id]) if full else {}
        return version_json(store_id, version, shown.get(version.id))

    return JSONResponse(await asyncio.to_thread(found))


async def redact_version(request: Request) -> JSONResponse:
    """Erase what a version wrote (content and path), as the cloud's ``redact`` does; the
    current version of a live memory is refused (400): update or delete the memory first."""
    store_id = _store_id(request)
    version_id = _version_id(request)
    version = await asyncio.to_thread(engine_of(request).memory_stores.redact_version, store_id, version_id)
    return JSONResponse(version_json(store_id, version, None))


async def _body(request: Request, known: frozenset[str]) -> dict[str, Any]:
    body = await read_json(request, dict[str, Any])
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field")
    return body


def _full(request: Request, default: bool) -> bool:
    view = request.query_params.get("view")
    if view is None:
        return default
    if view not in ("basic", "full"):
        raise ApiError(400, f"view: {view!r} is not 'basic' or 'full'")
    return view == "full"


def _store_id(request: Request) -> UUID:
    return parse_id(MEMORY_STORE, request.path_params["memory_store_id"])


def _memory_id(request: Request) -> str:
    return str(request.path_params["memory_id"]).removeprefix(MEMORY)


def _version_id(request: Request) -> str:
    return str(request.path_params["memory_version_id"]).removeprefix(VERSION)


STORE = "/v1/memory_stores/{memory_store_id}"
routes = [
    Route("/v1/memory_stores", create_store, methods=["POST"]),
    Route("/v1/memory_stores", list_stores, methods=["GET"]),
    Route(STORE, retrieve_store, methods=["GET"]),
    Route(STORE, update_store, methods=["POST"]),
    Route(STORE + "/archive", archive_store, methods=["POST"]),
    Route(STORE, delete_store, methods=["DELETE"]),
    Route(STORE + "/memories", create_memory, methods=["POST"]),
    Route(STORE + "/memories", list_memories, methods=["GET"]),
    Route(STORE + "/memories/{memory_id}", retrieve_memory, methods=["GET"]),
    Route(STORE + "/memories/{memory_id}", update_memory, methods=["POST"]),
    Route(STORE + "/memories/{memory_id}", delete_memory, methods=["DELETE"]),
    Route(STORE + "/memory_versions", list_versions, methods=["GET"]),
    Route(STORE + "/memory_versions/{memory_version_id}", retrieve_version, methods=["GET"]),
    Route(STORE + "/memory_versions/{memory_version_id}/redact", redact_version, methods=["POST"]),
]
