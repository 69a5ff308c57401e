"""``Catalog``: the agents and environments that sessions are created from.

The catalog shares a :class:`SessionService`'s store: agents and environments are
aggregates in the same event store, hash-chained like sessions, so ``verify``,
``export`` and the notification log cover them too. Lookups load the aggregate;
listings read the catalog projection (:mod:`agentjournal.application.catalog_projection`),
newest first, a page at a time.

Definitions arrive as the cloud API's request bodies (see
:mod:`agentjournal.application.definitions`) and are redacted before anything is
checked or recorded, like everything else the log keeps: a key pasted into a
system prompt or an MCP server's URL is recorded as ``[redacted:...]``.

:func:`session_config` turns an agent version and an environment into the
:class:`SessionConfig` a session records.

    catalog = Catalog(service)
    agent = catalog.create_agent({"name": "reviewer", "model": "claude-sonnet-4-5",
                                  "tools": [{"type": "agent_toolset_20260401"}]})
    environment = catalog.create_environment({"name": "python", "config": {"type": "cloud"}})
    config = session_config(agent, environment)
    session_id = service.create_session(config)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from agentjournal.application.catalog_projection import (
    AgentView,
    CatalogProjector,
    CatalogView,
    EnvironmentView,
)
from agentjournal.application.config import PACKAGE_MANAGERS, ManagedConfig
from agentjournal.application.definitions import (
    agent_definition,
    environment_definition,
    updated_agent,
    updated_environment,
)
from agentjournal.application.errors import (
    AgentNotFound,
    AgentVersionNotFound,
    ConfigError,
    EnvironmentNotFound,
    StoreError,
)
from agentjournal.application.paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor, paged
from agentjournal.application.recording import redact_json
from agentjournal.application.redaction import Redactor, process_secrets
from agentjournal.application.service import SessionService
from agentjournal.application.toolset import Toolset, mcp_servers, resolve_tools
from agentjournal.application.work_queue import WORKER_COMPUTE
from agentjournal.domain import (
    Agent,
    AgentArchivedError,
    CloudConfig,
    Environment,
    EnvironmentArchivedError,
    SessionConfig,
    check_package_sandbox,
)

CATALOG_VIEWS = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.readmodel.sqlite_catalog:SQLiteCatalog",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.readmodel.postgres_catalog:PostgresCatalog",
}

A = TypeVar("A", Agent, Environment)


class Catalog:
    """Creates, versions, lists and archives agents; creates, lists, updates, archives and
    deletes environments. ``redact`` knows the secrets to keep out of the log (by default
    this process's own)."""

    save_attempts = 6
    """A command that finds its agent or environment changed by another process meanwhile is
    applied again to the new state, up to this many attempts in all, after a short random
    pause (a conditional update then finds the version it was made from stale). Each round
    of a race has a winner, so this many writers at once all get through."""

    def __init__(self, service: SessionService, redact: Redactor | None = None) -> None:
        self.service = service
        self.redact = redact or Redactor(process_secrets())
        self.view: CatalogView = self._open_view()
        self.projector = CatalogProjector(service.recorder, service.mapper, self.view)

    def _open_view(self) -> CatalogView:
        """The catalog's tables, created on first use; a race with another process creating
        them at the same moment is retried, as the service retries opening the store."""
        for attempt in range(1, self.service.store_attempts + 1):
            try:
                view: CatalogView = self.service.construct_view(CATALOG_VIEWS, "CATALOG_VIEW_TOPIC")
                return view
            except self.service.store_races as e:
                if attempt == self.service.store_attempts:
                    raise StoreError(f"cannot open the catalog: {e}") from e
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    # -- agents -------------------------------------------------------------------------------

    def create_agent(self, fields: Mapping[str, Any]) -> AgentView:
        """A new agent, at version 1, from a create body (``name``, ``model``, ``system``,
        ``description``, ``tools``, ``mcp_servers``, ``skills``, ``metadata``)."""
        agent = Agent.create(agent_definition(self._redacted(fields)))
        self.service.save(agent)
        return agent_view(agent)

    def get_agent(self, agent_id: UUID, version: int | None = None) -> AgentView:
        """The agent as of ``version`` of its definition (default: the current one)."""
        agent = self._load(Agent, agent_id)
        if version is not None and agent.version_of(version) is None:
            raise AgentVersionNotFound(agent.id, version, agent.current.number)
        return agent_view(agent, version)

    def update_agent(
        self, agent_id: UUID, changes: Mapping[str, Any], version: int | None = None
    ) -> AgentView:
        """Apply an update body. ``version`` is the one the client last saw: when given and
        no longer current, nothing changes and :class:`StaleVersion` is raised. An update
        that changes nothing records nothing and keeps the version."""
        changes = self._redacted(changes)

        def update(agent: Agent) -> None:
            agent.update(updated_agent(agent.definition, changes), version)

        return agent_view(self._apply(Agent, agent_id, update))

    def archive_agent(self, agent_id: UUID) -> AgentView:
        return agent_view(self._apply(Agent, agent_id, lambda agent: agent.archive()))

    def agent_versions(
        self, agent_id: UUID, *, limit: int = DEFAULT_LIMIT, page: str | None = None
    ) -> Page[AgentView]:
        """The agent's versions, newest first, a page at a time."""
        limit = check_limit(limit)
        agent = self._load(Agent, agent_id)
        before = decode_cursor(page, tuple[int])[0] if page else len(agent.versions) + 1
        numbers = range(min(before, len(agent.versions) + 1) - 1, 0, -1)
        rows = [agent_view(agent, number) for number in numbers[: limit + 1]]
        return paged(rows, limit, lambda v: (v.version,))

    def list_agents(
        self,
        *,
        include_archived: bool = False,
        limit: int = DEFAULT_LIMIT,
        page: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
    ) -> Page[AgentView]:
        """Agents, newest first, archived ones only when asked."""
        return self._page("agent", include_archived, limit, page, created_gte, created_lte)

    # -- environments -------------------------------------------------------------------------

    def create_environment(self, fields: Mapping[str, Any]) -> EnvironmentView:
        """A new environment from a create body (``name``, ``config``, ``description``, ``metadata``)."""
        environment = Environment.create(environment_definition(self._redacted(fields)))
        self.service.save(environment)
        return environment_view(environment)

    def get_environment(self, environment_id: UUID) -> EnvironmentView:
        """The environment; a deleted one is not found."""
        return environment_view(self._load(Environment, environment_id))

    def update_environment(self, environment_id: UUID, changes: Mapping[str, Any]) -> EnvironmentView:
        changes = self._redacted(changes)

        def update(environment: Environment) -> None:
            environment.update(updated_environment(environment.definition, changes))

        return environment_view(self._apply(Environment, environment_id, update))

    def archive_environment(self, environment_id: UUID) -> EnvironmentView:
        return environment_view(self._apply(Environment, environment_id, lambda e: e.archive()))

    def delete_environment(self, environment_id: UUID) -> None:
        """Hide the environment for good: lookups and listings no longer find it. Its log
        keeps it, as the log keeps everything."""
        self._apply(Environment, environment_id, lambda e: e.delete())

    def list_environments(
        self, *, include_archived: bool = False, limit: int = DEFAULT_LIMIT, page: str | None = None
    ) -> Page[EnvironmentView]:
        """Environments, newest first, archived ones only when asked, deleted ones never."""
        return self._page("environment", include_archived, limit, page, None, None)

    def page(self, kind: str, *, include_archived: bool, limit: int, page: str | None) -> Page[Any]:
        """A page of the catalog's rows of ``kind`` ("agent", "environment", "vault"), newest first."""
        return self._page(kind, include_archived, limit, page, None, None)

    # -- the store ----------------------------------------------------------------------------

    def _load(self, kind: type[A], aggregate_id: UUID) -> A:
        """The agent or environment with this id; another kind of aggregate, or a deleted
        environment, is not found."""
        found = self.service.live(aggregate_id, kind)
        if found is None:
            raise (AgentNotFound if kind is Agent else EnvironmentNotFound)(aggregate_id)
        return found

    def _apply(self, kind: type[A], aggregate_id: UUID, command: Callable[[A], None]) -> A:
        """Run ``command`` on the latest state and save what it records; when another process
        saved first, run it again on the state that process left."""
        for attempt in range(1, self.save_attempts + 1):
            aggregate = self._load(kind, aggregate_id)
            command(aggregate)
            try:
                self.service.save(aggregate)
                return aggregate
            except IntegrityError:
                if attempt == self.save_attempts:
                    raise StoreError(
                        f"{kind.__name__.lower()} {aggregate_id} kept changing while this change was "
                        "being saved; nothing was recorded: try again"
                    ) from None
                time.sleep(random.uniform(0, 0.01) * attempt)
        raise AssertionError("unreachable")

    def _page(
        self,
        kind: str,
        include_archived: bool,
        limit: int,
        page: str | None,
        created_gte: datetime | None,
        created_lte: datetime | None,
    ) -> Page[Any]:
        limit = check_limit(limit)
        after = decode_cursor(page, tuple[datetime, UUID]) if page else None
        self.projector.catch_up()
        rows = self.view.page(
            kind, limit=limit + 1, include_archived=include_archived,
            created_gte=created_gte, created_lte=created_lte, after=after,
        )  # fmt: skip
        return paged(rows, limit, lambda r: (r.created_at, r.id))

    def _redacted(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(fields, Mapping):
            raise ConfigError(f"body: must be an object, not {fields!r}")
        return dict(redact_json(dict(fields), self.redact))


def agent_view(agent: Agent, number: int | None = None) -> AgentView:
    """An agent as one version (default: the current one). The current version was last
    updated when the agent last changed (archiving included); an older one when it was recorded."""
    version = agent.current if number is None else agent.version_of(number)
    assert version is not None
    return AgentView(
        id=agent.id,
        version=version.number,
        definition=version.definition,
        created_at=agent.created_on,
        updated_at=agent.modified_on if version is agent.current else version.recorded_at,
        archived_at=agent.archived_at,
    )


def environment_view(environment: Environment) -> EnvironmentView:
    return EnvironmentView(
        id=environment.id,
        definition=environment.definition,
        created_at=environment.created_on,
        updated_at=environment.modified_on,
        archived_at=environment.archived_at,
        deleted=environment.deleted,
    )


# -- sessions from definitions -------------------------------------------------------------------


def session_config(
    agent: AgentView,
    environment: EnvironmentView,
    defaults: ManagedConfig | None = None,
    compute: str | None = None,
) -> SessionConfig:
    """What a session created from ``agent`` (one version of it) in ``environment`` records.

    The agent gives the model, system prompt, name and tools; the environment the packages
    and networking; ``defaults`` (the serving process's config) the bounds of a turn and a
    tool call. Tools run on ``compute``, by default "docker" when the environment asks for
    packages and the host otherwise, under the same :class:`ManagedSandboxRequired` policy
    as the Python API: packages never install on the host unless ``defaults`` opts in.

    Custom tools and confirmations are answered by the client through the API (the turn
    pauses for them), so they are recorded from the agent's tools directly rather than
    checked for handlers. A self-hosted environment's sessions run their tools on its
    workers (:func:`worker_session_config`). What this engine cannot give a session is
    refused with a :class:`ConfigError` naming the field: skills, and packages of managers
    other than pip, npm and apt. ``limited`` networking is recorded as it is: an allow-list
    is enforced by the compute's egress proxy, and ``limited`` that allows nothing gives no
    network at all.
    """
    definition = agent.definition
    if agent.archived_at is not None:
        raise AgentArchivedError(agent.id)
    if environment.archived_at is not None:
        raise EnvironmentArchivedError(environment.id)
    if definition.skills:
        raise ConfigError("agent skills: skills are not supported yet")
    config = environment.definition.config
    toolset = resolve_tools(definition.tools, field="agent tools")
    if not isinstance(config, CloudConfig):
        return worker_session_config(agent, environment, toolset, defaults)
    networking = msgspec.to_builtins(config.networking)
    packages = config.packages.wanted()
    unsupported = sorted(set(packages) - set(PACKAGE_MANAGERS))
    if unsupported:
        raise ConfigError(
            f"environment config.packages: {unsupported} packages are not supported here; "
            f"use {list(PACKAGE_MANAGERS)}"
        )
    where = compute or ("docker" if packages else "host")
    base = defaults or ManagedConfig()
    check_package_sandbox(packages, where, base.host_packages_ok)
    managed = msgspec.structs.replace(
        base,
        model=definition.model_id,
        system=definition.system or "",
        name=definition.name,
        tools=list(toolset.builtin),
        packages={manager: list(names) for manager, names in packages.items()} or None,
        networking=networking,
    )
    return msgspec.structs.replace(
        managed.session_config(where),
        custom_tools=toolset.custom,
        confirm_tools=toolset.confirm,
        mcp_servers=mcp_servers(toolset, definition.mcp_servers, "agent mcp_servers"),
        agent_id=str(agent.id),
        agent_version=agent.version,
        environment_id=str(environment.id),
    )


def worker_session_config(
    agent: AgentView, environment: EnvironmentView, toolset: Toolset, defaults: ManagedConfig | None
) -> SessionConfig:
    """What a session in a self-hosted environment records: the agent's tools, of which
    Anthropic's toolset (:data:`WORKER_TOOLS`) runs on the environment's workers (compute
    ``self_hosted``), ``web_fetch`` and ``web_search`` on the server, custom tools on the
    client, MCP servers' tools from the server as anywhere. (An agent's tools are Anthropic's shapes, so the seed's own tools, which no
    worker has, cannot be asked for.)"""
    base = defaults or ManagedConfig()
    definition = agent.definition
    managed = msgspec.structs.replace(
        base, model=definition.model_id, system=definition.system or "", name=definition.name,
        tools=list(toolset.builtin), packages=None, networking={"type": "unrestricted"},
    )  # fmt: skip
    return msgspec.structs.replace(
        managed.session_config(WORKER_COMPUTE),
        custom_tools=toolset.custom,
        confirm_tools=toolset.confirm,
        mcp_servers=mcp_servers(toolset, definition.mcp_servers, "agent mcp_servers"),
        agent_id=str(agent.id),
        agent_version=agent.version,
        environment_id=str(environment.id),
    )
