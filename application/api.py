"""The public Python API: ``ManagedConfig``, ``ManagedAgent`` and ``Agent``.

It follows the "local managed agents" interface (sessions that persist and
resume, usage accounting, tools bridged into a sandbox) and adds what an event
log makes possible: state as of any event, the audit log, and forks.

Adapters are named by topic (``module:Class``) and imported on first use, the
way eventsourcing names its persistence modules, so this module imports
neither litellm nor docker, and depends on no infrastructure module directly.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import resolve_topic

from agentjournal.application.audit import TimelineEntry, Verification
from agentjournal.application.errors import (
    ConfigError,
    SessionNotFound,
    UnsupportedProvider,
    parse_session_id,
)
from agentjournal.application.ports import Compute, LanguageModel, TextDelta
from agentjournal.application.projection import SessionSummary
from agentjournal.application.redaction import Redactor
from agentjournal.application.service import (
    AuditEntry,
    SessionService,
    TurnOutcome,
    TurnRuntime,
    TurnUpdate,
)
from agentjournal.application.tools import DEFAULT_TOOLS, TOOL_SPECS, ToolLimits
from agentjournal.domain import Session, SessionConfig, check_package_sandbox

LANGUAGE_MODEL_TOPIC = "agentjournal.infrastructure.llm:LiteLLMModel"
COMPUTE_TOPICS = {
    "host": "agentjournal.infrastructure.host:HostCompute",
    "docker": "agentjournal.infrastructure.docker_compute:DockerCompute",
}
PACKAGE_MANAGERS = ("pip", "apt", "npm")
NETWORKING_TYPES = ("unrestricted", "none", "limited")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ManagedConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How an agent's sessions are set up. Wrong names or types raise at once.

    ``api_key`` goes to the model provider and nowhere else: it is never
    recorded. ``env`` values reach the tools' environment; the log keeps their
    names only, and redacts the values wherever they appear in output.
    """

    model: str = "gpt-4o"
    system: str = "You are a helpful coding assistant."
    name: str = "Agent"
    tools: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_TOOLS))
    packages: dict[str, list[str]] | None = None
    networking: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "unrestricted"})
    host_packages_ok: bool = False
    working_dir: str = ""
    env: dict[str, str] = msgspec.field(default_factory=dict)
    max_turns: int = 10
    session_title: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    command_timeout: float = 120.0
    max_output_bytes: int = 64_000
    max_prompt_chars: int = 1_000_000
    image: str | None = None
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            try:
                msgspec.convert(value, field.type, strict=True)
            except msgspec.ValidationError as e:
                msg = f"ManagedConfig.{field.name}: {e} (got {type(value).__name__} {value!r})"
                if field.name == "api_key":
                    msg = f"ManagedConfig.api_key: {e}"
                raise ConfigError(msg) from None
        unknown = [t for t in self.tools if t not in TOOL_SPECS]
        if unknown:
            raise ConfigError(f"ManagedConfig.tools: unknown {unknown}; choose from {list(TOOL_SPECS)}")
        for manager, names in (self.packages or {}).items():
            if manager not in PACKAGE_MANAGERS:
                raise ConfigError(
                    f"ManagedConfig.packages: unknown manager {manager!r}; use {list(PACKAGE_MANAGERS)}"
                )
            if any(not n.strip() or n.startswith("-") for n in names):
                raise ConfigError(f"ManagedConfig.packages[{manager!r}]: {names!r} holds a non-name")
        kind = self.networking.get("type")
        if kind not in NETWORKING_TYPES:
            raise ConfigError(
                f"ManagedConfig.networking: type {kind!r} is not one of {list(NETWORKING_TYPES)}"
            )
        bad_env = [k for k in self.env if not ENV_NAME.match(k)]
        if bad_env:
            raise ConfigError(f"ManagedConfig.env: {bad_env} are not environment variable names")
        if self.max_turns < 1:
            raise ConfigError("ManagedConfig.max_turns must be at least 1")
        if min(self.command_timeout, self.max_output_bytes, self.max_prompt_chars) <= 0:
            raise ConfigError(
                "ManagedConfig.command_timeout, max_output_bytes and max_prompt_chars must be positive"
            )

    def __repr__(self) -> str:
        shown = {
            f.name: ("***" if f.name == "api_key" and self.api_key else getattr(self, f.name))
            for f in msgspec.structs.fields(self)
        }
        shown["env"] = {k: "***" for k in self.env}
        return "ManagedConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ManagedConfig:
        try:
            return msgspec.convert(dict(values), cls)
        except msgspec.ValidationError as e:
            raise ConfigError(f"ManagedConfig: {e}") from None

    def session_config(self, compute: str) -> SessionConfig:
        """What the log keeps of this config: no key, no env values."""
        return SessionConfig(
            model=self.model,
            system=self.system,
            name=self.name,
            tools=tuple(self.tools),
            packages={m: tuple(n) for m, n in (self.packages or {}).items() if n},
            networking=dict(self.networking),
            working_dir=self.working_dir,
            env_names=tuple(sorted(self.env)),
            max_turns=self.max_turns,
            compute=compute,
        )

    def secrets(self) -> dict[str, str]:
        named = {f"env:{k}": v for k, v in self.env.items()}
        if self.api_key:
            named["api_key"] = self.api_key
        return named


