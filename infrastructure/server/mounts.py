"""Session resources on the wire: a resource as a client asks for one (``file``,
``github_repository`` or ``memory_store``), and as the API shows it (the session's ``resources`` and
``/v1/sessions/{id}/resources``). A repository's ``authorization_token`` is read here
and handed on; no answer ever shows it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from agentjournal.application.mounts import default_file_mount, default_repository_mount
from agentjournal.domain.resources import FileResource, MemoryStoreResource, MountedResource
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import FILE, MEMORY_STORE, parse_id, wire_id
from agentjournal.infrastructure.server.wire import wire_time

KINDS = ("file", "github_repository", "memory_store")


class FileBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="file"):
    file_id: str
    mount_path: str | None = None


class BranchCheckout(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="branch"):
    name: str


class CommitCheckout(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="commit"):
    sha: str


class RepositoryBody(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="github_repository"
):
    url: str
    authorization_token: str | None = None
    checkout: BranchCheckout | CommitCheckout | None = None
    mount_path: str | None = None


class MemoryStoreBody(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="memory_store"
):
    memory_store_id: str
    access: str | None = None
    instructions: str | None = None


class MemoryMount(msgspec.Struct, frozen=True):
    """A ``memory_store`` resource as a client asks for it."""

    memory_store_id: UUID
    access: str
    instructions: str


class FileMount(msgspec.Struct, frozen=True):
    """A ``file`` resource as a client asks for it: the file and where."""

    file_id: UUID
    mount_path: str


class RepositoryMount(msgspec.Struct, frozen=True):
    """A ``github_repository`` resource as a client asks for it. ``token`` is for the
    clone alone; ``repr`` leaves it out."""

    url: str
    mount_path: str
    branch: str = ""
    commit: str = ""
    token: str | None = msgspec.field(default=None)

    def __repr__(self) -> str:
        return f"RepositoryMount(url={self.url!r}, mount_path={self.mount_path!r})"


Mount = FileMount | RepositoryMount | MemoryMount


def resource_mount(body: Any, field: str) -> Mount:
    """The mount a resource body asks for; 400 naming ``field`` for anything else."""
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in KINDS:
        raise ApiError(400, f"{field}.type: must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        parsed = msgspec.convert(body, type=FileBody | RepositoryBody | MemoryStoreBody)
    except msgspec.ValidationError as e:
        raise ApiError(400, f"{field}: {str(e).replace('$', field, 1)}") from None
    if isinstance(parsed, MemoryStoreBody):
        store_id = parse_id(MEMORY_STORE, parsed.memory_store_id)
        return MemoryMount(store_id, parsed.access or "read_write", parsed.instructions or "")
    if isinstance(parsed, FileBody):
        file_id = parse_id(FILE, parsed.file_id)
        return FileMount(file_id, parsed.mount_path or default_file_mount(wire_id(FILE, file_id)))
    checkout = parsed.checkout
    return RepositoryMount(
        url=parsed.url,
        mount_path=parsed.mount_path or default_repository_mount(parsed.url),
        branch=checkout.name if isinstance(checkout, BranchCheckout) else "",
        commit=checkout.sha if isinstance(checkout, CommitCheckout) else "",
        token=parsed.authorization_token,
    )


def file_mount(body: Any, field: str) -> FileMount:
    """The file mount a body asks for (``resources.add`` takes files only)."""
    mount = resource_mount(body, field)
    if not isinstance(mount, FileMount):
        raise ApiError(400, f"{field}.type: only a file can be added to a session that exists")
    return mount


def resource_json(mounted: MountedResource) -> dict[str, Any]:
    """The API's session resource: a ``file``, a ``github_repository`` or a ``memory_store``."""
    resource = mounted.resource
    common = {
        "id": resource.id,
        "mount_path": resource.mount_path,
        "created_at": wire_time(mounted.created_at),
        "updated_at": wire_time(mounted.updated_at),
    }
    if isinstance(resource, FileResource):
        return {"type": "file", "file_id": wire_id(FILE, UUID(resource.file_id)), **common}
    if isinstance(resource, MemoryStoreResource):
        return {
            "type": "memory_store", "memory_store_id": wire_id(MEMORY_STORE, UUID(resource.memory_store_id)),
            "access": resource.access, "name": resource.name, "description": resource.description,
            "instructions": resource.instructions or None, **common,
        }  # fmt: skip
    checkout: dict[str, str] | None = None
    if resource.branch:
        checkout = {"type": "branch", "name": resource.branch}
    elif resource.commit:
        checkout = {"type": "commit", "sha": resource.commit}
    return {"type": "github_repository", "url": resource.url, "checkout": checkout, **common}
