"""``Vaults``: credentials for MCP servers, write-only.

A vault (:class:`~agentjournal.domain.Vault`) is an aggregate in the session store,
hash-chained and exported like agents and environments; its events say which
credentials exist and when they changed. A credential's secret (a ``static_bearer``
token; an ``mcp_oauth`` access token, with its refresh settings) is sealed by a
:class:`~agentjournal.application.ports.SecretBox`, whose key the store never holds,
and kept in the store's blob table under the digest of the sealed bytes, which is all
the vault records of it. Nothing returns a secret but :meth:`Vaults.tokens` (and
:meth:`Vaults.refresh`), which a turn's runtime calls to authenticate to the session's
MCP servers.

An ``mcp_oauth`` credential given ``refresh`` settings is refreshed at its token
endpoint (a :class:`~agentjournal.application.ports.TokenEndpoint`) when its access token
has expired, or when the MCP server refuses it: the new access token (and the rotated
refresh token, if the endpoint sent one) is sealed like any secret and the credential
updated, so the vault records that its secret changed, never what it became.

A session names its vaults (``vault_ids``, recorded); a credential is used for the MCP
server whose URL equals its ``mcp_server_url``, the first vault holding one winning.
A server without one is tried without credentials.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import msgspec
from eventsourcing.persistence import IntegrityError

from agentjournal.application import adapters
from agentjournal.application.catalog import Catalog
from agentjournal.application.catalog_projection import VaultView
from agentjournal.application.errors import ConfigError, StoreError
from agentjournal.application.fields import patched_metadata
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from agentjournal.application.ports import OAuthRefreshError, SecretBox, TokenEndpoint
from agentjournal.application.service import SessionService, data_home
from agentjournal.domain import AgentJournalError, Credential, Vault

MAX_DISPLAY_NAME = 255
SECRET_FIELDS = {"static_bearer": ("token",), "mcp_oauth": ("access_token", "refresh")}
"""The fields of each credential kind that are secret: sealed, never recorded, never returned."""
REFRESH_FIELDS = ("token_endpoint", "client_id", "refresh_token")
"""The ``refresh`` settings a refresh cannot do without."""
TOKEN_ENDPOINT_AUTH = ("none", "client_secret_basic", "client_secret_post")
EXPIRY_MARGIN = timedelta(seconds=30)
"""An access token this close to its expiry is refreshed before use."""


class VaultNotFound(AgentJournalError, LookupError):
    def __init__(self, what: str) -> None:
        super().__init__(f"no {what} in this store")
        self.what = what


class Vaults:
    """Creates, lists, updates, archives and deletes vaults and their credentials."""

    save_attempts = 6

    def __init__(self, catalog: Catalog, box: SecretBox, token_endpoint: TokenEndpoint | None = None) -> None:
        self.catalog = catalog
        self.service = catalog.service
        self.box = box
        self.token_endpoint = token_endpoint
        """Refreshes OAuth tokens (by default one that may reach any address: a server
        passes its own, refusing private ones unless its operator allows them)."""
        self._refreshing = threading.Lock()

    # -- vaults -----------------------------------------------------------------------------

    def create(self, display_name: str, metadata: Mapping[str, str] | None = None) -> Vault:
        vault = Vault.create(_display_name(display_name), patched_metadata({}, metadata))
        self.service.save(vault)
        return vault

    def get(self, vault_id: UUID) -> Vault:
        """The vault with this id; a deleted one, or anything else, is not found."""
        found = self.service.live(vault_id, Vault)
        if found is None:
            raise VaultNotFound(f"vault {vault_id}")
        return found

    def list(
        self, *, include_archived: bool = False, limit: int = DEFAULT_LIMIT, page: str | None = None
    ) -> Page[VaultView]:
        """Vaults, newest first, archived ones only when asked, deleted ones never."""
        return self.catalog.page("vault", include_archived=include_archived, limit=limit, page=page)

    def update(
        self,
        vault_id: UUID,
        display_name: str | None = None,
        metadata: Mapping[str, str | None] | None = None,
    ) -> Vault:
        """Rename the vault or patch its metadata (a key set to None is removed)."""

        def change(vault: Vault) -> None:
            name = vault.display_name if display_name is None else _display_name(display_name)
            vault.update(name, patched_metadata(vault.metadata, metadata))

        return self._apply(vault_id, change)

    def archive(self, vault_id: UUID) -> Vault:
        return self._apply(vault_id, Vault.archive)

    def delete(self, vault_id: UUID) -> Vault:
        return self._apply(vault_id, Vault.delete)

    # -- credentials ------------------------------------------------------------------------

    def add_credential(
        self,
        vault_id: UUID,
        auth: Mapping[str, Any],
        display_name: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[Vault, Credential]:
        """A new credential from the API's ``auth`` body; its secret is sealed, not recorded."""
        kind, url = _kind_and_url(auth)
        if auth.get("refresh") is not None:
            _check_refresh(auth["refresh"])
        credential = Credential(
            id=uuid4().hex,
            kind=kind,
            mcp_server_url=url,
            secret_ref=self._seal(_secret(kind, auth, required=True)),
            display_name=_display_name(display_name or "", empty_ok=True),
            metadata=patched_metadata({}, metadata),
            expires_at=_expires_at(auth),
            has_refresh=bool(auth.get("refresh")),
        )
        vault = self._apply(vault_id, lambda v: v.add_credential(credential))
        return vault, credential

    def update_credential(
        self,
        vault_id: UUID,
        credential_id: str,
        auth: Mapping[str, Any] | None = None,
        display_name: str | None = None,
        metadata: Mapping[str, str | None] | None = None,
    ) -> tuple[Vault, Credential]:
        """Change a credential's name, metadata or secret. ``auth`` gives its type and, to
        rotate the secret, the new one (its ``mcp_server_url`` cannot change)."""
        current = self.get(vault_id).credential(credential_id)
        changes: dict[str, Any] = {}
        if auth is not None:
            if auth.get("type") != current.kind:
                raise ConfigError(f"auth.type: this credential is {current.kind!r}")
            if auth.get("mcp_server_url", current.mcp_server_url) != current.mcp_server_url:
                raise ConfigError("auth.mcp_server_url: cannot change; create another credential")
            secret = _secret(current.kind, auth, required=False)
            if secret:
                stored = self._open(current.secret_ref)
                if secret.get("refresh"):  # the cloud's update patches the refresh settings
                    secret["refresh"] = {**(stored.get("refresh") or {}), **secret["refresh"]}
                    _check_refresh(secret["refresh"])
                changes["secret_ref"] = self._seal({**stored, **secret})
            if "expires_at" in auth:
                changes["expires_at"] = _expires_at(auth)
            if "refresh" in auth:
                changes["has_refresh"] = bool(auth["refresh"])
        if display_name is not None:
            changes["display_name"] = _display_name(display_name, empty_ok=True)
        if metadata is not None:
            changes["metadata"] = patched_metadata(current.metadata, metadata)

        def change(vault: Vault) -> None:
            vault.update_credential(_replaced(vault.live_credential(credential_id), changes))

        vault = self._apply(vault_id, change)
        return vault, vault.credential(credential_id)

    def archive_credential(self, vault_id: UUID, credential_id: str) -> Vault:
        return self._apply(vault_id, lambda v: v.archive_credential(credential_id))

    def delete_credential(self, vault_id: UUID, credential_id: str) -> Vault:
        return self._apply(vault_id, lambda v: v.delete_credential(credential_id))

    # -- what turns use ---------------------------------------------------------------------

    def tokens(self, vault_ids: Iterable[str], urls: Iterable[str]) -> dict[str, str]:
        """The bearer token for each of ``urls`` that a live credential of the vaults holds
        (the first vault with one wins). Vaults archived or gone since are skipped. An OAuth
        access token past its expiry is refreshed first, when it can be."""
        tokens: dict[str, str] = {}
        vault_ids = tuple(vault_ids)
        for url in urls:
            found = self._credential_for(vault_ids, url)
            if found is None:
                continue
            vault, credential = found
            secret = self._open(credential.secret_ref)
            token = str(secret.get("token") or secret.get("access_token"))
            if _expired(credential.expires_at) and secret.get("refresh"):
                token = self.refresh(vault_ids, url, token) or token
            tokens[url] = token
        return tokens

    def refresh(self, vault_ids: Iterable[str], url: str, refused: str | None) -> str | None:
        """A new access token for ``url``'s ``mcp_oauth`` credential, whose token
        ``refused`` the server refused or was out of date; None when it has no refresh
        settings or the endpoint refused. A credential that already holds another token
        (refreshed meanwhile, by this process or another) gives that one."""
        with self._refreshing:
            found = self._credential_for(tuple(vault_ids), url)
            if found is None or found[1].kind != "mcp_oauth":
                return None
            vault, credential = found
            secret = self._open(credential.secret_ref)
            if secret.get("access_token") != refused:
                return str(secret["access_token"])
            settings = secret.get("refresh")
            if not settings:
                return None
            if self.token_endpoint is None:
                self.token_endpoint = adapters.token_endpoint(allow_private=True)
            try:
                grant = self.token_endpoint.refresh(settings)
            except OAuthRefreshError:
                return None
            renewed = {**secret, "access_token": grant.access_token}
            if grant.refresh_token:
                renewed["refresh"] = {**settings, "refresh_token": grant.refresh_token}
            changes = {
                "secret_ref": self._seal(renewed),
                "expires_at": _expiry(grant.expires_in),
            }

            def renew(v: Vault) -> None:
                v.update_credential(_replaced(v.live_credential(credential.id), changes))

            self._apply(vault.id, renew)
            return grant.access_token

    def _credential_for(self, vault_ids: tuple[str, ...], url: str) -> tuple[Vault, Credential] | None:
        """The live credential for ``url`` in the first of the vaults holding one."""
        for vault_id in vault_ids:
            try:
                vault = self.get(UUID(vault_id))
            except VaultNotFound:
                continue
            if vault.archived_at is not None:
                continue
            credential = vault.credential_for(url)
            if credential is not None:
                return vault, credential
        return None

    def check_key(self) -> None:
        """Open one stored secret, if there is any: a :class:`SecretBoxError` now, when this
        process has another key than the one that sealed them, rather than at a turn."""
        page = self.list(include_archived=True, limit=MAX_LIMIT)
        while True:
            for row in page.items:
                credentials = list(self.get(row.id).credentials.values())
                if credentials:
                    self._open(credentials[0].secret_ref)
                    return
            if page.next_page is None:
                return
            page = self.list(include_archived=True, limit=MAX_LIMIT, page=page.next_page)

    def check_usable(self, vault_ids: Iterable[str]) -> tuple[str, ...]:
        """``vault_ids`` as a session records them, each a vault that exists and is not
        archived (a ConfigError naming the first that is not)."""
        checked = []
        for index, vault_id in enumerate(vault_ids):
            vault = self.get(_uuid(vault_id, f"vault_ids[{index}]"))
            if vault.archived_at is not None:
                raise ConfigError(f"vault_ids[{index}]: vault {vault_id} is archived")
            checked.append(str(vault.id))
        return tuple(dict.fromkeys(checked))

    # -- the sealed secrets -----------------------------------------------------------------

    def _seal(self, secret: Mapping[str, Any]) -> str:
        sealed = self.box.seal(json.dumps(secret).encode())
        self.service.blobs.add([sealed])
        return _digest(sealed)

    def _open(self, secret_ref: str) -> dict[str, Any]:
        opened: dict[str, Any] = json.loads(self.box.open(self.service.blobs.get(secret_ref)))
        return opened

    def _apply(self, vault_id: UUID, command: Callable[[Vault], None]) -> Vault:
        """Run ``command`` on the latest state and save it, again on newer state when another
        process saved first."""
        for attempt in range(1, self.save_attempts + 1):
            vault = self.get(vault_id)
            command(vault)
            try:
                self.service.save(vault)
                return vault
            except IntegrityError:
                if attempt == self.save_attempts:
                    raise StoreError(
                        f"vault {vault_id} kept changing; nothing was recorded: try again"
                    ) from None
                time.sleep(random.uniform(0, 0.01) * attempt)
        raise AssertionError("unreachable")


