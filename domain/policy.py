"""Security policy decided before anything runs."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from uuid import UUID

from agentjournal.domain.errors import ComputeNotAllowed, ManagedSandboxRequired, UnconfinedHostRefused

CONFINED_HOST, UNCONFINED_HOST = "host", "host-unconfined"
"""The recorded compute kinds that run tools on this machine: confined by bubblewrap (the
default), or as the engine's own user with nothing confined (only when a process opts in)."""


def check_package_sandbox(
    packages: Mapping[str, Sequence[str]] | None, compute: str, host_packages_ok: bool
) -> None:
    """Packages install inside a sandbox, or on the host only when the user opted in.

    Raises :class:`ManagedSandboxRequired` naming both ways out, before any model
    call or install has happened.
    """
    wanted = {manager: list(names) for manager, names in (packages or {}).items() if names}
    if not wanted or compute not in (CONFINED_HOST, UNCONFINED_HOST) or host_packages_ok:
        return
    raise ManagedSandboxRequired(
        f"packages {wanted} need a sandbox to install into: attach a compute provider "
        "(ManagedAgent(..., compute='docker')), or, in a trusted development environment "
        "only, set host_packages_ok=True in the config to install them on this host"
    )


def check_compute(session_id: UUID, recorded: str, offered: str) -> None:
    """A session's tools run where its config says, whoever resumes it.

    A session created for the Docker sandbox must not fall back to the host because
    a later process was set up with defaults."""
    if recorded != offered:
        raise ComputeNotAllowed(session_id, recorded, offered)


def check_confinement(compute: str, unconfined_ok: bool) -> None:
    """Tools run unconfined only in a process that opted in to it itself.

    A recorded ``host-unconfined`` says where a session's tools ran, not that whoever
    resumes it agrees: the log may have been imported, and the opt-in (``compute=
    "host-unconfined"`` given to the Python API, ``serve --allow-unconfined-host``) is
    never taken from it. Raises :class:`UnconfinedHostRefused` naming the opt-in."""
    if compute == UNCONFINED_HOST and not unconfined_ok:
        raise UnconfinedHostRefused()


class NetworkAccess(enum.Enum):
    """What a session's networking gives its tools."""

    HOST = "host"
    """The host's network, unrestricted."""
    NONE = "none"
    """No network at all: a loopback of their own, nothing else."""
    ALLOW_LIST = "allow-list"
    """Only some hosts: what the allow-list names (see :mod:`~agentjournal.domain.egress`),
    through an egress proxy that refuses everything else."""


def network_access(networking: Mapping[str, object]) -> NetworkAccess:
    """What ``networking`` (a session's recorded networking) gives its tools.

    ``unrestricted``, or nothing recorded (sessions from before networking was recorded
    had the default), is the host's network. ``none``, and ``limited`` that allows
    nothing (no ``allowed_hosts``, neither MCP servers nor package registries), is none
    at all. Any other ``limited`` is an allow-list, and so is a type this engine does not know.
    """
    kind = networking.get("type", "unrestricted")
    if kind == "unrestricted":
        return NetworkAccess.HOST
    if kind == "none":
        return NetworkAccess.NONE
    allows = ("allowed_hosts", "allow_mcp_servers", "allow_package_managers")
    if kind == "limited" and not any(networking.get(name) for name in allows):
        return NetworkAccess.NONE
    return NetworkAccess.ALLOW_LIST
