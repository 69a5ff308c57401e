"""The Docker sandbox, on a real engine: tools and packages run in the container, never on the host."""

from __future__ import annotations

import importlib.util
import os
import time
import uuid

import pytest

from agentjournal.application import Agent, ManagedAgent, ManagedConfig
from agentjournal.application.ports import ComputeError
from agentjournal.domain import ComputeBinding
from agentjournal.infrastructure.docker_compute import SESSION_LABEL, DockerCompute, remove_sandbox, sandboxes
from agentjournal.infrastructure.scripted_model import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY, run_python

pytestmark = pytest.mark.docker

# A small pure-Python package that the host does not have.
PACKAGE, MODULE = "tomli-w", "tomli_w"


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
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
    created: list[uuid.UUID] = []
    yield created
    left = [container for session_id in created for container in sandboxes(engine, session_id)]
    for container in left:
        remove_sandbox(container)
    assert not left, "a test left a sandbox container behind"


@pytest.fixture
def sandbox(engine, sessions):  # type: ignore[no-untyped-def]
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


def session_of(compute: DockerCompute) -> str:
    return str(compute.container.labels[SESSION_LABEL])


def call(command: str) -> ScriptedToolCall:
    return ScriptedToolCall("execute_command", {"command": command})


def test_seed_example_installs_packages_in_the_sandbox_only(engine, sessions, model_server, service):
    model_server.enqueue(
        Reply(text="checking", tool_calls=[call(f"python -c 'import {MODULE}; print({MODULE}.__name__)'")]),
        Reply(text="The package works."),
    )
    managed = ManagedAgent(
        provider="local",
        config=ManagedConfig(
            model="gpt-4o-mini", packages={"pip": [PACKAGE]},
            api_base=model_server.base_url, api_key=TEST_KEY,
        ),
        compute="docker",
        store=service,
    )  # fmt: skip
    agent = Agent(name="analyst", backend=managed)
    try:
        assert agent.start("Analyze this data: [1,2,3,4,5]", stream=True) == "The package works."
        result = managed.state_at().messages[2]
        assert result.output == f"{MODULE}\n" and result.exit_code == 0
        installed = managed.audit_log(types=("PackagesInstalled",))
        assert installed[0].payload["install"]["packages"] == [PACKAGE]
        assert importlib.util.find_spec(MODULE) is None, "the package must not reach the host"
    finally:
        sessions.append(uuid.UUID(managed.session_id))
        managed.terminate()
    assert managed.retrieve_session()["status"] == "terminated"
    assert len(managed.audit_log(types=("ComputeReleased",))) == 1
    assert not list(sandboxes(engine, sessions[-1])), "terminate releases the sandbox"


def test_bridged_tools_touch_the_container_not_the_host(engine, sessions, model_server, service, tmp_path):
    marker = tmp_path / "written-by-the-tool.txt"
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("write_file", {"path": str(marker), "content": "x"})]),
        Reply(tool_calls=[ScriptedToolCall("write_file", {"path": "note.txt", "content": "in the sandbox"})]),
        Reply(tool_calls=[call("cat note.txt; hostname")]),
        Reply(text="done"),
    )
    managed = ManagedAgent(
        config=ManagedConfig(model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY),
        compute="docker", store=service,
    )  # fmt: skip
    try:
        managed.run("write things")
        results = [m for m in managed.state_at().messages if type(m).__name__ == "ToolResult"]
        assert results[0].is_error and "outside the work folder" in results[0].output
        assert not marker.exists()
        assert results[2].output.startswith("in the sandbox") and results[2].exit_code == 0
        assert not (tmp_path / "note.txt").exists()
    finally:
        sessions.append(uuid.UUID(managed.session_id))
        managed.terminate()


def test_a_command_past_its_timeout_is_killed_with_its_children(sandbox):
    compute = sandbox()
    started = time.monotonic()
    result = compute.execute("sleep 600 & sleep 600", timeout=2)
    assert time.monotonic() - started < 15
    assert result.timed_out
    processes = compute.execute("cat /proc/[0-9]*/cmdline | tr '\\0' ' '", timeout=10).output
    assert "sleep 600" not in processes


def test_output_of_50_mb_is_capped(sandbox):
    compute = sandbox(max_output_bytes=100_000)
    result = compute.execute("head -c 50000000 /dev/zero | tr '\\0' y", timeout=120)
    assert result.exit_code == 0 and result.truncated
    assert len(result.output) == 100_000 and set(result.output) == {"y"}


