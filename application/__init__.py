"""agentjournal's application layer: the session service, its ports and projections,
and the public API.

    from agentjournal.application import Agent, ManagedAgent, ManagedConfig

    managed = ManagedAgent(provider="local", config=ManagedConfig(model="gpt-4o-mini"))
    agent = Agent(name="local-assistant", backend=managed)
    agent.start("What is the capital of France?", stream=True)

The names below are imported from their modules when first asked for (``__getattr__``),
so a process pays only for what it uses: one that reads a log through
``SessionService`` never loads the agent runtime that ``ManagedAgent`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentjournal.lazy import LazyNames

if TYPE_CHECKING:
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
    from agentjournal.application.service import AuditEntry, SessionService
    from agentjournal.application.turns import ComputeProgress, ToolCallUpdate, TurnOutcome
    from agentjournal.domain import (
        ComputeNotAllowed,
        ManagedSandboxRequired,
        SessionBusy,
        SessionTerminatedError,
        UnconfinedHostRefused,
    )

_HOMES = {
    "agentjournal.application.api": ("Agent", "ManagedAgent", "RecordedConfigWarning"),
    "agentjournal.application.config": ("LocalManagedConfig", "ManagedConfig"),
    "agentjournal.application.errors": (
        "AgentJournalError",
        "AmbiguousSessionId",
        "ConcurrentUpdate",
        "ConfigError",
        "InvalidSessionId",
        "SessionNotFound",
        "StoreError",
        "UnsupportedProvider",
        "VersionNotFound",
    ),
    "agentjournal.application.ports": ("ComputeError", "ModelError"),
    "agentjournal.application.service": ("AuditEntry", "SessionService"),
    "agentjournal.application.turns": ("ComputeProgress", "ToolCallUpdate", "TurnOutcome"),
    "agentjournal.domain": (
        "ComputeNotAllowed",
        "ManagedSandboxRequired",
        "SessionBusy",
        "SessionTerminatedError",
        "UnconfinedHostRefused",
    ),
}
"""Each public name's module, where ``__getattr__`` finds it."""

_NAMES = LazyNames(__name__, _HOMES)
__getattr__ = _NAMES.attribute
__dir__ = _NAMES.listing

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
    "UnconfinedHostRefused",
    "UnsupportedProvider",
    "VersionNotFound",
]
