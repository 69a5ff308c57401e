"""Reading logs that agentjournal wrote under its first name, sessionlog 0.1.

Those stores and exports name classes by the module paths of the time: event
topics such as ``domain.session:Session.UserMessageAdded``, and the value types
inside payloads and snapshots such as ``domain.values:ToolCall``. eventsourcing
resolves a topic through its topic cache before importing anything, so
registering the old module names against today's modules makes every old topic
resolve to today's class, without rewriting a stored byte.

Their hash chains covered the event's topic rather than its type name, so a
verifier also accepts :func:`legacy_type_name` for an event.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from agentjournal.domain import session, values

LEGACY_EXPORT_FORMATS = frozenset({"sessionlog-events/1"})
"""Export formats of sessionlog 0.1, read like today's."""

_LEGACY_MODULES = {"domain.session": session, "domain.values": values}


def register_legacy_topics() -> None:
    """Make the topics written by sessionlog 0.1 resolve to today's classes (idempotent)."""
    for name, module in _LEGACY_MODULES.items():
        register_topic(name, module)


def legacy_type_name(event_class: type) -> str:
    """The name sessionlog 0.1 hashed for an event of this class: its topic of the time."""
    return f"domain.session:{event_class.__qualname__}"
