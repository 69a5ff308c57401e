"""The ``MemoryStore`` aggregate: memories that outlive sessions, and who taught them what.

A memory store is a named set of text documents (*memories*), each at a path such as
``/projects/foo/notes.md``. Every change to a memory (created, modified, deleted) is a
*memory version*: an event of the store that carries the content it wrote and its
*author*, a client of the API or a session (and the event of that session's log that
made the change). So a store's log answers "which session taught the agent this?", and
replaying it gives the store at any point, verified by the same hash chain as sessions.

A memory keeps its id when its path changes; a deleted memory's versions stay. Archiving
a store closes it to changes (its memories stay readable and deletable); deleting it hides
it for good. Contents are UTF-8 text up to :data:`MAX_CONTENT_BYTES`, recorded in the
events themselves: a memory is small, and its history is the point.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from uuid import uuid4

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate, as_recorded
from agentjournal.domain.errors import CatalogError

MAX_CONTENT_BYTES = 102_400
"""The most UTF-8 bytes a memory holds, as the cloud documents."""

MAX_PATH_BYTES = 1024
MAX_PATH_SEGMENTS = 20
MAX_NAME = 255
MAX_DESCRIPTION = 1024

CREATED, MODIFIED, DELETED = "created", "modified", "deleted"


class ApiAuthor(msgspec.Struct, frozen=True, tag_field="type", tag="api_actor"):
    """A change made through the API (or the Python API), by the key that asked."""

    api_key_id: str = ""


class SessionAuthor(msgspec.Struct, frozen=True, tag_field="type", tag="session_actor"):
    """A change a session's tools made in the store's mounted folder: the session and the
    version of its log that recorded the tool call's result."""

    session_id: str
    event_version: int


Author = ApiAuthor | SessionAuthor


class MemoryVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One change to one memory. ``content`` and ``path`` are what the memory held and
    where after it (``content`` is None for a deletion)."""

    id: str
    memory_id: str
    operation: str
    path: str
    content: str | None
    author: Author
    created_at: datetime


class Memory(msgspec.Struct, frozen=True, kw_only=True):
    """A memory as it stands: its path, content and the version that wrote it."""

    id: str
    path: str
    content: str
    version_id: str
    created_at: datetime
    updated_at: datetime

    @property
    def sha256(self) -> str:
        return content_sha256(self.content)

    @property
    def size(self) -> int:
        return len(self.content.encode())


class MemoryStoreError(CatalogError):
    """A rule of memory stores was broken: a bad path or name, content too large, a path
    already taken, a change to an archived or deleted store."""


class MemoryNotFound(MemoryStoreError, LookupError):
    def __init__(self, store_id: object, memory_id: str) -> None:
        super().__init__(f"memory store {store_id} has no memory {memory_id}")


class MemoryPreconditionFailed(MemoryStoreError):
    """An update's ``content_sha256`` precondition no longer holds: someone changed it."""


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def store_slug(name: str) -> str:
    """The folder under ``/mnt/memory/`` a store named ``name`` is mounted at: lowercased,
    every run of characters other than ASCII letters and digits one hyphen (and none at
    either end)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "memory"


def check_path(path: str, field: str = "path") -> str:
    """``path`` if it is a memory's path as the cloud documents one: starting with ``/``,
    1 to 20 non-empty segments other than ``.`` and ``..``, no control or format
    characters nor U+2028/U+2029, in NFC, at most 1,024 bytes."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise MemoryStoreError(f"{field}: must start with '/'")
    segments = path[1:].split("/")
    if not 1 <= len(segments) <= MAX_PATH_SEGMENTS or any(s in ("", ".", "..") for s in segments):
        raise MemoryStoreError(f"{field}: 1 to {MAX_PATH_SEGMENTS} segments, none empty, '.' or '..'")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in path):
        raise MemoryStoreError(f"{field}: no control or format characters")
    if unicodedata.normalize("NFC", path) != path:
        raise MemoryStoreError(f"{field}: must be in Unicode Normalization Form C")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise MemoryStoreError(f"{field}: at most {MAX_PATH_BYTES:,} bytes")
    return path


