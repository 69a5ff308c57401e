"""Refreshing OAuth access tokens at a provider's token endpoint (RFC 6749 section 6).

The request is the standard form: ``grant_type=refresh_token``, the refresh token, the
client id, and the optional ``scope`` and ``resource`` (RFC 8707); the client
authenticates as its ``token_endpoint_auth`` says (``none``, ``client_secret_basic`` or
``client_secret_post``). Like the MCP client, it runs in the server: unless
``allow_private`` is set, an endpoint on a non-public address is refused before anything
is sent. No error message holds the refresh token or the client secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from agentjournal.application.ports import McpError, OAuthGrant, OAuthRefreshError
from agentjournal.infrastructure.mcp.client import refuse_private


class HttpTokenEndpoint:
    """A :class:`~agentjournal.application.ports.TokenEndpoint` over HTTP(S)."""

    def __init__(self, allow_private: bool = False, timeout: float = 30.0) -> None:
        self.allow_private = allow_private
        self.timeout = timeout

    def refresh(self, settings: Mapping[str, Any]) -> OAuthGrant:
        endpoint = str(settings["token_endpoint"])
        if not self.allow_private:
            try:
                refuse_private(endpoint)
            except McpError as e:
                raise OAuthRefreshError(str(e)) from None
        form = {
            "grant_type": "refresh_token",
            "refresh_token": str(settings["refresh_token"]),
            "client_id": str(settings["client_id"]),
        }
        for optional in ("scope", "resource"):
            if settings.get(optional):
                form[optional] = str(settings[optional])
        method = settings.get("token_endpoint_auth") or {"type": "none"}
        auth: httpx.BasicAuth | None = None
        if method.get("type") == "client_secret_basic":
            auth = httpx.BasicAuth(form["client_id"], str(method["client_secret"]))
        elif method.get("type") == "client_secret_post":
            form["client_secret"] = str(method["client_secret"])
        try:
            response = httpx.post(endpoint, data=form, auth=auth, timeout=self.timeout)
        except httpx.HTTPError as e:
            raise OAuthRefreshError(
                f"cannot reach the token endpoint {endpoint}: {type(e).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            error = body.get("error", "no access token") if isinstance(body, dict) else "no access token"
            raise OAuthRefreshError(
                f"the token endpoint {endpoint} refused: HTTP {response.status_code}, {error}"
            )
        expires = body.get("expires_in")
        rotated = body.get("refresh_token")
        return OAuthGrant(
            access_token=body["access_token"],
            expires_in=float(expires) if isinstance(expires, (int, float)) else None,
            refresh_token=rotated if isinstance(rotated, str) and rotated else None,
        )
