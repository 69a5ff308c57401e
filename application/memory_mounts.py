"""Memory stores in a session: shown to its tools at ``/mnt/memory/<slug>``, their changes
recorded as memory versions of the session's own.

Memory is shared state, not the session's files: it lives in its
:class:`~agentjournal.domain.memory.MemoryStore`, outside the work folder, its manifest
and its forks. A session attaches a store as a ``memory_store`` resource
(:class:`~agentjournal.domain.resources.MemoryStoreResource`); then, before each tool
call, :meth:`SessionMemory.show` gives the compute (a
:class:`~agentjournal.application.ports.MemoryFolders`) the store as it is now (what other
sessions wrote meanwhile included) and records on the session the versions shown
(``MemoryRead``, when they changed). After a tool call that may write,
:meth:`SessionMemory.collect` reads each ``read_write`` store's folder back and records
what changed as new memory versions, authored by the session and the call's
``ToolCallStarted`` event, and on the session which versions its call wrote
(``MemoryWritten``). A ``read_only`` store is never read back, and the compute mounts it
read-only, so no tool can change it.

The system prompt tells the model where each store is, what it holds (its description)
and how to use it (the attachment's ``instructions``): :func:`with_memory_note`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from agentjournal.application.memory_stores import MemoryStoreNotFound, MemoryStores
from agentjournal.application.ports import MEMORY_ROOT, Compute, ComputeError, MemoryFolders
from agentjournal.domain import Session
from agentjournal.domain.memory import (
    MAX_CONTENT_BYTES,
    MemoryStore,
    MemoryStoreError,
    SessionAuthor,
    check_path,
)
from agentjournal.domain.policy import CONFINED_HOST
from agentjournal.domain.resources import MemoryStoreResource

if TYPE_CHECKING:  # the service imports the turn loop, which imports this
    from agentjournal.application.service import SessionService

READ_WRITE, READ_ONLY = "read_write", "read_only"

MEMORY_COMPUTES = (CONFINED_HOST, "docker")
"""The computes that show memory stores to their tools (the unconfined host and
self-hosted workers do not)."""

MAX_SHOWN = 1024
"""How many (session, store) folders a process remembers filling."""

MAX_SHOWN_BYTES = 128 * 1024**2
"""How many bytes of those folders' files a process remembers: each is within a store's
bound (20 MiB by default), so a handful of full stores, or many small ones. A folder no
longer remembered is filled again before its next call."""

Versions = tuple[str, ...]
"""Memory version ids, sorted."""

MEMORY_HEADING = "\n\nMemory stores mounted for this session:\n"
"""What begins the system prompt's note of a session's memory stores."""


def memory_mount_path(slug: str) -> str:
    return f"{MEMORY_ROOT}/{slug}"


def memory_resources(session: Session) -> list[MemoryStoreResource]:
    return [r.resource for r in session.resources if isinstance(r.resource, MemoryStoreResource)]


def with_memory_note(system: str, stores: list[MemoryStoreResource]) -> str:
    """``system`` with its note of the session's memory stores replaced by one for
    ``stores``; no note when there are none."""
    base = system.split(MEMORY_HEADING, 1)[0]
    if not stores:
        return base
    lines = []
    for store in stores:
        access = "read-only" if store.read_only else "read and write"
        line = f"- {store.mount_path} ({store.name}, {access})"
        if store.description:
            line += f": {store.description}"
        if store.instructions:
            line += f"\n  Instructions: {store.instructions}"
        lines.append(line)
    usage = (
        "Each is a folder of text files that outlives this session; read and write them with "
        "your ordinary file tools at these absolute paths."
    )
    return base + MEMORY_HEADING + "\n".join(lines) + "\n" + usage


class SessionMemory:
    """Shows a session's memory stores to its compute and records what its tools change."""

    def __init__(self, service: SessionService, stores: MemoryStores | None = None) -> None:
        self.stores = stores or MemoryStores(service)
        self._shown: OrderedDict[tuple[UUID, str], tuple[Versions, dict[str, bytes]]] = OrderedDict()
        """Per (session, store), the files this process last put in the store's folder, and
        the versions they hold (none known once the tools may have changed them): the most
        recently shown, at most :data:`MAX_SHOWN` of them holding at most
        :data:`MAX_SHOWN_BYTES` (a folder no longer known is filled again)."""
        self._shown_bytes = 0
        self._keeping = threading.Lock()
        """Held while :attr:`_shown` and its bytes change: a server's turns run in threads."""

    def show(self, session: Session, compute: Compute) -> None:
        """Before a tool call: each attached store's folder holds the store as it is now,
        and the session records the versions shown when they differ from the last."""
        for resource in memory_resources(session):
            folders = _folders(compute)
            try:
                store = self.stores.get(UUID(resource.memory_store_id))
                memories = list(store.memories.values())
            except MemoryStoreNotFound:  # deleted since it was attached: an empty folder
                store, memories = None, []
            versions = tuple(sorted(m.version_id for m in memories))
            key = (session.id, resource.memory_store_id)
            shown_versions, shown = self._shown.get(key, ((), None))
            if shown is None or not versions or versions != shown_versions:  # else: shown already
                versions, files = self._files(store)
                if shown != files:
                    folders.show_memory(resource.slug, resource.read_only, files)
                self._remember(key, versions, files)
            self._touch(key)
            session.record_memory_read(resource.memory_store_id, versions)

    def _files(self, store: MemoryStore | None) -> tuple[Versions, dict[str, bytes]]:
        """The versions ``store`` holds now and its folder's files (none for a store
        deleted since it was attached), read with their contents (again when one was
        redacted meanwhile)."""
        if store is None:
            return (), {}
        try:
            store, contents = self.stores.with_contents(store, _current_versions)
        except MemoryStoreNotFound:  # deleted (and its contents erased) meanwhile
            return (), {}
        memories = list(store.memories.values())
        versions = tuple(sorted(m.version_id for m in memories))
        return versions, {m.path[1:]: contents[m.version_id].encode() for m in memories}

    def _remember(self, key: tuple[UUID, str], versions: Versions, files: dict[str, bytes]) -> None:
        """Remember ``files`` as what ``key``'s folder holds, letting the least recently
        shown others go past :data:`MAX_SHOWN` folders or :data:`MAX_SHOWN_BYTES` (never
        this one, however large: its call's changes are read against it)."""
        with self._keeping:
            self._let_go(key)
            self._shown[key] = (versions, files)
            self._shown_bytes += _size(files)
            while len(self._shown) > MAX_SHOWN or self._shown_bytes > MAX_SHOWN_BYTES:
                oldest = next(iter(self._shown))
                if oldest == key:
                    break
                self._let_go(oldest)

    def _touch(self, key: tuple[UUID, str]) -> None:
        """Make ``key``'s folder the most recently shown (if it is still remembered)."""
        with self._keeping:
            if key in self._shown:
                self._shown.move_to_end(key)

    def _forget(self, key: tuple[UUID, str]) -> None:
        with self._keeping:
            self._let_go(key)

    def _let_go(self, key: tuple[UUID, str]) -> None:
        gone = self._shown.pop(key, None)
        if gone is not None:
            self._shown_bytes -= _size(gone[1])

    def collect(
        self,
        session: Session,
        compute: Compute,
        tool_call_id: str,
        event_version: int,
        redact: Callable[[str], str] = str,
    ) -> list[str]:
        """After a tool call: what it changed in each ``read_write`` store's folder becomes
        memory versions authored by the session's event ``event_version``, each content
        passed through ``redact`` first (the store's log keeps secrets out as the session's
        does; the next call's folder then holds the redacted text). A file that is no memory
        (too large, not UTF-8, a path a memory cannot have) is left out. A folder past the
        store's bound (:class:`~agentjournal.domain.memory.MemoryQuota`: too many files, or
        too many bytes, counted before a file is read) keeps nothing of the call's changes.
        Returns a note for each store that refused the changes (past its bound, archived or
        deleted meanwhile, or a rule of paths), for the call's result: the next call's
        folder shows the store as it is."""
        notes: list[str] = []
        quota = self.stores.service.memory_quota
        for resource in memory_resources(session):
            key = (session.id, resource.memory_store_id)
            if resource.read_only:
                continue
            remembered = self._shown.get(key)
            if remembered is None:  # let go meanwhile, as others were shown: what changed is unknown
                notes.append(
                    f"[memory store {resource.mount_path}: changes not kept: this server showed too many "
                    "stores meanwhile to tell what the call changed; the next call shows the store as it is]"
                )
                continue
            before = remembered[1]
            author = SessionAuthor(session_id=str(session.id), event_version=event_version)
            try:
                found = _folders(compute).memory_files(resource.slug, MAX_CONTENT_BYTES, quota)
                now = {
                    path: data for path, data in found.items() if data is not None and _is_memory(path, data)
                }
                changes: dict[str, str | None] = {
                    "/" + path: redact(data.decode())
                    for path, data in now.items()
                    if before.get(path) != data
                }
                changes.update({"/" + path: None for path in before if path not in now})
                if not changes:
                    continue
                written = self.stores.write_from_session(UUID(resource.memory_store_id), author, changes)
            except (MemoryStoreError, MemoryStoreNotFound) as e:
                notes.append(f"[memory store {resource.mount_path}: changes not kept: {e}]")
                self._forget(key)  # the next call shows the store as it is
                continue
            self._remember(key, (), now)  # which versions the tools' files are is not known
            session.record_memory_written(
                resource.memory_store_id, tool_call_id, tuple(v.id for v in written)
            )
        return notes


def _folders(compute: Compute) -> MemoryFolders:
    if not isinstance(compute, MemoryFolders):
        raise ComputeError(
            f"memory stores are mounted on the confined host and in the Docker sandbox, not on {compute.kind}"
        )
    return compute


def _current_versions(store: MemoryStore) -> list[str]:
    return [m.version_id for m in store.memories.values()]


def _size(files: dict[str, bytes]) -> int:
    return sum(len(data) for data in files.values())


def _is_memory(path: str, data: bytes) -> bool:
    try:
        check_path("/" + path)
        data.decode()
    except (MemoryStoreError, UnicodeDecodeError):
        return False
    return True
