"""The blob store beside the event store: deduplicated, checked on read, encrypted at rest."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from eventsourcing.cipher import AESCipher

from agentjournal.application.errors import BlobDamaged, BlobMissing
from agentjournal.application.service import SessionService


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_contents_are_stored_once_under_their_hash(service: SessionService, open_service):
    assert service.blobs.add([b"hello", b"world", b"hello"]) == 10
    assert service.blobs.add([b"hello", b"again"]) == 5  # only what was new
    assert service.blobs.get(sha(b"hello")) == b"hello"
    assert service.blobs.stored([sha(b"hello"), sha(b"again"), sha(b"never")]) == {
        sha(b"hello"),
        sha(b"again"),
    }
    other = open_service()  # another process on the same store sees them, and adds nothing
    assert other.blobs.add([b"world"]) == 0
    assert other.blobs.get(sha(b"world")) == b"world"


def test_missing_contents_are_an_error(service: SessionService):
    with pytest.raises(BlobMissing, match=sha(b"nowhere")):
        service.blobs.get(sha(b"nowhere"))


def test_changed_contents_are_found_not_served(tmp_path: Path):
    db = tmp_path / "s.db"
    service = SessionService({"SQLITE_DBNAME": str(db)})
    service.blobs.add([b"print('hi')\n"])
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE blobs_v1 SET body = ?", (b"print('pwned')\n",))
    with pytest.raises(BlobDamaged):
        service.blobs.get(sha(b"print('hi')\n"))
    service.close()


def test_with_a_cipher_the_table_holds_no_plaintext(tmp_path: Path):
    db = tmp_path / "s.db"
    key = AESCipher.create_key(32)
    service = SessionService({"SQLITE_DBNAME": str(db), "CIPHER_KEY": key})
    secret = b"the launch code is tangerine-42"
    assert service.blobs.add([secret]) == len(secret)
    assert service.blobs.add([secret]) == 0  # still deduplicated
    assert service.blobs.get(sha(secret)) == secret
    service.close()
    assert b"tangerine" not in db.read_bytes()
    with sqlite3.connect(db) as raw:
        (body,) = raw.execute("SELECT body FROM blobs_v1").fetchone()
        raw.execute("UPDATE blobs_v1 SET body = ?", (body[:-1] + bytes([body[-1] ^ 1]),))
    reopened = SessionService({"SQLITE_DBNAME": str(db), "CIPHER_KEY": key})
    with pytest.raises(BlobDamaged):
        reopened.blobs.get(sha(secret))
    reopened.close()
