"""``Uploads``: the files clients upload for sessions to mount (the Files API).

A file's contents go into the blob store as they arrive, in parts of
:data:`PART_BYTES` (each a blob under its own hash, so identical uploads, and
identical parts of different ones, are stored once), and a ``StoredFile`` aggregate
records the file once all of it is stored: so neither storing nor serving a file
holds more than a part of it in memory, and an upload cut off midway records
nothing (its parts stay in the store, unnamed, as any blob no event names does).

Lookups load the aggregate; listings read the catalog's rows (kind ``file``), newest
first. Deleting records an event: the file is then not found, and the sessions that
mounted it keep what they recorded.

    uploads = Uploads(catalog)
    upload = uploads.begin()
    for chunk in chunks:
        upload.write(chunk)
    stored = uploads.finish(upload, "notes.txt", "text/plain")
    data = b"".join(uploads.content(stored.id))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from agentjournal.application.catalog import Catalog
from agentjournal.application.catalog_projection import FileView
from agentjournal.application.errors import StoredFileNotFound, UploadTooLarge
from agentjournal.application.paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor, paged
from agentjournal.application.ports import BlobStore
from agentjournal.domain.stored_file import FileContents, StoredFile

PART_BYTES = 4 * 1024 * 1024
"""The size of the parts an upload is stored in (the last may be shorter)."""

MAX_UPLOAD_BYTES = 500 * 1000 * 1000
"""The largest file an upload may hold unless set otherwise: the cloud's 500 MB."""


class Upload:
    """A file arriving a piece at a time: each full part is stored as soon as it fills,
    and the whole is hashed on the way. ``write`` raises :class:`UploadTooLarge` once
    the file passes ``limit`` bytes."""

    def __init__(self, blobs: BlobStore, limit: int) -> None:
        self.blobs = blobs
        self.limit = limit
        self.size = 0
        self.parts: list[str] = []
        self._whole = hashlib.sha256()
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise UploadTooLarge(self.limit)
        self._whole.update(data)
        self._pending += data
        while len(self._pending) >= PART_BYTES:
            self._store(bytes(self._pending[:PART_BYTES]))
            del self._pending[:PART_BYTES]

    def close(self) -> tuple[int, str, tuple[str, ...]]:
        """Store what is left; the file's size, SHA-256 and parts."""
        if self._pending or not self.parts:
            self._store(bytes(self._pending))
            self._pending.clear()
        return self.size, self._whole.hexdigest(), tuple(self.parts)

    def _store(self, part: bytes) -> None:
        self.blobs.add([part])
        self.parts.append(hashlib.sha256(part).hexdigest())


class Uploads:
    """Uploads, lists, reads and deletes files, in the catalog's store."""

    def __init__(self, catalog: Catalog, limit: int = MAX_UPLOAD_BYTES) -> None:
        self.catalog = catalog
        self.service = catalog.service
        self.limit = limit

    def begin(self) -> Upload:
        return Upload(self.service.blobs, self.limit)

    def finish(self, upload: Upload, filename: str, mime_type: str) -> FileView:
        """Record the file once all of it is stored. The name and media type are the
        client's (redacted like every text the log keeps)."""
        size, digest, parts = upload.close()
        contents = FileContents(
            filename=self.catalog.redact(filename), mime_type=self.catalog.redact(mime_type),
            size=size, digest=digest, parts=parts,
        )  # fmt: skip
        stored = StoredFile.upload(contents)
        self.service.save(stored)
        return file_view(stored)

    def get(self, file_id: UUID) -> FileView:
        """The file's metadata; a deleted one is not found."""
        return file_view(self._load(file_id))

    def content(self, file_id: UUID) -> Iterator[bytes]:
        """The file's contents, a part at a time. The file is looked up now, so a
        missing one raises before anything is read."""
        parts = self._load(file_id).contents.parts
        return (self.service.blobs.get(part) for part in parts)

    def delete(self, file_id: UUID) -> None:
        """Hide the file from the Files API for good; the log keeps it."""
        stored = self._load(file_id)
        stored.delete()
        self.service.save(stored)

    def list_files(self, *, limit: int = DEFAULT_LIMIT, page: str | None = None) -> Page[FileView]:
        """Files, newest first, deleted ones never."""
        limit = check_limit(limit)
        after = decode_cursor(page, tuple[datetime, UUID]) if page else None
        self.catalog.projector.catch_up()
        rows = self.catalog.view.page("file", limit=limit + 1, after=after)
        files = [row for row in rows if isinstance(row, FileView)]
        return paged(files, limit, lambda r: (r.created_at, r.id))

    def _load(self, file_id: UUID) -> StoredFile:
        found = self.service.live(file_id, StoredFile)
        if found is None:
            raise StoredFileNotFound(file_id)
        return found


def file_view(stored: StoredFile) -> FileView:
    return FileView(
        id=stored.id, contents=stored.contents, created_at=stored.created_on, deleted=stored.deleted
    )
