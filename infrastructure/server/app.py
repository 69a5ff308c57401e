"""The Starlette application: routes, error handlers, auth, and what requests share.

:class:`ServerSettings` is everything a server is started with. :func:`create_app`
builds the ASGI app; its lifespan opens the store and the turn runner, and
stopping the server stops the turns of this process between steps (each is
recorded as interrupted; the next turn of its session goes on from there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from agentjournal.application.api import open_store
from agentjournal.application.catalog import Catalog
from agentjournal.application.config import ManagedConfig
from agentjournal.application.memory_stores import MemoryStores
from agentjournal.application.recovery import Recovery
from agentjournal.application.resources import SessionResources
from agentjournal.application.runtimes import Runtimes, unchanged
from agentjournal.application.service import SessionService, data_home
from agentjournal.application.tracing import session_trace
from agentjournal.application.uploads import MAX_UPLOAD_BYTES, Uploads
from agentjournal.application.vaults import Vaults
from agentjournal.application.work_queue import KEY_PREFIX
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.mcp.client import HttpMcpClient
from agentjournal.infrastructure.secrets.box import AesSecretBox
from agentjournal.infrastructure.secrets.oauth import HttpTokenEndpoint
from agentjournal.infrastructure.server.auth import RequireApiKey
from agentjournal.infrastructure.server.bodies import CLIENT_TIMEOUT, MAX_BODY_BYTES
from agentjournal.infrastructure.server.errors import (
    EXPECTED_ERRORS,
    handle_api_error,
    handle_http_exception,
)
from agentjournal.infrastructure.server.event_pages import SessionCheckpoints
from agentjournal.infrastructure.server.runner import Doorbell, TurnRunner
from agentjournal.infrastructure.server.work import worker_key_refusal
from agentjournal.infrastructure.stores.log_rows import RangedLog

if TYPE_CHECKING:
    from agentjournal.infrastructure.telemetry.otel import LiveExporter


@dataclass(frozen=True)
class ServerSettings:
    """How a server runs.

    ``api_keys``: the keys clients must present; empty only with ``allow_no_auth``.
    ``store``: an SQLite file or eventsourcing settings (None: the environment's, else
    the default file), as :func:`~agentjournal.application.api.open_store` takes.
    ``model``: the process's side of every session's config (where models are served,
    their API key, timeouts); each session's recorded config governs the rest.
    ``model_provider``: a litellm provider prefix for recorded model names that carry
    none (``openai`` to send ``claude-...`` agents to an OpenAI-compatible server).
    ``poll_interval``: how often a stream reads the store for events other processes
    appended (this process's own wake it at once). ``answer_grace``: see below.
    """

    api_keys: frozenset[str] = frozenset()
    allow_no_auth: bool = False
    store: str | Mapping[str, str] | None = None
    model: ManagedConfig = field(default_factory=ManagedConfig)
    model_provider: str = ""
    max_body_bytes: int = MAX_BODY_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    """The largest file an upload may hold (``POST /v1/files``); JSON bodies stay under
    ``max_body_bytes``."""
    client_timeout: float = CLIENT_TIMEOUT
    """Seconds a client has to send a request's headers (from connecting, or from the
    previous response), and then its body; a connection that takes longer is closed."""
    poll_interval: float = 0.25
    answer_grace: float = 2.0
    """Seconds a turn waits for a custom tool's result or a confirmation before it pauses
    (``requires_action``). Clients that answer as soon as they see the call (PraisonAI's
    hosted backend does, and stops reading at the first idle) see no pause at all."""
    allow_private_mcp: bool = False
    """Whether agents' MCP servers may be on loopback, link-local or private addresses."""
    turn_workers: int = 16
    shutdown_grace: float = 5.0
    """Seconds a stopping server gives its running and queued turns to end by themselves
    before it records them as interrupted."""
    otel_endpoint: str = ""
    """An OTLP/HTTP collector to send each turn to as it ends (the ``otel`` extra); none
    when empty."""
    allow_unconfined_host: bool = False
    """Run the tools of sessions without packages on the unconfined host (as the server's
    own user, nothing confined), and of sessions that recorded it: trusted development only.
    Without it no tool runs unconfined (see :mod:`~.placement`)."""

    def route(self, model: str) -> str:
        if self.model_provider and "/" not in model:
            return f"{self.model_provider}/{model}"
        return model


