"""``agentjournal serve``: the API on a real socket, through uvicorn.

The address is printed (``--port 0`` picks a free port) once the server is ready
for its first turn, as quick as the next: the model adapter and the default compute
loaded (:func:`ready_for_a_first_turn`), the application started, and the socket
accepting connections. A script or test can read that line instead of polling.

uvicorn speaks HTTP/1.1 through h11 here (:func:`h11_protocol`), with two guards
h11 and uvicorn lack: a deadline for a request's headers, and the refusal of a
request that gives both ``Transfer-Encoding`` and ``Content-Length``.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
from typing import Any

import anyio
import anyio.lowlevel
import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from agentjournal.application.adapters import compute_class
from agentjournal.domain import Session
from agentjournal.domain.policy import CONFINED_HOST
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.models.litellm_model import warm_up
from agentjournal.infrastructure.server.app import ServerSettings, create_app
from agentjournal.infrastructure.server.auth import is_loopback
from agentjournal.infrastructure.stores.mapper import prepare_schemas

SWITCH_INTERVAL = 0.0005
"""Seconds a thread runs before another may take the interpreter (Python's default: 0.005)."""


class OneFramingConnection(h11.Connection):
    """h11's connection, refusing a request framed two ways: with both
    ``Transfer-Encoding`` and ``Content-Length``.

    h11 reads such a body as chunked and keeps the connection open for the next
    request. A proxy in front that goes by ``Content-Length`` instead sees other
    requests in the same bytes, so a client could slip one past it (request
    smuggling); RFC 9112 section 6.1 has the server close the connection after such a
    request, and h11 (up to 0.16 at least) does not. Refused as h11 refuses malformed
    framing, with a ``RemoteProtocolError``: uvicorn answers it with a 400 and closes
    the connection, before the application sees the request."""

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}
            if b"transfer-encoding" in names and b"content-length" in names:
                raise h11.RemoteProtocolError("both Transfer-Encoding and Content-Length", 400)
        return event


def h11_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol on a :class:`OneFramingConnection`, closing a
    connection that has not sent a request's headers within ``seconds`` of opening or
    of its previous response. uvicorn's own keep-alive timer starts only after a
    response and stops at the first byte, so a client sending nothing, or a few bytes
    of headers, would hold its connection (and a file descriptor) for ever, before any
    key is asked for. The body has its own deadline where it is read
    (:func:`~.bodies.read_body`)."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The header size limit as uvicorn sets it: the config's, else h11's default.
            limit = self.config.h11_max_incomplete_event_size
            self.conn = OneFramingConnection(h11.SERVER, *(() if limit is None else (limit,)))

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(seconds, self._expire, self.cycle)

        def _expire(self, cycle: object) -> None:
            if self.cycle is cycle:  # no request began since the deadline was set
                self.transport.close()

    return GuardedH11Protocol


def check_auth(settings: ServerSettings, host: str) -> None:
    """No keys is allowed only when asked for, and only where nobody else can connect."""
    if settings.api_keys:
        return
    if not settings.allow_no_auth:
        raise ValueError(
            "no API keys: set AGENTJOURNAL_API_KEYS (comma-separated), "
            "or pass --no-auth to serve without keys on a loopback address"
        )
    if not is_loopback(host):
        raise ValueError(f"--no-auth is allowed only on a loopback address, not on {host!r}")


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, printing ``line`` once the application has started (its store
    open, its recovery running) and the socket is served: a request sent on that line
    does not wait for the start. A start that fails prints nothing."""

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self.line = line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            freeze_start_heap()
            print(self.line, flush=True)


def freeze_start_heap() -> None:
    """Move every object alive now (the modules, litellm's tables, the application) out of
    the cyclic collector's reach, after collecting what is garbage already.

    A server starts with some 400,000 tracked objects, nearly all litellm's, which live as
    long as the process. Python's full collection scans every tracked object, and it runs
    each time the objects that survived younger collections reach a quarter of the old
    ones: listing a long session's events (thousands of dicts alive while a page is
    built) paid a full scan of that heap every few listings, a third of its CPU. Frozen,
    those objects are never scanned again, and the quarter is of what the server made
    since it started."""
    gc.collect()
    gc.freeze()


def ready_for_a_first_turn() -> None:
    """Load now what a server's first turn would otherwise load inside it, so that turn is
    as quick as the next: litellm, with a call made each way through the model adapter
    (:func:`~agentjournal.infrastructure.models.litellm_model.warm_up`); the default
    compute, the confined host, with its one probe of bubblewrap per process; the schemas
    of the session's events (:func:`~agentjournal.infrastructure.stores.mapper.prepare_schemas`);
    and anyio's asyncio backend, which Starlette and sse-starlette load at their first use
    in a running loop (an event stream's first lock): about 25 ms of imports here, that
    fell in the first turn's stream."""
    warm_up()
    compute_class(CONFINED_HOST)
    bubblewrap.unavailable()
    prepare_schemas(Session)
    anyio.run(anyio.lowlevel.checkpoint)


def serve(settings: ServerSettings, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted (SIGINT or SIGTERM stop it gracefully)."""
    check_auth(settings, host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named as TCP, so asyncio sets TCP_NODELAY on each connection: without it a streamed
    # event waits out the client's delayed ACK of the previous write (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    bound_host, bound_port = sock.getsockname()[:2]
    # A client that connects meanwhile waits in the socket's backlog.
    ready_for_a_first_turn()
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    # Turns run in threads beside the event loop, and a model call is seconds of Python
    # (litellm) at a time: a short switch interval lets the loop answer and stream
    # between its steps instead of waiting out the default 5 ms slices.
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = uvicorn.Config(
        create_app(settings), http=h11_protocol(settings.client_timeout), log_level="warning",
        lifespan="on", timeout_graceful_shutdown=5,
    )  # fmt: skip
    AnnouncingServer(config, f"agentjournal: serving on http://{shown}:{bound_port}").run(sockets=[sock])
    sys.stdout.flush()
