"""One root for every error agentjournal raises on purpose: ``except AgentJournalError``
catches whatever a caller can meet, from any layer."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentjournal
from agentjournal import AgentJournalError, ManagedAgent, ManagedConfig, ManagedSandboxRequired
from agentjournal.domain import errors as domain_errors
from agentjournal.infrastructure.compute import sandbox_fetch, sandbox_files, sandbox_snapshot
from agentjournal.infrastructure.models.scripted import ScriptedModelServer
from tests.conftest import TEST_KEY

SANDBOX_HELPERS = {sandbox_fetch.__name__, sandbox_files.__name__, sandbox_snapshot.__name__}
"""Modules whose source runs as a program of its own on the sandbox's Python, with the
standard library only: their errors end that program and never reach a caller."""


def defined_errors() -> Iterator[type[Exception]]:
    """Every public exception class the package's layers define (not warnings, which are
    issued rather than raised, and not a module's private signals)."""
    for layer in ("domain", "application", "infrastructure"):
        package = importlib.import_module(f"agentjournal.{layer}")
        for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module_info.name in SANDBOX_HELPERS:
                continue
            module = importlib.import_module(module_info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, Exception)
                    and not issubclass(value, Warning)
                    and value.__module__ == module.__name__
                    and not name.startswith("_")
                ):
                    yield value


def test_every_error_the_package_defines_derives_from_one_root() -> None:
    found = set(defined_errors())
    assert domain_errors.SessionTerminatedError in found  # the walk reaches every layer
    assert {cls.__module__.split(".")[1] for cls in found} == {"domain", "application", "infrastructure"}
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in found - {AgentJournalError}
                     if not issubclass(cls, AgentJournalError))  # fmt: skip
    assert outside == []


def test_the_root_lives_in_the_domain_and_is_the_public_one() -> None:
    from agentjournal.application.errors import AgentJournalError as application_root

    assert AgentJournalError is domain_errors.AgentJournalError is application_root
    assert agentjournal.AgentJournalError is AgentJournalError


def test_a_sandbox_required_error_is_still_a_runtime_error() -> None:
    assert issubclass(ManagedSandboxRequired, RuntimeError)
    assert issubclass(ManagedSandboxRequired, AgentJournalError)


def test_a_run_after_terminate_is_caught_as_an_agentjournal_error(
    model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    config = ManagedConfig(model="openai/m", api_base=model_server.base_url, api_key=TEST_KEY)
    agent = ManagedAgent(config=config, store=tmp_path / "s.db")
    agent.run("hello")
    agent.terminate()
    with pytest.raises(AgentJournalError, match="is terminated"):
        agent.run("hello again")
