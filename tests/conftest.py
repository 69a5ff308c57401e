"""Shared fixtures: a scripted model server over real HTTP, and stores in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from application import ManagedAgent, ManagedConfig, SessionService
from infrastructure.scripted_model import ScriptedModelServer

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk-test-0123456789abcdefghijklmnop"


@pytest.fixture(scope="session")
def _server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model_server(_server: ScriptedModelServer) -> ScriptedModelServer:
    """The scripted model server, with an empty script and request log for this test."""
    _server.script.clear()
    _server.requests.clear()
    return _server


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data folder, so nothing leaks between tests or to the user's."""
    home = tmp_path / "home"
    monkeypatch.setenv("SESSIONLOG_HOME", str(home))
    return home


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def service(store: Path) -> Iterator[SessionService]:
    app = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    yield app
    app.close()


@pytest.fixture
def config(model_server: ScriptedModelServer) -> ManagedConfig:
    return ManagedConfig(model="openai/gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY)


@pytest.fixture
def make_agent(config: ManagedConfig, service: SessionService):  # type: ignore[no-untyped-def]
    def make(**changes: object) -> ManagedAgent:
        import msgspec

        compute = changes.pop("compute", None)
        return ManagedAgent(
            config=msgspec.structs.replace(config, **changes), compute=compute, store=service
        )

    return make


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter (a new process, as after a restart)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
