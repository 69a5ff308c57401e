"""Session summary tables, one module per event store eventsourcing supports here."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher

from agentjournal.application.projection import SessionSummary
from agentjournal.domain import Status, Usage

COLUMNS = (
    "id", "name", "model", "status", "title",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
    "message_count", "tool_call_count", "turn_count", "version",
    "created_at", "updated_at", "parent_id", "parent_version", "last_error",
)  # fmt: skip


class Sealer:
    """Encrypts the summary columns that hold what people wrote (the title comes from the
    first prompt, the last error may quote a reply) with the store's cipher, if it has one."""

    def __init__(self, cipher: Cipher | None) -> None:
        self.cipher = cipher

    def seal(self, text: str) -> str:
        if self.cipher is None or not text:
            return text
        return base64.b64encode(self.cipher.encrypt(text.encode())).decode()

    def open(self, text: str) -> str:
        if self.cipher is None or not text:
            return text
        return self.cipher.decrypt(base64.b64decode(text)).decode()


def storable(text: str) -> str:
    """``text`` as a text column can hold it: PostgreSQL refuses NUL, so it is shown as
    U+FFFD, in every store alike. Only the summary changes; the log keeps the exact text."""
    return text.replace("\x00", "\ufffd")


def to_row(s: SessionSummary, sealer: Sealer) -> tuple[Any, ...]:
    u = s.usage
    return (
        str(s.id), storable(s.name), storable(s.model), s.status.value, sealer.seal(storable(s.title)),
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_creation_tokens,
        s.message_count, s.tool_call_count, s.turn_count, s.version,
        s.created_at.isoformat(), s.updated_at.isoformat(),
        str(s.parent_id) if s.parent_id else None, s.parent_version, sealer.seal(storable(s.last_error)),
    )  # fmt: skip


def from_row(row: Any, sealer: Sealer) -> SessionSummary:
    r = {column: row[column] for column in COLUMNS}
    return SessionSummary(
        id=UUID(r["id"]),
        name=r["name"],
        model=r["model"],
        status=Status(r["status"]),
        title=sealer.open(r["title"]),
        usage=Usage(
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cache_read_tokens=r["cache_read_tokens"],
            cache_creation_tokens=r["cache_creation_tokens"],
        ),
        message_count=r["message_count"],
        tool_call_count=r["tool_call_count"],
        turn_count=r["turn_count"],
        version=r["version"],
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        parent_id=UUID(r["parent_id"]) if r["parent_id"] else None,
        parent_version=r["parent_version"],
        last_error=sealer.open(r["last_error"]),
    )
