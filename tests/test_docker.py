"""The Docker sandbox, on a real engine: tools and packages run in the container, never on the host."""

from __future__ import annotations

import importlib.util
import json
import re
import resource
import shlex
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import pytest

from agentjournal.application import Agent, ManagedAgent, ManagedConfig, SessionService
from agentjournal.application.ports import ComputeError, ExecResult
from agentjournal.application.tools import ToolLimits, run_tool
from agentjournal.domain import ComputeBinding, SessionConfig, ToolCall, ToolResult
from agentjournal.infrastructure.compute.docker_sandbox import (
    SESSION_LABEL,
    DockerCompute,
    remove_sandbox,
    sandboxes,
)
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import TEST_KEY, run_python, wait_until

pytestmark = pytest.mark.docker

# A small pure-Python package that the host does not have.
PACKAGE, MODULE = "tomli-w", "tomli_w"


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


# How long past its timeout a command may take to be killed and reported, on a busy machine
# (a fork bomb under a loaded Docker took 5.6 s): far below the minutes a call left running
# would take, which is what these tests tell apart.
KILL_MARGIN = 15.0


def leftovers(compute: DockerCompute) -> list[str]:
    """The command lines of the processes in the sandbox the tests below start (``sleep 9N``),
    seen from the host, so no process in the sandbox can hide them."""
    top = compute.container.top(ps_args="-eo pid,args")
    return [" ".join(row[1:]) for row in top["Processes"] if re.search(r"\bsleep 9\d\b", " ".join(row[1:]))]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("sleep 90 & sleep 91", id="background child"),
        pytest.param("kill -STOP $PPID; sleep 90", id="stops its parent"),
        pytest.param("sh -c 'kill -STOP $PPID; sleep 90'", id="stops the shell"),
        pytest.param("""sh -c "trap '' TERM; sleep 90" & sleep 91""", id="grandchild ignores TERM"),
        pytest.param("setsid nohup sleep 90 >/dev/null 2>&1 & setsid sleep 91 & sleep 92", id="new sessions"),
    ],
)
def test_a_command_and_all_it_started_end_at_its_timeout(sandbox, command):
    compute = sandbox()
    started = time.monotonic()
    result = compute.execute(command, timeout=3)
    assert time.monotonic() - started < 3 + KILL_MARGIN
    assert result.timed_out and result.exit_code != 0
    assert leftovers(compute) == []


# Forks in a new session until the pid limit is reached, and keeps every process trying.
FORK_BOMB = """
import os, time
os.setsid()
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""


def test_a_fork_bomb_in_a_new_session_ends_at_the_timeout(sandbox):
    compute = sandbox(pids_limit=64)
    started = time.monotonic()
    result = compute.execute(f"python3 -c {shlex.quote(FORK_BOMB)}", timeout=3)
    assert time.monotonic() - started < 3 + KILL_MARGIN
    assert result.timed_out
    top = compute.container.top(ps_args="-eo pid,args")["Processes"]
    assert not [row for row in top if "python3" in " ".join(row)]


def test_processes_a_command_leaves_in_the_background_end_with_it(sandbox):
    compute = sandbox()
    result = compute.execute(
        "setsid nohup sleep 90 >/dev/null 2>&1 & nohup sleep 91 >/dev/null 2>&1 &", timeout=30
    )
    assert result.exit_code == 0 and not result.timed_out
    assert leftovers(compute) == []


def test_release_needs_only_the_recorded_binding_and_can_be_repeated(engine, sandbox):
    compute = sandbox()
    assert compute.execute("sleep 90 >/dev/null 2>&1 &", timeout=10).exit_code == 0
    session_id, reference = uuid.UUID(session_of(compute)), compute.container.id
    release = f"""
        from agentjournal.domain import ComputeBinding
        from agentjournal.infrastructure.compute.docker_sandbox import release_sandbox
        release_sandbox(ComputeBinding("docker", {reference!r}))
    """
    for _ in range(2):  # a second release, in another process, finds nothing to do
        child = run_python(release)
        assert child.returncode == 0, child.stderr
        assert not list(sandboxes(engine, session_id))
    assert not engine.volumes.list(filters={"label": f"{SESSION_LABEL}={session_id}"})


def test_a_binding_that_names_another_container_is_not_trusted(engine, sessions):
    """A binding can come from an imported export: it must not lead the engine to use or remove
    a container that is not its session's sandbox."""
    volume = engine.volumes.create(f"agentjournal-test-foreign-{uuid.uuid4().hex[:8]}")
    foreign = engine.containers.create(
        "agentjournal-sandbox:latest", ["sleep", "infinity"], volumes={volume.name: {"bind": "/data"}}
    )
    compute = DockerCompute(client=engine)
    try:
        compute.release(ComputeBinding("docker", foreign.id))
        sessions.append(uuid.uuid4())
        binding = compute.attach(sessions[-1], ComputeBinding("docker", foreign.id))
        assert binding.reference != foreign.id
        compute.release(binding)
        foreign.reload()
        assert foreign.status == "created", "the foreign container was neither started nor removed"
        assert engine.volumes.get(volume.name).name == volume.name
    finally:
        foreign.remove(force=True)
        volume.remove(force=True)


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
    assert [(e.path, e.size) for e in compute.list_files(".", 100).entries] == [(name, len(data))]


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


