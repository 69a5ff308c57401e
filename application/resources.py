"""``SessionResources``: uploaded files and git repositories mounted into sessions.

Mounting records on the session ``ResourceAdded`` (which file or repository, at which
``mount_path``), a ``WorkspaceChanged`` putting its files into the work folder at the path :func:`~agentjournal.application.mounts.work_folder_path`
maps the mount path to, and a ``ConfigChanged`` whose system prompt tells the model
where its mounts are. So they are the session's files from then on: a fork takes
them, the files at any later version show them, and a sandbox attached later is
filled with them from the blob store like any other recorded file.

A session that has no sandbox yet (one just created) gets only the record; its first
sandbox is filled from the log. A session whose sandbox exists gets the files written
there, and the snapshot that follows is what records them, as after a tool call.

Mounted contents are kept whole in the blob store, whatever the session's snapshot
size cap (the cap is for what tools write; a mount is the user's choice), so a fork or
a new sandbox can always have them back. They are held in memory once, at mount time
(an upload stored in several parts is assembled; a clone is read whole).

A repository is cloned by a :class:`~agentjournal.application.ports.RepositoryCloner`
(git itself, on the host); its ``authorization_token`` is handed to the clone and to
nothing else: not to an event, a response, the model or a tool.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from agentjournal.application.adapters import repository_cloner
from agentjournal.application.catalog_projection import FileView
from agentjournal.application.errors import ConcurrentUpdate, ConfigError, ResourceNotFound
from agentjournal.application.memory_mounts import (
    READ_ONLY,
    READ_WRITE,
    memory_mount_path,
    memory_resources,
    with_memory_note,
)
from agentjournal.application.memory_stores import MemoryStores
from agentjournal.application.mounts import with_mounts_note, work_folder_path
from agentjournal.application.ports import FileContents, RepositoryCloner
from agentjournal.application.service import RuntimeFactory, SessionService
from agentjournal.application.uploads import Uploads
from agentjournal.application.workspace import restore_into_new_sandbox, take_snapshot
from agentjournal.domain import FileState, Session
from agentjournal.domain.resources import (
    FileResource,
    MemoryStoreResource,
    MountedResource,
    RepositoryResource,
    SessionResource,
)

MOUNTED_FILE_MODE = 0o644

RESOURCE_PREFIX = "sesrsc_"

MAX_INSTRUCTIONS = 4096
"""The most characters of a memory store attachment's ``instructions``, as the cloud documents."""

COMMIT = re.compile(r"[0-9a-f]{4,64}")
"""What a commit to check out may be: a (possibly abbreviated) hex object name."""


class PreparedMount(msgspec.Struct, frozen=True):
    """A resource checked and fetched, not yet recorded: what it is, and its files (paths
    in the work folder)."""

    resource: SessionResource
    files: list[FileContents]


