"""Host compute: file tools confined to the work folder, commands given a minimal
environment, and bounds (timeouts, output caps, session end) that hold whatever a
command does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from agentjournal.application import SessionService, audit
from agentjournal.application.ports import ComputeError, ExecResult
from agentjournal.application.tools import ToolLimits, run_tool
from agentjournal.domain import ComputeBinding, Session, ToolCall, ToolResult
from agentjournal.infrastructure.compute import host as host_module
from agentjournal.infrastructure.compute.host import HostCompute
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import run_python, wait_until


@pytest.fixture
def compute(tmp_path: Path) -> HostCompute:
    host = HostCompute(base=tmp_path, max_output_bytes=10_000)
    binding = host.attach(uuid.uuid4(), None)
    assert Path(binding.reference).is_dir()
    return host


def test_files_round_trip_exactly_whatever_their_names_and_bytes(compute):
    name = 'we\'ird "name" $(touch pwned)\nline.bin'
    data = bytes(range(256)) * 3
    compute.write_file(f"sub/{name}", data)
    assert compute.read_file(f"sub/{name}") == data
    assert not (compute.root / "pwned").exists()
    listed = compute.list_files(".", 100).entries
    assert [(e.path, e.size) for e in listed] == [(f"sub/{name}", len(data))]


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "sub/../../outside"])
def test_paths_outside_the_work_folder_are_refused(compute, path):
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.read_file(path)
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.write_file(path, b"x")


def test_symlinks_out_of_the_work_folder_are_refused(compute, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, compute.root / "link")
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.read_file("link")


def test_a_command_past_its_timeout_is_killed_with_its_children(compute):
    started = time.monotonic()
    result = compute.execute("sleep 600 & sleep 600; echo never", timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out and result.exit_code != 0
    assert "never" not in result.output


def test_output_is_capped_and_the_cut_recorded(compute):
    result = compute.execute("head -c 50000000 /dev/zero | tr '\\0' x", timeout=60)
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.output) == 10_000


# A path of each kind no host file can have: the problem the model is told.
UNUSABLE_PATHS = [
    pytest.param("x" * 5000, "too long", id="long path"),
    pytest.param("n" * 300 + "/f", "File name too long", id="long name"),
    pytest.param("d/" * 300 + "f", "too deep", id="deep path"),
    pytest.param(("x" * 200 + "/") * 20 + "f", "File name too long", id="beyond the system's length"),
    pytest.param("made.txt/inner", "'made.txt/inner'", id="through a file"),
    pytest.param("a\0b", "NUL", id="NUL"),
    pytest.param("a\ud800", "not valid UTF-8", id="lone surrogate"),
]


@pytest.mark.parametrize(("path", "problem"), UNUSABLE_PATHS)
def test_a_path_no_file_can_have_is_a_compute_error(compute, path, problem):
    compute.write_file("made.txt", b"x")
    for operation in (
        compute.read_file,
        lambda p: compute.list_files(p, 100),
        lambda p: compute.write_file(p, b"x"),
    ):
        with pytest.raises(ComputeError, match=problem):
            operation(path)
    assert [e.path for e in compute.list_files(".", 100).entries] == ["made.txt"], (
        "nothing was made on the way"
    )


def test_a_path_no_file_can_have_is_a_tool_error_in_a_turn(make_agent, model_server):
    agent = make_agent(
        tools=["write_file", "read_file", "list_files", "write", "read", "edit"], compute="host-unconfined"
    )
    paths = [param.values for param in UNUSABLE_PATHS]
    calls = [ScriptedToolCall("write_file", {"path": "made.txt", "content": "x"})]
    for path, _ in paths:
        calls += [
            ScriptedToolCall("write_file", {"path": path, "content": "x"}),
            ScriptedToolCall("read_file", {"path": path}),
            ScriptedToolCall("list_files", {"path": path}),
            ScriptedToolCall("write", {"file_path": path, "content": "x"}),
            ScriptedToolCall("read", {"file_path": path}),
            ScriptedToolCall("edit", {"file_path": path, "old_string": "x", "new_string": "y"}),
        ]
    model_server.enqueue(Reply(tool_calls=calls), Reply(text="understood"))
    assert agent.run("write where no file can be") == "understood"
    assert agent.retrieve_session()["status"] == "idle"
    made, *refused = [m for m in agent.state_at().messages if isinstance(m, ToolResult)]
    assert not made.is_error and len(refused) == len(calls) - 1
    assert all(result.is_error for result in refused), [r.output for r in refused if not r.is_error]
    told = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert told == [result.output for result in (made, *refused)], "the model read every error"
    for number, result in enumerate(refused):
        path, problem = paths[number // 6]
        # A lone surrogate comes through JSON, and the tools refuse it as an argument, as they do a NUL.
        assert ("not valid Unicode" if "\ud800" in path else problem) in result.output, result.output


def test_tool_errors_become_results_the_model_can_read(compute):
    limits = ToolLimits(timeout=5)
    bad_json = run_tool(compute, ToolCall("1", "read_file", "{not json"), limits)
    assert bad_json.is_error and "not valid JSON" in bad_json.output
    missing = run_tool(compute, ToolCall("2", "read_file", '{"path": "nope.txt"}'), limits)
    assert missing.is_error and "no file 'nope.txt'" in missing.output
    failing = run_tool(compute, ToolCall("3", "execute_command", '{"command": "exit 3"}'), limits)
    assert failing.is_error and failing.exit_code == 3
    unknown = run_tool(compute, ToolCall("4", "format_disk", "{}"), limits)
    assert unknown.is_error and "unknown tool" in unknown.output


def test_invalid_utf8_output_is_kept_readable(compute):
    result = compute.execute("printf 'ok \\377\\376 end'", timeout=5)
    assert result.output == "ok \ufffd\ufffd end"


def test_the_model_cannot_ask_for_more_time_than_allowed(compute):
    limits = ToolLimits(timeout=5, max_timeout=1)
    result = run_tool(
        compute, ToolCall("1", "execute_command", '{"command": "sleep 30", "timeout": 999}'), limits
    )
    assert result.is_error and "[killed after 1 s]" in result.output


def test_package_names_cannot_smuggle_options(compute):
    with pytest.raises(ComputeError, match="not a package name"):
        compute.install_packages("pip", ["--index-url=http://example.invalid/simple", "six"])
    with pytest.raises(ComputeError, match="pip packages only"):
        compute.install_packages("apt", ["curl"])


def test_a_fixed_work_folder_is_used_as_given(tmp_path):
    host = HostCompute(tmp_path / "work")
    binding = host.attach(uuid.uuid4(), None)
    assert binding.reference == str((tmp_path / "work").resolve())
    assert host.execute("pwd", timeout=5).output.strip() == binding.reference


# -- what is and is not confined --------------------------------------------------------


def test_the_docs_say_what_holds_file_tools_are_confined_commands_are_not(compute, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("reachable")
    assert compute.execute(f"cat {outside}", timeout=5).output == "reachable"
    with pytest.raises(ComputeError, match="outside the work folder"):
        compute.read_file(str(outside))
    documented = " ".join((host_module.__doc__ or "").split())
    assert "for trusted development, not a sandbox" in documented
    assert "file tools (``read_file``, ``write_file``, ``list_files``) are confined" in documented
    assert "Commands are **not** confined" in documented
    assert "confined to one work folder" not in documented


# -- the environment commands see -------------------------------------------------------

ENGINE_SECRETS = {
    "CIPHER_KEY": "Y2lwaGVyLWtleS1vZi10aGUtZW5naW5lLTAxMjM0NQ==",
    "POSTGRES_PASSWORD": "postgres-password-of-the-engine",
    "OPENAI_API_KEY": "sk-proj-engineskeyengineskeyengineskey",
    "UNRELATED_SETTING": "not a secret but not the command's either",
}


def test_commands_get_a_minimal_environment_not_the_engines(tmp_path, monkeypatch):
    for name, value in ENGINE_SECRETS.items():
        monkeypatch.setenv(name, value)
    host = HostCompute(base=tmp_path, env={"DEPLOY_TOKEN": "given-to-the-session"})
    root = Path(host.attach(uuid.uuid4(), None).reference)
    output = host.execute("env -0", timeout=10).output
    seen = dict(entry.split("=", 1) for entry in output.split("\0") if entry)
    for value in ENGINE_SECRETS.values():
        assert value not in output
    shell_own = {"PWD", "SHLVL", "_", "OLDPWD"}
    assert set(seen) - shell_own <= {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "TERM",
        "DEPLOY_TOKEN",
        "AGENTJOURNAL_CALL",
        "AGENTJOURNAL_WORKSPACE",
    }
    assert seen["DEPLOY_TOKEN"] == "given-to-the-session"
    assert seen["PATH"] == os.environ["PATH"]
    assert seen["HOME"] == str(root / ".home") and (root / ".home").is_dir()
    assert [e.path for e in host.list_files(".", 100).entries] == []


def test_the_work_folders_virtual_environment_comes_first(compute):
    (compute.root / ".venv" / "bin").mkdir(parents=True)
    output = compute.execute('echo "$VIRTUAL_ENV|$PATH"', timeout=5).output.strip()
    venv, path = output.split("|")
    assert venv == str(compute.root / ".venv")
    assert path == f"{compute.root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"


def test_engine_secrets_never_reach_the_model_or_the_log(make_agent, model_server, service, monkeypatch):
    for name, value in ENGINE_SECRETS.items():
        monkeypatch.setenv(name, value)
    agent = make_agent()
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "env; echo $CIPHER_KEY"})]),
        Reply(text="done"),
    )
    agent.run("show me your environment")
    sent = json.dumps(model_server.requests)
    stored = b"".join(n.state for n in service.recorder.select_notifications(start=None, limit=10_000))
    for value in ENGINE_SECRETS.values():
        assert value not in sent
        assert value.encode() not in stored


# -- where the work folder is -----------------------------------------------------------


def crafted_export(config, reference: str, tmp_path: Path) -> list[bytes]:  # type: ignore[no-untyped-def]
    """A valid, verifiable export of a session whose log says its host work folder is
    ``reference``: what anyone can make with this package."""
    elsewhere = SessionService(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "crafted.db")}
    )
    try:
        session = Session.start(config.session_config("host"), "crafted")
        session.attach_compute(ComputeBinding(kind="host", reference=reference))
        elsewhere.save(session)
        return list(audit.export_session(elsewhere, session.id))
    finally:
        elsewhere.close()


def test_an_imported_binding_cannot_point_a_session_at_a_host_folder(
    make_agent, model_server, service, config, tmp_path
):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "hostname").write_text("the victim's file")
    session_id = audit.import_session(service, crafted_export(config, str(victim), tmp_path))
    assert service.get_session(session_id).compute.reference == str(victim)

    agent = make_agent()
    agent.resume_session(session_id)
    model_server.enqueue(
        Reply(
            tool_calls=[
                ScriptedToolCall("read_file", {"path": "hostname"}),
                ScriptedToolCall("execute_command", {"command": "cat hostname; pwd"}),
            ]
        ),
        Reply(text="done"),
    )
    agent.run("read the host name")
    read, command = [m for m in agent.state_at().messages if isinstance(m, ToolResult)]
    assert read.is_error and "no file 'hostname'" in read.output
    assert "the victim's file" not in command.output
    assert command.output.strip().endswith("/workspace")  # the session's own, as every sandbox shows it
    own = (Path(os.environ["AGENTJOURNAL_HOME"]) / "workspaces" / str(session_id)).resolve()
    assert agent.state_at().compute == ComputeBinding(kind="host", reference=str(own))
    assert agent.verify().ok


def test_a_binding_the_engine_would_derive_is_kept(tmp_path):
    session_id = uuid.uuid4()
    first = HostCompute(base=tmp_path).attach(session_id, None)
    assert HostCompute(base=tmp_path).attach(session_id, first) == first
    moved = HostCompute(tmp_path / "named").attach(session_id, first)
    assert moved.reference == str((tmp_path / "named").resolve())


# -- bounds that hold whatever the command does -------------------------------------------


def living(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def pids_in(folder: Path) -> list[int]:
    file = folder / "pids"
    return [int(p) for p in file.read_text().split()] if file.exists() else []


def assert_none_survive(folder: Path, expected: int) -> None:
    """The command wrote ``expected`` pids to ``pids``; none may be running, polled with
    a short deadline (SIGKILL is delivered at once, but not synchronously). Survivors
    still in ``folder`` are killed, so a failing test leaves nothing behind."""
    pids = pids_in(folder)
    assert len(pids) == expected, pids
    deadline = time.monotonic() + 3
    while any(living(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    survivors = [p for p in pids if living(p)]
    for pid in survivors:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/cwd") == str(folder.resolve()):
                os.kill(pid, signal.SIGKILL)
    assert not survivors


# Each writes the pid of a long sleeper it starts to ./pids, in its own way of hiding it.
IN_BACKGROUND = "sh -c 'echo $$ >> pids; exec sleep 90' &"
IGNORING_SIGTERM = "sh -c 'trap \"\" TERM HUP; echo $$ >> pids; for i in $(seq 90); do sleep 1; done' &"
NOHUP = "nohup sh -c 'echo $$ >> pids; exec sleep 90' > /dev/null 2>&1 &"
NEW_SESSION = "setsid sh -c 'echo $$ >> pids; exec sleep 90' < /dev/null > /dev/null 2>&1 &"
DOUBLE_FORK = "(setsid sh -c 'echo $$ >> pids; exec sleep 90' < /dev/null > /dev/null 2>&1 &)"
ALL_SHAPES = [IN_BACKGROUND, IGNORING_SIGTERM, NOHUP, NEW_SESSION, DOUBLE_FORK]


def wait_for_pids(count: int) -> str:
    """Shell that waits until the sleepers have written their pids."""
    return f'while [ "$(cat pids 2>/dev/null | wc -l)" -lt {count} ]; do sleep 0.05; done'


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_nothing_a_command_starts_outlives_its_deadline(compute, shape):
    started = time.monotonic()
    result = compute.execute(f"{shape}\nexec sleep 90", timeout=2)
    assert time.monotonic() - started < 2 + 3
    assert result.timed_out
    assert_none_survive(compute.root, 1)


def test_nothing_a_command_starts_outlives_a_call_that_ended_by_itself(compute):
    command = "\n".join([*ALL_SHAPES, wait_for_pids(len(ALL_SHAPES)), "echo started"])
    started = time.monotonic()
    result = compute.execute(command, timeout=30)
    assert time.monotonic() - started < 10
    assert result.output == "started\n" and result.exit_code == 0 and not result.timed_out
    assert_none_survive(compute.root, len(ALL_SHAPES))


def bounded_in_a_child(work: Path, command: str, timeout: float) -> tuple[bool, float]:
    """Run ``command`` on host compute in a child interpreter: whether it timed out, and
    how long it took. A child, because if the command could reach the engine (its
    ``$PPID``), stopping or killing it would stop or kill the test run itself."""
    child = run_python(
        f"""
        import time, uuid
        from agentjournal.infrastructure.compute.host import HostCompute
        host = HostCompute({str(work)!r})
        host.attach(uuid.uuid4(), None)
        started = time.monotonic()
        result = host.execute({command!r}, timeout={timeout!r})
        print(result.timed_out, time.monotonic() - started)
        """,
        timeout=60,
    )
    assert child.returncode == 0, (child.returncode, child.stderr)
    timed_out, seconds = child.stdout.split()
    return timed_out == "True", float(seconds)


def test_a_command_that_stops_its_parent_cannot_stop_the_clock(tmp_path):
    work = tmp_path / "work"
    timed_out, seconds = bounded_in_a_child(work, "echo $$ >> pids; kill -STOP $PPID; exec sleep 90", 3)
    assert timed_out and seconds < 3 + 3
    assert_none_survive(work, 1)


def test_a_command_that_kills_its_parent_is_still_bounded(tmp_path):
    work = tmp_path / "work"
    command = f"echo $$ >> pids\n{NEW_SESSION}\n{wait_for_pids(2)}\nkill -KILL $PPID; exec sleep 90"
    _, seconds = bounded_in_a_child(work, command, 30)
    assert seconds < 10
    assert_none_survive(work, 2)


def test_release_kills_what_still_runs_in_the_sessions_work_folder(tmp_path):
    session_id = uuid.uuid4()
    host = HostCompute(base=tmp_path)
    binding = host.attach(session_id, None)
    root = Path(binding.reference)
    results: list[ExecResult] = []
    running = threading.Thread(
        target=lambda: results.append(host.execute(f"{NEW_SESSION}\nexec sleep 90", timeout=120))
    )
    started = time.monotonic()
    running.start()
    wait_until(lambda: pids_in(root), "the command's sleeper to write its pid")
    HostCompute(base=tmp_path).release(binding)  # as from another process: a fresh compute
    running.join(timeout=10)
    assert not running.is_alive() and time.monotonic() - started < 10
    assert results[0].exit_code != 0
    assert_none_survive(root, 1)
