"""Real MCP servers for tests: the official ``mcp`` package's FastMCP serving two tools
over Streamable HTTP on 127.0.0.1, with its own bearer check when given a token; a
ready-made server from the package index behind ``mcp-proxy``; and an OAuth token
endpoint standing for a provider."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import Context, FastMCP

from tests.conftest import wait_until


@dataclass
class McpServer:
    url: str
    tokens_seen: list[str] = field(default_factory=list)
    """Every bearer token the server's check was shown."""
    calls: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    """The MCP session (its ``Mcp-Session-Id``) each call came on, in order."""


class _Verifier:
    def __init__(self, token: str, server: McpServer) -> None:
        self.token, self.server = token, server

    async def verify_token(self, token: str) -> AccessToken | None:
        self.server.tokens_seen.append(token)
        if token != self.token:
            return None
        return AccessToken(token=token, client_id="tests", scopes=[])


@contextlib.contextmanager
def mcp_server(token: str | None = None, sse: bool = False) -> Iterator[McpServer]:
    """A FastMCP server with the tools ``add`` and ``shout``, requiring ``token`` if given;
    ``sse`` serves the legacy SSE transport instead of Streamable HTTP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = McpServer(f"{base}/sse" if sse else f"{base}/mcp")
    auth = {}
    if token is not None:
        auth = {
            "token_verifier": _Verifier(token, server),
            "auth": AuthSettings(
                issuer_url=base, resource_server_url=f"{base}/mcp", validate_token_resource=False
            ),
        }
    app = FastMCP("tests", host="127.0.0.1", port=port, **auth)  # type: ignore[arg-type]

    @app.tool()
    def add(a: int, b: int, ctx: Context) -> str:  # type: ignore[type-arg]
        """Add two integers."""
        server.calls.append(("add", {"a": a, "b": b}))
        request = ctx.request_context.request
        server.sessions.append(request.headers.get("mcp-session-id", "") if request else "")
        return str(a + b)

    @app.tool()
    def shout(text: str) -> str:
        """The text in capitals."""
        server.calls.append(("shout", {"text": text}))
        return text.upper()

    asgi = app.sse_app() if sse else app.streamable_http_app()
    # Stopping cuts the streams still open (clients keep their MCP sessions open) at once,
    # as a server that goes away does, instead of waiting for them to end.
    config = uvicorn.Config(asgi, log_level="warning", lifespan="on", timeout_graceful_shutdown=0)
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_until(lambda: uvicorn_server.started, "the MCP server to start")
    try:
        yield server
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        listener.close()


def unused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"


@dataclass
class TokenEndpoint:
    """An OAuth provider's token endpoint, standing for the provider in tests: it grants
    ``access_token`` for ``refresh_token`` (then rotated to ``next_refresh``) to the client
    ``client_id`` authenticated with ``client_secret``, in the form (``client_secret_post``)
    or with HTTP Basic (``client_secret_basic``)."""

    url: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str
    next_refresh: str
    forms: list[dict[str, str]] = field(default_factory=list)
    """Every form posted to it."""


@contextlib.contextmanager
def token_endpoint(**grant: str) -> Iterator[TokenEndpoint]:
    """A token endpoint on 127.0.0.1 (RFC 6749 section 6) granting as ``grant`` says."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    endpoint = TokenEndpoint(url=f"http://127.0.0.1:{listener.getsockname()[1]}/token", **grant)

    async def token(request: Request) -> JSONResponse:
        form = {key: str(value) for key, value in (await request.form()).items()}
        endpoint.forms.append(form)
        client = (form.get("client_id"), form.get("client_secret"))
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # client_secret_basic
            client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
            client = (unquote_plus(client_id), unquote_plus(secret))
        if client != (endpoint.client_id, endpoint.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != endpoint.refresh_token:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        endpoint.refresh_token = endpoint.next_refresh
        return JSONResponse(
            {
                "access_token": endpoint.access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": endpoint.next_refresh,
            }
        )

    app = Starlette(routes=[Route("/token", token, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the token endpoint to start")
    try:
        yield endpoint
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


@contextlib.contextmanager
def time_server() -> Iterator[str]:
    """A ready-made MCP server from the package index, not this project's: the reference
    ``mcp-server-time`` (stdio) served over Streamable HTTP (``/mcp``) and legacy SSE
    (``/sse``) by ``mcp-proxy`` on 127.0.0.1 (both in the ``test`` extra). Yields its base
    URL; skipped when they are not installed (failed in CI)."""
    here = Path(sys.executable).parent
    proxy, time = (shutil.which(name, path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")
                   for name in ("mcp-proxy", "mcp-server-time"))  # fmt: skip
    if proxy is None or time is None:
        message = "mcp-proxy and mcp-server-time are not installed (the test extra has them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [proxy, "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING", "--",
         time, "--local-timezone", "UTC"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"mcp-proxy ended: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            return httpx.get(f"{base}/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(serving, "mcp-proxy to serve mcp-server-time", seconds=60)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
