"""Security policy decided before anything runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from agentjournal.domain.errors import ComputeNotAllowed, ManagedSandboxRequired


def check_package_sandbox(
    packages: Mapping[str, Sequence[str]] | None, compute: str, host_packages_ok: bool
) -> None:
    """Packages install inside a sandbox, or on the host only when the user opted in.

    Raises :class:`ManagedSandboxRequired` naming both ways out, before any model
    call or install has happened.
    """
    wanted = {manager: list(names) for manager, names in (packages or {}).items() if names}
    if not wanted or compute != "host" or host_packages_ok:
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
