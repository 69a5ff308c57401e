"""Remote MCP servers through the official ``mcp`` package's client.

A session keeps one MCP session per server (Streamable HTTP first, the legacy SSE
transport when the server answers the Streamable HTTP request with 404 or 405: an
SSE-only server has no such endpoint), opened when first used and kept for its later
calls and turns while this process serves it (:mod:`.kept` holds them). Sessions never
share one: each brings its own credentials. Nothing of a kept session is in the log, so
a session continued by another process opens its own.

The HTTP statuses the server answered with are watched (an ``httpx`` response hook),
so a refused credential (401, 403) is told apart from an unreachable or broken server
whatever exception the transport's task group raises.

Unless ``allow_private`` is set, a URL whose host is or resolves to a loopback,
link-local, private or otherwise non-public address is refused before anything is
sent: the client runs in the server, and an agent's MCP URL must not make it a proxy
into the server's own network.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
from agentjournal.infrastructure.mcp.kept import KeptSession, LoopThread, SessionGone

T = TypeVar("T")

REFUSED_CREDENTIAL = (401, 403)
NO_STREAMABLE_ENDPOINT = (404, 405)


class HttpMcpClient:
    """An :class:`~agentjournal.application.ports.McpConnector` for Streamable HTTP and SSE
    servers: hands each session a :class:`SessionMcpClient` of its own, whose connections
    live on one event loop thread this client starts on first use."""

    def __init__(self, allow_private: bool = False, timeout: float = 30.0) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self._tls = httpx.create_ssl_context()
        """Made once: loading the CA bundle into a new context costs tens of milliseconds,
        which a client per connection (the ``mcp`` package's ``create_mcp_http_client``) paid each time."""
        self._loop: LoopThread | None = None
        self._kept: weakref.WeakSet[KeptSession] = weakref.WeakSet()
        self._lock = threading.Lock()

    def for_session(self) -> SessionMcpClient:
        return SessionMcpClient(self)

    def close(self) -> None:
        """End every connection still kept (each says goodbye to its server, for up to
        ``timeout`` seconds in all), then stop the loop thread."""
        with self._lock:
            loop, self._loop = self._loop, None
            kept, self._kept = list(self._kept), weakref.WeakSet()
        if loop is None:
            return
        for session in kept:
            session.close()
        deadline = time.monotonic() + self.timeout
        for session in kept:
            session.wait_closed(max(0.0, deadline - time.monotonic()))
        loop.stop(self.timeout)

    def open(self, url: str, token: str | None) -> _Connection:
        """A new MCP session with ``url``, kept open until closed or broken; :class:`McpError`
        when it cannot be opened."""
        if not self.allow_private:
            refuse_private(url)
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
            loop = self._loop
        connection = _Connection(url, token)
        connection.session = KeptSession(loop, functools.partial(self._session, connection), self.timeout)
        try:
            connection.session.open()
        except Exception as e:
            raise _failure(url, e, connection.statuses) from None
        with self._lock:
            self._kept.add(connection.session)
        return connection

    @contextlib.asynccontextmanager
    async def _session(self, connection: _Connection) -> AsyncIterator[ClientSession]:
        """An initialized MCP session: Streamable HTTP, or legacy SSE when the server has no
        Streamable HTTP endpoint (it answered 404 or 405)."""
        statuses = connection.statuses
        bearer = {"Authorization": f"Bearer {connection.token}"} if connection.token else {}

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

        entered = False
        try:
            async with (
                client() as http,
                streamable_http_client(connection.url, http_client=http) as (read, write, _),
                _initialized(read, write, self.timeout) as session,
            ):
                entered = True
                yield session
                return
        except Exception:
            if entered or not statuses or statuses[-1] not in NO_STREAMABLE_ENDPOINT:
                raise
        statuses.clear()
        async with (
            sse_client(connection.url, timeout=self.timeout, httpx_client_factory=client) as (read, write),
            _initialized(read, write, self.timeout) as session,
        ):
            yield session


class _Connection:
    """A kept MCP session with one server, the credential it was opened with, and the HTTP
    statuses the server answered it with since its last call began."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        self.statuses: list[int] = []
        self.session: KeptSession


class SessionMcpClient:
    """An :class:`~agentjournal.application.ports.McpClient` for one session: one MCP
    session per server, opened on first use and kept for the calls and turns that follow
    (a call on a kept session costs its own request, not a new session's handshake).

    A kept connection found broken before a call reached the server (the server ended the
    MCP session, or a new connection is refused) is opened again once and the call made
    there; a call that fails after it may have reached the server is not repeated. A
    different credential for the same server (an update of the vault) opens a new session.
    """

    def __init__(self, connector: HttpMcpClient) -> None:
        self._connector = connector
        self._connections: dict[str, _Connection] = {}
        self._lock = threading.Lock()

    def list_tools(self, url: str, token: str | None) -> list[McpTool]:
        async def work(session: ClientSession) -> list[McpTool]:
            listed = await session.list_tools()
            return [McpTool(t.name, t.description or "", dict(t.inputSchema)) for t in listed.tools]

        return self._use(url, token, work)

    def call_tool(
        self, url: str, token: str | None, name: str, arguments: Mapping[str, object]
    ) -> McpOutcome:
        async def work(session: ClientSession) -> McpOutcome:
            try:
                result = await session.call_tool(name, dict(arguments))
            except ProtocolError as e:  # the server answered with a JSON-RPC error
                if _session_ended(e):
                    raise
                return McpOutcome(f"error: {e.error.message}", is_error=True)
            return McpOutcome(_text(result), is_error=result.isError)

        return self._use(url, token, work)

    def close(self) -> None:
        """End every MCP session this client keeps."""
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.session.close()

    def _use(self, url: str, token: str | None, work: Callable[[ClientSession], Awaitable[T]]) -> T:
        for attempt in (1, 2):
            connection = self._connection(url, token)
            connection.statuses.clear()  # a session's calls come one at a time: these are this call's
            try:
                return connection.session.run(work)
            except Exception as e:
                self._drop(connection)
                unsent = isinstance(e, SessionGone) or (connection.session.jobs_done > 0 and _never_sent(e))
                if attempt == 2 or not unsent:
                    raise _failure(url, e, connection.statuses) from None
        raise AssertionError("unreachable")  # the second attempt returns or raises

    def _connection(self, url: str, token: str | None) -> _Connection:
        with self._lock:
            kept = self._connections.get(url)
            if kept is not None and kept.token == token and kept.session.alive:
                return kept
            self._connections.pop(url, None)
        if kept is not None:
            kept.session.close()
        connection = self._connector.open(url, token)
        with self._lock:
            replaced = self._connections.get(url)
            self._connections[url] = connection
        if replaced is not None:  # another thread opened one meanwhile
            replaced.session.close()
        return connection

    def _drop(self, connection: _Connection) -> None:
        with self._lock:
            if self._connections.get(connection.url) is connection:
                del self._connections[connection.url]
        connection.session.close()


@contextlib.asynccontextmanager
async def _initialized(read: Any, write: Any, timeout: float) -> AsyncIterator[ClientSession]:
    async with ClientSession(read, write) as session:
        with anyio.fail_after(timeout):
            await session.initialize()
        yield session


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, or the exceptions an exception group (the transports' task groups) holds."""
    if isinstance(error, BaseExceptionGroup):
        return [cause for inner in error.exceptions for cause in _causes(inner)]
    return [error]


def _session_ended(error: ProtocolError) -> bool:
    """Whether the server no longer knows the MCP session (it answered 404: it restarted,
    or ended the session), which the ``mcp`` client reports as this error."""
    return error.error.message == "Session terminated"


def _never_sent(error: BaseException) -> bool:
    """Whether a call failed before the server could have seen it: its connection was
    refused, or the server had ended the MCP session."""
    return any(
        isinstance(cause, httpx.ConnectError) or (isinstance(cause, ProtocolError) and _session_ended(cause))
        for cause in _causes(error)
    )


def _failure(url: str, error: BaseException, statuses: list[int]) -> McpError:
    """The :class:`McpError` a failure with ``url`` is: a refused credential when the server
    answered 401 or 403, whatever exception the transport's task groups raised."""
    if any(status in REFUSED_CREDENTIAL for status in statuses):
        return McpError(f"the MCP server at {url} refused the credential", "authentication")
    return McpError(f"cannot use the MCP server at {url}: {_reason(error, statuses)}")


def _watch(statuses: list[int]) -> Callable[[httpx.Response], Awaitable[None]]:
    async def hook(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    return hook


def _reason(error: BaseException, statuses: list[int]) -> str:
    """The first concrete cause of a failure, which the transports wrap in exception groups."""
    error = _causes(error)[0]
    if isinstance(error, SessionGone):
        return "the connection ended"
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
