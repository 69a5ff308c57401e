"""The ``MemoryStore`` aggregate: memories that outlive sessions, and who taught them what.

A memory store is a named set of text documents (*memories*), each at a path such as
``/projects/foo/notes.md``. Every change to a memory (created, modified, deleted) is a
*memory version*: an event of the store that carries the content it wrote and its
*author*, a client of the API or a session (and the event of that session's log that
made the change). So a store's log answers "which session taught the agent this?", and
replaying it gives the store at any point, verified by the same hash chain as sessions.

A memory keeps its id when its path changes; a deleted memory's versions stay. Archiving
a store closes it to changes (its memories stay readable and deletable); deleting it hides
it for good. Contents are UTF-8 text up to :data:`MAX_CONTENT_BYTES`; a store holds what a
:class:`MemoryQuota` allows (by default :data:`MAX_MEMORIES` memories of
:data:`MAX_STORE_BYTES` together).

**Contents are kept out of the log.** A version's event carries the SHA-256 and size of the
content it wrote, which the hash chain covers; the content itself is *sealed*: kept by the
application in a table of its own, keyed by the version (see
:mod:`agentjournal.application.memory_stores`). So a version can be *redacted*
(:meth:`MemoryStore.redact_version`): ``MemoryVersionRedacted`` records who and when, the
sealed content is erased, and the chain still verifies, since no event held the content.
The aggregate knows digests, not contents: the contents of versions written since it was
loaded wait in :attr:`MemoryStore.unsealed` for the application to seal them. Stores
recorded before contents were sealed have ``MemoryWritten`` events that hold them; such a
version cannot be redacted (its content is in the log, which is append-only).
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

MAX_MEMORIES = 2_000
"""The most live memories a store holds unless the engine is told otherwise, as the cloud
documents."""

MAX_STORE_BYTES = 20 * 1024**2
"""The most UTF-8 bytes a store's live memories hold together unless the engine is told
otherwise: a store is written whole into every sandbox it is attached to and read back
after each tool call that may write, so what one call can make it hold is bounded."""

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
    """One change to one memory: where the memory was after it (``path``), and the digest
    and size of the content it held (None for a deletion). A redacted version has neither
    path nor digest, as the cloud shows one, and says who redacted it and when."""

    id: str
    memory_id: str
    operation: str
    path: str | None
    content_sha256: str | None
    size: int | None
    author: Author
    created_at: datetime
    redacted_at: datetime | None = None
    redacted_by: Author | None = None


class Memory(msgspec.Struct, frozen=True, kw_only=True):
    """A memory as it stands: its path, the digest and size of its content, and the
    version that wrote it (whose sealed content it is)."""

    id: str
    path: str
    content_sha256: str
    size: int
    version_id: str
    created_at: datetime
    updated_at: datetime


class MemoryStoreError(CatalogError):
    """A rule of memory stores was broken: a bad path or name, content too large, a path
    already taken, a change to an archived or deleted store."""


class MemoryQuotaExceeded(MemoryStoreError):
    """A change would leave a store holding more than its :class:`MemoryQuota` allows:
    nothing of it is kept."""


class MemoryQuota(msgspec.Struct, frozen=True):
    """The most a store's live memories may hold: ``memories`` of them, ``total_bytes`` of
    content together. Deleted memories and older versions do not count: the bound is on
    what a store shows, which is what a session's folder holds and the engine reads back.

    A change is judged by what it leaves: one that leaves the store past a bound it was
    within, or further past a bound it already passed (the bound lowered since), is
    refused whole; one that shrinks a store is always allowed, so a store past its bound
    can be brought back within it."""

    memories: int = MAX_MEMORIES
    total_bytes: int = MAX_STORE_BYTES

    def folder_of_too_many_files(self) -> MemoryQuotaExceeded:
        """What reading back a store's folder of more files than the store may hold
        memories raises."""
        return MemoryQuotaExceeded(
            f"the folder holds more than {self.memories:,} files, the most memories a store holds"
        )

    def folder_of_too_many_bytes(self) -> MemoryQuotaExceeded:
        """What reading back a store's folder whose files hold more than the store's
        memories may raises."""
        return MemoryQuotaExceeded(
            f"the folder's files hold more than {self.total_bytes:,} bytes, "
            "the most a store's memories hold together"
        )

    def check(self, before: tuple[int, int], after: tuple[int, int]) -> None:
        """Raise :class:`MemoryQuotaExceeded` when going from ``before`` to ``after`` (each
        a store's live memories and their bytes, :attr:`MemoryStore.usage`) is refused."""
        (count_before, bytes_before), (count, total) = before, after
        if count > self.memories and count > count_before:
            raise MemoryQuotaExceeded(
                f"a memory store holds at most {self.memories:,} memories; this change would leave {count:,}"
            )
        if total > self.total_bytes and total > bytes_before:
            raise MemoryQuotaExceeded(
                f"a memory store's memories hold at most {self.total_bytes:,} bytes together; "
                f"this change would leave {total:,}"
            )


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
        self.unsealed: dict[str, str] = {}
        """The contents of the versions written since this object was loaded, by version
        id: the application seals them before it saves the events."""
        self.in_log: dict[str, str] = {}
        """The contents that ``MemoryWritten`` events (written before contents were
        sealed) hold, by version id."""

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
        ``expected_sha256``, only if the memory's content still has that digest. A move
        needs ``content`` even when it is unchanged: the aggregate holds digests only, and
        the new version seals its own copy."""
        self._check_open()
        current = self.memory(memory_id)
        if expected_sha256 is not None and expected_sha256 != current.content_sha256:
            raise MemoryPreconditionFailed(
                f"memory {memory_id}: content_sha256 is {current.content_sha256}, not {expected_sha256}"
            )
        new_path = current.path if path is None else check_path(path)
        new_content = None if content is None else check_content(content)
        same_content = new_content is None or content_sha256(new_content) == current.content_sha256
        if new_path == current.path and same_content:
            return current
        if new_path != current.path:
            self._check_free(new_path)
        if new_content is None:  # each version seals its own copy, so one can be erased alone
            raise MemoryStoreError(f"memory {memory_id}: a move records its content again, so give it")
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

    def redact_version(self, version_id: str, author: Author) -> MemoryVersion:
        """Erase what a version wrote (its content and path), keeping that it happened,
        when and by whom; allowed in an archived store, idempotent. A memory's current
        version cannot be redacted, as the cloud's memory always shows its content's
        path and digest: write a new version or delete the memory first."""
        self._check_not_deleted()
        version = self.memory_version(version_id)
        if version.redacted_at is not None:
            return version
        current = self.memories.get(version.memory_id)
        if current is not None and current.version_id == version_id:
            raise MemoryStoreError(
                f"memory version {version_id} is the current version of memory {version.memory_id}: "
                "update or delete the memory first"
            )
        if version_id in self.in_log:
            raise MemoryStoreError(
                f"memory version {version_id} was recorded with its content in the store's log, "
                "which is append-only: it cannot be erased"
            )
        self.trigger_event(self.MemoryVersionRedacted, version_id=version_id, author=as_recorded(author))
        return self.memory_version(version_id)

    # -- queries ----------------------------------------------------------------

    def memory(self, memory_id: str) -> Memory:
        found = self.memories.get(memory_id)
        if found is None:
            raise MemoryNotFound(self.id, memory_id)
        return found

    def at_path(self, path: str) -> Memory | None:
        return next((m for m in self.memories.values() if m.path == path), None)

    @property
    def usage(self) -> tuple[int, int]:
        """How many live memories the store holds, and their contents' bytes together."""
        return len(self.memories), sum(m.size for m in self.memories.values())

    def memory_version(self, version_id: str) -> MemoryVersion:
        found = next((v for v in self.versions if v.id == version_id), None)
        if found is None:
            raise MemoryNotFound(self.id, f"version {version_id}")
        return found

    def _write(self, memory_id: str, operation: str, path: str, content: str, author: Author) -> None:
        version_id = uuid4().hex
        self.trigger_event(
            self.MemoryChanged, memory_id=memory_id, version_id=version_id, operation=operation,
            path=path, content_sha256=content_sha256(content), size=len(content.encode()),
            author=as_recorded(author),
        )  # fmt: skip
        self.unsealed[version_id] = content

    def record(self, written: MemoryVersion) -> None:
        """Fold a version that wrote a memory (for the events that record one)."""
        before = self.memories.get(written.memory_id)
        assert written.path is not None and written.content_sha256 is not None and written.size is not None
        self.memories[written.memory_id] = Memory(
            id=written.memory_id, path=written.path, content_sha256=written.content_sha256,
            size=written.size, version_id=written.id,
            created_at=before.created_at if before else written.created_at, updated_at=written.created_at,
        )  # fmt: skip
        self.versions.append(written)

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

    class MemoryChanged(Event):
        """A memory created or modified (``operation``): its path afterwards, and the
        digest and size of the content it holds, which is sealed outside the log."""

        memory_id: str
        version_id: str
        operation: str
        path: str
        content_sha256: str
        size: int
        author: Author

        def apply(self, store: MemoryStore) -> None:
            store.record(MemoryVersion(
                id=self.version_id, memory_id=self.memory_id, operation=self.operation, path=self.path,
                content_sha256=self.content_sha256, size=self.size, author=self.author,
                created_at=self.timestamp,
            ))  # fmt: skip

    class MemoryWritten(Event):
        """A memory created or modified, with its whole content: as stores recorded
        versions before contents were sealed outside the log."""

        memory_id: str
        version_id: str
        operation: str
        path: str
        content: str
        author: Author

        def apply(self, store: MemoryStore) -> None:
            store.in_log[self.version_id] = self.content
            store.record(MemoryVersion(
                id=self.version_id, memory_id=self.memory_id, operation=self.operation, path=self.path,
                content_sha256=content_sha256(self.content), size=len(self.content.encode()),
                author=self.author, created_at=self.timestamp,
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
                content_sha256=None, size=None, author=self.author, created_at=self.timestamp,
            ))  # fmt: skip

    class MemoryVersionRedacted(Event):
        """A version's content (and path) erased, by ``author``: the version stays."""

        version_id: str
        author: Author

        def apply(self, store: MemoryStore) -> None:
            n = next(n for n, v in enumerate(store.versions) if v.id == self.version_id)
            store.versions[n] = msgspec.structs.replace(
                store.versions[n], path=None, content_sha256=None, size=None,
                redacted_at=self.timestamp, redacted_by=self.author,
            )  # fmt: skip
            store.unsealed.pop(self.version_id, None)
