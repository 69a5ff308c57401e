"""``agentjournal serve``: the API on a real socket, through uvicorn.

The socket is bound before uvicorn starts, so the address printed (``--port 0``
picks a free port) is already accepting connections when it is printed: a
script or test can read that line instead of polling.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

from agentjournal.infrastructure.server.app import ServerSettings, create_app
from agentjournal.infrastructure.server.auth import is_loopback

SWITCH_INTERVAL = 0.0005
"""Seconds a thread runs before another may take the interpreter (Python's default: 0.005)."""


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
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    print(f"agentjournal: serving on http://{shown}:{bound_port}", flush=True)
    # Turns run in threads beside the event loop, and a model call is seconds of Python
    # (litellm) at a time: a short switch interval lets the loop answer and stream
    # between its steps instead of waiting out the default 5 ms slices.
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    uvicorn.Server(config).run(sockets=[sock])
    sys.stdout.flush()