class SessionResources:
    """Mounts uploaded files and repositories into sessions, lists and removes them."""

    def __init__(
        self, service: SessionService, uploads: Uploads, cloner: RepositoryCloner | None = None
    ) -> None:
        self.service = service
        self.uploads = uploads
        self._cloner = cloner

    @property
    def cloner(self) -> RepositoryCloner:
        if self._cloner is None:
            self._cloner = repository_cloner()
        return self._cloner

    # -- files ------------------------------------------------------------------------------

    def check_file(self, file_id: UUID, mount_path: str) -> FileView:
        """The file a mount would take, checked before anything is recorded: it exists,
        and ``mount_path`` is a place for it."""
        work_folder_path(mount_path)
        return self.uploads.get(file_id)

    def prepare_file(self, file_id: UUID, mount_path: str) -> PreparedMount:
        """The uploaded file, ready to mount at ``mount_path``: checked (it exists, the
        path is a place for it) and read, before anything is recorded."""
        stored = self.check_file(file_id, mount_path)
        path = work_folder_path(mount_path)
        resource = FileResource(id=_new_id(), file_id=file_id.hex, mount_path=mount_path, path=path)
        whole = b"".join(self.uploads.content(stored.id))
        return PreparedMount(resource, [FileContents(path, MOUNTED_FILE_MODE, whole)])

    def mount_file(
        self, session_id: UUID, file_id: UUID, mount_path: str, runtime_for: RuntimeFactory
    ) -> MountedResource:
        """Mount the uploaded file at ``mount_path``, between turns (``SessionBusy`` while
        one runs). ``runtime_for`` gives the compute of a session that has a sandbox."""
        self.service.get_session(session_id)
        return self.mount(session_id, self.prepare_file(file_id, mount_path), runtime_for)

    # -- repositories -----------------------------------------------------------------------

    def check_repository(self, url: str, mount_path: str, branch: str = "", commit: str = "") -> None:
        """Refuse, before anything is recorded, what no clone should be asked to do."""
        work_folder_path(mount_path)
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"url: {url!r} is not an http or https git URL")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise ConfigError("url: credentials go in authorization_token, not in the URL")
        if branch and branch.startswith("-"):
            raise ConfigError(f"checkout.name: {branch!r} is not a branch name")
        if commit and not COMMIT.fullmatch(commit):
            raise ConfigError(f"checkout.sha: {commit!r} is not a commit's hex name")
        if branch and commit:
            raise ConfigError("checkout: a branch or a commit, not both")

    def prepare_repository(
        self, url: str, mount_path: str, *, token: str | None = None, branch: str = "", commit: str = ""
    ) -> PreparedMount:
        """Clone ``url`` at ``branch`` or ``commit`` (neither: its default branch), ready
        to mount at ``mount_path``; a clone git refuses raises ``RepositoryUnavailable``
        before anything is recorded."""
        self.check_repository(url, mount_path, branch, commit)
        path = work_folder_path(mount_path)
        checkout = self.cloner.clone(url, token or None, branch=branch, commit=commit)
        resource = RepositoryResource(
            id=_new_id(), url=url, branch=branch, commit=commit, checked_out=checkout.commit,
            mount_path=mount_path, path=path,
        )  # fmt: skip
        return PreparedMount(
            resource, [FileContents(f"{path}/{f.path}", f.mode, f.data) for f in checkout.files]
        )

    def rotate_token(self, session_id: UUID, resource_id: str) -> MountedResource:
        """Take a repository's new token: the clone is done, so nothing needs it now; the
        resource shows it was updated, and the token is kept nowhere."""
        session = self.service.get_session(session_id)
        found = session.resource(resource_id)
        if found is None:
            raise ResourceNotFound(session_id, resource_id)
        if not isinstance(found.resource, RepositoryResource):
            raise ConfigError("only a github_repository resource takes a new authorization_token")
        session.touch_resource(resource_id)
        self._save(session)
        updated = session.resource(resource_id)
        assert updated is not None
        return updated

    # -- memory stores ----------------------------------------------------------------------

    def prepare_memory_store(
        self, store_id: UUID, access: str = "read_write", instructions: str = "", taken: Sequence[str] = ()
    ) -> PreparedMount:
        """A memory store ready to attach: it exists and is not archived, ``access`` is
        ``read_write`` or ``read_only``, and its folder (``/mnt/memory/<slug>``, a number
        added when another store of the session has the slug) is not in ``taken``."""
        if access not in (READ_WRITE, READ_ONLY):
            raise ConfigError(f"access: {access!r} is not 'read_write' or 'read_only'")
        if len(instructions) > MAX_INSTRUCTIONS:
            raise ConfigError(f"instructions: at most {MAX_INSTRUCTIONS:,} characters")
        store = MemoryStores(self.service).get(store_id)
        if store.archived_at is not None:
            raise ConfigError(f"memory store {store_id} is archived: it cannot be attached")
        mount_path, n = memory_mount_path(store.slug), 1
        while mount_path in taken:
            n += 1
            mount_path = memory_mount_path(f"{store.slug}-{n}")
        resource = MemoryStoreResource(
            id=_new_id(), memory_store_id=store.id.hex, name=store.name, description=store.description,
            access=access, instructions=instructions, mount_path=mount_path,
        )  # fmt: skip
        return PreparedMount(resource, [])

    # -- any resource -----------------------------------------------------------------------

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
        _tell_the_model(session)
        self._save(session)

    def mount(
        self, session_id: UUID, prepared: PreparedMount, runtime_for: RuntimeFactory | None = None
    ) -> MountedResource:
        """Record a prepared resource and put its files into the session's work folder:
        into the record alone when it has no sandbox yet, else into the sandbox, then a
        snapshot. Between turns (``SessionBusy`` while one runs)."""
        session = self.service.get_session(session_id)
        session.add_resource(prepared.resource)
        files = prepared.files
        self.service.blobs.add(f.data for f in files)
        # A memory store brings no files: it is shown to the tools at each call instead.
        if files and session.compute is None:
            mounted = {f.path: FileState(hash=_digest(f.data), size=len(f.data), mode=f.mode) for f in files}
            session.record_workspace({**session.files, **mounted})
        elif files:
            self._write_into_sandbox(session, files, runtime_for)
        _tell_the_model(session)
        self._save(session)
        return session.resources[-1]

    def _write_into_sandbox(
        self, session: Session, files: list[FileContents], runtime_for: RuntimeFactory | None
    ) -> None:
        if runtime_for is None:
            raise ConfigError("the session has a sandbox: mounting into it needs its compute (runtime_for)")
        compute = runtime_for(session.config, session.id).compute
        binding = compute.attach(session.id, session.compute)
        if binding != session.compute:  # the sandbox was lost: a new one, filled from the log
            session.attach_compute(binding)
            restore_into_new_sandbox(session, compute, self.service.blobs)
        compute.restore(files)
        take_snapshot(session, compute, self.service.blobs, "")

    def _save(self, session: Session) -> None:
        try:
            self.service.save(session)
        except IntegrityError:
            raise ConcurrentUpdate(session.id) from None


def _tell_the_model(session: Session) -> None:
    """Bring the system prompt's note of the session's mounts up to date (a
    ``ConfigChanged``, so the log says when the model was told what)."""
    places = {r.resource.mount_path: r.resource.path for r in session.resources
              if not isinstance(r.resource, MemoryStoreResource)}  # fmt: skip
    system = with_memory_note(with_mounts_note(session.config.system, places), memory_resources(session))
    session.change_config(msgspec.structs.replace(session.config, system=system))


def _new_id() -> str:
    return RESOURCE_PREFIX + uuid.uuid4().hex


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
