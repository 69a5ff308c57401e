"""The blob store: file contents keyed by their SHA-256, one table per event store.

The table lives in the event store's own database (SQLite file or PostgreSQL schema),
named with its schema version (``blobs_v1``) as the read models' tables are. A row is
``(hash, size, body)``. With a cipher (``CIPHER_KEY``) the body is encrypted with it, as
the events are; the key stays the plaintext's hash, so deduplication still works, and the
hash is all the table tells about a file (anyone who can guess a file's exact contents can
confirm it is stored, as with any content-addressed store).

Reading checks the contents against the hash they are stored under, so a changed row is
found (``BlobDamaged``), never served as the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from eventsourcing.persistence import Cipher

from agentjournal.application.errors import BlobDamaged

TABLE = "blobs_v1"


def digest_of(data: bytes) -> str:
    """The name of ``data`` in the store: its SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()


def by_digest(contents: Iterable[bytes]) -> dict[str, bytes]:
    """``contents`` keyed by their digests, each once."""
    return {digest_of(data): data for data in contents}


class BlobSealer:
    """Encrypts bodies with the store's cipher, if it has one, and checks them on the way out."""

    def __init__(self, cipher: Cipher | None) -> None:
        self.cipher = cipher

    def seal(self, data: bytes) -> bytes:
        return data if self.cipher is None else self.cipher.encrypt(data)

    def open(self, digest: str, body: bytes) -> bytes:
        """The contents of a stored ``body``; ``BlobDamaged`` unless they match ``digest``."""
        try:
            data = body if self.cipher is None else self.cipher.decrypt(body)
        except ValueError:  # the cipher's authentication failed: the body was changed
            raise BlobDamaged(digest) from None
        if digest_of(data) != digest:
            raise BlobDamaged(digest)
        return data
