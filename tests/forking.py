"""Start test servers by forking them from a process that has already imported theirs.

A server's start is mostly imports: litellm alone is several seconds of CPU, paid again by
every test that starts ``agentjournal serve`` in a fresh interpreter, which made the suite's
time mostly imports. So each test process keeps one *preloaded* process (started on first
use, ended when the test process exits): it imports what a server imports, including what
litellm's first call loads, and nothing more (no thread, no socket but its own, no call), then
forks a server for each request. The child is a real ``agentjournal serve``: it sets the
request's environment, working folder and arguments, then runs the command line's ``main``,
so everything after the imports (the model route's check, the warm-up call, the bubblewrap
probe, uvicorn on a real socket) happens in it as in a fresh process. Tests of the start
itself (``tests/test_first_turn.py``, the packaging tests) still execute a new interpreter.

The preloaded process is the server's parent, not the test's, so the test holds a
:class:`ForkedServer`, which answers as much of :class:`subprocess.Popen` as the tests use: the
child's output comes through pipes the test made (passed with the request), its exit status
from the preloaded process, which waits for it (through a pidfd) and writes the status on the
request's connection, and signals go through a copy of that pidfd, so a signal never reaches
another process that was given the number of a server already waited for.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent

MODULES = (
    "agentjournal.infrastructure.cli.main",
    "agentjournal.infrastructure.server.serve",
    "agentjournal.infrastructure.server.app",
    "agentjournal.infrastructure.models.litellm_model",
    "agentjournal.infrastructure.compute.confined",
    "agentjournal.infrastructure.compute.bubblewrap",
)
"""What a server imports before it listens; what a first model call loads is added by
:func:`_modules_a_first_call_loads`."""


class ForkedServer:
    """A server forked by the preloaded process, seen through the parts of
    :class:`subprocess.Popen` the tests use."""

    def __init__(
        self, pid: int, pidfd: int, connection: socket.socket, stdout: IO[str], stderr: IO[str]
    ) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._connection = connection
        self._reply = b""

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._connection], [], [], 0)[0]:
            self._read_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._connection], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(["agentjournal", "serve"], timeout or 0)
            self._read_status()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the server through its pidfd: once it has ended and been waited for, its
        number may already be another process's, which ``os.kill`` would signal instead."""
        try:
            signal.pidfd_send_signal(self._pidfd, signum)
        except ProcessLookupError:
            pass  # it has ended, as Popen.send_signal allows

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.stdout.read(), self.stderr.read()

    def _read_status(self) -> None:
        while not self._reply.endswith(b"\n"):
            chunk = self._connection.recv(256)
            if not chunk:
                raise RuntimeError("the preloaded process ended before its server")
            self._reply += chunk
        self.returncode = int(json.loads(self._reply)["returncode"])
        self._connection.close()
        os.close(self._pidfd)


class _Preloaded:
    """The preloaded process of this test process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._address = ""

    def fork(self, arguments: Sequence[str], env: Mapping[str, str]) -> ForkedServer:
        """A new server running ``agentjournal ARGUMENTS`` with exactly ``env``."""
        with self._lock:
            address = self._started()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(address)
            request = {"arguments": list(arguments), "env": dict(env), "cwd": os.getcwd()}
            socket.send_fds(connection, [json.dumps(request).encode() + b"\n"], [out_write, err_write])
        finally:
            os.close(out_write)
            os.close(err_write)
        reply, fds, _, _ = socket.recv_fds(connection, 256, 1)
        if not reply.endswith(b"\n") or len(fds) != 1:
            raise RuntimeError("the preloaded process did not fork a server")
        stdout, stderr = open(out_read), open(err_read)  # noqa: SIM115 (the server's to close)
        return ForkedServer(int(json.loads(reply)["pid"]), fds[0], connection, stdout, stderr)

    def _started(self) -> str:
        if self._process is None or self._process.poll() is not None:
            # An abstract socket (Linux): a name with no file to clean up.
            self._address = f"\0agentjournal-preloaded-{uuid.uuid4().hex}"
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.forking", self._address[1:]],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            assert self._process.stdout is not None
            if self._process.stdout.readline() != b"ready\n":
                self._process.kill()
                raise RuntimeError("the preloaded process did not start")
        return self._address


PRELOADED = _Preloaded()


# -- the preloaded process ---------------------------------------------------------------


def _modules_a_first_call_loads() -> list[str]:
    """The names of the modules a server has loaded after its warm-up call, found once in a
    child of this process (the call starts threads, which must never be forked)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            from agentjournal.infrastructure.models.litellm_model import warm_up

            warm_up()
            os.write(write, "\n".join(sorted(sys.modules)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as names:
        loaded = names.read().decode().split("\n")
    os.waitpid(pid, 0)
    return loaded


def _preload() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import importlib

    for name in MODULES:
        importlib.import_module(name)
    for name in _modules_a_first_call_loads():
        if name and name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 (a module only loadable in its own order is loaded by the call)
                continue


def _run_server(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become the requested server, and never return."""
    code = 1
    try:
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(str(request["cwd"]))
        arguments = request["arguments"]
        assert isinstance(arguments, list)
        sys.argv = ["agentjournal", *arguments]
        from agentjournal.infrastructure.cli.main import main

        code = main() or 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve(address: str) -> None:
    """Fork a server per request on ``address``; write each one's pid, then its exit status.
    Ends when its standard input does: when the test process that started it has ended,
    however it ended."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    print("ready", flush=True)
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    while True:
        readable, _, _ = select.select([listener, sys.stdin, *children], [], [])
        for ready in readable:
            if ready is sys.stdin:
                if not os.read(0, 1):
                    return
            elif ready is listener:
                connection, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 2)
                while not message.endswith(b"\n"):
                    message += connection.recv(1 << 16)
                pid = os.fork()
                if pid == 0:
                    _run_server(json.loads(message), fds)
                for fd in fds:
                    os.close(fd)
                # Opened before this process can have waited for it, so the pidfd names
                # this child for good; the test signals it through a copy.
                pidfd = os.pidfd_open(pid)
                socket.send_fds(connection, [json.dumps({"pid": pid}).encode() + b"\n"], [pidfd])
                children[pidfd] = (pid, connection)
            else:
                assert isinstance(ready, int)
                pid, connection = children.pop(ready)
                os.close(ready)
                _, status = os.waitpid(pid, 0)
                try:
                    connection.sendall(
                        json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n"
                    )
                except OSError:
                    pass  # the test process is gone
                connection.close()


if __name__ == "__main__":
    _preload()
    _serve("\0" + sys.argv[1])
