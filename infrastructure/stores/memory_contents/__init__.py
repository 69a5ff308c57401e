"""Memory versions' contents, sealed outside the log: one table per event store.

The table (``memory_contents_v1``) lives in the event store's own database, a row per
version: ``(version_id, store_id, body)``, the body encrypted with the store's cipher when
it has one, as events are. Erasing a version's row is how a redaction removes what the
version wrote (see :mod:`agentjournal.domain.memory`); each implementation says how far
its database lets the bytes go.
"""

from __future__ import annotations

from eventsourcing.persistence import Cipher

TABLE = "memory_contents_v1"


class BodySealer:
    """Encrypts a content with the store's cipher, if it has one."""

    def __init__(self, cipher: Cipher | None) -> None:
        self.cipher = cipher

    def seal(self, content: str) -> bytes:
        data = content.encode()
        return data if self.cipher is None else self.cipher.encrypt(data)

    def open(self, body: bytes) -> str:
        return (body if self.cipher is None else self.cipher.decrypt(body)).decode()
