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

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        UnconfinedHostRefused,
        UnsupportedProvider,
        VersionNotFound,
    )


def __getattr__(name: str) -> Any:
    """The public API, imported from :mod:`agentjournal.application` when first asked for
    (so ``python -m agentjournal`` and the command line load only what a command uses),
    and ``__version__``, read from the installed distribution: importlib.metadata costs
    more to import than most of the package."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("agentjournal")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    if name in __all__:
        from agentjournal import application

        value = getattr(application, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "UnconfinedHostRefused",
    "UnsupportedProvider",
    "VersionNotFound",
    "__version__",
]
