"""``/v1/vaults`` and ``/v1/vaults/{id}/credentials``: credentials for MCP servers.

Vaults are the engine's ``Vault`` aggregates (:mod:`agentjournal.application.vaults`).
Secrets are write-only: a credential's ``auth`` comes back with its ``type`` and
``mcp_server_url`` (and an OAuth token's ``expires_at``), never a token.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentjournal.application.catalog_projection import VaultView
from agentjournal.application.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from agentjournal.domain import Credential, Vault
from agentjournal.infrastructure.server.agents import page_json
from agentjournal.infrastructure.server.bodies import read_json
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import VAULT, parse_id, wire_id
from agentjournal.infrastructure.server.query import query_bool, query_int
from agentjournal.infrastructure.server.sessions import engine_of
from agentjournal.infrastructure.server.wire import wire_time

CREDENTIAL = "vcrd_"
VAULT_FIELDS = frozenset({"display_name", "metadata"})
CREDENTIAL_FIELDS = frozenset({"display_name", "metadata", "auth"})


def vault_json(vault: Vault | VaultView) -> dict[str, Any]:
    """The API's ``vault`` object."""
    if isinstance(vault, Vault):
        created, updated = vault.created_on, vault.modified_on
    else:
        created, updated = vault.created_at, vault.updated_at
    return {
        "type": "vault",
        "id": wire_id(VAULT, vault.id),
        "display_name": vault.display_name,
        "metadata": dict(vault.metadata),
        "created_at": wire_time(created),
        "updated_at": wire_time(updated),
        "archived_at": wire_time(vault.archived_at) if vault.archived_at else None,
    }


def credential_json(vault: Vault, credential: Credential) -> dict[str, Any]:
    """The API's ``vault_credential`` object: what the credential is for, never its secret."""
    created, updated, archived = vault.credential_times[credential.id]
    auth: dict[str, Any] = {"type": credential.kind, "mcp_server_url": credential.mcp_server_url}
    if credential.kind == "mcp_oauth":
        auth["expires_at"] = credential.expires_at or None
    return {
        "type": "vault_credential",
        "id": CREDENTIAL + credential.id,
        "vault_id": wire_id(VAULT, vault.id),
        "display_name": credential.display_name or None,
        "metadata": dict(credential.metadata),
        "auth": auth,
        "created_at": wire_time(created),
        "updated_at": wire_time(updated),
        "archived_at": wire_time(archived) if archived else None,
    }


async def create_vault(request: Request) -> JSONResponse:
    vaults = engine_of(request).vaults
    body = await _body(request, VAULT_FIELDS)
    vault = await asyncio.to_thread(vaults.create, body.get("display_name"), body.get("metadata"))
    return JSONResponse(vault_json(vault))


async def list_vaults(request: Request) -> JSONResponse:
    vaults = engine_of(request).vaults
    page: Page[VaultView] = await asyncio.to_thread(
        vaults.list,
        include_archived=query_bool(request, "include_archived"),
        limit=query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        page=request.query_params.get("page"),
    )
    return JSONResponse(page_json(page, vault_json))


async def retrieve_vault(request: Request) -> JSONResponse:
    return JSONResponse(
        vault_json(await asyncio.to_thread(engine_of(request).vaults.get, _vault_id(request)))
    )


async def update_vault(request: Request) -> JSONResponse:
    body = await _body(request, VAULT_FIELDS)
    vaults = engine_of(request).vaults
    vault = await asyncio.to_thread(
        vaults.update, _vault_id(request), body.get("display_name"), body.get("metadata")
    )
    return JSONResponse(vault_json(vault))


async def archive_vault(request: Request) -> JSONResponse:
    return JSONResponse(
        vault_json(await asyncio.to_thread(engine_of(request).vaults.archive, _vault_id(request)))
    )


