"""What the attack tests share: commands a hostile model runs, and the means to see, from
the host, whether what they started is still running.

A process is found by a token only it carries: a ``sleep`` for a number of seconds no
other process on the machine sleeps for. Its pid inside a sandbox means nothing out here,
but its command line is in the host's ``/proc`` like any other.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

UNIQUE = random.Random()


def sleeper() -> str:
    """``sleep N`` with an N no other process uses: the command, and its token."""
    return f"sleep {UNIQUE.randrange(7_000_000, 8_000_000)}"


def living(command: str) -> list[int]:
    """The pids of the running (not zombie) processes whose command line is ``command``."""
    wanted = command.encode().replace(b" ", b"\0") + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        if cmdline == wanted and stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z":
            found.append(int(name))
    return found


def wait_until(condition, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``condition()`` held within ``seconds``, checking every few milliseconds."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def survivors(*commands: str, seconds: float = 10.0) -> list[str]:
    """The ``commands`` still running after up to ``seconds`` (a process killed with SIGKILL
    is gone within milliseconds, but not at once). Those left are killed, so a failing test
    leaves nothing behind: their tokens are this test's own."""
    wait_until(lambda: not any(living(c) for c in commands), seconds)
    left = [c for c in commands if living(c)]
    for command in left:
        for pid in living(command):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return left


@contextlib.contextmanager
def loopback_listener() -> Iterator[tuple[int, socket.socket]]:
    """A socket listening on 127.0.0.1 (and nowhere else): its port, and the socket, which
    does not block, so ``accept`` says at once whether anyone connected."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener.getsockname()[1], listener
    finally:
        listener.close()


def reached(listener: socket.socket) -> bool:
    """Whether anyone connected to ``listener``."""
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def connect_to(port: int) -> str:
    """A bash command that says ``connected`` if it reaches 127.0.0.1:``port``."""
    return f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"


def hiding(*sleepers: str) -> str:
    """A command that starts each sleeper in its own way of escaping a kill (a new session
    with a cleared environment, ``nohup``, the background) and kills its own parent, then
    sleeps in the foreground as the last one: what an engine that kills a process tree, a
    process group or marked processes misses."""
    first, second, last = sleepers
    return (
        f"env -i setsid {first} </dev/null >/dev/null 2>&1 &\n"
        f"nohup {second} >/dev/null 2>&1 &\n"
        f"kill -KILL $PPID\n"
        f"exec {last}"
    )