def test_links_inside_the_work_folder_are_followed(sandbox):
    compute = sandbox()
    assert (
        compute.execute(
            "mkdir -p sub && echo old > sub/t.txt && ln -s sub/t.txt l && ln -s sub s", 10
        ).exit_code
        == 0
    )
    assert compute.read_file("l") == b"old\n"
    compute.write_file("s/new.txt", b"new")
    compute.write_file("l", b"replaced")
    after = compute.execute("cat sub/new.txt; echo; cat sub/t.txt; test -L l", 10)
    assert after.output == "new\nreplaced" and after.exit_code == 0


@contextmanager
def racing(compute: DockerCompute, script: str, *args: str) -> Iterator[None]:
    """Runs the Python ``script`` in the sandbox while the body runs. The script makes a file
    ``ready`` once it has set up, and must end when a file ``stop`` appears."""
    command = " ".join(shlex.quote(word) for word in ("python3", "-c", script, *args))
    ended: list[ExecResult] = []
    thread = threading.Thread(target=lambda: ended.append(compute.execute(command, timeout=120)))
    thread.start()
    try:
        wait_until(
            lambda: "ready" in {e.path for e in compute.list_files(".", 100).entries} or ended,
            "the racing script to be ready",
            60,
        )
        yield
    finally:
        compute.write_file("stop", b"")
        thread.join(timeout=130)
    assert ended and ended[0].exit_code == 0, ended


# Swaps "d" between a folder and a link out of the work folder (to argv[1]), atomically and as
# fast as it can: RENAME_EXCHANGE of renameat2(2).
SWAPPER = """
import ctypes, os, sys
os.makedirs("real/ssl")
for name in ("real/passwd", "real/ssl/inner.txt"):
    with open(name, "w") as f:
        f.write("innocent\\n")
os.symlink(sys.argv[1], "d")
open("ready", "w").close()
renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
while not os.path.exists("stop"):
    renameat2(-100, b"d", -100, b"real", 2)
"""
RACE_ROUNDS = 60


@pytest.mark.parametrize("tool", ["read_file", "list_files", "write_file"])
def test_a_link_swapped_in_while_a_file_tool_runs_never_leads_out(sandbox, tool):
    compute = sandbox()
    operation, inside = {
        "read_file": (lambda: compute.read_file("d/passwd"), b"innocent\n"),
        "list_files": (
            lambda: [e.path for e in compute.list_files("d/ssl", 100).entries],
            ["d/ssl/inner.txt"],
        ),
        "write_file": (lambda: compute.write_file("d/planted", b"x"), None),
    }[tool]
    done, refused = [], []
    with racing(compute, SWAPPER, "/home/sandbox" if tool == "write_file" else "/etc"):
        for _ in range(RACE_ROUNDS):
            try:
                done.append(operation())
            except ComputeError as e:
                refused.append(str(e))
    assert done and refused, "the race did not happen: the link was never (or always) in place"
    assert all(outcome == inside for outcome in done)
    assert "planted" not in compute.execute("ls -A /home/sandbox /tmp", timeout=10).output


SHRINKER = """
import os
open("ready", "w").close()
while not os.path.exists("stop"):
    with open("f", "wb") as f:
        f.write(b"x" * 4_000_000)
"""


def test_a_file_that_shrinks_while_it_is_read_is_read_or_refused(sandbox):
    compute = sandbox()
    with racing(compute, SHRINKER):
        for _ in range(RACE_ROUNDS):
            try:
                data = compute.read_file("f")
            except ComputeError:
                continue
            assert set(data) <= {ord("x")}