async def delete_vault(request: Request) -> JSONResponse:
    vault_id = _vault_id(request)
    await asyncio.to_thread(engine_of(request).vaults.delete, vault_id)
    return JSONResponse({"type": "vault_deleted", "id": wire_id(VAULT, vault_id)})


async def create_credential(request: Request) -> JSONResponse:
    body = await _body(request, CREDENTIAL_FIELDS)
    vaults = engine_of(request).vaults
    vault, credential = await asyncio.to_thread(
        vaults.add_credential,
        _vault_id(request),
        body.get("auth"),
        body.get("display_name"),
        body.get("metadata"),
    )
    return JSONResponse(credential_json(vault, credential))


async def list_credentials(request: Request) -> JSONResponse:
    vault = await asyncio.to_thread(engine_of(request).vaults.get, _vault_id(request))
    archived = query_bool(request, "include_archived")
    shown = [
        credential_json(vault, c)
        for c in reversed(vault.credentials.values())
        if archived or vault.credential_times[c.id][2] is None
    ]
    return JSONResponse({"data": shown, "next_page": None, "prev_page": None})


async def retrieve_credential(request: Request) -> JSONResponse:
    vault = await asyncio.to_thread(engine_of(request).vaults.get, _vault_id(request))
    return JSONResponse(credential_json(vault, vault.credential(_credential_id(request))))


async def update_credential(request: Request) -> JSONResponse:
    body = await _body(request, CREDENTIAL_FIELDS)
    vaults = engine_of(request).vaults
    vault, credential = await asyncio.to_thread(
        vaults.update_credential,
        _vault_id(request),
        _credential_id(request),
        body.get("auth"),
        body.get("display_name"),
        body.get("metadata"),
    )
    return JSONResponse(credential_json(vault, credential))


async def archive_credential(request: Request) -> JSONResponse:
    credential_id = _credential_id(request)
    vault = await asyncio.to_thread(
        engine_of(request).vaults.archive_credential, _vault_id(request), credential_id
    )
    return JSONResponse(credential_json(vault, vault.credential(credential_id)))


async def delete_credential(request: Request) -> JSONResponse:
    credential_id = _credential_id(request)
    await asyncio.to_thread(engine_of(request).vaults.delete_credential, _vault_id(request), credential_id)
    return JSONResponse({"type": "vault_credential_deleted", "id": CREDENTIAL + credential_id})


async def _body(request: Request, known: frozenset[str]) -> dict[str, Any]:
    body = await read_json(request, dict[str, Any])
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field")
    return body


def _vault_id(request: Request) -> UUID:
    return parse_id(VAULT, request.path_params["vault_id"])


def _credential_id(request: Request) -> str:
    text = str(request.path_params["credential_id"])
    return text.removeprefix(CREDENTIAL)


routes = [
    Route("/v1/vaults", create_vault, methods=["POST"]),
    Route("/v1/vaults", list_vaults, methods=["GET"]),
    Route("/v1/vaults/{vault_id}", retrieve_vault, methods=["GET"]),
    Route("/v1/vaults/{vault_id}", update_vault, methods=["POST"]),
    Route("/v1/vaults/{vault_id}/archive", archive_vault, methods=["POST"]),
    Route("/v1/vaults/{vault_id}", delete_vault, methods=["DELETE"]),
    Route("/v1/vaults/{vault_id}/credentials", create_credential, methods=["POST"]),
    Route("/v1/vaults/{vault_id}/credentials", list_credentials, methods=["GET"]),
    Route("/v1/vaults/{vault_id}/credentials/{credential_id}", retrieve_credential, methods=["GET"]),
    Route("/v1/vaults/{vault_id}/credentials/{credential_id}", update_credential, methods=["POST"]),
    Route("/v1/vaults/{vault_id}/credentials/{credential_id}/archive", archive_credential, methods=["POST"]),
    Route("/v1/vaults/{vault_id}/credentials/{credential_id}", delete_credential, methods=["DELETE"]),
]
