"""MCP sessions kept open between calls, each in a task of its own on one event loop.

The ``mcp`` client's transports and ``ClientSession`` are anyio task groups: they must be
entered and left in the same task. So a kept session lives in one task (its *holder*)
on a loop thread the process starts once (:class:`LoopThread`); a call from any other
thread hands the holder a job and waits for its answer. The holder runs its jobs one
after another inside the session's task groups, so when the transport fails (a refused
credential, a dropped connection) the failure reaches the job it broke, and the jobs
still waiting, as an exception of their own, never as a task left hanging.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, wait
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession

from agentjournal.domain.errors import AgentJournalError

T = TypeVar("T")

Opener = Callable[[], AbstractAsyncContextManager[ClientSession]]
"""Opens (and, on leaving, closes) an initialized MCP session."""


class LoopThread:
    """An event loop on a daemon thread of its own, reached through an anyio portal: the
    loop every kept MCP session of a client lives on. A daemon, so a process that never
    closes its client still exits."""

    def __init__(self) -> None:
        self._started = threading.Event()
        self._portal: BlockingPortal | None = None
        self._thread = threading.Thread(target=anyio.run, args=(self._serve,), name="mcp-loop", daemon=True)
        self._thread.start()
        self._started.wait()

    async def _serve(self) -> None:
        async with BlockingPortal() as portal:
            self._portal = portal
            self._started.set()
            await portal.sleep_until_stopped()

    @property
    def portal(self) -> BlockingPortal:
        assert self._portal is not None  # set before __init__ returns
        return self._portal

    def stop(self, timeout: float) -> None:
        """Cancel what still runs on the loop and end its thread."""
        self.portal.call(self.portal.stop, True)
        self._thread.join(timeout)


class _Job(Generic[T]):
    """One piece of work for a kept session, and what came of it."""

    def __init__(self, work: Callable[[ClientSession], Awaitable[T]]) -> None:
        self.work = work
        self.done = anyio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    async def run(self, session: ClientSession, timeout: float) -> None:
        try:
            with anyio.fail_after(timeout):
                self.result = await self.work(session)
        except Exception as e:  # the session's own failures cancel the holder instead
            self.error = e
        self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class SessionGone(AgentJournalError):
    """The kept session had already ended (closed, or broken by an earlier job) before a
    job reached it: nothing of the job was sent."""


class KeptSession:
    """One MCP session held open by a task on ``loop`` until :meth:`close`, or until its
    transport fails. :meth:`open` opens it (raising what opening raised); :meth:`run`
    runs work on it from any thread."""

    def __init__(self, loop: LoopThread, opener: Opener, timeout: float) -> None:
        self._loop = loop
        self._opener = opener
        self._timeout = timeout
        self._jobs: MemoryObjectSendStream[_Job[Any]] | None = None
        self._ended: Future[None] | None = None
        self.jobs_done = 0
        """Jobs this session answered: a session that answered none was never known to work."""
        self.alive = False

    def open(self) -> None:
        self._ended, _ = self._loop.portal.start_task(self._hold)

    def wait_closed(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) for the session, told to close, to have ended."""
        if self._ended is not None:
            wait([self._ended], timeout)

    def run(self, work: Callable[[ClientSession], Awaitable[T]]) -> T:
        """``work``'s result on this session; what it raised, or what broke the session
        while it ran; :class:`SessionGone` when the session had ended before."""
        result: T = self._loop.portal.call(self._submit, work)
        return result

    def close(self) -> None:
        """End the session (the transport says goodbye to the server) and its task."""
        if self.alive:
            self._loop.portal.call(self._stop)

    async def _submit(self, work: Callable[[ClientSession], Awaitable[T]]) -> T:
        if self._jobs is None or not self.alive:
            raise SessionGone()
        job: _Job[T] = _Job(work)
        try:
            self._jobs.send_nowait(job)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise SessionGone() from None
        await job.done.wait()
        if job.error is not None:
            raise job.error
        self.jobs_done += 1
        return job.result  # type: ignore[return-value]  # set when error is not

    async def _stop(self) -> None:
        if self._jobs is not None:
            await self._jobs.aclose()

    async def _hold(self, *, task_status: TaskStatus[None]) -> None:
        send, receive = anyio.create_memory_object_stream[_Job[Any]](math.inf)
        current: list[_Job[Any]] = []
        try:
            async with self._opener() as session:
                self._jobs, self.alive = send, True
                task_status.started()
                async for job in receive:
                    current[:] = [job]
                    await job.run(session, self._timeout)
                    current.clear()
                    if isinstance(job.error, TimeoutError):
                        break  # a session that kept no time is not trusted with the next job
        except Exception as e:
            if not self.alive:
                raise  # opening failed: start_task raises it to the caller
            for job in [*current, *_waiting(receive)]:
                job.fail(e)
        finally:
            self.alive = False
            send.close()
            for job in _waiting(receive):
                job.fail(SessionGone())
            receive.close()


def _waiting(receive: MemoryObjectReceiveStream[_Job[Any]]) -> list[_Job[Any]]:
    """The jobs handed in but not started."""
    jobs = []
    while True:
        try:
            jobs.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return jobs
