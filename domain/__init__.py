"""The domain model of agentjournal: the ``Session`` aggregate, its events and values.

Pure: no I/O, no model provider, no container engine.
"""

from agentjournal.domain.errors import (
    AnswersMissing,
    ComputeNotAllowed,
    ManagedSandboxRequired,
    NoPendingAction,
    NotTerminated,
    NoTurnInProgress,
    SessionArchivedError,
    SessionBusy,
    SessionError,
    SessionTerminatedError,
    UnknownToolCall,
)
from agentjournal.domain.legacy import register_legacy_topics
from agentjournal.domain.policy import check_compute, check_package_sandbox
from agentjournal.domain.session import Session, derive_title
from agentjournal.domain.values import (
    AssistantMessage,
    ComputeBinding,
    CustomTool,
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
    "AnswersMissing",
    "AssistantMessage",
    "ComputeBinding",
    "ComputeNotAllowed",
    "CustomTool",
    "Lineage",
    "ManagedSandboxRequired",
    "Message",
    "NoPendingAction",
    "NoTurnInProgress",
    "NotTerminated",
    "SessionArchivedError",
    "PackageInstall",
    "Session",
    "SessionBusy",
    "SessionConfig",
    "SessionError",
    "SessionTerminatedError",
    "Status",
    "StopReason",
    "ToolCall",
    "ToolResult",
    "UnknownToolCall",
    "Usage",
    "UserMessage",
    "check_compute",
    "check_package_sandbox",
    "derive_title",
]
