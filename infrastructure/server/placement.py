"""Where ``serve`` runs the tools of a new session whose environment asks for no packages.

An environment with packages always gets the Docker sandbox, where they are installed
(:func:`~agentjournal.application.catalog.session_config`). Without packages, a session
gets the first of these the server can give, and a tool never runs unconfined unless the
server was started with ``--allow-unconfined-host``:

1. the unconfined host, when the server opted in to it (trusted development);
2. the confined host (bubblewrap), where bubblewrap works here (found by trying it once);
3. the Docker sandbox, where a Docker engine answers (asked once);
4. none: the session is refused (a 400) with what would make one possible.

What a session got is recorded in its config, so its later turns, in this process or
any other, run on the same compute.
"""

from __future__ import annotations

import functools

from agentjournal.application.errors import ConfigError
from agentjournal.domain.policy import CONFINED_HOST, UNCONFINED_HOST
from agentjournal.infrastructure.compute import bubblewrap

DOCKER = "docker"


def compute_without_packages(allow_unconfined: bool) -> str:
    """The compute kind a new session without packages records (see the module documentation)."""
    if allow_unconfined:
        return UNCONFINED_HOST
    reason = bubblewrap.unavailable()
    if reason is None:
        return CONFINED_HOST
    if _docker_unavailable() is None:
        return DOCKER
    raise ConfigError(
        f"no compute can confine this session's tools here: bubblewrap cannot ({reason}), and "
        f"there is no Docker engine ({_docker_unavailable()}). Install bubblewrap (apt-get install "
        "bubblewrap) where unprivileged user namespaces are allowed, or start Docker with the sandbox "
        "image; for trusted development only, serve --allow-unconfined-host runs tools unconfined"
    )


@functools.cache
def _docker_unavailable() -> str | None:
    """Why there is no Docker engine to run sandboxes in, or None when there is one."""
    from agentjournal.application.ports import ComputeError
    from agentjournal.infrastructure.compute.docker_sandbox import docker_engine

    try:
        docker_engine()
    except ComputeError as e:
        return str(e)
    return None
