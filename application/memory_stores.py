"""``MemoryStores``: the catalog's memory stores, their memories and memory versions.

A memory store (:class:`~agentjournal.domain.memory.MemoryStore`) is an aggregate in the
session store, hash-chained and exported like agents and vaults. Clients change its
memories through the API (an :class:`~agentjournal.domain.memory.ApiAuthor` change); a
session's tools change them through the store's mounted folder, and
:meth:`MemoryStores.write_from_session` records those as versions of the session's own
(see :mod:`agentjournal.application.memory_mounts`).

Listings of stores read the catalog's rows; a store's memories and versions are read
from the aggregate itself, paged by an opaque cursor over their order.

The aggregate knows its contents' digests only: this class seals what a change wrote (in
the service's :class:`~agentjournal.application.ports.MemoryContents`) before it saves the
events that name it, reads contents back for the API and the sessions' folders
(:meth:`MemoryStores.contents`), and erases a redacted version's content once the
redaction is recorded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from agentjournal.application.errors import ConfigError, StoreError
from agentjournal.application.fields import patched_metadata
from agentjournal.application.paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor, encode_cursor
from agentjournal.domain import AgentJournalError
from agentjournal.domain.memory import (
    MAX_MEMORIES,
    MAX_STORE_BYTES,
    ApiAuthor,
    Author,
    Memory,
    MemoryQuota,
    MemoryStore,
    MemoryVersion,
    SessionAuthor,
    check_path,
)

if TYPE_CHECKING:  # the turn loop imports this module; the catalog is loaded only to list stores
    from agentjournal.application.catalog import Catalog
    from agentjournal.application.catalog_projection import MemoryStoreView
    from agentjournal.application.service import SessionService

T = TypeVar("T")

MEMORIES_SETTING = "AGENTJOURNAL_MEMORY_STORE_MEMORIES"
"""The setting (an environment variable) for the most live memories a store holds."""

STORE_BYTES_SETTING = "AGENTJOURNAL_MEMORY_STORE_BYTES"
"""The setting for the most bytes a store's live memories hold together."""


def memory_quota(env: Mapping[str, str]) -> MemoryQuota:
    """The bound on every store's live memories that the settings in ``env`` give (see
    :class:`~agentjournal.domain.memory.MemoryQuota`): every process that writes a store
    reads it, so the API and the sessions' folders are held to the same bound."""

    def setting(name: str, default: int) -> int:
        text = env.get(name) or ""
        if not text:
            return default
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"{name}: a whole number, 1 or more, not {text!r}")
        return int(text)

    return MemoryQuota(setting(MEMORIES_SETTING, MAX_MEMORIES), setting(STORE_BYTES_SETTING, MAX_STORE_BYTES))


class MemoryStoreNotFound(AgentJournalError, LookupError):
    def __init__(self, what: str) -> None:
        super().__init__(f"no {what} in this store")


class Prefix(str):
    """A directory of memories that a listing rolled up (its path ends with ``/``)."""


