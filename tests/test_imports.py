"""What a process loads: the public names import lazily, and reading or resuming a
session loads none of the libraries only a turn, the server or a sandbox needs.

Each check runs in a new interpreter, where ``sys.modules`` shows exactly what the
path imported (this test process has imported everything already)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import agentjournal
import agentjournal.application
import agentjournal.domain
from agentjournal.application import SessionService
from agentjournal.domain import Session, SessionConfig, Usage
from tests.conftest import ROOT

HEAVY = (
    "asyncio",
    "litellm",
    "openai",
    "mcp",
    "docker",
    "rich",
    "httpx",
    "starlette",
    "sse_starlette",
    "uvicorn",
    "html.parser",
    "importlib.metadata",
    "agentjournal.infrastructure.server",
    "agentjournal.infrastructure.models.litellm_model",
    "agentjournal.infrastructure.compute.docker_sandbox",
    "agentjournal.application.catalog",
    "agentjournal.application.catalog_projection",
    "agentjournal.domain.agent",
    "agentjournal.domain.environment",
)
"""Modules no read of a log needs: the model client, the sandbox, the API server and its
catalog (the ``Agent`` and ``Environment`` aggregates and their read model), the terminal
UI, the HTML reader of ``web_fetch``, the package's metadata."""


def loaded_after(code: str) -> list[str]:
    """The :data:`HEAVY` modules loaded once ``code`` ran in a new interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store holding a session with a few finished turns."""
    path = tmp_path_factory.mktemp("imports") / "s.db"
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    session = Session.start(SessionConfig(model="m", system="s", name="made", tools=()), "kept")
    for n in range(3):
        session.begin_turn(f"prompt {n}", "a-worker:1")
        session.record_usage("m", Usage(10, 2))
        session.complete_turn()
    service.save(session)
    service.close()
    return path, str(session.id)


def test_importing_the_packages_loads_none_of_them() -> None:
    assert loaded_after("import agentjournal, agentjournal.application") == []


def test_resuming_a_session_through_the_python_api_loads_none_of_them(store: tuple[Path, str]) -> None:
    path, session_id = store
    code = (
        "from agentjournal.application import ManagedAgent\n"
        f"agent = ManagedAgent(store={str(path)!r})\n"
        f"agent.resume_session({session_id!r})\n"
        "assert agent.retrieve_session()['title'] == 'kept'\n"
        "assert len(agent.state_at().messages) == 3\n"
    )
    assert loaded_after(code) == []


def test_reading_commands_load_none_of_them(store: tuple[Path, str]) -> None:
    path, session_id = store
    code = (
        "import contextlib, io\n"
        "from agentjournal.infrastructure.cli.main import main\n"
        f"for args in (['list'], ['show', {session_id!r}], ['log', {session_id!r}]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        f"        assert main(['--store', {str(path)!r}, *args]) == 0\n"
    )
    assert loaded_after(code) == []


@pytest.mark.parametrize(
    "package", [agentjournal, agentjournal.application, agentjournal.domain], ids=lambda p: p.__name__
)
def test_every_public_name_is_the_object_of_its_own_module(package: object) -> None:
    for name in package.__all__:  # type: ignore[attr-defined]
        value = getattr(package, name)
        if name == "__version__":
            assert isinstance(value, str) and value
            continue
        if isinstance(value, types.UnionType):  # an alias (``Message``): its members are public
            assert all(getattr(package, member.__name__) is member for member in value.__args__), name
            continue
        home = importlib.import_module(value.__module__)
        assert getattr(home, value.__name__) is value, name
    with pytest.raises(AttributeError):
        package.NotAName  # type: ignore[attr-defined]  # noqa: B018