LocalManagedConfig = ManagedConfig
"""The same class, under the name the local managed agents documentation uses."""

_NO_SESSION: dict[str, Any] = {
    "id": None,
    "status": "none",
    "title": "",
    "usage": {"input_tokens": 0, "output_tokens": 0},
}


class ManagedAgent:
    """A backend that runs an agent's sessions locally, on an event-sourced log.

    ``store`` picks where sessions live: a path to an SQLite file, a mapping of
    eventsourcing settings (e.g. ``{"PERSISTENCE_MODULE": "eventsourcing.postgres",
    ...}``), or a :class:`SessionService` to share; by default the environment
    decides, else a file under ``$AGENTJOURNAL_HOME`` (``~/.local/share/agentjournal``).
    """

    def __init__(
        self,
        provider: str = "local",
        config: ManagedConfig | Mapping[str, Any] | None = None,
        compute: str | Compute | None = None,
        *,
        store: str | os.PathLike[str] | Mapping[str, str] | SessionService | None = None,
        model: LanguageModel | None = None,
    ) -> None:
        if provider != "local":
            raise UnsupportedProvider(
                f"provider {provider!r} is not served here: agentjournal runs sessions locally, "
                "use provider='local' and point ManagedConfig.model at any litellm model"
            )
        if config is None:
            config = ManagedConfig()
        elif isinstance(config, Mapping):
            config = ManagedConfig.from_dict(config)
        elif not isinstance(config, ManagedConfig):
            raise ConfigError(f"config must be a ManagedConfig or a dict, not {type(config).__name__}")
        self.config = config
        self.service = open_store(store)
        self._model = model
        self._compute_choice = compute
        self._compute: Compute | None = compute if _is_compute(compute) else None  # type: ignore[assignment]
        if compute is not None and self._compute is None and compute not in COMPUTE_TOPICS:
            raise ConfigError(
                f"compute must be None, one of {sorted(COMPUTE_TOPICS)} or a Compute object, not {compute!r}"
            )
        self._session_id: UUID | None = None
        self._lock = threading.Lock()

    # -- wiring -----------------------------------------------------------------------

    @property
    def compute_kind(self) -> str:
        choice = self._compute_choice
        if choice is None:
            return "host"
        if isinstance(choice, str):
            return choice
        return str(getattr(choice, "kind", type(choice).__name__))

    def _language_model(self) -> LanguageModel:
        if self._model is None:
            model_class = resolve_topic(LANGUAGE_MODEL_TOPIC)
            self._model = model_class(
                self.config.model, api_base=self.config.api_base, api_key=self.config.api_key
            )
        return self._model

    def _compute_adapter(self) -> Compute:
        if self._compute is None:
            compute_class = resolve_topic(COMPUTE_TOPICS[self.compute_kind])
            self._compute = compute_class.from_config(self.config)
        assert self._compute is not None
        return self._compute

    # -- sessions ---------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return str(self._session_id) if self._session_id else None

    def create_session(self, title: str | None = None) -> str:
        """Start a new session now (``start`` does it by itself when there is none)."""
        check_package_sandbox(self.config.packages, self.compute_kind, self.config.host_packages_ok)
        self._session_id = self.service.create_session(
            self.config.session_config(self.compute_kind),
            title or self.config.session_title or "",
        )
        return str(self._session_id)

    def resume_session(self, session_id: str | UUID) -> None:
        """Continue an existing session; the next ``start`` sees its whole history."""
        sid = parse_session_id(session_id)
        # Loading it closes a turn left running by a process that died.
        self.service.recover(self.service.get_session(sid))
        self._session_id = sid

    def save_ids(self) -> dict[str, str | None]:
        """What to keep to resume later, in this or another process."""
        return {"agent_id": self.config.name, "session_id": self.session_id}

    def restore_ids(self, ids: Mapping[str, Any]) -> None:
        if not isinstance(ids, Mapping) or "session_id" not in ids:
            raise ConfigError("restore_ids needs the mapping save_ids returned, with a 'session_id'")
        if ids["session_id"] is not None:
            self.resume_session(ids["session_id"])

    def retrieve_session(self) -> dict[str, Any]:
        """Always the same four keys: id, status, title and usage (input and output tokens)."""
        if self._session_id is None:
            return {**_NO_SESSION, "usage": dict(_NO_SESSION["usage"])}
        return _session_info(self.service.summary(self._session_id))

    def list_sessions(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        from agentjournal.domain import Status

        summaries = self.service.list_summaries(Status(status) if status else None, limit=limit)
        return [
            _session_info(s) | {"name": s.name, "updated_at": s.updated_at.isoformat()} for s in summaries
        ]

    @property
    def total_input_tokens(self) -> int:
        return int(self.retrieve_session()["usage"]["input_tokens"])

    @property
    def total_output_tokens(self) -> int:
        return int(self.retrieve_session()["usage"]["output_tokens"])

    # -- turns ------------------------------------------------------------------------

    def updates(self, prompt: str) -> Iterator[TurnUpdate]:
        """Run one prompt, yielding text deltas, tool calls and the final :class:`TurnOutcome`."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("the prompt must be a non-empty string")
        if len(prompt) > self.config.max_prompt_chars:
            raise ConfigError(
                f"the prompt is {len(prompt):,} characters; the limit is "
                f"{self.config.max_prompt_chars:,} (ManagedConfig.max_prompt_chars)"
            )
        check_package_sandbox(self.config.packages, self.compute_kind, self.config.host_packages_ok)
        with self._lock:
            # Adapters first: one that refuses the config does so before anything is recorded.
            runtime = TurnRuntime(
                model=self._language_model(),
                compute=self._compute_adapter(),
                tools=[TOOL_SPECS[t] for t in self.config.tools],
                limits=ToolLimits(
                    timeout=self.config.command_timeout,
                    max_output_bytes=self.config.max_output_bytes,
                ),
                redact=Redactor(self.config.secrets()),
            )
            if self._session_id is None:
                self.create_session()
            assert self._session_id is not None
            yield from self.service.run_turn(self._session_id, prompt, runtime)

    def stream(self, prompt: str) -> Iterator[str]:
        """Run one prompt, yielding the reply's text as it arrives."""
        for update in self.updates(prompt):
            if isinstance(update, TextDelta):
                yield update.text

    async def astream(self, prompt: str) -> AsyncIterator[str]:
        """``stream`` for asyncio programs: the turn runs in a worker thread."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()

        def work() -> None:
            try:
                for text in self.stream(prompt):
                    loop.call_soon_threadsafe(queue.put_nowait, text)
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
                loop.call_soon_threadsafe(queue.put_nowait, e)
            loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = loop.run_in_executor(None, work)
        while (item := await queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield str(item)
        await worker

    def run(self, prompt: str, *, echo: bool = False) -> str:
        """Run one prompt and return the final text; ``echo`` prints text as it streams."""
        outcome: TurnOutcome | None = None
        for update in self.updates(prompt):
            if isinstance(update, TextDelta) and echo:
                sys.stdout.write(update.text)
                sys.stdout.flush()
            elif isinstance(update, TurnOutcome):
                outcome = update
        if echo:
            sys.stdout.write("\n")
        assert outcome is not None
        return outcome.text

    # -- history: replay, audit, fork ---------------------------------------------------

    def _require_session(self) -> UUID:
        if self._session_id is None:
            raise SessionNotFound("(none yet: start or resume a session first)")
        return self._session_id

    def state_at(self, version: int | None = None) -> Session:
        """The session as it was right after event ``version`` (default: now)."""
        return self.service.get_session(self._require_session(), version)

    def audit_log(self, types: tuple[str, ...] = ()) -> list[AuditEntry]:
        """Every event of the session: version, type, timestamp and payload."""
        return self.service.audit_log(self._require_session(), types)

    def verify(self) -> Verification:
        """Check the session's hash chain: ``.ok``, or ``.broken`` naming the first bad event."""
        from agentjournal.application.audit import verify

        return verify(self.service, self._require_session())

    def timeline(self) -> list[TimelineEntry]:
        """The session told in order: prompts, replies, tool calls, usage per turn, forks."""
        from agentjournal.application.audit import timeline

        return timeline(self.service, self._require_session())

    def fork(self, at_version: int | None = None) -> ManagedAgent:
        """A new agent on a new session that shares this one's history up to ``at_version``."""
        fork_id = self.service.fork(self._require_session(), at_version)
        forked = ManagedAgent(
            config=self.config, compute=self._compute_choice if isinstance(self._compute_choice, str) else None,
            store=self.service, model=self._model,
        )  # fmt: skip
        forked._session_id = fork_id
        return forked

    def interrupt(self) -> None:
        self.service.interrupt(self._require_session())

    def terminate(self, reason: str = "") -> None:
        self.service.terminate(self._require_session(), reason, self._compute)


class Agent:
    """An agent with a name, running on a backend (a :class:`ManagedAgent`)."""

    def __init__(self, name: str = "Agent", backend: ManagedAgent | None = None, **_: Any) -> None:
        self.name = name
        self.backend = backend or ManagedAgent(config=ManagedConfig(name=name))

    def start(self, prompt: str, stream: bool = False) -> str:
        """Run ``prompt`` in the backend's session and return the final text. With
        ``stream=True`` the text is also written to stdout as it arrives."""
        return self.backend.run(prompt, echo=stream)

    def stream(self, prompt: str) -> Iterator[str]:
        return self.backend.stream(prompt)

    def astream(self, prompt: str) -> AsyncIterator[str]:
        return self.backend.astream(prompt)


def open_store(store: str | os.PathLike[str] | Mapping[str, str] | SessionService | None) -> SessionService:
    """A session service on ``store``: an SQLite path, eventsourcing settings, a service
    to share, or None for the environment's settings or the default file."""
    if isinstance(store, SessionService):
        return store
    if store is None:
        return SessionService()
    if isinstance(store, Mapping):
        return SessionService(dict(store))
    path = Path(store).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})


def _is_compute(obj: object) -> bool:
    return obj is not None and not isinstance(obj, str) and isinstance(obj, Compute)


def _session_info(summary: SessionSummary) -> dict[str, Any]:
    return {
        "id": str(summary.id),
        "status": summary.status.value,
        "title": summary.title,
        "usage": {
            "input_tokens": summary.usage.input_tokens,
            "output_tokens": summary.usage.output_tokens,
        },
    }
