"""API keys: ``x-api-key: KEY`` or ``Authorization: Bearer KEY``, as the SDK sends them.

Keys come from ``AGENTJOURNAL_API_KEYS`` (comma-separated). Every request needs one
of them, compared in constant time; a missing or wrong key is a 401
``authentication_error`` that does not say which keys exist. A server without keys
runs only when it was told to, and only on a loopback address (checked where it
starts, :mod:`.serve`). A web page in a browser on the same machine can still reach
such a server, so without keys a request must also be addressed to a loopback name
(the ``Host`` header: a page that points its own name at 127.0.0.1, DNS rebinding,
sends its own name) and, when a browser says where it comes from (``Origin``), come
from the server's own origin: a 403 ``permission_error`` otherwise.

The session browser's page (``/``) and its assets (``/browser/...``) are the one
exception to needing a key: static files that hold no data, loaded by a browser before
it has a key to send. Every request for data, the page's own included, needs a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

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
    # Every key is compared, so the time taken says nothing about which one was close; as
    # digests of one length, so it says nothing about how long the keys are either.
    digest = hashlib.sha256(given.encode()).digest()
    found = False
    for key in keys:
        found |= hmac.compare_digest(digest, hashlib.sha256(key.encode()).digest())
    return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_refusal(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why a request to a server without keys is refused (see the module), or None."""
    found = {name: value.decode("latin-1") for name, value in headers if name in (b"host", b"origin")}
    host = found.get(b"host", "")
    if not is_loopback(_hostname(host)):
        return f"this server has no API keys and answers only requests to a loopback address, not to {host!r}"
    origin = found.get(b"origin")
    if origin is not None and _netloc(origin) != host:
        return f"this server has no API keys and answers only pages of its own origin, not {origin!r}"
    return None


def _hostname(host: str) -> str:
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:  # such as an unclosed IPv6 bracket
        return ""


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc
    except ValueError:
        return None


WorkerGate = Callable[[Scope, str], "tuple[int, str] | None"]
"""Checks a worker key for a request (its scope): the refusal, or None (see :mod:`.work`)."""


class RequireApiKey:
    """ASGI middleware refusing HTTP requests without a valid key. ``keys`` empty means
    no auth (the caller decided that was allowed): only local requests are served.

    A key that begins with ``worker_prefix`` is a self-hosted environment's worker key,
    and ``worker_gate`` decides, whether or not the server has API keys."""

    def __init__(
        self,
        app: ASGIApp,
        keys: frozenset[str],
        worker_prefix: str = "",
        worker_gate: WorkerGate | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.worker_prefix = worker_prefix
        self.worker_gate = worker_gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = presented_key(scope["headers"]) if scope["type"] == "http" else None
        if (
            given
            and self.worker_gate is not None
            and self.worker_prefix
            and given.startswith(self.worker_prefix)
        ):
            refused = await asyncio.to_thread(self.worker_gate, scope, given)
            if refused is not None:
                await error_response(*refused)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and not (self.keys and is_public(scope)):
            refusal = self._refusal(scope["headers"])
            if refusal is not None:
                await error_response(*refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[int, str] | None:
        if not self.keys:
            local = local_refusal(headers)
            return None if local is None else (403, local)
        given = presented_key(headers)
        if given is None:
            return 401, "missing API key: send it as x-api-key or Authorization: Bearer"
        if not key_matches(given, self.keys):
            return 401, "invalid API key"
        return None
