"""The domain model of agentjournal: the ``Session``, ``Agent`` and ``Environment``
aggregates, their events and values.

Pure: no I/O, no model provider, no container engine.
"""

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
from agentjournal.domain.errors import (
    AgentArchivedError,
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
    UnknownToolCall,
)
from agentjournal.domain.legacy import register_legacy_topics
from agentjournal.domain.policy import check_compute, check_package_sandbox
from agentjournal.domain.session import Session, derive_title
from agentjournal.domain.values import (
    AssistantMessage,
    ComputeBinding,
    CustomTool,
    FileState,
    Lineage,
    Message,
    PackageInstall,
    SessionConfig,
    Status,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
    UserMessage,
)

register_legacy_topics()

__all__ = [
    "Agent",
    "AgentArchivedError",
    "AgentDefinition",
    "AgentVersion",
    "AnswersMissing",
    "AssistantMessage",
    "CatalogError",
    "CloudConfig",
    "ComputeBinding",
    "ComputeNotAllowed",
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
    "Message",
    "Networking",
    "NoPendingAction",
    "NoTurnInProgress",
    "NotTerminated",
    "SessionArchivedError",
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
    "UnknownToolCall",
    "UnrestrictedNetwork",
    "Usage",
    "UserMessage",
    "check_compute",
    "check_package_sandbox",
    "derive_title",
]