class Engine:
    """What every request shares: the store's services (sessions, the catalog of agents
    and environments, uploaded files), the turn runner, the doorbell."""

    def __init__(
        self,
        settings: ServerSettings,
        service: SessionService,
        catalog: Catalog,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.settings = settings
        self.service = service
        self.catalog = catalog
        self.uploads = Uploads(catalog, settings.max_upload_bytes)
        self.resources = SessionResources(service, self.uploads)
        self.doorbell = Doorbell(loop)
        self.runtimes = Runtimes(
            settings.model,
            route=settings.route if settings.model_provider else unchanged,
            defer_actions=True,
            answer_grace=settings.answer_grace,
            wait_for_log=self.doorbell.wait,
            mcp=HttpMcpClient(allow_private=settings.allow_private_mcp),
            allow_unconfined=settings.allow_unconfined_host,
        )
        self.telemetry = _live_telemetry(service, settings.otel_endpoint) if settings.otel_endpoint else None
        self.runner = TurnRunner(
            service, self.runtimes, self.doorbell, settings.turn_workers, settings.shutdown_grace,
            on_turn_end=self.telemetry.turn_ended if self.telemetry else None,
        )  # fmt: skip
        self.recovery = Recovery(service, on_closed=self.doorbell.ring)
        self.event_checkpoints = SessionCheckpoints()
        self.event_log = RangedLog.of(service.events)
        """The sessions' logs as pages and streams read them: ranges of rows, decoded."""
        self.vaults = Vaults(
            catalog,
            AesSecretBox.for_home(data_home()),
            HttpTokenEndpoint(allow_private=settings.allow_private_mcp),
        )
        self.memory_stores = MemoryStores(service, catalog)
        self.runtimes.vault_tokens = lambda recorded: self.vaults.tokens(
            recorded.vault_ids, [server.url for server in recorded.mcp_servers]
        )
        self.runtimes.vault_refresh = lambda recorded, url, refused: self.vaults.refresh(
            recorded.vault_ids, url, refused
        )

    def agent_json(self, config: SessionConfig) -> dict[str, Any] | None:
        """The agent version a session was created from, as the session shows it."""
        return self.agent_version_json(config.agent_id, config.agent_version)

    def agent_version_json(self, agent_id: str, version: int) -> dict[str, Any] | None:
        from agentjournal.infrastructure.server.agents import session_agent_of

        return session_agent_of(self.catalog, agent_id, version)


REQUEST_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Threads that run requests' store calls (``asyncio.to_thread``: the loop's default executor)."""


def pooled(store: str | Mapping[str, str] | None, threads: int) -> str | Mapping[str, str]:
    """``store``'s settings with a PostgreSQL pool for ``threads`` using it at once: one
    connection kept, and up to ``threads`` opened while they are needed (a command-line
    process keeps none and rarely needs a second). The settings or the environment may
    size the pool themselves (``POSTGRES_POOL_SIZE``, ``POSTGRES_MAX_OVERFLOW``); an SQLite
    file needs none."""
    if isinstance(store, str):
        return store
    settings = dict(store or {})
    for key, value in (("POSTGRES_POOL_SIZE", "1"), ("POSTGRES_MAX_OVERFLOW", str(threads - 1))):
        if key not in settings and key not in os.environ:
            settings[key] = value
    return settings


class _LiveTelemetry:
    """Each turn that ends in this server, read from its log and sent to a collector."""

    def __init__(self, service: SessionService, exporter: LiveExporter) -> None:
        self.service = service
        self.exporter = exporter

    def turn_ended(self, session_id: UUID) -> None:
        trace = session_trace(self.service.events.get(session_id))
        self.exporter.turn_ended(trace, self.service.summary(session_id).name)

    def close(self) -> None:
        self.exporter.close()


def _live_telemetry(service: SessionService, endpoint: str) -> _LiveTelemetry:
    from agentjournal.infrastructure.telemetry.otel import LiveExporter

    return _LiveTelemetry(service, LiveExporter(endpoint))


def create_app(settings: ServerSettings, service: SessionService | None = None) -> Starlette:
    """The ASGI app. ``service`` shares an open store (tests, embedding); by default the
    app opens ``settings.store`` when it starts."""
    if not settings.api_keys and not settings.allow_no_auth:
        raise ValueError("a server needs API keys, or allow_no_auth=True to run without them")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = service
        if opened is None:
            store = pooled(settings.store, settings.turn_workers + REQUEST_THREADS)
            opened = await asyncio.to_thread(open_store, store)
        catalog = await asyncio.to_thread(Catalog, opened, settings.model.redactor())
        engine = Engine(settings, opened, catalog, asyncio.get_running_loop())
        await asyncio.to_thread(engine.vaults.check_key)  # a server that cannot open the vaults says so now
        app.state.engine = engine
        app.state.max_body_bytes = settings.max_body_bytes
        app.state.client_timeout = settings.client_timeout
        engine.recovery.start()
        try:
            yield
        finally:
            await asyncio.to_thread(engine.recovery.stop)
            await asyncio.to_thread(engine.runner.shutdown)
            await asyncio.to_thread(engine.runtimes.close)
            if engine.telemetry is not None:
                await asyncio.to_thread(engine.telemetry.close)
            if service is None:
                opened.close()

    return Starlette(
        routes=_routes(),
        middleware=[
            Middleware(
                RequireApiKey,
                keys=settings.api_keys,
                worker_prefix=KEY_PREFIX,
                worker_gate=worker_key_refusal,
            )
        ],  # fmt: skip
        exception_handlers={
            HTTPException: handle_http_exception,
            **dict.fromkeys(EXPECTED_ERRORS, handle_api_error),
        },
        lifespan=lifespan,
    )


def _routes() -> list[BaseRoute]:
    from agentjournal.infrastructure.server import (
        agents,
        annotating,
        browser,
        environments,
        events,
        extensions,
        files,
        inspector,
        memory_stores,
        resources,
        sessions,
        uploads,
        vaults,
        work,
    )

    return [
        *sessions.routes,
        *resources.routes,
        *events.routes,
        *agents.routes,
        *environments.routes,
        *vaults.routes,
        *memory_stores.routes,
        *extensions.routes,
        *annotating.routes,
        *files.routes,
        *work.routes,
        *uploads.routes,
        *browser.routes,
        *inspector.routes,
    ]
