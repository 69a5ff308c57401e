"""The ``Vault`` aggregate: which credentials exist, for which MCP servers, and when they
changed; never their values.

A vault holds credentials that sessions name (``vault_ids``) to authenticate to MCP
servers: each is matched to a server by its ``mcp_server_url``, one live credential per
URL in a vault. The secret itself (a bearer token, an OAuth access token) is sealed
outside the aggregate; a credential records only ``secret_ref``, the name under which
the sealed bytes are kept (the digest of the ciphertext, which says nothing of the
secret), and an update records whether the secret changed. So the log, its exports and
anything folded from it can show a vault without holding a secret.

Archiving a vault or a credential keeps it readable and closed to changes (an archived
credential is no longer used); deleting hides it for good. Both are events, like
everything else: the log keeps the history.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate, as_recorded
from agentjournal.domain.errors import CatalogError

CREDENTIAL_KINDS = ("static_bearer", "mcp_oauth")


class Credential(msgspec.Struct, frozen=True, kw_only=True):
    """A credential as the log knows it: what it is for, never what it holds."""

    id: str
    kind: str
    """``static_bearer`` or ``mcp_oauth``."""
    mcp_server_url: str
    secret_ref: str
    """Where the sealed secret is kept (see the module's docstring)."""
    display_name: str = ""
    metadata: dict[str, str] = {}
    expires_at: str = ""
    """An OAuth access token's expiry as given (ISO 8601), if any."""
    has_refresh: bool = False
    """Whether an OAuth refresh token is kept beside the access token."""


class VaultError(CatalogError):
    """A rule of vaults was broken: an archived or deleted vault or credential changed, a
    second live credential for one server URL."""


class CredentialNotFound(VaultError, LookupError):
    def __init__(self, vault_id: object, credential_id: str) -> None:
        super().__init__(f"vault {vault_id} has no credential {credential_id}")


class Vault(ChainedAggregate):
    """A named set of credentials for MCP servers."""

    archived_at: datetime | None = None
    deleted: bool = False

    class Event(ChainedAggregate.Event):
        """Every event of a vault carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class VaultCreated(Created):
        display_name: str
        metadata: dict[str, str]

    def __init__(self, display_name: str, metadata: dict[str, str]) -> None:
        self.display_name = display_name
        self.metadata = dict(metadata)
        self.credentials: dict[str, Credential] = {}
        """Live and archived credentials by id (deleted ones are gone)."""
        self.credential_times: dict[str, tuple[datetime, datetime, datetime | None]] = {}
        """Per credential: created, last updated, archived."""

    @classmethod
    def create(cls, display_name: str, metadata: dict[str, str]) -> Vault:
        return cls._create_chained(cls.VaultCreated, GENESIS, display_name=display_name, metadata=metadata)

    # -- commands ---------------------------------------------------------------

    def update(self, display_name: str, metadata: dict[str, str]) -> bool:
        """Rename or re-label the vault; records nothing when nothing changes."""
        self._check_open()
        if (display_name, metadata) == (self.display_name, self.metadata):
            return False
        self.trigger_event(self.VaultUpdated, display_name=display_name, metadata=metadata)
        return True

    def archive(self) -> None:
        self._check_not_deleted()
        if self.archived_at is None:
            self.trigger_event(self.VaultArchived)

    def delete(self) -> None:
        self._check_not_deleted()
        self.trigger_event(self.VaultDeleted)

    def add_credential(self, credential: Credential) -> None:
        self._check_open()
        if credential.kind not in CREDENTIAL_KINDS:
            raise VaultError(f"credential type {credential.kind!r} is not one of {list(CREDENTIAL_KINDS)}")
        self._check_one_per_url(credential)
        self.trigger_event(self.CredentialAdded, credential=as_recorded(credential))

    def update_credential(self, credential: Credential) -> bool:
        """Replace a credential's description or secret (its kind and URL stay); records
        nothing when nothing changes."""
        self._check_open()
        current = self.live_credential(credential.id)
        if (credential.kind, credential.mcp_server_url) != (current.kind, current.mcp_server_url):
            raise VaultError("a credential's type and mcp_server_url cannot change; create another")
        credential = as_recorded(credential)
        if credential == current:
            return False
        self.trigger_event(
            self.CredentialUpdated,
            credential=credential,
            secret_changed=credential.secret_ref != current.secret_ref,
        )
        return True

    def archive_credential(self, credential_id: str) -> None:
        self._check_not_deleted()
        if self.credential(credential_id) and self.credential_times[credential_id][2] is None:
            self.trigger_event(self.CredentialArchived, credential_id=credential_id)

    def delete_credential(self, credential_id: str) -> None:
        self._check_not_deleted()
        self.credential(credential_id)
        self.trigger_event(self.CredentialDeleted, credential_id=credential_id)

    # -- queries ----------------------------------------------------------------

    def credential(self, credential_id: str) -> Credential:
        found = self.credentials.get(credential_id)
        if found is None:
            raise CredentialNotFound(self.id, credential_id)
        return found

    def live_credential(self, credential_id: str) -> Credential:
        credential = self.credential(credential_id)
        if self.credential_times[credential_id][2] is not None:
            raise VaultError(f"credential {credential_id} is archived")
        return credential

    def credential_for(self, url: str) -> Credential | None:
        """The live credential for MCP server ``url``, if the vault has one."""
        for credential in self.credentials.values():
            if credential.mcp_server_url == url and self.credential_times[credential.id][2] is None:
                return credential
        return None

    def _check_one_per_url(self, credential: Credential) -> None:
        if self.credential_for(credential.mcp_server_url) is not None:
            raise VaultError(
                f"vault {self.id} already has a credential for {credential.mcp_server_url}; "
                "update or archive it first"
            )

    def _check_open(self) -> None:
        self._check_not_deleted()
        if self.archived_at is not None:
            raise VaultError(f"vault {self.id} is archived")

    def _check_not_deleted(self) -> None:
        if self.deleted:
            raise VaultError(f"vault {self.id} is deleted")

    # -- events -----------------------------------------------------------------

    class VaultUpdated(Event):
        display_name: str
        metadata: dict[str, str]

        def apply(self, vault: Vault) -> None:
            vault.display_name = self.display_name
            vault.metadata = dict(self.metadata)

    class VaultArchived(Event):
        def apply(self, vault: Vault) -> None:
            vault.archived_at = self.timestamp

    class VaultDeleted(Event):
        def apply(self, vault: Vault) -> None:
            vault.deleted = True

    class CredentialAdded(Event):
        credential: Credential

        def apply(self, vault: Vault) -> None:
            vault.credentials[self.credential.id] = self.credential
            vault.credential_times[self.credential.id] = (self.timestamp, self.timestamp, None)

    class CredentialUpdated(Event):
        """A credential's new description; ``secret_changed`` says whether its secret was
        replaced (the new one is sealed elsewhere)."""

        credential: Credential
        secret_changed: bool

        def apply(self, vault: Vault) -> None:
            vault.credentials[self.credential.id] = self.credential
            created, _, archived = vault.credential_times[self.credential.id]
            vault.credential_times[self.credential.id] = (created, self.timestamp, archived)

    class CredentialArchived(Event):
        credential_id: str

        def apply(self, vault: Vault) -> None:
            created, _, _ = vault.credential_times[self.credential_id]
            vault.credential_times[self.credential_id] = (created, self.timestamp, self.timestamp)

    class CredentialDeleted(Event):
        credential_id: str

        def apply(self, vault: Vault) -> None:
            del vault.credentials[self.credential_id]
            del vault.credential_times[self.credential_id]
