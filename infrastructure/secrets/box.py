"""Vault secrets sealed with AES-256-GCM (eventsourcing's ``AESCipher``), under a key
that is never part of the store.

The key comes from ``AGENTJOURNAL_VAULT_KEY`` (base64 of 32 bytes, as
``AESCipher.create_key(32)`` makes one): what several servers sharing one store must
be given. Without it, the key is read from ``vault.key`` in the data folder, created on
first use readable by its owner only (a server on one machine needs nothing more).
A box that cannot open what another key sealed says so (:class:`SecretBoxError`).
"""

from __future__ import annotations

import os
from pathlib import Path

from eventsourcing.cipher import AESCipher
from eventsourcing.utils import Environment

from agentjournal.application.ports import SecretBoxError

KEY_ENV = "AGENTJOURNAL_VAULT_KEY"
KEY_FILE = "vault.key"


class AesSecretBox:
    """A :class:`~agentjournal.application.ports.SecretBox` over AES-256-GCM."""

    def __init__(self, key: str) -> None:
        try:
            self.cipher = AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
        except ValueError as e:
            raise SecretBoxError(f"the vault key is not usable: {e}") from None

    @classmethod
    def for_home(cls, home: Path) -> AesSecretBox:
        """The box for this process: the key from the environment, else the data folder's."""
        key = os.environ.get(KEY_ENV) or _key_file(home / KEY_FILE)
        return cls(key)

    def seal(self, secret: bytes) -> bytes:
        return self.cipher.encrypt(secret)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self.cipher.decrypt(sealed)
        except ValueError:
            raise SecretBoxError(
                f"a vault secret cannot be opened with this key (set {KEY_ENV} to the key that sealed it)"
            ) from None


def _key_file(path: Path) -> str:
    """The key kept in ``path``, made (owner-only) the first time."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESCipher.create_key(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    return key
