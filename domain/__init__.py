"""The domain model of sessionlog: the ``Session`` aggregate, its events and values.

Pure: no I/O, no model provider, no container engine.
"""

from domain.errors import (
    ManagedSandboxRequired,
    NoTurnInProgress,
    SessionBusy,
    SessionError,
    SessionTerminatedError,
    UnknownToolCall,
)
from domain.policy import check_package_sandbox
from domain.session import Session, derive_title
from domain.values import (
    AssistantMessage,
    ComputeBinding,
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

__all__ = [
    "AssistantMessage",
    "ComputeBinding",
    "Lineage",
    "ManagedSandboxRequired",
    "Message",
    "NoTurnInProgress",
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
    "check_package_sandbox",
    "derive_title",
]