def _kind_and_url(auth: Mapping[str, Any]) -> tuple[str, str]:
    if not isinstance(auth, Mapping):
        raise ConfigError("auth: required, an object")
    kind, url = auth.get("type"), auth.get("mcp_server_url")
    if kind not in SECRET_FIELDS:
        raise ConfigError(f"auth.type: {kind!r} is not supported here; use {sorted(SECRET_FIELDS)}")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError("auth.mcp_server_url: required, an http or https URL")
    return str(kind), url


def _secret(kind: str, auth: Mapping[str, Any], required: bool) -> dict[str, Any]:
    """The secret fields of ``auth``; the first (the token itself) required when asked."""
    first, *rest = SECRET_FIELDS[kind]
    token = auth.get(first)
    if token is None and not required:
        return {name: auth[name] for name in rest if auth.get(name) is not None}
    if not isinstance(token, str) or not token:
        raise ConfigError(f"auth.{first}: required, a non-empty string")
    return {first: token, **{name: auth[name] for name in rest if auth.get(name) is not None}}


def _expired(expires_at: str) -> bool:
    """Whether an access token with this recorded expiry should be refreshed before use."""
    if not expires_at:
        return False
    try:
        moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment - EXPIRY_MARGIN <= datetime.now(timezone.utc)


