"""agentjournal: managed LLM agent sessions on your own machine, kept as event logs.

A session is an aggregate rebuilt from an append-only log of events, so its
history can be replayed as of any event, audited through a hash chain, and forked
from any point. This package is the public API:

    from agentjournal import Agent, ManagedAgent, ManagedConfig

    managed = ManagedAgent(provider="local", config=ManagedConfig(model="gpt-4o-mini"))
    agent = Agent(name="local-assistant", backend=managed)
    agent.start("What is the capital of France?", stream=True)

PraisonAI's own ``praisonaiagents.Agent`` takes the same ``ManagedAgent`` as its
backend. The layers are importable as ``agentjournal.domain``,
``agentjournal.application`` and ``agentjournal.infrastructure``.
"""

from importlib.metadata import PackageNotFoundError, version

from agentjournal.application import (
    Agent,
    AgentJournalError,
    AmbiguousSessionId,
    AuditEntry,
    ComputeError,
    ComputeNotAllowed,
    ConcurrentUpdate,
    ConfigError,
    InvalidSessionId,
    LocalManagedConfig,
    ManagedAgent,
    ManagedConfig,
    ManagedSandboxRequired,
    ModelError,
    RecordedConfigWarning,
    SessionBusy,
    SessionNotFound,
    SessionService,
    SessionTerminatedError,
    StoreError,
    ToolCallUpdate,
    TurnOutcome,
    UnsupportedProvider,
    VersionNotFound,
)

try:
    __version__ = version("agentjournal")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Agent",
    "AgentJournalError",
    "AmbiguousSessionId",
    "AuditEntry",
    "ComputeError",
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
    "StoreError",
    "ToolCallUpdate",
    "TurnOutcome",
    "UnsupportedProvider",
    "VersionNotFound",
    "__version__",
]