def test_reading_a_folder_that_holds_a_huge_sparse_file_buffers_nothing(sandbox):
    compute = sandbox()
    assert compute.execute("mkdir d && truncate -s 2G d/sparse", timeout=10).exit_code == 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with pytest.raises(ComputeError, match="not a regular file"):
        compute.read_file("d")
    with pytest.raises(ComputeError, match="larger than"):
        compute.read_file("d/sparse")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        pytest.param("a\0b", "NUL", id="NUL"),
        pytest.param("x" * 5000, "too long", id="long name"),
        pytest.param("a/" * 2500 + "f", "too long", id="long path"),
        pytest.param("a/" * 300 + "f", "too deep", id="deep path"),
        pytest.param("a\ud800", "not valid UTF-8", id="lone surrogate"),
    ],
)
def test_a_path_no_file_can_have_is_a_compute_error(sandbox, path, problem):
    compute = sandbox()
    for operation in (
        compute.read_file,
        lambda p: compute.list_files(p, 100),
        lambda p: compute.write_file(p, b"x"),
    ):
        with pytest.raises(ComputeError, match=problem):
            operation(path)


QUOTA = 2**30  # the work folder's default size limit


def test_the_work_folder_has_a_quota_that_the_model_hears_about(sandbox):
    compute = sandbox()
    assert compute.execute("df -B1 --output=size .", timeout=10).output.split()[-1] == str(QUOTA)
    limits = ToolLimits()

    def tool(name: str, **arguments: str) -> ToolResult:
        return run_tool(compute, ToolCall("call", name, json.dumps(arguments)), limits)

    filled = tool("execute_command", command=f"head -c {QUOTA + 2**20} /dev/zero > big")
    assert filled.is_error and "disk quota exceeded" in filled.output
    written = tool("write_file", path="more.txt", content="x" * 2**20)
    assert written.is_error and "disk quota exceeded" in written.output
    assert not tool("execute_command", command="rm big").is_error
    assert not tool("write_file", path="more.txt", content="x" * 2**20).is_error


