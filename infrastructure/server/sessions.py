"""``/v1/sessions``: a session as the Managed Agents API shows it.

A session here is the engine's ``Session`` aggregate. Its status is the API's:
``running`` while a turn runs, ``idle`` otherwise (a turn that failed, or one
paused for the client, leaves it idle; the events say why), ``terminated`` once
closed. Its ``agent`` is the agent version it is pinned to; a session started
from the Python API or the CLI, which has no agent, shows one made of its
recorded config.

A session is created from an agent version and an environment of the catalog
(:func:`~agentjournal.application.catalog.session_config` decides what it records),
and listed from the session summaries, newest first, a page at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal
from uuid import UUID

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application import views
from agentjournal.application.catalog import session_config
from agentjournal.application.errors import SessionNotFound
from agentjournal.application.memory_mounts import MEMORY_COMPUTES
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT
from agentjournal.application.projection import SessionQuery, SessionStats, SessionSummary, session_stats
from agentjournal.application.resources import PreparedMount
from agentjournal.application.work_queue import WORKER_COMPUTE, WorkItem
from agentjournal.domain import McpServer, NoTurnInProgress, Session, SessionConfig, Status, Usage
from agentjournal.domain.policy import CONFINED_HOST
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError, not_found
from agentjournal.infrastructure.server.ids import (
    AGENT,
    ENVIRONMENT,
    MEMORY_STORE,
    SESSION,
    VAULT,
    parse_id,
    wire_id,
)
from agentjournal.infrastructure.server.mounts import (
    FileMount,
    MemoryMount,
    Mount,
    resource_json,
    resource_mount,
)
from agentjournal.infrastructure.server.placement import compute_without_packages
from agentjournal.infrastructure.server.query import query_bool, query_int, query_time, query_version
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
    tools += [_mcp_toolset_json(server) for server in config.mcp_servers]
    return {
        "type": "agent",
        "id": wire_id(AGENT, config.agent_id and UUID(config.agent_id) or session_id),
        "version": config.agent_version or 1,
        "name": config.name,
        "description": None,
        "model": {"id": config.model},
        "system": config.system or None,
        "tools": tools,
        "mcp_servers": [{"type": "url", "name": s.name, "url": s.url} for s in config.mcp_servers],
        "skills": [],
    }


def _mcp_toolset_json(server: McpServer) -> dict[str, Any]:
    """A recorded MCP server's toolset, as an agent shows it."""

    def config(enabled: bool, permission: str) -> dict[str, Any]:
        return {"enabled": enabled, "permission_policy": {"type": permission}}

    return {
        "type": "mcp_toolset",
        "mcp_server_name": server.name,
        "default_config": config(server.enabled, server.permission),
        "configs": [{"name": t.name, **config(*server.policy_of(t.name))} for t in server.tools],
    }


def session_json(engine: Any, session: Session) -> dict[str, Any]:
    config = session.config
    agent_of = getattr(engine, "agent_json", None)
    agent = (agent_of and config.agent_id and agent_of(config)) or recorded_agent_json(session.id, config)
    summary = engine.service.summary(session.id)
    body = _session_body(
        session.id, agent, config.environment_id, session.title, config.metadata,
        Status.RUNNING if session.awaits_worker else session.status,
        session.usage, session.created_on, session.modified_on, session.archived_at,
        session_stats(summary, datetime.now(timezone.utc)),
        [resource_json(r) for r in session.resources],
        extension_json(summary),
    )  # fmt: skip
    if config.compute == WORKER_COMPUTE:
        body["x_agentjournal"]["work"] = _work_json(engine.service.work.latest(str(session.id)))
    return body | {"vault_ids": [wire_id(VAULT, UUID(v)) for v in config.vault_ids]}


def _work_json(item: WorkItem | None) -> dict[str, Any] | None:
    """A self-hosted session's newest work item, as its page shows it: its state and the
    worker that holds (or held) it, by the name it gave (``Anthropic-Worker-ID``)."""
    if item is None:
        return None
    return {
        "id": item.id,
        "state": item.state,
        "worker": item.holder.partition("/")[2] or item.holder or None,
    }


def listed_session_json(engine: Any, summary: SessionSummary) -> dict[str, Any]:
    """A session of a listing, from its summary. One not made from an agent shows its
    recorded config, so it is read whole."""
    agent = engine.agent_version_json(summary.agent_id, summary.agent_version) if summary.agent_id else None
    if agent is None:
        return session_json(engine, existing_session(engine, summary.id))
    return _session_body(
        summary.id, agent, summary.environment_id, summary.title, summary.metadata, summary.status,
        summary.usage, summary.created_at, summary.updated_at, summary.archived_at,
        session_stats(summary, datetime.now(timezone.utc)),
        [],
        extension_json(summary),
    )  # fmt: skip


