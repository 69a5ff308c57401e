"""Turn runtimes for recorded configs: the adapters a session's turn runs with.

A session's recorded config governs its turns, whoever runs them; the process
running a turn brings only what the log must not hold (API keys, the values of
environment variables, its callbacks) in a :class:`~agentjournal.application.config.ManagedConfig`.
:class:`Runtimes` joins the two into a :class:`TurnRuntime` per turn and keeps
the adapters it built (a model client, a compute handle) for the next turn that
reads the same settings, so a session's second turn does not start from scratch.
Both the Python API and the HTTP server build their turns here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import msgspec

from agentjournal.application import adapters
from agentjournal.application.config import ManagedConfig
from agentjournal.application.errors import ConfigError
from agentjournal.application.ports import Compute, LanguageModel, McpClient, McpConnector
from agentjournal.application.redaction import Redactor
from agentjournal.application.turns import TurnRuntime
from agentjournal.application.work_queue import DEFAULT_WORKER_WAIT_SECONDS, WORKER_COMPUTE
from agentjournal.domain import ComputeBinding, SessionConfig
from agentjournal.domain.egress import with_servers
from agentjournal.domain.policy import CONFINED_HOST, UNCONFINED_HOST


def unchanged(model: str) -> str:
    return model


class Runtimes:
    """Builds the :class:`TurnRuntime` of each turn (a ``RuntimeFactory``).

    ``config`` is this process's side: secrets, callbacks, where the model is served.
    ``compute`` overrides where tools run ("host", "host-unconfined", "docker" or a Compute
    object); by default a session runs on the kind it recorded. Tools run on the unconfined
    host only when this process opts in: by naming it as ``compute`` (or giving a Compute
    object of that kind), or with ``allow_unconfined``. ``model`` replaces the litellm
    adapter. ``route`` maps a recorded model name to the one litellm is asked for (a
    server adds a provider prefix there, so the log keeps the agent's own name).
    ``defer_actions`` pauses turns for custom tools and confirmations instead of
    calling handlers (see :attr:`TurnRuntime.defer_actions`), after waiting
    ``answer_grace`` seconds for answers, woken by ``wait_for_log``. ``mcp`` connects
    sessions to MCP servers (by default the ``mcp`` package's client, allowed to reach any
    address: a server passes one that refuses private ones unless its operator allows
    them); each session's connections are kept for its later turns, until the session
    ends (:meth:`end`), is among the least recently used past ``kept_adapters``, or
    :meth:`close`.
    ``vault_tokens`` gives the bearer tokens a session's recorded vaults hold for its MCP
    servers, by URL (a server reads them from its vaults); ``vault_refresh`` a new one for
    a server that refused its token, when the vault can refresh it (``mcp_oauth``).
    ``worker_wait`` is how long a turn whose actions are not deferred waits for a
    self-hosted environment's worker.
    """

    kept_adapters = 256
    """How many adapters (model clients, and one compute per session) are kept for later
    turns; the least recently used goes first."""

    def __init__(
        self,
        config: ManagedConfig,
        compute: str | Compute | None = None,
        model: LanguageModel | None = None,
        *,
        route: Callable[[str], str] = unchanged,
        defer_actions: bool = False,
        answer_grace: float = 0.0,
        wait_for_log: Callable[[UUID, float], None] | None = None,
        mcp: McpConnector | None = None,
        vault_tokens: Callable[[SessionConfig], Mapping[str, str]] | None = None,
        vault_refresh: Callable[[SessionConfig, str, str | None], str | None] | None = None,
        allow_unconfined: bool = False,
        worker_wait: float = DEFAULT_WORKER_WAIT_SECONDS,
    ) -> None:
        if isinstance(compute, str):
            adapters.compute_kind(compute)
        elif compute is not None and not isinstance(compute, Compute):
            raise ConfigError(f"compute must be a name or a Compute object, not {compute!r}")
        self.config = config
        self.compute = compute
        self.model = model
        self.route = route
        self.defer_actions = defer_actions
        self.answer_grace = answer_grace
        self.wait_for_log = wait_for_log
        self.mcp = mcp
        self.vault_tokens = vault_tokens
        self.vault_refresh = vault_refresh
        self.allow_unconfined = allow_unconfined
        self.worker_wait = worker_wait
        self._adapters: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._mcp_sessions: OrderedDict[UUID | None, McpClient] = OrderedDict()
        """Each session's MCP client, which keeps its connections; least recently used first."""
        self._governed: tuple[SessionConfig, ManagedConfig] | None = None
        """The last recorded config a runtime was built for, and ``config`` governed by it."""
        self._lock = threading.Lock()

    @staticmethod
    def kind_of(compute: str | Compute | None) -> str:
        """The kind of compute ``compute`` names (the confined host when None); raises
        :class:`ConfigError` for a name that is none."""
        if compute is None:
            return CONFINED_HOST
        if isinstance(compute, str):
            return adapters.compute_kind(compute)
        return str(compute.kind)

    @property
    def compute_kind(self) -> str:
        """Where a new session's tools run when nothing else says: the override, or the
        confined host."""
        return self.kind_of(self.compute)

    @property
    def unconfined_ok(self) -> bool:
        """Whether this process opted in to running tools on the unconfined host."""
        return self.allow_unconfined or self.compute_kind == UNCONFINED_HOST

    def __call__(self, recorded: SessionConfig, session_id: UUID | None = None) -> TurnRuntime:
        with self._lock:
            if self._governed is None or self._governed[0] != recorded:
                self._governed = (recorded, self.config.governed_by(recorded))
            governed = self._governed[1]
        # Outside the lock: reading the vaults may refresh an expired token over the network.
        tokens = self._mcp_tokens(recorded, governed)
        redact = governed.redactor(extra={f"mcp:{url}": token for url, token in tokens.items()})
        with self._lock:
            kind = recorded.compute if self.compute is None else self.compute_kind
            waiting = {"wait_for_log": self.wait_for_log} if self.wait_for_log else {}
            return TurnRuntime(
                model=self._language_model(governed),
                compute=self._compute_adapter(kind, _opened_to_servers(governed, recorded), session_id),
                redact=redact,
                host_packages_ok=self.config.host_packages_ok,
                unconfined_ok=self.unconfined_ok,
                on_custom_tool=self.config.on_custom_tool,
                on_tool_confirmation=self.config.on_tool_confirmation,
                defer_actions=self.defer_actions,
                answer_grace=self._answer_grace(recorded),
                mcp=self._session_mcp(session_id) if recorded.mcp_servers else None,
                mcp_tokens=tokens,
                refresh_mcp_token=self._refresher(recorded, governed, tokens, redact),
                **waiting,
            )

    def _answer_grace(self, recorded: SessionConfig) -> float:
        """How long a turn waits for answers before it pauses. A turn that no client can
        continue later (actions not deferred: the Python API's) waits for a self-hosted
        environment's worker as long as the queue's ``worker_wait``, holding its lease."""
        if recorded.compute == WORKER_COMPUTE and not self.defer_actions:
            return max(self.answer_grace, self.worker_wait)
        return self.answer_grace

    def forget(self, config: ManagedConfig | None = None) -> None:
        """Drop the adapters built so far (and take a new ``config``, if given)."""
        with self._lock:
            self._adapters.clear()
            self._governed = None
            if config is not None:
                self.config = config
            ended, self._mcp_sessions = list(self._mcp_sessions.values()), OrderedDict()
        for client in ended:
            client.close()

    def end(self, session_id: UUID) -> None:
        """Close what is kept for a session that ended (its MCP connections)."""
        with self._lock:
            client = self._mcp_sessions.pop(session_id, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close every kept connection, and the MCP client's own resources."""
        self.forget()
        if self.mcp is not None:
            self.mcp.close()

    def move(self, compute: str | Compute | None) -> None:
        """Run tools on ``compute`` from now on (a name checked by :meth:`kind_of`)."""
        self.kind_of(compute)
        with self._lock:
            self.compute = compute
            self._adapters.clear()

    def release(self, binding: ComputeBinding) -> None:
        """Remove a sandbox the log recorded, through the given Compute object if there is one."""
        if isinstance(self.compute, Compute):
            self.compute.release(binding)
        else:
            adapters.release_binding(binding)

    def _language_model(self, config: ManagedConfig) -> LanguageModel:
        if self.model is not None:
            return self.model
        name = self.route(config.model)
        key = ("model", name, config.api_base, config.api_key, config.model_timeout,
               config.model_max_attempts)  # fmt: skip
        if key not in self._adapters:
            self._adapters[key] = adapters.language_model_class()(
                name,
                api_base=config.api_base,
                api_key=config.api_key,
                timeout=config.model_timeout,
                max_attempts=config.model_max_attempts,
            )
        return self._adapters[key]

    def _mcp_tokens(self, recorded: SessionConfig, config: ManagedConfig) -> dict[str, str]:
        """The bearer tokens for the session's MCP servers: from its recorded vaults, and
        the caller's own (``mcp_credentials``), which win."""
        tokens: dict[str, str] = {}
        if recorded.mcp_servers and recorded.vault_ids and self.vault_tokens is not None:
            tokens.update(self.vault_tokens(recorded))
        return tokens | config.mcp_credentials

    def _refresher(
        self, recorded: SessionConfig, config: ManagedConfig, tokens: dict[str, str], redact: Redactor
    ) -> Callable[[str], bool] | None:
        """What a turn calls when a server refused the token of a vault's credential: a new
        one from the vault goes into ``tokens`` (and the redactor), and it says whether
        there is one. The caller's own credentials are never refreshed."""
        refresh = self.vault_refresh
        if refresh is None or not recorded.vault_ids or not recorded.mcp_servers:
            return None

        def renew(url: str) -> bool:
            if url in config.mcp_credentials:
                return False
            fresh = refresh(recorded, url, tokens.get(url))
            if fresh is None or fresh == tokens.get(url):
                return False
            tokens[url] = fresh
            redact.learn(f"mcp:{url}", fresh)
            return True

        return renew

    def _session_mcp(self, session_id: UUID | None) -> McpClient:
        """The session's own MCP client (called under the lock)."""
        if session_id not in self._mcp_sessions:
            if self.mcp is None:
                self.mcp = adapters.mcp_client(allow_private=True)
            self._mcp_sessions[session_id] = self.mcp.for_session()
            while len(self._mcp_sessions) > self.kept_adapters:
                self._mcp_sessions.popitem(last=False)[1].close()
        self._mcp_sessions.move_to_end(session_id)
        return self._mcp_sessions[session_id]

    def _compute_adapter(self, kind: str, config: ManagedConfig, session_id: UUID | None) -> Compute:
        if isinstance(self.compute, Compute):
            return self.compute
        # A compute is attached to one session's sandbox at a time (its work folder, its
        # container): sessions never share one, or a turn of one could be redirected into
        # another's sandbox when that one attaches. Within a session, what from_config reads.
        key = (
            "compute",
            session_id,
            kind,
            config.image,
            config.working_dir,
            config.ca_bundle,
            config.max_output_bytes,
            config.workspace_quota_bytes,
            msgspec.json.encode(config.networking),
            tuple(sorted(config.env.items())),
        )
        if key not in self._adapters:
            self._adapters[key] = adapters.compute_class(kind).from_config(config)
            while len(self._adapters) > self.kept_adapters:
                self._adapters.popitem(last=False)  # a turn using it keeps its own reference
        self._adapters.move_to_end(key)
        return self._adapters[key]


def _opened_to_servers(config: ManagedConfig, recorded: SessionConfig) -> ManagedConfig:
    """``config`` whose ``limited`` networking allows the session's recorded MCP servers, when
    it says ``allow_mcp_servers``: what the compute's egress proxy is built from."""
    networking = with_servers(config.networking, [server.url for server in recorded.mcp_servers])
    return (
        config if networking == config.networking else msgspec.structs.replace(config, networking=networking)
    )
