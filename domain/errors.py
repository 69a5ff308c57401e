"""Errors the domain raises when a command breaks a rule of the session, and the root of
every error agentjournal raises on purpose."""

from __future__ import annotations

from uuid import UUID


class AgentJournalError(Exception):
    """The root of every error agentjournal raises on purpose, in any layer: a rule of a
    session or of the catalog, bad input, a store that cannot be used, a failed model
    call or compute operation. ``except AgentJournalError`` catches them all; anything
    else is a fault. It lives in the domain, which imports nothing of the layers above,
    so that theirs can derive from it."""


class SessionError(AgentJournalError):
    """Base class of the rules a session enforces."""


class SessionTerminatedError(SessionError):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"session {session_id} is terminated; fork it to continue from its history")
        self.session_id = session_id


class SessionBusy(SessionError):
    """Raised when a turn is asked of a session that is already running one."""

    def __init__(self, session_id: UUID, worker: str) -> None:
        super().__init__(
            f"session {session_id} is running a turn (worker {worker or 'unknown'}); "
            "wait for it to finish or interrupt it"
        )
        self.session_id = session_id
        self.worker = worker


class NoTurnInProgress(SessionError):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"session {session_id} has no turn in progress")
        self.session_id = session_id


class UnknownToolCall(SessionError):
    def __init__(self, tool_call_id: str) -> None:
        super().__init__(f"no open tool call with id {tool_call_id!r}")
        self.tool_call_id = tool_call_id


class ManagedSandboxRequired(SessionError, RuntimeError):
    """Packages were asked for with nowhere safe to install them.

    A ``RuntimeError``, as in PraisonAI's managed agents, so code written against
    theirs catches ours."""


class ComputeNotAllowed(SessionError):
    """A turn was offered a different compute than the session's recorded one."""

    def __init__(self, session_id: UUID, recorded: str, offered: str) -> None:
        super().__init__(
            f"session {session_id} runs its tools on {recorded!r} compute, as recorded when it was "
            f"created; it cannot continue on {offered!r} (fork it to start again elsewhere)"
        )
        self.session_id = session_id
        self.recorded = recorded
        self.offered = offered


class UnconfinedHostRefused(SessionError):
    """A session runs on the unconfined host, which this process did not opt in to."""

    def __init__(self) -> None:
        super().__init__(
            "this session runs its tools on the unconfined host ('host-unconfined'): as the engine's "
            "own user, with its files, processes and network. A process runs them only when it opts "
            "in itself, for trusted development: ManagedAgent(..., compute='host-unconfined'), or "
            "agentjournal serve --allow-unconfined-host"
        )


class NoPendingAction(SessionError):
    """An answer was given to a custom tool call or confirmation nobody asked for."""

    def __init__(self, session_id: UUID, tool_call_id: str) -> None:
        super().__init__(
            f"session {session_id} is not waiting for an answer about tool call {tool_call_id!r}"
        )
        self.session_id = session_id
        self.tool_call_id = tool_call_id


class AnswersMissing(SessionError):
    """A paused turn was asked to continue before the client answered all it waits on."""

    def __init__(self, session_id: UUID, awaiting: tuple[str, ...]) -> None:
        super().__init__(f"session {session_id} still waits for answers about tool calls {list(awaiting)}")
        self.session_id = session_id
        self.awaiting = awaiting


class SessionArchivedError(SessionError):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"session {session_id} is archived: read or fork it; it takes no new turns")
        self.session_id = session_id


class NotTerminated(SessionError):
    """Only a terminated session can be deleted."""

    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"session {session_id} is not terminated; terminate it before deleting it")
        self.session_id = session_id


class CatalogError(AgentJournalError):
    """Base class of the rules agents and environments enforce."""


class StaleVersion(CatalogError):
    """An update was made from a version that is no longer the current one."""

    def __init__(self, agent_id: UUID, given: int, current: int) -> None:
        super().__init__(
            f"agent {agent_id} is at version {current}, not {given}: another update came first; "
            "retrieve it and apply the change to the current version"
        )
        self.agent_id = agent_id
        self.given = given
        self.current = current


class AgentArchivedError(CatalogError):
    def __init__(self, agent_id: UUID) -> None:
        super().__init__(f"agent {agent_id} is archived: its versions can be read; it takes no updates")
        self.agent_id = agent_id


class EnvironmentArchivedError(CatalogError):
    def __init__(self, environment_id: UUID) -> None:
        super().__init__(f"environment {environment_id} is archived, so it cannot be updated")
        self.environment_id = environment_id


class EnvironmentDeletedError(CatalogError):
    def __init__(self, environment_id: UUID) -> None:
        super().__init__(f"environment {environment_id} is deleted")
        self.environment_id = environment_id
