"""The domain model of agentjournal: the ``Session``, ``Agent`` and ``Environment``
aggregates, their events and values.

Pure: no I/O, no model provider, no container engine.

The ``Agent`` and ``Environment`` aggregates and their values are imported from their
modules when first asked for (``__getattr__``), as :mod:`agentjournal.application`
exports its names: eventsourcing makes a dataclass of every event class as its module
loads, and a process that only reads or resumes sessions never needs those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentjournal.domain.errors import (
    AgentArchivedError,
    AgentJournalError,
    AnswersMissing,
    CatalogError,
    ComputeNotAllowed,
    EnvironmentArchivedError,
    EnvironmentDeletedError,
    ManagedSandboxRequired,
    NoPendingAction,
    NotTerminated,
    NoTurnInProgress,
    SessionArchivedError,
    SessionBusy,
    SessionError,
    SessionTerminatedError,
    StaleVersion,
    UnconfinedHostRefused,
    UnknownToolCall,
)
from agentjournal.domain.legacy import register_legacy_topics
from agentjournal.domain.policy import (
    NetworkAccess,
    check_compute,
    check_confinement,
    check_package_sandbox,
    network_access,
)
from agentjournal.domain.session import Session, derive_title, leaves_turns_alone
from agentjournal.domain.values import (
    AssistantMessage,
    ComputeBinding,
    CustomTool,
    FileState,
    Lineage,
    McpServer,
    McpToolPolicy,
    Message,
    ModelCall,
    PackageInstall,
    SessionConfig,
    Status,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)
from agentjournal.lazy import LazyNames

if TYPE_CHECKING:
    from agentjournal.domain.agent import Agent, AgentDefinition, AgentVersion
    from agentjournal.domain.environment import (
        CloudConfig,
        Environment,
        EnvironmentConfig,
        EnvironmentDefinition,
        LimitedNetwork,
        Networking,
        Packages,
        SelfHostedConfig,
        UnrestrictedNetwork,
    )
    from agentjournal.domain.memory import MemoryStore
    from agentjournal.domain.vault import Credential, Vault, VaultError

register_legacy_topics()

_LAZY = {
    "agentjournal.domain.agent": ("Agent", "AgentDefinition", "AgentVersion"),
    "agentjournal.domain.environment": (
        "CloudConfig",
        "Environment",
        "EnvironmentConfig",
        "EnvironmentDefinition",
        "LimitedNetwork",
        "Networking",
        "Packages",
        "SelfHostedConfig",
        "UnrestrictedNetwork",
    ),
    "agentjournal.domain.vault": ("Credential", "Vault", "VaultError"),
    "agentjournal.domain.memory": ("MemoryStore",),
}
"""The names imported on first use, by module."""

_NAMES = LazyNames(__name__, _LAZY)
__getattr__ = _NAMES.attribute
__dir__ = _NAMES.listing

__all__ = [
    "Agent",
    "AgentArchivedError",
    "AgentDefinition",
    "AgentJournalError",
    "AgentVersion",
    "AnswersMissing",
    "AssistantMessage",
    "CatalogError",
    "CloudConfig",
    "ComputeBinding",
    "ComputeNotAllowed",
    "Credential",
    "CustomTool",
    "Environment",
    "EnvironmentArchivedError",
    "EnvironmentConfig",
    "EnvironmentDefinition",
    "EnvironmentDeletedError",
    "FileState",
    "LimitedNetwork",
    "Lineage",
    "ManagedSandboxRequired",
    "McpServer",
    "McpToolPolicy",
    "Message",
    "Networking",
    "NoPendingAction",
    "NoTurnInProgress",
    "NotTerminated",
    "SessionArchivedError",
    "ModelCall",
    "PackageInstall",
    "Packages",
    "SelfHostedConfig",
    "Session",
    "SessionBusy",
    "SessionConfig",
    "SessionError",
    "SessionTerminatedError",
    "StaleVersion",
    "Status",
    "StopReason",
    "ToolCall",
    "ToolResult",
    "UnconfinedHostRefused",
    "UnknownToolCall",
    "UnrestrictedNetwork",
    "Usage",
    "UserMessage",
    "MemoryStore",
    "Vault",
    "VaultError",
    "NetworkAccess",
    "check_compute",
    "check_confinement",
    "check_package_sandbox",
    "derive_title",
    "leaves_turns_alone",
    "network_access",
]
