"""``SessionResources``: uploaded files mounted into sessions, as the log records them.

Mounting a file records two events on the session: ``ResourceAdded`` (which file, at
which ``mount_path``) and a ``WorkspaceChanged`` putting the file into the work folder
at the path :func:`~agentjournal.application.mounts.work_folder_path` maps the mount
path to. So the file is one of the session's files from then on: a fork takes it,
the files at any later version show it, and a sandbox attached later is filled with
it from the blob store like any other recorded file.

A session that has no sandbox yet (one just created) gets only the record; its first
sandbox is filled from the log. A session whose sandbox exists gets the file written
there, and the snapshot that follows is what records it, as after a tool call.

A mounted file's contents are kept whole in the blob store, whatever the session's
snapshot size cap (the cap is for what tools write; a mount is the user's choice), so
a fork or a new sandbox can always have it back. Assembling a file stored in several
parts holds it in memory once, at mount time.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from agentjournal.application.catalog_projection import FileView
from agentjournal.application.errors import ConcurrentUpdate, ResourceNotFound
from agentjournal.application.mounts import work_folder_path
from agentjournal.application.ports import FileContents
from agentjournal.application.service import RuntimeFactory, SessionService
from agentjournal.application.uploads import Uploads
from agentjournal.application.workspace import restore_into_new_sandbox, take_snapshot
from agentjournal.domain import FileState, Session
from agentjournal.domain.resources import FileResource, MountedResource

MOUNTED_FILE_MODE = 0o644

RESOURCE_PREFIX = "sesrsc_"


class SessionResources:
    """Mounts uploaded files into sessions, lists and removes them."""

    def __init__(self, service: SessionService, uploads: Uploads) -> None:
        self.service = service
        self.uploads = uploads

    def check_file(self, file_id: UUID, mount_path: str) -> FileView:
        """The file a mount would take, checked before anything is recorded: it exists,
        and ``mount_path`` is a place for it."""
        work_folder_path(mount_path)
        return self.uploads.get(file_id)

    def mount_file(
        self, session_id: UUID, file_id: UUID, mount_path: str, runtime_for: RuntimeFactory
    ) -> MountedResource:
        """Mount the uploaded file at ``mount_path``, between turns (``SessionBusy`` while
        one runs). ``runtime_for`` gives the compute of a session that has a sandbox."""
        stored = self.check_file(file_id, mount_path)
        path = work_folder_path(mount_path)
        session = self.service.get_session(session_id)
        resource = FileResource(
            id=RESOURCE_PREFIX + uuid.uuid4().hex, file_id=file_id.hex, mount_path=mount_path, path=path
        )
        session.add_resource(resource)
        state = self._keep_whole(stored)
        if session.compute is None:
            session.record_workspace({**session.files, path: state})
        else:
            self._write_into_sandbox(
                session, FileContents(path, MOUNTED_FILE_MODE, self._whole(stored)), runtime_for
            )
        self._save(session)
        return session.resources[-1]

    def resources(self, session_id: UUID) -> list[MountedResource]:
        """The session's resources, in the order they were added."""
        return list(self.service.get_session(session_id).resources)

    def resource(self, session_id: UUID, resource_id: str) -> MountedResource:
        found = self.service.get_session(session_id).resource(resource_id)
        if found is None:
            raise ResourceNotFound(session_id, resource_id)
        return found

    def remove(self, session_id: UUID, resource_id: str) -> None:
        """Forget the resource; what it put into the work folder stays (see
        :meth:`~agentjournal.domain.Session.remove_resource`)."""
        session = self.service.get_session(session_id)
        if session.resource(resource_id) is None:
            raise ResourceNotFound(session_id, resource_id)
        session.remove_resource(resource_id)
        self._save(session)

    def _keep_whole(self, stored: FileView) -> FileState:
        """The file as the manifest records it, its contents stored whole under its hash
        (an upload of one part is stored so already)."""
        contents = stored.contents
        if contents.parts != (contents.digest,):
            self.service.blobs.add([self._whole(stored)])
        return FileState(hash=contents.digest, size=contents.size, mode=MOUNTED_FILE_MODE)

    def _whole(self, stored: FileView) -> bytes:
        return b"".join(self.uploads.content(stored.id))

    def _write_into_sandbox(self, session: Session, file: FileContents, runtime_for: RuntimeFactory) -> None:
        compute = runtime_for(session.config, session.id).compute
        binding = compute.attach(session.id, session.compute)
        if binding != session.compute:  # the sandbox was lost: a new one, filled from the log
            session.attach_compute(binding)
            restore_into_new_sandbox(session, compute, self.service.blobs)
        compute.restore([file])
        take_snapshot(session, compute, self.service.blobs, "")

    def _save(self, session: Session) -> None:
        try:
            self.service.save(session)
        except IntegrityError:
            raise ConcurrentUpdate(session.id) from None