class MemoryStores:
    """Creates, lists, updates, archives and deletes memory stores and their memories."""

    save_attempts = 6

    def __init__(self, service: SessionService, catalog: Catalog | None = None) -> None:
        self.service = service
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        """The catalog's rows, which only listing stores reads (opened on first use)."""
        if self._catalog is None:
            from agentjournal.application.catalog import Catalog

            self._catalog = Catalog(self.service)
        return self._catalog

    # -- stores ------------------------------------------------------------------------------

    def create(
        self, name: str, description: str = "", metadata: Mapping[str, str] | None = None
    ) -> MemoryStore:
        store = MemoryStore.create(name, description or "", patched_metadata({}, metadata))
        self.service.save(store)
        return store

    def get(self, store_id: UUID) -> MemoryStore:
        """The store with this id; a deleted one, or anything else, is not found."""
        found = self.service.live(store_id, MemoryStore)
        if found is None:
            raise MemoryStoreNotFound(f"memory store {store_id}")
        return found

    def list(
        self, *, include_archived: bool = False, limit: int = DEFAULT_LIMIT, page: str | None = None
    ) -> Page[MemoryStoreView]:
        """Stores, newest first, archived ones only when asked, deleted ones never."""
        return self.catalog.page("memory_store", include_archived=include_archived, limit=limit, page=page)

    def update(
        self,
        store_id: UUID,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str | None] | None = None,
    ) -> MemoryStore:
        """Rename or re-describe the store, or patch its metadata (a key set to None goes)."""

        def change(store: MemoryStore) -> None:
            store.update(
                store.name if name is None else name,
                store.description if description is None else description,
                patched_metadata(store.metadata, metadata),
            )

        return self._apply(store_id, change)

    def archive(self, store_id: UUID) -> MemoryStore:
        return self._apply(store_id, MemoryStore.archive)

    def delete(self, store_id: UUID) -> MemoryStore:
        """Delete the store for good: its versions' contents are erased with it."""
        deleted = self._apply(store_id, MemoryStore.delete)
        self.service.memory_contents.erase(v.id for v in deleted.versions)
        return deleted

    # -- memories ----------------------------------------------------------------------------

    def create_memory(self, store_id: UUID, path: str, content: str, author: Author | None = None) -> Memory:
        made: list[Memory] = []
        self._apply(store_id, lambda s: made.append(s.create_memory(path, content, author or ApiAuthor())))
        return made[-1]

    def update_memory(
        self,
        store_id: UUID,
        memory_id: str,
        *,
        path: str | None = None,
        content: str | None = None,
        expected_sha256: str | None = None,
        author: Author | None = None,
    ) -> Memory:
        updated: list[Memory] = []

        def change(store: MemoryStore) -> None:
            rewritten = content
            if rewritten is None and path is not None:  # a move seals the content again
                # (as of a newer store when one redacted what this one holds: then this
                # store's save loses the race, and the move is made again on the newer)
                rewritten = self.content(store, memory_id)[1]
            updated.append(store.update_memory(
                memory_id, author or ApiAuthor(), path=path, content=rewritten, expected_sha256=expected_sha256
            ))  # fmt: skip

        self._apply(store_id, change)
        return updated[-1]

    def delete_memory(self, store_id: UUID, memory_id: str, author: Author | None = None) -> None:
        self._apply(store_id, lambda s: s.delete_memory(memory_id, author or ApiAuthor()))

    def list_memories(
        self,
        store_id: UUID,
        *,
        path_prefix: str = "",
        depth: int = 0,
        limit: int = DEFAULT_LIMIT,
        page: str | None = None,
    ) -> Page[Memory | Prefix]:
        """The memories below ``path_prefix`` (which ends with ``/`` and matches whole
        segments), by path; with ``depth`` > 0, those deeper than ``depth`` segments below
        it are rolled up into one :class:`Prefix` per folder."""
        if path_prefix and (not path_prefix.startswith("/") or not path_prefix.endswith("/")):
            raise ConfigError(f"path_prefix: {path_prefix!r} must start and end with '/'")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ConfigError("depth: a whole number, 0 or more")
        base = path_prefix or "/"
        items: dict[str, Memory | Prefix] = {}
        for memory in self.get(store_id).memories.values():
            if not memory.path.startswith(base):
                continue
            below = memory.path[len(base) :].split("/")
            if depth and len(below) > depth:
                folder = base + "/".join(below[:depth]) + "/"
                items.setdefault(folder, Prefix(folder))
            else:
                items[memory.path] = memory
        return _page([items[key] for key in sorted(items)], sorted(items), limit, page)

    # -- contents ----------------------------------------------------------------------------

    def contents(self, store: MemoryStore | UUID, version_ids: Iterable[str]) -> dict[str, str]:
        """The contents these versions of ``store`` (or the store with this id) wrote, by
        version id: those of a deletion, a redacted version (or an erased store) are absent."""
        wanted = set(version_ids)
        if not wanted:
            return {}
        if isinstance(store, UUID):
            store = self.get(store)
        found = {v: store.in_log[v] for v in wanted if v in store.in_log}
        found.update({v: store.unsealed[v] for v in wanted if v in store.unsealed})
        rest = wanted - found.keys()
        return found | (self.service.memory_contents.get(rest) if rest else {})

    def content(self, store: MemoryStore, memory_id: str) -> tuple[Memory, str]:
        """The memory ``memory_id`` and what it holds, as of ``store`` or, when another
        process replaced its version and redacted it since ``store`` was loaded, as of the
        store now (see :meth:`with_contents`)."""
        now, found = self.with_contents(store, lambda s: [s.memory(memory_id).version_id])
        memory = now.memory(memory_id)
        return memory, found[memory.version_id]

    def with_contents(
        self, store: MemoryStore, chosen: Callable[[MemoryStore], Iterable[str]]
    ) -> tuple[MemoryStore, dict[str, str]]:
        """``store`` and the contents of the versions ``chosen`` picks of it, all of them.

        A version is current when the store is loaded, but another process may write the
        memory again and redact that version before its content is read: then the store is
        loaded again (a redacted version is never current, so the newer store no longer
        picks it) until what it picks is all there. A content missing from a store that
        picks the same versions twice is damage, a :class:`StoreError`."""
        for _ in range(self.save_attempts):
            wanted = set(chosen(store))
            found = self.contents(store, wanted)
            if wanted <= found.keys():
                return store, found
            newer = self.get(store.id)
            if set(chosen(newer)) == wanted:
                break
            store = newer
        missing = sorted(wanted - found.keys())
        raise StoreError(f"memory store {store.id}: the content of versions {missing} is missing")

    # -- versions ----------------------------------------------------------------------------

    def list_versions(
        self,
        store_id: UUID,
        *,
        memory_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        limit: int = DEFAULT_LIMIT,
        page: str | None = None,
    ) -> Page[MemoryVersion]:
        """The store's memory versions, newest first, those of one memory, one session's
        or one kind of change when asked."""
        chosen = [
            (n, v) for n, v in reversed(list(enumerate(self.get(store_id).versions)))
            if (memory_id is None or v.memory_id == memory_id)
            and (operation is None or v.operation == operation)
            and (session_id is None or (isinstance(v.author, SessionAuthor) and v.author.session_id == session_id))
        ]  # fmt: skip
        # A version's place in the store's history never changes, so newest first is its
        # place counted down from a bound no store reaches: a key that sorts and stays.
        keys = [f"{10**12 - n:013d}" for n, _ in chosen]
        return _page([v for _, v in chosen], keys, limit, page)

    def redact_version(self, store_id: UUID, version_id: str, author: Author | None = None) -> MemoryVersion:
        """Erase what a version wrote (see :meth:`MemoryStore.redact_version`): the store
        records who redacted it and when, then its sealed content is erased. Asked again,
        the erasure is made again (so one cut short by a crash is finished)."""
        redacted: list[MemoryVersion] = []
        self._apply(store_id, lambda s: redacted.append(s.redact_version(version_id, author or ApiAuthor())))
        self.service.memory_contents.erase([version_id])
        return redacted[-1]

    # -- what sessions do --------------------------------------------------------------------

    def write_from_session(
        self, store_id: UUID, author: SessionAuthor, files: Mapping[str, str | None]
    ) -> tuple[MemoryVersion, ...]:
        """Record what a session's tools left in the store's folder: ``files`` maps a
        memory's path to its new content (None: removed). A path that holds no memory
        creates one; content equal to the memory's records nothing. Returns the versions
        recorded, each attributed to ``author``."""
        recorded: dict[str, MemoryVersion] = {}

        def change(store: MemoryStore) -> None:
            recorded.clear()
            before = len(store.versions)
            # Removals first, so a file may take the place of a folder it replaced, and back.
            for path, content in sorted(files.items(), key=lambda item: (item[1] is not None, item[0])):
                check_path(path)
                memory = store.at_path(path)
                if content is None:
                    if memory is not None:
                        store.delete_memory(memory.id, author)
                elif memory is None:
                    store.create_memory(path, content, author)
                else:
                    store.update_memory(memory.id, author, content=content)
            recorded.update((v.id, v) for v in store.versions[before:])

        self._apply(store_id, change)
        return tuple(recorded.values())

    def _apply(self, store_id: UUID, command: Callable[[MemoryStore], object]) -> MemoryStore:
        """Run ``command`` on the latest state and save it, again on newer state when another
        process (or session) saved first. What it leaves must be within the service's
        :attr:`~agentjournal.application.service.SessionService.memory_quota`, or nothing
        of it is saved."""
        for attempt in range(1, self.save_attempts + 1):
            store = self.get(store_id)
            before = store.usage
            command(store)
            self.service.memory_quota.check(before, store.usage)
            # Sealed first, so no saved event names a content the store lacks. A save that
            # lost the race erases what it sealed (no event names it); after any other
            # failure the events may have been saved, so what was sealed stays.
            written = dict(store.unsealed)
            if written:
                self.service.memory_contents.seal(store.id, written)
            try:
                self.service.save(store)
                store.unsealed.clear()
                return store
            except IntegrityError:
                if written:
                    self.service.memory_contents.erase(written)
                if attempt == self.save_attempts:
                    raise StoreError(
                        f"memory store {store_id} kept changing; nothing was recorded: try again"
                    ) from None
                time.sleep(random.uniform(0, 0.01) * attempt)
        raise AssertionError("unreachable")


def _page(items: Sequence[T], keys: Sequence[str], limit: int, page: str | None) -> Page[T]:
    """Up to ``limit`` of ``items`` (sorted by ``keys``) after the cursor ``page``."""
    check_limit(limit)
    start = 0
    if page:
        (after,) = decode_cursor(page, tuple[str])
        start = next((n for n, key in enumerate(keys) if key > after), len(keys))
    chosen = list(items[start : start + limit])
    more = start + limit < len(items)
    return Page(chosen, encode_cursor(keys[start + limit - 1]) if more else None)
