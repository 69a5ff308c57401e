"""What a session starts with besides its conversation: resources mounted into its work folder.

A ``file`` resource is an uploaded file (the Files API's ``StoredFile``) mounted at a
path the cloud names (``mount_path``, ``/mnt/session/uploads/<file_id>`` by default).
A ``github_repository`` resource is a clone of a git repository (any git URL) at
``mount_path`` (``/workspace/<repo>`` by default), at a branch or a commit.
A ``memory_store`` resource is a memory store shown at ``/mnt/memory/<slug>``, outside
the work folder.
The session records the resource itself (which file, where) and, separately, what a file
or repository put into the work folder (a ``WorkspaceChanged``), so the work folder's manifest, forks
and the files at any version see the mounted file like any other.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class FileResource(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="file"):
    """An uploaded file mounted at ``mount_path`` (as the session's tools are told it);
    ``path`` is where that lies in the work folder (see
    :func:`agentjournal.application.mounts.work_folder_path`)."""

    id: str
    file_id: str
    """The stored file's UUID, hex."""
    mount_path: str
    path: str


class RepositoryResource(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="github_repository"
):
    """A git repository cloned at ``mount_path`` (``path`` in the work folder): the
    ``branch`` or ``commit`` asked for (neither: the remote's default branch) and the
    commit that was checked out. The token the clone used is never part of it."""

    id: str
    url: str
    branch: str = ""
    commit: str = ""
    checked_out: str
    """The commit the work folder got (a branch's head at the time of the clone)."""
    mount_path: str
    path: str


class MemoryStoreResource(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="memory_store"):
    """A memory store attached to the session, shown to its tools at ``mount_path``
    (``/mnt/memory/<slug>``), outside the work folder: memory is shared state, not the
    session's files. ``name`` and ``description`` are the store's when it was attached;
    ``access`` is ``read_write`` or ``read_only``."""

    id: str
    memory_store_id: str
    """The store's UUID, hex."""
    name: str
    description: str = ""
    access: str = "read_write"
    instructions: str = ""
    mount_path: str

    @property
    def slug(self) -> str:
        return self.mount_path.rsplit("/", 1)[-1]

    @property
    def read_only(self) -> bool:
        return self.access == "read_only"


SessionResource = FileResource | RepositoryResource | MemoryStoreResource
"""Every kind of resource a session records."""

WorkFolderResource = FileResource | RepositoryResource
"""The resources that put files into the work folder."""


class MountedResource(msgspec.Struct, frozen=True, kw_only=True):
    """A resource of a session, and when it was added and last changed."""

    resource: SessionResource
    created_at: datetime
    updated_at: datetime
