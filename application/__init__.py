"""sessionlog's application layer: the session service, its ports and projections,
and the public API.

    from application import Agent, ManagedAgent, ManagedConfig

    managed = ManagedAgent(provider="local", config=ManagedConfig(model="gpt-4o-mini"))
    agent = Agent(name="local-assistant", backend=managed)
    agent.start("What is the capital of France?", stream=True)
"""

from application.api import Agent, LocalManagedConfig, ManagedAgent, ManagedConfig
from application.errors import (
    AmbiguousSessionId,
    ConcurrentUpdate,
    ConfigError,
    InvalidSessionId,
    SessionlogError,
    SessionNotFound,
    StoreError,
    UnsupportedProvider,
    VersionNotFound,
)
from application.ports import ComputeError, ModelError
from application.service import AuditEntry, SessionService, ToolCallUpdate, TurnOutcome
from domain import ManagedSandboxRequired, SessionBusy, SessionTerminatedError

__all__ = [
    "Agent",
    "AmbiguousSessionId",
    "AuditEntry",
    "ComputeError",
    "ConcurrentUpdate",
    "ConfigError",
    "InvalidSessionId",
    "LocalManagedConfig",
    "ManagedAgent",
    "ManagedConfig",
    "ManagedSandboxRequired",
    "ModelError",
    "SessionBusy",
    "SessionNotFound",
    "SessionService",
    "SessionTerminatedError",
    "SessionlogError",
    "StoreError",
    "ToolCallUpdate",
    "TurnOutcome",
    "UnsupportedProvider",
    "VersionNotFound",
]
