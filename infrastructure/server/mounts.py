"""Session resources on the wire: a ``file`` resource as a client asks for one, and as
the API shows it (the session's ``resources`` and ``/v1/sessions/{id}/resources``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from agentjournal.application.mounts import default_file_mount
from agentjournal.domain.resources import MountedResource
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.ids import FILE, parse_id, wire_id
from agentjournal.infrastructure.server.wire import wire_time

KINDS = ("file", "github_repository", "memory_store")


class FileMount(msgspec.Struct, frozen=True):
    """A ``file`` resource as a client asks for it: the file and, maybe, where."""

    file_id: UUID
    mount_path: str


def file_mount(body: Any, field: str = "resources[0]") -> FileMount:
    """The file mount a resource body asks for; 400 naming ``field`` for anything else."""
    if not isinstance(body, dict):
        raise ApiError(400, f"{field}: must be an object with a 'type'")
    kind = body.get("type")
    if kind in KINDS and kind != "file":
        raise ApiError(400, f"{field}.type: {kind!r} resources are not supported by this server yet")
    if kind != "file":
        raise ApiError(400, f"{field}.type: must be one of {', '.join(KINDS)}, not {kind!r}")
    unknown = sorted(set(body) - {"type", "file_id", "mount_path"})
    if unknown:
        raise ApiError(400, f"{field}.{unknown[0]}: not a field of a file resource")
    file_id = body.get("file_id")
    mount_path = body.get("mount_path")
    if not isinstance(file_id, str):
        raise ApiError(400, f"{field}.file_id: required, the id of an uploaded file")
    if mount_path is not None and not isinstance(mount_path, str):
        raise ApiError(400, f"{field}.mount_path: must be a string")
    parsed = parse_id(FILE, file_id)
    return FileMount(parsed, mount_path or default_file_mount(wire_id(FILE, parsed)))


def resource_json(mounted: MountedResource) -> dict[str, Any]:
    """The API's ``file`` session resource."""
    resource = mounted.resource
    return {
        "type": "file",
        "id": resource.id,
        "file_id": wire_id(FILE, UUID(resource.file_id)),
        "mount_path": resource.mount_path,
        "created_at": wire_time(mounted.created_at),
        "updated_at": wire_time(mounted.updated_at),
    }
