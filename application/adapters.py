"""Which adapter serves which port, named by topic and imported on first use.

The application never imports ``agentjournal.infrastructure``: it names adapters the
way eventsourcing names persistence modules (``module:Class``) and resolves them
only when a turn needs them, so reading a log never loads litellm or docker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.utils import resolve_topic

from agentjournal.application.errors import ConfigError
from agentjournal.domain import ComputeBinding
from agentjournal.domain.policy import CONFINED_HOST, UNCONFINED_HOST

LANGUAGE_MODEL_TOPIC = "agentjournal.infrastructure.models.litellm_model:LiteLLMModel"

REPOSITORY_CLONER_TOPIC = "agentjournal.infrastructure.compute.git_clone:GitCloner"
MCP_CLIENT_TOPIC = "agentjournal.infrastructure.mcp.client:HttpMcpClient"
SECRET_BOX_TOPIC = "agentjournal.infrastructure.secrets.box:AesSecretBox"
TOKEN_ENDPOINT_TOPIC = "agentjournal.infrastructure.secrets.oauth:HttpTokenEndpoint"

COMPUTE_TOPICS = {
    CONFINED_HOST: "agentjournal.infrastructure.compute.confined:ConfinedHostCompute",
    UNCONFINED_HOST: "agentjournal.infrastructure.compute.host:HostCompute",
    "docker": "agentjournal.infrastructure.compute.docker_sandbox:DockerCompute",
    "self_hosted": "agentjournal.infrastructure.compute.workers:WorkerCompute",
}
"""Compute kinds by the name a session records. ``self_hosted`` (a self-hosted environment's
workers) is recorded only for sessions created in such an environment, never chosen by name.
Logs written before the host was confined recorded "host" for the unconfined host; they
resume confined, which only narrows what their tools may do."""

COMPUTE_NAMES = {
    "host": CONFINED_HOST,
    "local": CONFINED_HOST,
    UNCONFINED_HOST: UNCONFINED_HOST,
    "docker": "docker",
}
"""What ``ManagedAgent(compute=...)`` accepts: PraisonAI says "local" for the host. The
unconfined host is only ever named, never a default."""


def compute_kind(name: str) -> str:
    """The recorded kind for a compute name. Raises :class:`ConfigError` for others."""
    if name not in COMPUTE_NAMES:
        raise ConfigError(f"compute must be one of {sorted(COMPUTE_NAMES)} or a Compute object, not {name!r}")
    return COMPUTE_NAMES[name]


def compute_class(kind: str) -> Any:
    """The adapter of a recorded compute kind, or of a name :func:`compute_kind` takes."""
    return resolve_topic(COMPUTE_TOPICS.get(kind) or COMPUTE_TOPICS[compute_kind(kind)])


def language_model_class() -> Any:
    return resolve_topic(LANGUAGE_MODEL_TOPIC)


def repository_cloner() -> Any:
    return resolve_topic(REPOSITORY_CLONER_TOPIC)()


def mcp_client(allow_private: bool) -> Any:
    """The MCP client adapter; ``allow_private`` lets it reach loopback, link-local and
    private addresses (the Python API's caller is trusted; a server's operator decides)."""
    return resolve_topic(MCP_CLIENT_TOPIC)(allow_private=allow_private)


def token_endpoint(allow_private: bool) -> Any:
    """The OAuth token endpoint client that refreshes ``mcp_oauth`` credentials;
    ``allow_private`` as for :func:`mcp_client`."""
    return resolve_topic(TOKEN_ENDPOINT_TOPIC)(allow_private=allow_private)


def secret_box(home: Path) -> Any:
    """The box that seals vault secrets: its key from the environment, else from ``home``."""
    return resolve_topic(SECRET_BOX_TOPIC).for_home(home)


def release_binding(binding: ComputeBinding) -> None:
    """Remove the sandbox a log recorded, with everything running in it, from any
    process: the binding alone says where it is."""
    compute_class(binding.kind)().release(binding)
