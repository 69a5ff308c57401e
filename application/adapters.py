"""Which adapter serves which port, named by topic and imported on first use.

The application never imports ``agentjournal.infrastructure``: it names adapters the
way eventsourcing names persistence modules (``module:Class``) and resolves them
only when a turn needs them, so reading a log never loads litellm or docker.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import resolve_topic

from agentjournal.application.errors import ConfigError
from agentjournal.domain import ComputeBinding
from agentjournal.domain.policy import CONFINED_HOST, UNCONFINED_HOST

LANGUAGE_MODEL_TOPIC = "agentjournal.infrastructure.models.litellm_model:LiteLLMModel"

COMPUTE_TOPICS = {
    CONFINED_HOST: "agentjournal.infrastructure.compute.confined:ConfinedHostCompute",
    UNCONFINED_HOST: "agentjournal.infrastructure.compute.host:HostCompute",
    "docker": "agentjournal.infrastructure.compute.docker_sandbox:DockerCompute",
}
"""Compute kinds by the name a session records. Logs written before the host was confined
recorded "host" for the unconfined host; they resume confined, which only narrows what
their tools may do."""

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
    return resolve_topic(COMPUTE_TOPICS[compute_kind(kind)])


def language_model_class() -> Any:
    return resolve_topic(LANGUAGE_MODEL_TOPIC)


def release_binding(binding: ComputeBinding) -> None:
    """Remove the sandbox a log recorded, with everything running in it, from any
    process: the binding alone says where it is."""
    compute_class(binding.kind)().release(binding)
