"""Shared fixtures: a scripted model server over real HTTP, and stores in temporary folders."""

from __future__ import annotations

import http.server
import ipaddress
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentjournal.application import ManagedAgent, ManagedConfig, SessionService
from agentjournal.infrastructure.models.scripted import ScriptedModelServer

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk-test-0123456789abcdefghijklmnop"


def wait_until(condition: Callable[[], object], what: str, seconds: float = 30.0) -> None:
    """Wait for ``condition`` to hold, checking it every few milliseconds; fail naming
    ``what`` was awaited if it does not within ``seconds``. The test goes on as soon as it
    holds, so no timing is assumed."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="session")
def _server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model_server(_server: ScriptedModelServer) -> ScriptedModelServer:
    """The scripted model server, with an empty script and request log for this test (and
    nothing held: a test that holds a reply releases it before it stops what streams it)."""
    _server.reset()
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


# -- Docker ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    """A client of the Docker engine, which has the sandbox image; the test is skipped
    without them (and fails in CI)."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
        client.images.get("agentjournal-sandbox:latest")
    except docker.errors.DockerException as e:
        if os.environ.get("CI"):
            pytest.fail(f"Docker engine or sandbox image missing in CI: {e}")
        pytest.skip(f"no Docker engine with the sandbox image (run scripts/setup as root): {e}")
    return client


@pytest.fixture
def sessions(engine):  # type: ignore[no-untyped-def]
    """The ids of the sessions a test gives a sandbox. Afterwards none of them may have one
    left; the engine's other containers (a user's own sandboxes among them) are not looked at."""
    from agentjournal.infrastructure.compute.docker_sandbox import remove_sandbox, sandboxes

    created: list[uuid.UUID] = []
    yield created
    left = [container for session_id in created for container in sandboxes(engine, session_id)]
    for container in left:
        remove_sandbox(container)
    assert not left, "a test left a sandbox container behind"


@pytest.fixture
def sandbox(engine, sessions):  # type: ignore[no-untyped-def]
    """Makes Docker sandboxes (DockerCompute options as keywords), released after the test."""
    from agentjournal.domain import ComputeBinding
    from agentjournal.infrastructure.compute.docker_sandbox import DockerCompute

    computes = []

    def make(**options):  # type: ignore[no-untyped-def]
        compute = DockerCompute(client=engine, **options)
        sessions.append(uuid.uuid4())
        compute.attach(sessions[-1], None)
        computes.append(compute)
        return compute

    yield make
    for compute in computes:
        if compute.container is not None:
            compute.release(ComputeBinding("docker", compute.container.id))


@pytest.fixture(scope="module")
def module_sandbox(engine):  # type: ignore[no-untyped-def]
    """One Docker sandbox for all of a module's tests, released after them."""
    from agentjournal.infrastructure.compute.docker_sandbox import DockerCompute, sandboxes

    session_id = uuid.uuid4()
    compute = DockerCompute(client=engine)
    binding = compute.attach(session_id, None)
    yield compute
    compute.release(binding)
    assert not list(sandboxes(engine, session_id)), "the module's sandbox was left behind"


@pytest.fixture(params=["host", "host-unconfined", pytest.param("docker", marks=pytest.mark.docker)])
def either_compute(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Each compute in turn, with an empty work folder: the host (confined, and unconfined)
    in a new folder, and the module's Docker sandbox with its work folder emptied."""
    if request.param == "host":
        from agentjournal.infrastructure.compute.confined import ConfinedHostCompute

        confined = ConfinedHostCompute(tmp_path / "work")
        confined.attach(uuid.uuid4(), None)
        return confined
    if request.param == "host-unconfined":
        from agentjournal.infrastructure.compute.host import HostCompute

        host = HostCompute(tmp_path / "work")
        host.attach(uuid.uuid4(), None)
        return host
    docker = request.getfixturevalue("module_sandbox")
    emptied = docker.execute("find . -mindepth 1 -delete", 60)
    assert emptied.exit_code == 0, emptied.output
    return docker


# -- a web server the computes reach ------------------------------------------------------

PAGES: dict[str, tuple[int, str, bytes]] = {
    "/page.html": (
        200,
        "text/html; charset=utf-8",
        b"<html><head><title>T</title><script>hidden()</script></head>"
        b"<body><p>Hello <a href='/plain'>there</a></p></body></html>",
    ),
    "/plain": (200, "text/plain", b"just text"),
    "/big": (200, "text/plain", b"y" * 300_000),
    "/missing": (404, "text/plain", b"not here"),
    "/image.png": (200, "image/png", b"\x89PNG\r\n\x1a\n"),
}
REDIRECTS = {"/to-file": "file:///etc/passwd", "/to-plain": "/plain"}


@pytest.fixture
def requested() -> list[str]:
    """The paths the test's web servers were asked for, in order."""
    return []


@pytest.fixture
def serve(requested: list[str]) -> Iterator[Callable[[str], str]]:
    """Starts small web servers (on an address of this machine) serving ``PAGES`` and
    ``REDIRECTS``, and returns their base URLs. ``/hang`` never answers."""
    released = threading.Event()
    servers: list[http.server.ThreadingHTTPServer] = []

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            requested.append(self.path)
            if self.path == "/hang":
                released.wait(60)
                return
            if self.path in REDIRECTS:
                self.send_response(302)
                self.send_header("Location", REDIRECTS[self.path])
                self.end_headers()
                return
            status, kind, body = PAGES.get(self.path, (404, "text/plain", b""))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    def start(address: str) -> str:
        server = http.server.ThreadingHTTPServer((address, 0), Pages)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://{address}:{server.server_address[1]}"

    yield start
    released.set()
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def web(either_compute: Any, serve: Callable[[str], str]) -> str:
    """The base URL of a web server the compute reaches: on the loopback for the host, on
    the Docker bridge's gateway for a sandbox."""
    if either_compute.kind != "docker":
        return serve("127.0.0.1")
    return serve(default_gateway(either_compute))


def default_gateway(sandbox: Any) -> str:
    """The gateway of the sandbox's default route, read from the kernel's routing table
    inside it: the bridge's own address on this machine, where a server the sandbox can
    reach listens.

    Asked of the sandbox because that is where the answer is sure. ``docker network
    inspect bridge`` names a gateway only when the daemon was configured with one: a
    fresh daemon lists just the subnet. Docker then takes the subnet's first address,
    but the daemon's ``bip`` setting can put the bridge elsewhere, and reading the
    ``docker0`` interface assumes its name (also a setting). The route the sandbox's
    packets take is right whatever the daemon's settings."""
    table = sandbox.execute("cat /proc/net/route", 60)
    assert table.exit_code == 0, table.output
    for line in table.output.splitlines()[1:]:
        _interface, destination, gateway, *_ = line.split()
        if destination == "00000000":  # 0.0.0.0: the default route
            # The kernel prints each address as a number in the machine's byte order.
            return str(ipaddress.IPv4Address(int(gateway, 16).to_bytes(4, sys.byteorder)))
    raise AssertionError(f"the sandbox has no default route:\n{table.output}")


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
