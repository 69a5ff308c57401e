"""Ids on the wire. The engine's aggregates have UUIDs; the API shows them the cloud's
way, a prefix and the UUID's hex (``sesn_``, ``agent_``, ``env_``, ``file_``), and accepts the
plain UUID too, so an id from the CLI works in a URL."""

from __future__ import annotations

from uuid import UUID

from agentjournal.infrastructure.server.errors import not_found

SESSION = "sesn_"
AGENT = "agent_"
ENVIRONMENT = "env_"
FILE = "file_"
VAULT = "vlt_"
MEMORY_STORE = "memstore_"

_NAMES = {
    SESSION: "session", AGENT: "agent", ENVIRONMENT: "environment", FILE: "file", VAULT: "vault",
    MEMORY_STORE: "memory store",
}  # fmt: skip


def wire_id(prefix: str, value: UUID) -> str:
    return prefix + value.hex


def parse_id(prefix: str, text: str) -> UUID:
    """The UUID behind a wire id; an id of another kind or malformed is not found (404)."""
    body = text[len(prefix) :] if text.startswith(prefix) else text
    try:
        if len(body) in (32, 36):
            return UUID(body)
    except ValueError:
        pass
    raise not_found(_NAMES[prefix], text)
