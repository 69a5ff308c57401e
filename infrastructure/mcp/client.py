"""Remote MCP servers through the official ``mcp`` package's client.

Each call opens its own MCP session: Streamable HTTP first, and the legacy SSE
transport when the server answers the Streamable HTTP request with 404 or 405 (an
SSE-only server has no such endpoint), then initializes, lists or calls, and closes.
A turn's few calls do not need a connection kept between them, and a session may
resume in another process.

The HTTP statuses the server answered with are watched (an ``httpx`` response hook),
so a refused credential (401, 403) is told apart from an unreachable or broken server
whatever exception the transport's task group raises.

Unless ``allow_private`` is set, a URL whose host is or resolves to a loopback,
link-local, private or otherwise non-public address is refused before anything is
sent: the client runs in the server, and an agent's MCP URL must not make it a proxy
into the server's own network.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError as ProtocolError
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, TextContent, TextResourceContents

from agentjournal.application.ports import McpError, McpOutcome, McpTool

T = TypeVar("T")

REFUSED_CREDENTIAL = (401, 403)
NO_STREAMABLE_ENDPOINT = (404, 405)


class HttpMcpClient:
    """An :class:`~agentjournal.application.ports.McpClient` for Streamable HTTP and SSE servers."""

    def __init__(self, allow_private: bool = False, timeout: float = 30.0) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self._tls = httpx.create_ssl_context()
        """Made once: loading the CA bundle into a new context costs tens of milliseconds,
        which a client per call (the ``mcp`` package's ``create_mcp_http_client``) paid each time."""

    def list_tools(self, url: str, token: str | None) -> list[McpTool]:
        async def work(session: ClientSession) -> list[McpTool]:
            listed = await session.list_tools()
            return [McpTool(t.name, t.description or "", dict(t.inputSchema)) for t in listed.tools]

        return self._with_session(url, token, work)

    def call_tool(
        self, url: str, token: str | None, name: str, arguments: Mapping[str, object]
    ) -> McpOutcome:
        async def work(session: ClientSession) -> McpOutcome:
            try:
                result = await session.call_tool(name, dict(arguments))
            except ProtocolError as e:  # the server answered with a JSON-RPC error
                return McpOutcome(f"error: {e.error.message}", is_error=True)
            return McpOutcome(_text(result), is_error=result.isError)

        return self._with_session(url, token, work)

    def _with_session(self, url: str, token: str | None, work: Callable[[ClientSession], Awaitable[T]]) -> T:
        if not self.allow_private:
            refuse_private(url)
        # Its own thread and event loop: the caller may be running one (an ASGI server).
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(anyio.run, self._session, url, token, work).result()

    async def _session(self, url: str, token: str | None, work: Callable[[ClientSession], Awaitable[T]]) -> T:
        statuses: list[int] = []
        bearer = {"Authorization": f"Bearer {token}"} if token else {}

        def client(
            headers: dict[str, str] | None = None,
            timeout: httpx.Timeout | None = None,
            auth: httpx.Auth | None = None,
        ) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                headers={**(headers or {}), **bearer},
                timeout=timeout or httpx.Timeout(self.timeout),
                auth=auth,
                verify=self._tls,
                event_hooks={"response": [_watch(statuses)]},
            )

        try:
            with anyio.fail_after(self.timeout):
                try:
                    async with (
                        client() as http,
                        streamable_http_client(url, http_client=http) as (read, write, _),
                    ):
                        return await _run(read, write, work)
                except Exception:
                    if not statuses or statuses[-1] not in NO_STREAMABLE_ENDPOINT:
                        raise
                statuses.clear()
                async with sse_client(url, timeout=self.timeout, httpx_client_factory=client) as (
                    read,
                    write,
                ):
                    return await _run(read, write, work)
        except Exception as e:
            if any(status in REFUSED_CREDENTIAL for status in statuses):
                raise McpError(f"the MCP server at {url} refused the credential", "authentication") from None
            raise McpError(f"cannot use the MCP server at {url}: {_reason(e, statuses)}") from None


async def _run(read: Any, write: Any, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    async with ClientSession(read, write) as session:
        await session.initialize()
        return await work(session)


def _watch(statuses: list[int]) -> Callable[[httpx.Response], Awaitable[None]]:
    async def hook(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    return hook


def _reason(error: BaseException, statuses: list[int]) -> str:
    """The first concrete cause of a failure, which the transports wrap in exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, TimeoutError):
        return "no answer in time"
    failed = [status for status in statuses if status >= 400]
    if failed:
        return f"HTTP {failed[-1]}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _text(result: CallToolResult) -> str:
    """A tool result's content as text for the model: text as is, other blocks described."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource) and isinstance(block.resource, TextResourceContents):
            parts.append(block.resource.text)
        elif isinstance(block, ImageContent):
            parts.append(f"[image: {block.mimeType}, {len(block.data) * 3 // 4} bytes]")
        else:
            parts.append(block.model_dump_json(exclude_none=True))
    if not parts and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent))
    return "\n".join(parts)


def refuse_private(url: str) -> None:
    """Raise :class:`McpError` when ``url``'s host is, or resolves to, an address that is not
    public (loopback, link-local, private, reserved, multicast, unspecified)."""
    host = urlsplit(url).hostname
    if not host:
        raise McpError(f"{url!r} names no host")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as e:
        raise McpError(f"cannot resolve {host!r}: {e}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise McpError(
                f"the MCP server at {url} is refused: {host} is a non-public address ({address}); "
                "the server's operator can allow such addresses"
            )
