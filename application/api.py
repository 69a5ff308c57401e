"""The public Python API: ``ManagedAgent`` and ``Agent``.

``ManagedAgent`` is a backend in PraisonAI's sense: it implements their
``ManagedBackendProtocol`` (``execute``, ``stream``, ``reset_session``,
``reset_all``, ``update_agent``, ``retrieve_session``, ``list_sessions``,
``save_ids``/``restore_ids``, ...), so ``praisonaiagents.Agent(backend=managed)``
drives it, and so does this package's own small :class:`Agent`. Its synchronous
conveniences (``run``, ``updates``, ``iter_text``) and what an event log makes
possible (``state_at``, ``audit_log``, ``verify``, ``timeline``, ``fork``) have
names of their own.

A session runs under the config it recorded when it was created: a process that
resumes it with another config does not change its model, prompt, tools, bounds
or compute; :meth:`ManagedAgent.update_agent` does, as a recorded event.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import msgspec

from agentjournal.application import views
from agentjournal.application.config import (
    RECORDED,
    CustomToolHandler,
    LocalManagedConfig,
    ManagedConfig,
    ToolConfirmation,
)
from agentjournal.application.errors import (
    ConfigError,
    SessionNotFound,
    UnsupportedProvider,
    parse_session_id,
)
from agentjournal.application.ports import Compute, LanguageModel, TextDelta
from agentjournal.application.runtimes import Runtimes
from agentjournal.application.service import AuditEntry, SessionService
from agentjournal.application.store import open_store
from agentjournal.application.turns import TurnOutcome, TurnUpdate
from agentjournal.application.work_queue import WORKER_COMPUTE, on_workers
from agentjournal.application.workspace import Files
from agentjournal.domain import Session, SessionConfig, Status, check_confinement, check_package_sandbox
from agentjournal.domain.policy import UNCONFINED_HOST

if TYPE_CHECKING:
    from agentjournal.application.audit import TimelineEntry, Verification
    from agentjournal.application.catalog_projection import FileView
    from agentjournal.application.memory_stores import MemoryStores
    from agentjournal.application.resources import SessionResources
    from agentjournal.application.uploads import Uploads
    from agentjournal.domain.resources import MountedResource

__all__ = [
    "Agent",
    "LocalManagedConfig",
    "ManagedAgent",
    "ManagedConfig",
    "RecordedConfigWarning",
    "open_store",
]

PROVIDERS = ("local", "openai", "ollama", "gemini")
"""What ``ManagedAgent(provider=...)`` accepts: sessions always run here; the names
other than "local" are hints for routing the model name, as in PraisonAI."""

_NO_SESSION: dict[str, Any] = {"id": "", "status": "unknown", "title": ""}


class RecordedConfigWarning(UserWarning):
    """A resumed session keeps its recorded config where the resuming one differs."""


class AgentIds(NamedTuple):
    """PraisonAI's ids of an agent, as :meth:`ManagedAgent.save_ids` returns them."""

    agent_id: str
    agent_version: int
    environment_id: str


def route_model(provider: str, model: str) -> str:
    """The litellm model name for a provider hint: ``ollama/...``, ``gemini/...``."""
    if provider not in PROVIDERS:
        raise UnsupportedProvider(
            f"Unknown provider {provider!r}: choose from {list(PROVIDERS)} (sessions run locally; "
            "the names other than 'local' route the model, e.g. provider='ollama' with model='llama3')"
        )
    if provider == "ollama" and "/" not in model:
        return f"ollama/{model}"
    if provider == "gemini" and not model.startswith("gemini"):
        return f"gemini/{model}"
    return model