def extension_json(summary: SessionSummary) -> dict[str, Any]:
    """What a session shows beyond the cloud's fields, under a key of its own
    (``x_agentjournal``): the engine's status (``error`` after a failed turn, which the
    cloud's vocabulary calls ``idle``), where its tools run (``host``, confined;
    ``host-unconfined``; ``docker``; ``self_hosted``), what its model calls cost and how long
    they took."""
    return {
        "status": summary.status.value,
        "compute": summary.compute,
        "cost": views.cost(summary.cost),
        "model_ms": round(summary.model_ms, 3),
    }


def _session_body(
    session_id: UUID, agent: dict[str, Any], environment_id: str, title: str, metadata: Mapping[str, Any],
    status: Status, usage: Usage, created_at: datetime, updated_at: datetime, archived_at: datetime | None,
    stats: SessionStats, resources: list[dict[str, Any]], extension: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """A session as the API shows it, with this engine's own fields under ``x_agentjournal``
    (a name no field of the cloud's will take): ``compute``, where its tools run."""
    return {
        "type": "session",
        "id": wire_id(SESSION, session_id),
        "agent": agent,
        "environment_id": wire_id(ENVIRONMENT, UUID(environment_id)) if environment_id else "",
        "title": title or None,
        "metadata": {str(k): str(v) for k, v in metadata.items()},
        "status": API_STATUS[status],
        "usage": usage_json(usage),
        "stats": {"active_seconds": stats.active_seconds, "duration_seconds": stats.duration_seconds},
        "resources": resources,
        "vault_ids": [],
        "outcome_evaluations": [],
        "created_at": wire_time(created_at),
        "updated_at": wire_time(updated_at),
        "archived_at": wire_time(archived_at) if archived_at else None,
        "x_agentjournal": extension,
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
        engine.runtimes.end(session_id)
        return session_json(engine, existing_session(engine, session_id))

    return JSONResponse(await asyncio.to_thread(archive))


async def delete_session(request: Request) -> JSONResponse:
    engine = engine_of(request)
    session_id = parse_id(SESSION, request.path_params["session_id"])

    def delete() -> None:
        session = existing_session(engine, session_id)
        if session.status == Status.RUNNING:
            with contextlib.suppress(NoTurnInProgress):  # the turn ended meanwhile
                engine.runner.interrupt(session_id)
        engine.service.delete(session_id, engine.runtimes.release)
        engine.runtimes.end(session_id)

    await asyncio.to_thread(delete)
    return JSONResponse({"type": "session_deleted", "id": wire_id(SESSION, session_id)})


class AgentRef(msgspec.Struct, tag_field="type", tag="agent"):
    id: str
    version: int | None = None


class SessionCreate(msgspec.Struct):
    agent: str | AgentRef
    environment_id: str
    title: str | None = None
    metadata: dict[str, str] = {}
    budget: dict[str, Any] | None = None
    initial_events: list[dict[str, Any]] = []
    resources: list[dict[str, Any]] = []
    vault_ids: list[str] = []


UNSUPPORTED = ("budget",)
"""What a new session may ask for that this engine does not do yet: refused, not dropped."""


async def create_session(request: Request) -> JSONResponse:
    engine = engine_of(request)
    body = await read_json(request, SessionCreate)
    for name in UNSUPPORTED:
        if getattr(body, name):
            raise ApiError(400, f"{name}: not supported by this server yet")
    mounts = [resource_mount(resource, f"resources[{n}]") for n, resource in enumerate(body.resources)]
    return JSONResponse(await asyncio.to_thread(_create, engine, body, mounts))


def _create(engine: Any, body: SessionCreate, mounts: list[Mount]) -> dict[str, Any]:
    from agentjournal.infrastructure.server.events import (  # it imports this module
        initial_prompts,
        send_initial,
    )

    prompts = initial_prompts(engine, body.initial_events)
    ref = body.agent if isinstance(body.agent, AgentRef) else AgentRef(body.agent)
    agent = engine.catalog.get_agent(parse_id(AGENT, ref.id), ref.version)
    environment = engine.catalog.get_environment(parse_id(ENVIRONMENT, body.environment_id))
    config = session_config(agent, environment, engine.runtimes.config)
    if config.compute == CONFINED_HOST:  # no packages: the host, confined where it can be
        config = msgspec.structs.replace(
            config, compute=compute_without_packages(engine.runtimes.allow_unconfined)
        )
    config = msgspec.structs.replace(
        config,
        metadata=check_metadata(dict(body.metadata)),
        vault_ids=engine.vaults.check_usable(body.vault_ids),
    )
    if any(isinstance(m, MemoryMount) for m in mounts) and config.compute not in MEMORY_COMPUTES:
        raise ApiError(400, f"resources: memory stores are mounted on {' and '.join(MEMORY_COMPUTES)} compute, "
                       f"not on {config.compute}")  # fmt: skip
    prepared = _prepared(engine, mounts)  # files read, repositories cloned: nothing recorded yet
    runtime = engine.runtimes(config)  # the adapters and policies first: a refused config records nothing
    session_id = engine.service.create_session(config, _title(body.title or ""), runtime.redact)
    for mount in prepared:
        engine.resources.mount(session_id, mount, engine.runtimes)
    if prompts:  # the first turn starts now, its prompt the session's first event after its setup
        send_initial(engine, session_id, prompts)
    return session_json(engine, existing_session(engine, session_id))


def _prepared(engine: Any, mounts: list[Mount]) -> list[PreparedMount]:
    """Each mount checked (a file exists, a repository is cloned, the path is a place for
    it, no two share one) and fetched, before anything is recorded."""
    taken: set[str] = set()
    prepared: list[PreparedMount] = []
    for n, mount in enumerate(mounts):
        if isinstance(mount, MemoryMount):  # its folder is /mnt/memory/<slug>, kept for stores
            prepared.append(engine.resources.prepare_memory_store(
                mount.memory_store_id, mount.access, mount.instructions,
                [p.resource.mount_path for p in prepared],
            ))  # fmt: skip
            continue
        if mount.mount_path in taken:
            raise ApiError(
                400, f"resources[{n}].mount_path: {mount.mount_path!r} is taken by another resource"
            )
        taken.add(mount.mount_path)
        if isinstance(mount, FileMount):
            prepared.append(engine.resources.prepare_file(mount.file_id, mount.mount_path))
        else:
            prepared.append(
                engine.resources.prepare_repository(
                    mount.url, mount.mount_path, token=mount.token, branch=mount.branch, commit=mount.commit
                )
            )
    return prepared


API_STATUSES: dict[str, tuple[Status, ...]] = {
    "idle": (Status.IDLE, Status.ERROR),
    "running": (Status.RUNNING,),
    "terminated": (Status.TERMINATED,),
    "rescheduling": (),
}


async def list_sessions(request: Request) -> JSONResponse:
    engine = engine_of(request)
    query = _query(request)
    if query is None:  # a filter nothing here can match (a deployment, rescheduling)
        return JSONResponse({"data": [], "next_page": None, "prev_page": None})
    page = await asyncio.to_thread(engine.service.page_summaries, query, request.query_params.get("page"))
    data = await asyncio.to_thread(lambda: [listed_session_json(engine, s) for s in page.items])
    return JSONResponse({"data": data, "next_page": page.next_page, "prev_page": None})


def _query(request: Request) -> SessionQuery | None:
    params = request.query_params
    if params.get("deployment_id"):
        return None
    statuses: tuple[Status, ...] = ()
    for name in params.getlist("statuses[]"):
        if name not in API_STATUSES:
            raise ApiError(
                400, f"query parameter 'statuses[]': {name!r} is not one of {sorted(API_STATUSES)}"
            )
        statuses += API_STATUSES[name]
    if params.getlist("statuses[]") and not statuses:
        return None
    agent_id = params.get("agent_id")
    memory_store_id = params.get("memory_store_id")
    # The API reads agent_version only with agent_id.
    agent_version = query_version(request, "agent_version") if agent_id else None
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, f"query parameter 'order' must be 'asc' or 'desc', not {order!r}")
    return SessionQuery(
        agent_id=str(parse_id(AGENT, agent_id)) if agent_id else None,
        agent_version=agent_version,
        memory_store_id=parse_id(MEMORY_STORE, memory_store_id).hex if memory_store_id else None,
        statuses=statuses,
        include_archived=query_bool(request, "include_archived"),
        created_gt=query_time(request, "created_at[gt]"),
        created_gte=query_time(request, "created_at[gte]"),
        created_lt=query_time(request, "created_at[lt]"),
        created_lte=query_time(request, "created_at[lte]"),
        order=_order(order),
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )


def _order(text: str) -> Literal["asc", "desc"]:
    return "asc" if text == "asc" else "desc"


routes = [
    Route("/v1/sessions", create_session, methods=["POST"]),
    Route("/v1/sessions", list_sessions, methods=["GET"]),
    Route("/v1/sessions/{session_id}", retrieve_session, methods=["GET"]),
    Route("/v1/sessions/{session_id}", update_session, methods=["POST"]),
    Route("/v1/sessions/{session_id}/archive", archive_session, methods=["POST"]),
    Route("/v1/sessions/{session_id}", delete_session, methods=["DELETE"]),
]
