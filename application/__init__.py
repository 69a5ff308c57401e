"""agentjournal's application layer: the session service, its ports and projections,
and the public API.

    from agentjournal.application import Agent, ManagedAgent, ManagedConfig

    managed = ManagedAgent(provider="local", config=ManagedConfig(model="gpt-4o-mini"))
    agent = Agent(name="local-assistant", backend=managed)
    agent.start("What is the capital of France?", stream=True)
"""

from agentjournal.application.api import Agent, ManagedAgent, RecordedConfigWarning
from agentjournal.application.config import LocalManagedConfig, ManagedConfig
from agentjournal.application.errors import (
    AgentJournalError,
    AmbiguousSessionId,
    ConcurrentUpdate,
    ConfigError,
    InvalidSessionId,
    SessionNotFound,
    StoreError,
    UnsupportedProvider,
    VersionNotFound,
)
from agentjournal.application.ports import ComputeError, ModelError
from agentjournal.application.service import (
    AuditEntry,
    ComputeProgress,
    SessionService,
    ToolCallUpdate,
    TurnOutcome,
)
from agentjournal.domain import ComputeNotAllowed, ManagedSandboxRequired, SessionBusy, SessionTerminatedError

__all__ = [
    "Agent",
    "AmbiguousSessionId",
    "AuditEntry",
    "ComputeError",
    "ComputeProgress",
    "ComputeNotAllowed",
    "ConcurrentUpdate",
    "ConfigError",
    "InvalidSessionId",
    "LocalManagedConfig",
    "ManagedAgent",
    "ManagedConfig",
    "ManagedSandboxRequired",
    "ModelError",
    "RecordedConfigWarning",
    "SessionBusy",
    "SessionNotFound",
    "SessionService",
    "SessionTerminatedError",
    "AgentJournalError",
    "StoreError",
    "ToolCallUpdate",
    "TurnOutcome",
    "UnsupportedProvider",
    "VersionNotFound",
]
