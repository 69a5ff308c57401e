"""What a session starts with besides its conversation: resources mounted into its work folder.

A ``file`` resource is an uploaded file (the Files API's ``StoredFile``) mounted at a
path the cloud names (``mount_path``, ``/mnt/session/uploads/<file_id>`` by default).
The session records the resource itself (which file, where) and, separately, what it
put into the work folder (a ``WorkspaceChanged``), so the work folder's manifest, forks
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


SessionResource = FileResource
"""Every kind of resource a session records (a union as kinds are added)."""


class MountedResource(msgspec.Struct, frozen=True, kw_only=True):
    """A resource of a session, and when it was added and last changed."""

    resource: SessionResource
    created_at: datetime
    updated_at: datetime