def check_content(content: str, field: str = "content") -> str:
    if not isinstance(content, str):
        raise MemoryStoreError(f"{field}: must be a string")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise MemoryStoreError(f"{field}: at most {MAX_CONTENT_BYTES:,} bytes")
    return content


def check_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME or not name.strip():
        raise MemoryStoreError(f"name: 1 to {MAX_NAME} characters")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise MemoryStoreError("name: no control characters")
    return name


def check_description(description: str) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise MemoryStoreError(f"description: at most {MAX_DESCRIPTION} characters")
    return description


class MemoryStore(ChainedAggregate):
    """A named store of memories, each change a version with its author."""

    archived_at: datetime | None = None
    deleted: bool = False
    changed_at: datetime | None = None
    """When the store itself (name, description, metadata, archiving) last changed; None
    since its creation. Its memories' changes do not count."""

    class Event(ChainedAggregate.Event):
        """Every event of a memory store carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class MemoryStoreCreated(Created):
        name: str
        description: str
        metadata: dict[str, str]

    def __init__(self, name: str, description: str, metadata: dict[str, str]) -> None:
        self.name = name
        self.description = description
        self.metadata = dict(metadata)
        self.memories: dict[str, Memory] = {}
        """Live memories by id."""
        self.versions: list[MemoryVersion] = []
        """Every version, oldest first (deleted memories' too)."""

    @classmethod
    def create(cls, name: str, description: str = "", metadata: dict[str, str] | None = None) -> MemoryStore:
        return cls._create_chained(
            cls.MemoryStoreCreated, GENESIS,
            name=check_name(name), description=check_description(description), metadata=dict(metadata or {}),
        )  # fmt: skip

    @property
    def slug(self) -> str:
        return store_slug(self.name)

    # -- commands ---------------------------------------------------------------

    def update(self, name: str, description: str, metadata: dict[str, str]) -> bool:
        """Rename or re-describe the store; records nothing when nothing changes."""
        self._check_open()
        changed = (check_name(name), check_description(description), dict(metadata))
        if changed == (self.name, self.description, self.metadata):
            return False
        self.trigger_event(self.MemoryStoreUpdated, name=name, description=description, metadata=metadata)
        return True

    def archive(self) -> None:
        self._check_not_deleted()
        if self.archived_at is None:
            self.trigger_event(self.MemoryStoreArchived)

    def delete(self) -> None:
        self._check_not_deleted()
        self.trigger_event(self.MemoryStoreDeleted)

    def create_memory(self, path: str, content: str, author: Author) -> Memory:
        """A new memory at ``path`` (which no live memory may hold)."""
        self._check_open()
        self._check_free(check_path(path))
        memory_id = uuid4().hex
        self._write(memory_id, CREATED, path, check_content(content), author)
        return self.memories[memory_id]

    def update_memory(
        self,
        memory_id: str,
        author: Author,
        *,
        path: str | None = None,
        content: str | None = None,
        expected_sha256: str | None = None,
    ) -> Memory:
        """Move and/or rewrite a memory; records nothing when nothing changes. With
        ``expected_sha256``, only if the memory's content still has that digest."""
        self._check_open()
        current = self.memory(memory_id)
        if expected_sha256 is not None and expected_sha256 != current.sha256:
            raise MemoryPreconditionFailed(
                f"memory {memory_id}: content_sha256 is {current.sha256}, not {expected_sha256}"
            )
        new_path = current.path if path is None else check_path(path)
        new_content = current.content if content is None else check_content(content)
        if (new_path, new_content) == (current.path, current.content):
            return current
        if new_path != current.path:
            self._check_free(new_path)
        self._write(memory_id, MODIFIED, new_path, new_content, author)
        return self.memories[memory_id]

    def delete_memory(self, memory_id: str, author: Author) -> None:
        """Delete a memory (allowed in an archived store); its versions stay."""
        self._check_not_deleted()
        current = self.memory(memory_id)
        self.trigger_event(
            self.MemoryDeleted, memory_id=memory_id, version_id=uuid4().hex, path=current.path,
            author=as_recorded(author),
        )  # fmt: skip

    # -- queries ----------------------------------------------------------------

    def memory(self, memory_id: str) -> Memory:
        found = self.memories.get(memory_id)
        if found is None:
            raise MemoryNotFound(self.id, memory_id)
        return found

    def at_path(self, path: str) -> Memory | None:
        return next((m for m in self.memories.values() if m.path == path), None)

    def memory_version(self, version_id: str) -> MemoryVersion:
        found = next((v for v in self.versions if v.id == version_id), None)
        if found is None:
            raise MemoryNotFound(self.id, f"version {version_id}")
        return found

    def _write(self, memory_id: str, operation: str, path: str, content: str, author: Author) -> None:
        self.trigger_event(
            self.MemoryWritten, memory_id=memory_id, version_id=uuid4().hex, operation=operation,
            path=path, content=content, author=as_recorded(author),
        )  # fmt: skip

    def _check_free(self, path: str) -> None:
        """``path`` holds no memory and is neither a folder of one nor inside one: a store is
        shown as a folder of files, where a name is a file or a folder, not both."""
        if self.at_path(path) is not None:
            raise MemoryStoreError(f"path: {path!r} already holds a memory in this store")
        for memory in self.memories.values():
            if memory.path.startswith(path + "/") or path.startswith(memory.path + "/"):
                raise MemoryStoreError(
                    f"path: {path!r} and the memory at {memory.path!r} cannot both be files"
                )

    def _check_open(self) -> None:
        self._check_not_deleted()
        if self.archived_at is not None:
            raise MemoryStoreError(f"memory store {self.id} is archived")

    def _check_not_deleted(self) -> None:
        if self.deleted:
            raise MemoryStoreError(f"memory store {self.id} is deleted")

    # -- events -----------------------------------------------------------------

    class MemoryStoreUpdated(Event):
        name: str
        description: str
        metadata: dict[str, str]

        def apply(self, store: MemoryStore) -> None:
            store.name, store.description, store.metadata = self.name, self.description, dict(self.metadata)
            store.changed_at = self.timestamp

    class MemoryStoreArchived(Event):
        def apply(self, store: MemoryStore) -> None:
            store.archived_at = store.changed_at = self.timestamp

    class MemoryStoreDeleted(Event):
        def apply(self, store: MemoryStore) -> None:
            store.deleted = True

    class MemoryWritten(Event):
        """A memory created or modified (``operation``), with all it holds afterwards."""

        memory_id: str
        version_id: str
        operation: str
        path: str
        content: str
        author: Author

        def apply(self, store: MemoryStore) -> None:
            before = store.memories.get(self.memory_id)
            store.memories[self.memory_id] = Memory(
                id=self.memory_id, path=self.path, content=self.content, version_id=self.version_id,
                created_at=before.created_at if before else self.timestamp, updated_at=self.timestamp,
            )  # fmt: skip
            store.versions.append(MemoryVersion(
                id=self.version_id, memory_id=self.memory_id, operation=self.operation, path=self.path,
                content=self.content, author=self.author, created_at=self.timestamp,
            ))  # fmt: skip

    class MemoryDeleted(Event):
        memory_id: str
        version_id: str
        path: str
        author: Author

        def apply(self, store: MemoryStore) -> None:
            del store.memories[self.memory_id]
            store.versions.append(MemoryVersion(
                id=self.version_id, memory_id=self.memory_id, operation=DELETED, path=self.path,
                content=None, author=self.author, created_at=self.timestamp,
            ))  # fmt: skip