class ManagedAgent:
    """A backend that runs an agent's sessions locally, on an event-sourced log.

    ``compute`` is where tools run: "host" (or PraisonAI's "local", the default: on this
    machine, each call confined by bubblewrap), "docker", "host-unconfined" (on this
    machine as your own user, unconfined: for trusted development only, and the opt-in
    it needs), or a :class:`~agentjournal.application.ports.Compute` object.
    ``store`` picks where sessions live: a path to an SQLite file, a mapping of
    eventsourcing settings (e.g. ``{"PERSISTENCE_MODULE": "eventsourcing.postgres",
    ...}``), or a :class:`SessionService` to share; by default the environment
    decides, else a file under ``$AGENTJOURNAL_HOME`` (``~/.local/share/agentjournal``).
    ``model`` replaces the litellm adapter (any :class:`LanguageModel`).
    ``api_key``, ``api_base`` and the callbacks ``on_tool_confirmation`` and
    ``on_custom_tool`` may be given here, as PraisonAI's examples do, or in the config;
    given here, they win.
    ``environment`` names a self-hosted environment of the store (``env_...``, made with
    the server's API): then the sessions' tools (Anthropic's toolset) run on that
    environment's workers, which reach the store through an ``agentjournal serve`` on it;
    a turn publishes each call to the work queue and waits for a worker's result, holding
    its lease, up to the queue's ``worker_wait`` (``AGENTJOURNAL_WORKER_WAIT_SECONDS``).
    """

    def __init__(
        self,
        provider: str = "local",
        config: ManagedConfig | Mapping[str, Any] | None = None,
        compute: str | Compute | None = None,
        *,
        store: str | os.PathLike[str] | Mapping[str, str] | SessionService | None = None,
        model: LanguageModel | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        on_tool_confirmation: ToolConfirmation | None = None,
        on_custom_tool: CustomToolHandler | None = None,
        environment: str | None = None,
    ) -> None:
        config = _as_config(config)
        if environment is not None and compute is not None:
            raise ConfigError(
                "give compute or a self-hosted environment, not both: its workers are the compute"
            )
        given = {
            name: value
            for name, value in (
                ("api_key", api_key),
                ("api_base", api_base),
                ("on_tool_confirmation", on_tool_confirmation),
                ("on_custom_tool", on_custom_tool),
            )
            if value is not None
        }
        self.provider = provider
        self.config = msgspec.structs.replace(config, model=route_model(provider, config.model), **given)
        self.config.check_callbacks()
        self.service = open_store(store)
        self._environment = self._self_hosted(environment) if environment is not None else None
        self._runtimes = Runtimes(
            self.config,
            compute,
            model,
            vault_tokens=self._vault_tokens,
            vault_refresh=self._vault_refresh,
            worker_wait=self.service.work.worker_wait,
        )
        self._session_id: UUID | None = None
        self._lock = threading.Lock()

    # -- wiring -----------------------------------------------------------------------

    def _vault_tokens(self, recorded: SessionConfig) -> dict[str, str]:
        """The tokens a session's recorded vaults hold for its MCP servers."""
        from agentjournal.application.vaults import open_vaults

        return open_vaults(self.service).tokens(recorded.vault_ids, [s.url for s in recorded.mcp_servers])

    def _vault_refresh(self, recorded: SessionConfig, url: str, refused: str | None) -> str | None:
        """A new token for ``url`` from the session's vaults, when its credential can be refreshed."""
        from agentjournal.application.vaults import open_vaults

        return open_vaults(self.service).refresh(recorded.vault_ids, url, refused)

    def _self_hosted(self, environment: str) -> str:
        """The id of the store's self-hosted environment ``environment`` names (``env_`` and
        its hex, or its UUID); a ConfigError for anything else."""
        from agentjournal.application.catalog import Catalog
        from agentjournal.domain import SelfHostedConfig

        try:
            environment_id = UUID(environment.removeprefix("env_"))
        except ValueError:
            raise ConfigError(f"environment {environment!r} is not an environment id (env_...)") from None
        config = Catalog(self.service).get_environment(environment_id).definition.config
        if not isinstance(config, SelfHostedConfig):
            raise ConfigError(f"environment {environment} is not a self_hosted environment")
        return str(environment_id)

    @property
    def compute_kind(self) -> str:
        """Where a new session's tools run. A resumed session keeps its recorded kind."""
        return WORKER_COMPUTE if self._environment else self._runtimes.compute_kind

    # -- sessions (ManagedBackendProtocol) ----------------------------------------------

    @property
    def session_id(self) -> str | None:
        return str(self._session_id) if self._session_id else None

    @property
    def managed_session_id(self) -> str | None:
        """PraisonAI's name for :attr:`session_id`."""
        return self.session_id

    def create_session(self, title: str | None = None) -> str:
        """Start a new session now (a turn does it by itself when there is none). The
        adapters are built and the policies checked first, so a config they refuse
        records nothing."""
        recorded = self.config.session_config(self.compute_kind)
        if self._environment is not None:
            recorded = on_workers(recorded, self._environment)
        runtime = self._runtimes(recorded)
        check_package_sandbox(recorded.packages, recorded.compute, self.config.host_packages_ok)
        self._session_id = self.service.create_session(
            recorded, title or self.config.session_title or "", runtime.redact
        )
        return str(self._session_id)

    def resume_session(self, session_id: str | UUID) -> None:
        """Continue an existing session under its recorded config; the next turn sees its
        whole history. Fields of this agent's config that differ from the recorded ones
        (and from their defaults) are named in a :class:`RecordedConfigWarning`."""
        sid = parse_session_id(session_id)
        session = self.service.get_session(sid)
        # Loading it closes a turn left running by a process that died.
        self.service.recover(session)
        self._session_id = sid
        overridden = _overridden_fields(self.config, session.config)
        if overridden:
            warnings.warn(
                f"session {sid} keeps its recorded {', '.join(overridden)}; this agent's config "
                "differs there (use update_agent() to change the session's config)",
                RecordedConfigWarning,
                stacklevel=2,
            )

    def reset_session(self) -> None:
        """Forget the current session: the next turn starts a new one. Nothing is deleted."""
        self._session_id = None

    def reset_all(self) -> None:
        """Forget the session and the adapters built for it (model client, sandbox handle)."""
        self.reset_session()
        self._runtimes.forget()

    def update_agent(self, **changes: Any) -> None:
        """Change the agent's config (``system``, ``model``, ``tools``, ``max_turns``, ...),
        or with ``compute`` where its tools run (a name or a Compute object, as this class
        takes it). The current session's recorded config changes too, as a ``ConfigChanged``
        event checked by the same policies as a new session's: moving a session to the
        unconfined host takes naming it here (``compute="host-unconfined"``), or an agent
        that opted in already."""
        moving = "compute" in changes
        compute = changes.pop("compute", self._runtimes.compute)
        kind = Runtimes.kind_of(compute)
        if self._session_id is None:
            self.config = self._updated(self.config, changes)
            self._runtimes.forget(self.config)
            self._runtimes.move(compute)
            return
        # Only the named fields change: the rest of the session's config stays as recorded.
        current = self.service.get_session(self._session_id).config
        updated = self._updated(self.config.governed_by(current), changes)
        recorded = updated.session_config(kind if moving else current.compute)
        if "tools" not in changes:
            recorded = msgspec.structs.replace(
                recorded,
                tools=current.tools,
                custom_tools=current.custom_tools,
                confirm_tools=current.confirm_tools,
            )
        check_package_sandbox(recorded.packages, recorded.compute, updated.host_packages_ok)
        check_confinement(recorded.compute, self._runtimes.allow_unconfined or kind == UNCONFINED_HOST)
        self.service.change_config(self._session_id, recorded, updated.redactor())
        self.config = updated
        self._runtimes.forget(updated)
        self._runtimes.move(compute)

    def _updated(self, config: ManagedConfig, changes: Mapping[str, Any]) -> ManagedConfig:
        updated = ManagedConfig.from_dict(config.to_dict() | dict(changes))
        updated.check_callbacks()
        return msgspec.structs.replace(updated, model=route_model(self.provider, updated.model))

    # -- ids (PraisonAI's names, read from the log) ---------------------------------------

    @property
    def agent_id(self) -> str:
        """The agent's name, as the current session recorded it (before a session, this
        agent's own)."""
        return self._ids().agent_id

    @property
    def agent_version(self) -> int:
        """How many configs the current session has had: 1, then one more per
        :meth:`update_agent` (1 before a session)."""
        return self._ids().agent_version

    @property
    def environment_id(self) -> str:
        """Where the current session's tools run, as it recorded it: its compute kind, such
        as "host" or "docker" (before a session, where a new one's would run)."""
        return self._ids().environment_id

    def _ids(self) -> AgentIds:
        if self._session_id is None:
            return AgentIds(self.config.name, 1, self.compute_kind)
        session = self.state_at()
        return AgentIds(session.config.name, session.config_version, session.config.compute)

    def save_ids(self) -> dict[str, Any]:
        """What to keep to resume later, in this or another process: PraisonAI's keys,
        ``agent_id``, ``agent_version``, ``environment_id`` and ``session_id``."""
        return {**self._ids()._asdict(), "session_id": self.session_id}

    def restore_ids(self, ids: Mapping[str, Any]) -> None:
        """Resume the session of a :meth:`save_ids` mapping (its other keys are informative)."""
        if not isinstance(ids, Mapping) or "session_id" not in ids:
            raise ConfigError("restore_ids needs the mapping save_ids returned, with a 'session_id'")
        if ids["session_id"]:
            self.resume_session(ids["session_id"])
        else:
            self.reset_session()

    def retrieve_session(self) -> dict[str, Any]:
        """Always the same four keys: id, status, title and usage (input and output
        tokens); before any session, PraisonAI's defaults (``""``, ``"unknown"``)."""
        if self._session_id is None:
            return {**_NO_SESSION, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return views.session_info(self.service.summary(self._session_id))

    def list_sessions(self, status: str | None = None, limit: int = 100, **_: Any) -> list[dict[str, Any]]:
        """Sessions of this store, the most recently updated first, each in the shape
        ``agentjournal list --json`` prints (:func:`~agentjournal.application.views.session_listing`)."""
        summaries = self.service.list_summaries(Status(status) if status else None, limit=limit)
        return [views.session_listing(s) for s in summaries]

    @property
    def total_input_tokens(self) -> int:
        return int(self.retrieve_session()["usage"]["input_tokens"])

    @property
    def total_output_tokens(self) -> int:
        return int(self.retrieve_session()["usage"]["output_tokens"])

    # -- turns --------------------------------------------------------------------------

    def updates(self, prompt: str) -> Generator[TurnUpdate, None, None]:
        """Run one prompt, yielding text deltas, tool calls and the final :class:`TurnOutcome`.

        Closing the iterator early records the turn as interrupted. A second prompt
        while one runs gets :class:`~agentjournal.domain.SessionBusy`."""
        self._check_prompt(prompt)
        with self._lock:
            if self._session_id is None:
                self.create_session()
            assert self._session_id is not None
            session_id = self._session_id
        yield from self.service.run_turn(session_id, prompt, self._runtimes)

    def iter_text(self, prompt: str) -> Iterator[str]:
        """Run one prompt, yielding the reply's text as it arrives."""
        for update in self.updates(prompt):
            if isinstance(update, TextDelta):
                yield update.text

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

    def _execute_sync(self, prompt: str, stream_live: bool = False) -> str:
        """What PraisonAI's ``Agent.start(..., stream=True)`` calls on a backend that has
        it: run the prompt, printing the text as it streams, and return it."""
        return self.run(prompt, echo=stream_live)

    async def execute(self, prompt: str, **kwargs: Any) -> str:
        """Run one prompt and return the final text (``ManagedBackendProtocol``). With
        ``timeout=`` seconds, a turn still running then is interrupted and
        :class:`TimeoutError` raised."""
        import asyncio  # loaded already: an event loop runs this

        text = ""
        async with (
            asyncio.timeout(kwargs.get("timeout")),
            aclosing(self._threaded_updates(prompt)) as updates,
        ):
            async for update in updates:
                if isinstance(update, TurnOutcome):
                    text = update.text
        return text

    async def stream(self, prompt: str, **_: Any) -> AsyncIterator[str]:
        """Yield the reply's text as it arrives (``ManagedBackendProtocol``). Leaving the
        loop early, or cancelling it, interrupts the turn."""
        async with aclosing(self._threaded_updates(prompt)) as updates:
            async for update in updates:
                if isinstance(update, TextDelta):
                    yield update.text

    async def _threaded_updates(self, prompt: str) -> AsyncGenerator[TurnUpdate, None]:
        """:meth:`updates` for asyncio: the turn runs in a thread of its own. Once the
        consumer leaves (a ``break``, a cancellation, a timeout), the turn stops at its
        next step and is recorded as interrupted before this generator finishes closing."""
        import asyncio  # loaded already: an event loop runs this

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        finished = asyncio.Event()
        stop, done = threading.Event(), object()

        def in_loop(function: Any, *args: Any) -> None:
            try:
                loop.call_soon_threadsafe(function, *args)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

        def work() -> None:
            updates = self.updates(prompt)
            try:
                for update in updates:
                    if stop.is_set():
                        break
                    in_loop(queue.put_nowait, update)
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
                in_loop(queue.put_nowait, e)
            finally:
                updates.close()
                in_loop(queue.put_nowait, done)
                in_loop(finished.set)

        threading.Thread(target=work, name="agentjournal-turn", daemon=True).start()
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            await finished.wait()

    def _check_prompt(self, prompt: object) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("the prompt must be a non-empty string")
        if len(prompt) > self.config.max_prompt_chars:
            raise ConfigError(
                f"the prompt is {len(prompt):,} characters; the limit is "
                f"{self.config.max_prompt_chars:,} (ManagedConfig.max_prompt_chars)"
            )
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ConfigError(f"the prompt is not valid text: {e.reason} at character {e.start}") from None

    # -- history: replay, audit, fork ---------------------------------------------------

    def _require_session(self) -> UUID:
        if self._session_id is None:
            raise SessionNotFound("(none yet: start or resume a session first)")
        return self._session_id

    def state_at(self, version: int | None = None) -> Session:
        """The session as it was right after event ``version`` (default: now)."""
        return self.service.get_session(self._require_session(), version)

    def files_at(self, version: int | None = None) -> Files:
        """The work folder as it was right after event ``version`` (default: now): a mapping
        of path to file (hash, size, mode) that can :meth:`~Files.read` each file's contents."""
        return self.service.files_at(self._require_session(), version)

    def restore_files(self, version: int) -> int:
        """Roll the work folder back to its files as of event ``version``, recorded as an
        event (nothing in between is lost); returns the new version."""
        return self.service.restore_files(self._require_session(), version, self._runtimes)

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
        """A new agent on a new session that shares this one's history up to ``at_version``,
        under the same recorded config and on the same compute."""
        fork_id = self.service.fork(self._require_session(), at_version)
        forked = ManagedAgent(
            self.provider, self.config, self._runtimes.compute, store=self.service, model=self._runtimes.model
        )
        forked._session_id = fork_id
        return forked

    # -- files and repositories ----------------------------------------------------------

    def upload_file(self, source: str | os.PathLike[str], mime_type: str | None = None) -> FileView:
        """Upload a file from disk to the store's Files (the Files API's upload), read and
        stored a part at a time; its media type is guessed from its name unless given."""
        import mimetypes

        uploads = self._uploads()
        upload = uploads.begin()
        with open(source, "rb") as file:
            while part := file.read(1024 * 1024):
                upload.write(part)
        name = os.path.basename(os.fspath(source))
        kind = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return uploads.finish(upload, name, kind)

    def mount_file(self, file_id: UUID | str, mount_path: str | None = None) -> MountedResource:
        """Mount an uploaded file into the session (started now if there is none) at
        ``mount_path`` (default: ``/mnt/session/uploads/<file_id>``); see
        :mod:`agentjournal.application.mounts` for where that lies in the work folder."""
        from agentjournal.application.mounts import default_file_mount

        file_id = file_id if isinstance(file_id, UUID) else UUID(str(file_id).removeprefix("file_"))
        resources = self._resources()
        prepared = resources.prepare_file(file_id, mount_path or default_file_mount(f"file_{file_id.hex}"))
        return resources.mount(self._session_for_mounts(), prepared, self._runtimes)

    def mount_repository(
        self, url: str, *, token: str | None = None, branch: str = "", commit: str = "",
        mount_path: str | None = None,
    ) -> MountedResource:  # fmt: skip
        """Clone a git repository (http or https) at ``branch`` or ``commit`` into the
        session (started now if there is none) at ``mount_path`` (default:
        ``/workspace/<repo>``). ``token`` is used for the clone and kept nowhere."""
        from agentjournal.application.mounts import default_repository_mount

        resources = self._resources()
        prepared = resources.prepare_repository(
            url, mount_path or default_repository_mount(url), token=token, branch=branch, commit=commit
        )
        return resources.mount(self._session_for_mounts(), prepared, self._runtimes)

    # -- memory stores --------------------------------------------------------------------

    @property
    def memory_stores(self) -> MemoryStores:
        """The store's memory stores: create them, read and change their memories, list
        their versions (who wrote what)."""
        from agentjournal.application.memory_stores import MemoryStores

        return MemoryStores(self.service)

    def attach_memory_store(
        self, store_id: UUID | str, access: str = "read_write", instructions: str = ""
    ) -> MountedResource:
        """Attach a memory store to the session (started now if there is none): its tools
        find it at ``/mnt/memory/<slug>`` (on the confined host and in the Docker sandbox),
        read-only when ``access`` is ``read_only``, and the system prompt describes it."""
        from agentjournal.application.memory_mounts import MEMORY_COMPUTES

        if self.compute_kind not in MEMORY_COMPUTES:
            raise ConfigError(
                f"memory stores are mounted on {' and '.join(MEMORY_COMPUTES)} compute, not on {self.compute_kind}"
            )
        store_id = store_id if isinstance(store_id, UUID) else UUID(str(store_id).removeprefix("memstore_"))
        resources = self._resources()
        session_id = self._session_for_mounts()
        taken = [r.resource.mount_path for r in self.service.get_session(session_id).resources]
        prepared = resources.prepare_memory_store(store_id, access, instructions, taken)
        return resources.mount(session_id, prepared, self._runtimes)

    def _uploads(self) -> Uploads:
        from agentjournal.application.catalog import Catalog
        from agentjournal.application.uploads import Uploads

        return Uploads(Catalog(self.service, self.config.redactor()))

    def _resources(self) -> SessionResources:
        from agentjournal.application.resources import SessionResources

        return SessionResources(self.service, self._uploads())

    def _session_for_mounts(self) -> UUID:
        if self._session_id is None:
            self.create_session()
        assert self._session_id is not None
        return self._session_id

    def interrupt(self) -> None:
        """Record the running turn as interrupted (``ManagedBackendProtocol``)."""
        self.service.interrupt(self._require_session())

    def terminate(self, reason: str = "") -> None:
        """Close the session for good, removing its sandbox first."""
        session_id = self._require_session()
        self.service.terminate(session_id, reason, self._runtimes.release)
        self._runtimes.end(session_id)


class Agent:
    """An agent with a name, running on a backend (a :class:`ManagedAgent`), for those
    who do not use PraisonAI's own ``Agent``."""

    def __init__(self, name: str = "Agent", backend: ManagedAgent | None = None, **_: Any) -> None:
        self.name = name
        self.backend = backend or ManagedAgent(config=ManagedConfig(name=name))

    def start(self, prompt: str, stream: bool = False) -> str:
        """Run ``prompt`` in the backend's session and return the final text. With
        ``stream=True`` the text is also written to stdout as it arrives."""
        return self.backend.run(prompt, echo=stream)

    def run(self, prompt: str, stream: bool = False) -> str:
        """:meth:`start` under PraisonAI's other name for it, silent unless ``stream=True``
        (as theirs: ``start`` may print, ``run`` never does unless asked)."""
        return self.start(prompt, stream=stream)

    def stream(self, prompt: str) -> Iterator[str]:
        return self.backend.iter_text(prompt)

    def astream(self, prompt: str) -> AsyncIterator[str]:
        return self.backend.stream(prompt)


def _as_config(config: ManagedConfig | Mapping[str, Any] | None) -> ManagedConfig:
    if config is None:
        return ManagedConfig()
    if isinstance(config, Mapping):
        return ManagedConfig.from_dict(config)
    if not isinstance(config, ManagedConfig):
        raise ConfigError(f"config must be a ManagedConfig or a dict, not {type(config).__name__}")
    return config


def _overridden_fields(config: ManagedConfig, recorded: SessionConfig) -> list[str]:
    """Recorded fields where ``config`` asks for something else than both the record
    and the default: a caller who set them and may expect them to apply."""
    default = ManagedConfig().session_config(recorded.compute)
    mine = config.session_config(recorded.compute)
    return [
        name
        for name in (*RECORDED, "tools", "custom_tools", "confirm_tools")
        if getattr(mine, name) != getattr(recorded, name) and getattr(mine, name) != getattr(default, name)
    ]
