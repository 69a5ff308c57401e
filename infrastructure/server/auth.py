"""API keys: ``x-api-key: KEY`` or ``Authorization: Bearer KEY``, as the SDK sends them.

Keys come from ``AGENTJOURNAL_API_KEYS`` (comma-separated). Every request needs one
of them, compared in constant time; a missing or wrong key is a 401
``authentication_error`` that does not say which keys exist. A server without keys
answers every request only when it was told to run without auth, and only on a
loopback address (checked where it starts, :mod:`.serve`).

The session browser's page (``/``) and its assets (``/browser/...``) are the one
exception: static files that hold no data, loaded by a browser before it has a key to
send. Every request for data, the page's own included, needs a key.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from agentjournal.infrastructure.server.errors import error_response

KEYS_ENV = "AGENTJOURNAL_API_KEYS"

BROWSER_PAGE = "/"
BROWSER_ASSETS = "/browser/"
"""Where the session browser's static files are served (:mod:`.browser`)."""


def parse_keys(text: str | None) -> frozenset[str]:
    """The keys in a comma-separated list; blanks are ignored."""
    return frozenset(k.strip() for k in (text or "").split(",") if k.strip())


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


def is_public(scope: Scope) -> bool:
    """A request for the browser's page or one of its assets, which any client may read."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    path: str = scope["path"]
    return path == BROWSER_PAGE or (path.startswith(BROWSER_ASSETS) and ".." not in path.split("/"))


def key_matches(given: str, keys: frozenset[str]) -> bool:
    # Every key is compared, so the time taken says nothing about which one was close.
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


class RequireApiKey:
    """ASGI middleware refusing HTTP requests without a valid key. ``keys`` empty means
    no auth (the caller decided that was allowed)."""

    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys and not is_public(scope):
            given = presented_key(scope["headers"])
            if given is None:
                response = error_response(
                    401, "missing API key: send it as x-api-key or Authorization: Bearer"
                )
                await response(scope, receive, send)
                return
            if not key_matches(given, self.keys):
                await error_response(401, "invalid API key")(scope, receive, send)
                return
        await self.app(scope, receive, send)