def test_the_container_is_hardened(sandbox):
    compute = sandbox()
    inspect = compute.container.attrs["HostConfig"]
    assert inspect["ReadonlyRootfs"] is True
    assert inspect["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in inspect["SecurityOpt"]
    assert inspect["PidsLimit"] > 0 and inspect["Memory"] > 0 and inspect["NanoCpus"] > 0
    assert compute.container.attrs["Config"]["User"].split(":")[0] not in ("", "0", "root")
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


def test_an_allow_list_the_proxy_cannot_enforce_is_refused_not_ignored(engine):
    with pytest.raises(ComputeError, match="allowed_hosts entry 'https://pypi.org/'"):
        DockerCompute(client=engine, networking={"type": "limited", "allowed_hosts": ["https://pypi.org/"]})


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


@pytest.mark.parametrize("why", ["stopped", "older layout"])
def test_a_sandbox_that_cannot_be_trusted_to_hold_the_files_is_replaced(engine, sandbox, sessions, why):
    """A stopped sandbox lost its work folder (a tmpfs); one made before the work folder quota
    and the kill of all a command starts lacks both. Neither is reused, and neither is left."""
    if why == "stopped":
        old = sandbox().container
        old.stop(timeout=0)
        session_id = uuid.UUID(old.labels[SESSION_LABEL])
    else:
        sessions.append(session_id := uuid.uuid4())
        labels = {"agentjournal.managed": "1", SESSION_LABEL: str(session_id)}
        old = engine.containers.run(
            "agentjournal-sandbox:latest", ["sleep", "infinity"], detach=True, labels=labels
        )
    compute = DockerCompute(client=engine)
    binding = compute.attach(session_id, ComputeBinding("docker", old.id))
    try:
        assert binding.reference != old.id
        assert [c.id for c in sandboxes(engine, session_id)] == [binding.reference]
    finally:
        compute.release(binding)


@contextmanager
def labelled_containers(engine, *session_ids):  # type: ignore[no-untyped-def]
    """Stopped containers labelled as the sandboxes of these sessions; removed afterwards
    if the test left them."""
    made = [
        engine.containers.create(
            "agentjournal-sandbox:latest", ["true"],
            labels={"agentjournal.managed": "1", SESSION_LABEL: str(session_id)},
        )
        for session_id in session_ids
    ]  # fmt: skip
    try:
        yield made
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_cleanup_removes_only_the_sandboxes_of_its_own_store_and_asks_first(engine, tmp_path):
    from tests.test_cli import agentjournal

    store = tmp_path / "s.db"
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    config = SessionConfig(model="m", system="s", name="n", tools=())
    ours, also_ours = service.create_session(config), service.create_session(config)
    service.close()
    elsewhere = uuid.uuid4()  # a session of another store, maybe running there
    with labelled_containers(engine, ours, also_ours, elsewhere):
        listed = agentjournal("cleanup", store=store)  # not a terminal: listed, never removed
        assert "nothing removed" in listed.stderr
        assert str(ours) in listed.stdout and str(also_ours) in listed.stdout
        assert str(elsewhere) not in listed.stdout
        assert re.search(r"^left \d+ sandbox container\(s\) of sessions this store does not hold alone$",
                         listed.stdout, re.MULTILINE)  # fmt: skip
        assert all(list(sandboxes(engine, s)) for s in (ours, also_ours, elsewhere))

        one = agentjournal("cleanup", "--session", f"sesn_{ours.hex}", "--yes", store=store)
        assert "removed 1 sandbox container(s)" in one.stdout
        assert not list(sandboxes(engine, ours)) and list(sandboxes(engine, also_ours))

        rest = agentjournal("cleanup", "--yes", store=store)
        assert "removed 1 sandbox container(s)" in rest.stdout
        assert not list(sandboxes(engine, also_ours))
        assert list(sandboxes(engine, elsewhere))  # another store's, left alone


def test_a_sandboxed_session_resumed_with_default_settings_stays_in_its_sandbox(
    engine, sessions, model_server, service
):
    """A process that resumes a Docker session without saying where tools run gets the
    recorded sandbox and its networking, never the host."""
    config = ManagedConfig(model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY,
                           networking={"type": "none"})  # fmt: skip
    managed = ManagedAgent(config=config, compute="docker", store=service)
    managed.create_session()
    sessions.append(uuid.UUID(managed.session_id))
    try:
        resumed = ManagedAgent(
            config=ManagedConfig(model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY),
            store=service,
        )
        resumed.resume_session(managed.session_id)
        model_server.enqueue(Reply(tool_calls=[call("cat /proc/net/dev | tail -n +3 | cut -d: -f1")]),
                             Reply(text="looked"))  # fmt: skip
        assert resumed.run("where am I?") == "looked"
        assert resumed.state_at().compute.kind == "docker"
        assert resumed.state_at().messages[2].output.split() == ["lo"]
    finally:
        managed.terminate()


@pytest.mark.parametrize("how", ["resumed agent", "command line"])
def test_terminate_from_another_process_releases_the_recorded_sandbox(
    engine, sessions, model_server, store, how
):
    from tests.test_cli import agentjournal

    config = ManagedConfig(model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY)
    managed = ManagedAgent(config=config, compute="docker", store=store)
    model_server.enqueue(Reply(tool_calls=[call("true")]), Reply(text="ran"))
    managed.run("start the sandbox")
    session_id = uuid.UUID(managed.session_id)
    sessions.append(session_id)
    assert list(sandboxes(engine, session_id))
    if how == "resumed agent":
        other = ManagedAgent(config=config, store=store)
        other.resume_session(session_id)
        other.terminate()
    else:
        done = agentjournal("terminate", str(session_id), store=store)
        assert done.returncode == 0, done.stderr
    assert not list(sandboxes(engine, session_id)), "terminate left the sandbox running"
    released = managed.audit_log(types=("ComputeReleased",))
    assert len(released) == 1 and released[0].payload["binding"]["kind"] == "docker"


def test_the_work_folder_quota_is_the_sessions_recorded_one(engine, sessions, model_server, service):
    config = ManagedConfig(model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY,
                           workspace_quota_bytes=64 * 1024**2)  # fmt: skip
    managed = ManagedAgent(config=config, compute="docker", store=service)
    model_server.enqueue(Reply(tool_calls=[call("df -k /workspace | tail -n 1")]), Reply(text="measured"))
    try:
        managed.run("how big?")
        sessions.append(uuid.UUID(managed.session_id))
        assert managed.state_at().config.workspace_quota_bytes == 64 * 1024**2
        assert managed.state_at().messages[2].output.split()[1] == str(64 * 1024)
    finally:
        managed.terminate()
