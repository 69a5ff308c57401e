"""Shared fixtures: a scripted model server over real HTTP, and stores in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentjournal.application import ManagedAgent, ManagedConfig, SessionService
from agentjournal.infrastructure.scripted_model import ScriptedModelServer

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
    monkeypatch.setenv("AGENTJOURNAL_HOME", str(home))
    return home


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


def postgres_settings() -> dict[str, str]:
    """Where the test PostgreSQL server is; ``scripts/setup`` creates this role and database."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": os.environ.get("AGENTJOURNAL_TEST_PG_HOST", "127.0.0.1"),
        "POSTGRES_PORT": os.environ.get("AGENTJOURNAL_TEST_PG_PORT", "5432"),
        "POSTGRES_USER": os.environ.get("AGENTJOURNAL_TEST_PG_USER", "agentjournal"),
        "POSTGRES_PASSWORD": os.environ.get("AGENTJOURNAL_TEST_PG_PASSWORD", "agentjournal"),
        "POSTGRES_DBNAME": os.environ.get("AGENTJOURNAL_TEST_PG_DBNAME", "agentjournal_test"),
    }


def _postgres_conninfo(settings: dict[str, str]) -> str:
    return (
        f"host={settings['POSTGRES_HOST']} port={settings['POSTGRES_PORT']} "
        f"user={settings['POSTGRES_USER']} password={settings['POSTGRES_PASSWORD']} "
        f"dbname={settings['POSTGRES_DBNAME']} connect_timeout=5"
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest, store: Path) -> Iterator[dict[str, str]]:
    """eventsourcing settings of a fresh, empty store: an SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)}
        return
    import psycopg

    settings = postgres_settings()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_postgres_conninfo(settings), autocommit=True)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable in CI: {e}")
        pytest.skip(f"no PostgreSQL server (run scripts/setup as root to start one): {e}")
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        yield {**settings, "POSTGRES_SCHEMA": schema}
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def service(store_env: dict[str, str]) -> Iterator[SessionService]:
    app = SessionService(store_env)
    yield app
    app.close()


@pytest.fixture
def open_service(store_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Opens more services on the same store (other processes, restarts); closes them after."""
    opened: list[SessionService] = []

    def open_(**overrides: str) -> SessionService:
        opened.append(SessionService({**store_env, **overrides}))
        return opened[-1]

    yield open_
    for app in opened:
        app.close()


@pytest.fixture
def config(model_server: ScriptedModelServer) -> ManagedConfig:
    return ManagedConfig(model="openai/gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY)


@pytest.fixture
def make_agent(config: ManagedConfig, service: SessionService):  # type: ignore[no-untyped-def]
    def make(**changes: object) -> ManagedAgent:
        import msgspec

        compute = changes.pop("compute", None)
        return ManagedAgent(config=msgspec.structs.replace(config, **changes), compute=compute, store=service)

    return make


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
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


@pytest.fixture
def api_server(model_server: ScriptedModelServer, store: Path):  # type: ignore[no-untyped-def]
    """A running ``agentjournal serve`` on this test's SQLite store, with keys (see tests/serving.py)."""
    from tests.serving import running_server

    with running_server(model_server.base_url, store) as server:
        yield server
