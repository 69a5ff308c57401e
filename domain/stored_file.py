"""The ``StoredFile`` aggregate: a file a client uploaded, for sessions to mount.

An upload is recorded once its contents are in the blob store: its name and media
type as the client gave them, its size, the SHA-256 of the whole, and the hashes of
the parts it was stored in (a large upload is kept as several blobs, so that neither
storing nor serving it holds it whole in memory). Deleting hides the file from the
Files API for good; the event is the log's like any other, and the contents stay
where sessions that mounted the file recorded them.
"""

from __future__ import annotations

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate


class FileContents(msgspec.Struct, frozen=True, kw_only=True):
    """An upload as stored: ``parts`` are blob hashes whose contents, in order, are the
    file; ``digest`` is the SHA-256 (hex) of the whole, which is also the single part's
    hash when the file fits in one."""

    filename: str
    mime_type: str
    size: int
    digest: str
    parts: tuple[str, ...]


class StoredFile(ChainedAggregate):
    """An uploaded file and whether it was deleted."""

    deleted: bool = False
    """Deleted by its owner: gone from the Files API, kept in the log."""

    class Event(ChainedAggregate.Event):
        """Every event of a stored file carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class FileUploaded(Created):
        contents: FileContents

    def __init__(self, contents: FileContents) -> None:
        self.contents = contents

    @classmethod
    def upload(cls, contents: FileContents) -> StoredFile:
        return cls._create_chained(cls.FileUploaded, GENESIS, contents=contents)

    def delete(self) -> None:
        """Hide the file from the Files API; deleting twice records nothing."""
        if not self.deleted:
            self.trigger_event(self.FileDeleted)

    class FileDeleted(Event):
        def apply(self, stored: StoredFile) -> None:
            stored.deleted = True
