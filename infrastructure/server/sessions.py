"""``/v1/sessions``: a session as the Managed Agents API shows it.

A session here is the engine's ``Session`` aggregate. Its status is the API's:
``running`` while a turn runs, ``idle`` otherwise (a turn that failed, or one
paused for the client, leaves it idle; the events say why), ``terminated`` once
closed. Its ``agent`` is the agent version it is pinned to; a session started
from the Python API or the CLI, which has no agent, shows one made of its
recorded config.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application.errors import SessionNotFound
from agentjournal.domain import Session, SessionConfig, Status, Usage
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError, not_found
from agentjournal.infrastructure.server.ids import AGENT, ENVIRONMENT, SESSION, parse_id, wire_id
from agentjournal.infrastructure.server.wire import wire_time

API_STATUS = {
    Status.IDLE: "idle",
    Status.ERROR: "idle",
    Status.RUNNING: "running",
    Status.TERMINATED: "terminated",
}

MAX_METADATA_ENTRIES = 16
MAX_TITLE_CHARACTERS = 500


def engine_of(request: Request) -> Any:
    return request.app.state.engine


def existing_session(engine: Any, session_id: UUID) -> Session:
    """The session, unless it does not exist or was deleted (both 404)."""
    try:
        session: Session = engine.service.get_session(session_id)
    except SessionNotFound:
        raise not_found("session", wire_id(SESSION, session_id)) from None
    if session.deleted:
        raise not_found("session", wire_id(SESSION, session_id))
    return session


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": usage.cache_creation_tokens,
                           "ephemeral_1h_input_tokens": 0},
    }  # fmt: skip


def recorded_agent_json(session_id: UUID, config: SessionConfig) -> dict[str, Any]:
    """The agent a session without an agent definition runs: its recorded config."""
    tools: list[dict[str, Any]] = [
        {"type": "custom", "name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in config.custom_tools
    ]
    return {
        "type": "agent",
        "id": wire_id(AGENT, config.agent_id and UUID(config.agent_id) or session_id),
        "version": config.agent_version or 1,
        "name": config.name,
        "description": None,
        "model": {"id": config.model},
        "system": config.system or None,
        "tools": tools,
        "mcp_servers": [],
        "skills": [],
    }


def session_json(engine: Any, session: Session) -> dict[str, Any]:
    config = session.config
    agent_of = getattr(engine, "agent_json", None)
    agent = (agent_of and config.agent_id and agent_of(config)) or recorded_agent_json(session.id, config)
    return {
        "type": "session",
        "id": wire_id(SESSION, session.id),
        "agent": agent,
        "environment_id": wire_id(ENVIRONMENT, UUID(config.environment_id)) if config.environment_id else "",
        "title": session.title or None,
        "metadata": {str(k): str(v) for k, v in config.metadata.items()},
        "status": API_STATUS[session.status],
        "usage": usage_json(session.usage),
        "stats": {},
        "resources": [],
        "vault_ids": [],
        "outcome_evaluations": [],
        "created_at": wire_time(session.created_on),
        "updated_at": wire_time(session.modified_on),
        "archived_at": wire_time(session.archived_at) if session.archived_at else None,
    }


# -- routes ---------------------------------------------------------------------------------


async def retrieve_session(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    session = await asyncio.to_thread(existing_session, engine, session_id)
    return JSONResponse(session_json(engine, session))


class SessionUpdate(msgspec.Struct):
    title: str | None = None
    metadata: dict[str, str | None] | None = None


async def update_session(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])
    body = await read_json(request, SessionUpdate)
    return JSONResponse(await asyncio.to_thread(_update, engine, session_id, body))


def _update(engine: Any, session_id: UUID, body: SessionUpdate) -> dict[str, Any]:
    session = existing_session(engine, session_id)
    redact = engine.runtimes.config.redactor()
    if body.title is not None:
        engine.service.set_title(session_id, _title(body.title), redact)
    if body.metadata is not None:
        # The cloud's merge: a key set to null is removed, others are set.
        merged = {str(k): v for k, v in session.config.metadata.items()}
        for key, value in body.metadata.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        engine.service.change_config(
            session_id, msgspec.structs.replace(session.config, metadata=check_metadata(merged)), redact
        )
    return session_json(engine, existing_session(engine, session_id))


def _title(title: str) -> str:
    if len(title) > MAX_TITLE_CHARACTERS:
        raise ApiError(400, f"invalid request body: title is over {MAX_TITLE_CHARACTERS} characters")
    return title


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise ApiError(400, f"invalid request body: metadata has over {MAX_METADATA_ENTRIES} keys")
    for key, value in metadata.items():
        if len(key) > 64 or len(str(value)) > 512:
            raise ApiError(
                400, f"invalid request body: metadata[{key[:64]!r}] is too long (keys 64, values 512)"
            )
    return metadata


async def archive_session(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def archive() -> dict[str, Any]:
        existing_session(engine, session_id)
        engine.service.archive(session_id)
        return session_json(engine, existing_session(engine, session_id))

    return JSONResponse(await asyncio.to_thread(archive))


async def delete_session(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def delete() -> None:
        session = existing_session(engine, session_id)
        if session.status == Status.RUNNING:
            engine.runner.interrupt(session_id)
        engine.service.delete(session_id, engine.runtimes.release)

    await asyncio.to_thread(delete)
    return JSONResponse({"type": "session_deleted", "id": wire_id(SESSION, session_id)})


routes = [
    Route("/v1/sessions/{session_id}", retrieve_session, methods=["GET"]),
    Route("/v1/sessions/{session_id}", update_session, methods=["POST"]),
    Route("/v1/sessions/{session_id}/archive", archive_session, methods=["POST"]),
    Route("/v1/sessions/{session_id}", delete_session, methods=["DELETE"]),
]
