"""Where the cloud's paths lie in a session's work folder: the one place that maps them.

The cloud mounts a session's resources at absolute paths: the work folder is
``/workspace``, uploaded files go to ``/mnt/session/uploads/<file_id>`` and
repositories to ``/workspace/<repo>`` unless a ``mount_path`` says otherwise. Here every compute has one work folder, recorded by the
log, so a mount is a path inside it:

* ``/workspace/a/b`` is ``a/b`` in the work folder (which the Docker sandbox shows at
  ``/workspace``);
* any other absolute path ``/p/q`` is ``p/q`` in the work folder (``/mnt/session/uploads/f``
  is ``mnt/session/uploads/f``).

The session's system prompt ends with a note of each mount and where it lies
(:func:`with_mounts_note`), kept up to date as resources are added and removed.

A compute that shows those folders at the cloud's own paths (binds beside
``/workspace``) changes only this module.
"""

from __future__ import annotations

from agentjournal.application.errors import ConfigError

WORKSPACE = "/workspace"
"""Where the cloud's sandboxes, and the Docker sandbox, show the work folder."""

UPLOADS = "/mnt/session/uploads"
"""Where the cloud mounts an uploaded file unless told otherwise."""

RESERVED = ("/mnt/memory",)
"""Paths kept for what the cloud mounts itself (memory stores)."""


def default_file_mount(file_id: str) -> str:
    """The cloud's default ``mount_path`` of an uploaded file (its wire id)."""
    return f"{UPLOADS}/{file_id}"


def default_repository_mount(url: str) -> str:
    """The cloud's default ``mount_path`` of a repository: ``/workspace/<repo>``, the
    last part of its URL without ``.git``."""
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    if not name or name in (".", ".."):
        raise ConfigError(f"url: {url!r} names no repository; give a mount_path")
    return f"{WORKSPACE}/{name}"


def work_folder_path(mount_path: str, field: str = "mount_path") -> str:
    """The path inside the work folder that ``mount_path`` names; ``ConfigError``, naming
    ``field``, for a path that is not absolute and plain (no ``.``, ``..`` or empty parts,
    no NUL), the work folder itself, or a reserved place."""
    parts = mount_path.split("/")[1:]
    if (
        not mount_path.startswith("/")
        or "\x00" in mount_path
        or any(part in ("", ".", "..") for part in parts)
        or mount_path == WORKSPACE
    ):
        raise ConfigError(
            f"{field}: {mount_path!r} is not an absolute path to a file (such as {UPLOADS}/notes.txt)"
        )
    if any(mount_path == place or mount_path.startswith(place + "/") for place in RESERVED):
        raise ConfigError(f"{field}: {mount_path!r} is a place kept for memory stores")
    if mount_path.startswith(WORKSPACE + "/"):
        return mount_path.removeprefix(WORKSPACE + "/")
    return "/".join(parts)


NOTE_HEADING = "\n\nMounted for this session:\n"
"""What begins the system prompt's note of a session's mounts (and ends what came before it)."""


def with_mounts_note(system: str, mounts: dict[str, str]) -> str:
    """``system`` with its note of what is mounted (mount path to the path in the work
    folder) replaced by one for ``mounts``; no note when nothing is mounted."""
    base = system.split(NOTE_HEADING, 1)[0]
    if not mounts:
        return base
    lines = [f"- {mount} (in your working directory at ./{path})" for mount, path in sorted(mounts.items())]
    return base + NOTE_HEADING + "\n".join(lines)