def _expiry(expires_in: float | None) -> str:
    """The expiry to record for a token granted now that lasts ``expires_in`` seconds."""
    if expires_in is None:
        return ""
    return (datetime.now(timezone.utc) + timedelta(seconds=expires_in)).isoformat()


def _check_refresh(settings: object) -> None:
    """An ``mcp_oauth`` credential's ``refresh`` settings, as a refresh needs them."""
    if not isinstance(settings, Mapping):
        raise ConfigError("auth.refresh: must be an object")
    for name in REFRESH_FIELDS:
        if not isinstance(settings.get(name), str) or not settings[name]:
            raise ConfigError(f"auth.refresh.{name}: required, a non-empty string")
    if not str(settings["token_endpoint"]).startswith(("http://", "https://")):
        raise ConfigError("auth.refresh.token_endpoint: an http or https URL")
    method = settings.get("token_endpoint_auth", {"type": "none"})
    if not isinstance(method, Mapping) or method.get("type") not in TOKEN_ENDPOINT_AUTH:
        raise ConfigError(f"auth.refresh.token_endpoint_auth.type: one of {list(TOKEN_ENDPOINT_AUTH)}")
    if method["type"] != "none" and not isinstance(method.get("client_secret"), str):
        raise ConfigError("auth.refresh.token_endpoint_auth.client_secret: required, a string")


def _expires_at(auth: Mapping[str, Any]) -> str:
    value = auth.get("expires_at")
    if value is not None and not isinstance(value, str):
        raise ConfigError("auth.expires_at: must be an RFC 3339 time")
    return value or ""


def _display_name(name: str, empty_ok: bool = False) -> str:
    if not isinstance(name, str) or len(name) > MAX_DISPLAY_NAME or (not empty_ok and not name.strip()):
        raise ConfigError(f"display_name: 1 to {MAX_DISPLAY_NAME} characters")
    return name


def _replaced(credential: Credential, changes: Mapping[str, Any]) -> Credential:
    return msgspec.structs.replace(credential, **changes)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _uuid(text: str, field: str) -> UUID:
    body = text.removeprefix("vlt_")
    try:
        return UUID(body)
    except ValueError:
        raise VaultNotFound(f"vault {text!r} ({field})") from None


def open_vaults(service: SessionService) -> Vaults:
    """The vaults of ``service``'s store, their secrets sealed by this process's key."""
    return Vaults(Catalog(service), adapters.secret_box(data_home()))