def test_files_round_trip_exactly(sandbox):
    compute = sandbox()
    name = 'dir/it\'s "quoted" $(reboot) `x`\nnewline.bin'
    data = bytes(range(256)) * 4000
    compute.write_file(name, data)
    assert compute.read_file(name) == data
    assert [(e.path, e.size) for e in compute.list_files(".")] == [(name, len(data))]


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "/workspace/../etc/shadow"])
def test_paths_outside_the_work_folder_are_refused(sandbox, path):
    compute = sandbox()
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.read_file(path)
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.write_file(path, b"x")


def test_symlinks_cannot_lead_out_of_the_work_folder(sandbox):
    compute = sandbox()
    assert compute.execute("ln -s /etc link && ln -s /etc/passwd pw", timeout=10).exit_code == 0
    for path in ("link/passwd", "pw"):
        with pytest.raises(ComputeError, match="outside the work folder"):
            compute.read_file(path)
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.write_file("link/evil", b"x")


def test_the_container_is_hardened(sandbox):
    compute = sandbox()
    inspect = compute.container.attrs["HostConfig"]
    assert inspect["ReadonlyRootfs"] is True
    assert inspect["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in inspect["SecurityOpt"]
    assert inspect["PidsLimit"] > 0 and inspect["Memory"] > 0 and inspect["NanoCpus"] > 0
    probe = compute.execute("id -u; touch /etc/x 2>&1; grep CapEff /proc/self/status", timeout=10).output
    assert probe.splitlines()[0] == "1000"
    assert "Read-only file system" in probe
    assert probe.rstrip().endswith("0000000000000000")


def test_networking_none_leaves_the_container_without_a_network(sandbox):
    isolated = sandbox(networking={"type": "none"})
    assert isolated.execute("ls /sys/class/net", timeout=10).output.split() == ["lo"]
    connected = sandbox()
    assert "eth0" in connected.execute("ls /sys/class/net", timeout=10).output.split()
    with pytest.raises(ComputeError, match="networking"):
        isolated.install_packages("pip", [PACKAGE])


def test_limited_networking_is_refused_not_ignored(engine):
    with pytest.raises(ComputeError, match="'limited'.*not enforced"):
        DockerCompute(client=engine, networking={"type": "limited", "allowed_hosts": ["pypi.org"]})


def test_a_failed_install_is_a_clear_error(sandbox):
    compute = sandbox()
    with pytest.raises(ComputeError, match="pip install .* failed"):
        compute.install_packages("pip", ["this-package-does-not-exist-agentjournal-0"])
    with pytest.raises(ComputeError, match="need root"):
        compute.install_packages("apt", ["curl"])


def test_resume_in_a_new_process_reattaches_or_reprovisions(engine, sessions, model_server, store_env):
    model_server.enqueue(Reply(tool_calls=[call("echo kept > state.txt")]), Reply(text="saved"))
    managed = ManagedAgent(
        config=ManagedConfig(model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY),
        compute="docker", store=store_env,
    )  # fmt: skip
    managed.run("save state")
    sessions.append(uuid.UUID(managed.session_id))
    first = managed.state_at().compute
    script = f"""
        import json
        from agentjournal.application import ManagedAgent, ManagedConfig
        agent = ManagedAgent(config=ManagedConfig(model="gpt-4o-mini",
            api_base={model_server.base_url!r}, api_key={TEST_KEY!r}), compute="docker", store={store_env!r})
        agent.resume_session({managed.session_id!r})
        print(json.dumps(agent.run("read it")))
    """
    try:
        model_server.enqueue(Reply(tool_calls=[call("cat state.txt")]), Reply(text="read"))
        child = run_python(script)
        assert child.returncode == 0, child.stderr
        assert managed.state_at().compute == first
        assert managed.state_at().messages[-2].output == "kept\n"

        remove_sandbox(engine.containers.get(first.reference))
        model_server.enqueue(Reply(tool_calls=[call("ls")]), Reply(text="fresh"))
        child = run_python(script)
        assert child.returncode == 0, child.stderr
        second = managed.state_at().compute
        assert second.reference != first.reference
        assert len(managed.audit_log(types=("ComputeAttached",))) == 2
    finally:
        managed.terminate()


def test_cleanup_of_a_session_removes_its_sandbox_only(engine, sandbox, tmp_path):
    from tests.test_cli import agentjournal

    kept, removed = sandbox(), sandbox()
    done = agentjournal("cleanup", "--session", session_of(removed), store=tmp_path / "s.db")
    assert "removed 1 sandbox container(s)" in done.stdout
    assert not list(sandboxes(engine, uuid.UUID(session_of(removed))))
    assert [c.id for c in sandboxes(engine, uuid.UUID(session_of(kept)))] == [kept.container.id]
