"""The egress proxy of a Docker sandbox under ``limited`` networking.

The sandbox is attached to a Docker network of its own made ``--internal`` (no route out
of it) and without an address of the host on it (``inhibit_ipv4``: the host's own
services are out of reach too). The one other container on that network is the
session's proxy: Squid (the image ``scripts/build-egress-image`` builds), configured by
the engine as on the confined host (:func:`~agentjournal.infrastructure.compute.egress_proxy.squid_config`)
and attached to Docker's default network as well, from which it reaches the allowed
hosts. The sandbox names it in its proxy variables.

The proxy's configuration and request log are in a folder of the engine's, mounted into
the proxy container; the container's label names that folder, so any process that finds
the sandbox finds its proxy's log, and removing the sandbox removes its proxy, network
and folder with it (:func:`remove_egress`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agentjournal.application.ports import ComputeError
from agentjournal.domain.egress import HostRule
from agentjournal.infrastructure.compute.egress_proxy import (
    ACCESS_LOG,
    error_pages,
    squid_config,
)

EGRESS_IMAGE = "agentjournal-egress:latest"
EGRESS_LABEL = "agentjournal.egress-for"
"""On the proxy container and its network: the name of the sandbox they serve."""
FOLDER_LABEL = "agentjournal.egress-folder"
"""On the proxy container: the engine's folder of its configuration and request log."""

DOCKER_FOLDER_PREFIX = "agentjournal-docker-egress-"
"""How the engine's folder of a proxy container's configuration and log is named."""

PROXY_PORT = 3128
CONFIG = PurePosixPath("/etc/agentjournal-egress")
LOGS = PurePosixPath("/var/log/agentjournal-egress")
SQUID_TEMPLATES = PurePosixPath("/usr/share/squid/errors/templates")

START_TIMEOUT = 60.0
READY = "Accepting HTTP Socket connections"
"""What Squid writes to its log once it listens."""


@dataclass(frozen=True)
class DockerEgress:
    """A started proxy: the network a sandbox joins, the URL that reaches the proxy from
    there, and the request log (on this host)."""

    network: str
    url: str
    log: Path


def start_egress(client: Any, sandbox: str, rules: tuple[HostRule, ...]) -> DockerEgress:
    """Start the proxy allowing ``rules`` for the sandbox to be named ``sandbox``, on a new
    internal network, and return once it listens (a ComputeError if it does not)."""
    import docker

    folder = Path(tempfile.mkdtemp(prefix=DOCKER_FOLDER_PREFIX))
    labels = {EGRESS_LABEL: sandbox, FOLDER_LABEL: str(folder)}
    try:
        (folder / "config").mkdir()
        logs = folder / "logs"
        logs.mkdir()
        os.chmod(logs, 0o777)  # noqa: S103 - Squid's user in its image writes here; the parent is the engine's alone
        errors = error_pages(folder / "config", SQUID_TEMPLATES)
        config = squid_config(rules, str(PROXY_PORT), LOGS, CONFIG / "errors" if errors else None)
        (folder / "config" / "squid.conf").write_text(config)
        network = client.networks.create(
            f"{sandbox}-net",
            driver="bridge",
            internal=True,
            options={"com.docker.network.bridge.inhibit_ipv4": "true"},
            labels=labels,
        )
        proxy = client.containers.run(
            EGRESS_IMAGE,
            ["/usr/sbin/squid", "-N", "-f", str(CONFIG / "squid.conf")],
            name=f"{sandbox}-egress",
            detach=True,
            read_only=True,
            volumes={
                str(folder / "config"): {"bind": str(CONFIG), "mode": "ro"},
                str(logs): {"bind": str(LOGS), "mode": "rw"},
            },
            tmpfs={"/tmp": "rw,nosuid,nodev,size=16m"},
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
            mem_limit="256m",
            pids_limit=128,
            network_mode="bridge",
            labels=labels,
        )
        network.connect(proxy)
        _wait_ready(proxy, logs / "cache.log")
        proxy.reload()
        address = proxy.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    except docker.errors.ImageNotFound:
        _discard(client, sandbox, folder)
        raise ComputeError(
            f"the egress proxy image {EGRESS_IMAGE!r} is not built: run scripts/build-egress-image"
        ) from None
    except docker.errors.APIError as e:
        _discard(client, sandbox, folder)
        raise ComputeError(f"could not start the egress proxy: {e.explanation or e}") from e
    except BaseException:
        _discard(client, sandbox, folder)
        raise
    return DockerEgress(network.name, f"http://{address}:{PROXY_PORT}", logs / ACCESS_LOG)


def _discard(client: Any, sandbox: str, folder: Path) -> None:
    """Remove what a proxy that failed to start left: its containers, network and folder."""
    remove_egress(client, sandbox)
    shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(proxy: Any, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pause = 0.01
    while True:
        said = log.read_text(errors="replace") if log.is_file() else ""
        if READY in said:
            return
        proxy.reload()
        if proxy.status not in ("created", "running") or time.monotonic() > deadline:
            raise ComputeError(
                f"the egress proxy (squid) did not start: {said[-2000:].strip() or 'no message'}"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def egress_log(client: Any, sandbox: str) -> Path | None:
    """The request log of the proxy serving the sandbox named ``sandbox``, if it has one."""
    for proxy in client.containers.list(all=True, filters={"label": f"{EGRESS_LABEL}={sandbox}"}):
        folder = proxy.labels.get(FOLDER_LABEL)
        if folder:
            return Path(folder) / "logs" / ACCESS_LOG
    return None


def remove_egress(client: Any, sandbox: str) -> None:
    """Remove the proxy, network and folder of the sandbox named ``sandbox`` (nothing when
    it has none): any process can, from the sandbox's name alone."""
    import docker

    selector = {"label": f"{EGRESS_LABEL}={sandbox}"}
    for proxy in client.containers.list(all=True, filters=selector):
        folder = proxy.labels.get(FOLDER_LABEL, "")
        with contextlib.suppress(docker.errors.NotFound):
            proxy.remove(force=True)
        if folder.startswith(tempfile.gettempdir()) and DOCKER_FOLDER_PREFIX in folder:
            shutil.rmtree(folder, ignore_errors=True)
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
