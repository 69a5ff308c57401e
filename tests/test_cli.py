"""The agentjournal command line, run as a user would: in its own process."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentjournal import __version__
from agentjournal.application import ManagedAgent, SessionService, audit, views
from agentjournal.application.api import open_store
from agentjournal.application.tracing import session_trace
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.models.scripted import Reply
from tests.conftest import ROOT, TEST_KEY


def agentjournal(
    *args: str | bytes, store: Path, check: bool = True, **options: object
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentjournal --store STORE ARGS``; ``check`` asserts it succeeded."""
    done = subprocess.run(
        [sys.executable, "-m", "agentjournal", "--store", str(store), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, **options,  # type: ignore[call-overload]
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done  # type: ignore[no-any-return]


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "sessions.db"


@pytest.fixture(scope="module")
def model_server(_server):  # type: ignore[no-untyped-def]
    return _server


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MODEL_KEY", TEST_KEY)


@pytest.fixture
def model_args(model_server) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """The options that point ``run`` at the scripted model server."""
    return (
        "--model",
        "openai/gpt-4o-mini",
        "--api-base",
        model_server.base_url,
        "--api-key-env",
        "TEST_MODEL_KEY",
    )


@pytest.fixture(scope="module")
def session_id(model_server, store: Path) -> str:  # type: ignore[no-untyped-def]
    done = agentjournal(
        "run", "Remember: my favorite color is blue\n$ echo from-the-cli",
        "--model", "openai/gpt-4o-mini", "--api-base", model_server.base_url,
        "--api-key-env", "TEST_MODEL_KEY", store=store, env={**os.environ, "TEST_MODEL_KEY": TEST_KEY},
    )  # fmt: skip
    assert "I'll run that." in done.stdout and "The tool returned:" in done.stdout
    assert "from-the-cli" in done.stdout
    return done.stderr.strip().split()[-1]


@pytest.fixture
def reader(store: Path) -> Iterator[SessionService]:
    """The module's store, opened in this process to compare the CLI's output with."""
    service = open_store(store)
    yield service
    service.close()


QUIET = SessionConfig(model="m", system="s", name="made", tools=())
"""The config of sessions a test makes without running a turn."""


def make_sessions(store: Path, count: int) -> list[str]:
    service = open_store(store)
    ids = [str(service.create_session(QUIET, f"session {n}")) for n in range(count)]
    service.close()
    return ids


# -- conventions ----------------------------------------------------------------------------


def test_version_through_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentjournal", "--version"], cwd=tmp_path, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout == f"agentjournal {__version__}\n"


def test_help_documents_the_exit_codes(store: Path) -> None:
    shown = agentjournal("--help", store=store).stdout
    for code, meaning in (("0", "ok"), ("1", "failure"), ("2", "usage"), ("3", "not found"), ("130", "")):
        assert re.search(rf"^\s+{code}\s+{meaning}", shown, re.MULTILINE | re.IGNORECASE), code
    assert "141" in shown


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("show", "nope"), 2, "'nope' is not a session id"),
        (("show", "7d4e2a1c-0000-4000-8000-000000000000"), 3, "no session 7d4e2a1c"),
        (("state", "{sid}", "--at", "999"), 3, "has no event 999"),
        (("fork", "{sid}", "--at", "999"), 3, "has no event 999"),
        (("interrupt", "{sid}"), 2, "has no turn in progress"),
        (("list", "--limit", "many"), 2, "'many' is not a whole number"),
    ],
)
def test_bad_input_is_a_clear_error_with_its_exit_code(session_id, store, args, code, message):  # type: ignore[no-untyped-def]
    done = agentjournal(*(a.format(sid=session_id) for a in args), store=store, check=False)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["table", "json"])
def test_output_piped_into_head_ends_quietly(tmp_path: Path, json_flag: tuple[str, ...]) -> None:
    store = tmp_path / "long.db"
    service = open_store(store)
    session = service.get_session(service.create_session(QUIET))
    for n in range(3000):  # about a megabyte of log, far more than a pipe holds
        session.set_title(f"title number {n} " + "x" * 300)
    service.save(session)
    service.close()
    with subprocess.Popen(
        [sys.executable, "-m", "agentjournal", "--store", str(store), "log", str(session.id), *json_flag],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as cli:  # fmt: skip
        assert cli.stdout is not None and cli.stderr is not None
        assert cli.stdout.readline()  # what `head -1` reads, before it exits
        cli.stdout.close()
        stderr = cli.stderr.read().decode()
        assert cli.wait(timeout=60) == 141
    assert stderr == ""


# -- the JSON shapes ------------------------------------------------------------------------


def test_list_and_show_print_the_shared_json_shapes(session_id, store, reader):  # type: ignore[no-untyped-def]
    listed = json_lines(agentjournal("list", "--json", store=store).stdout)
    assert listed == [views.session_listing(s) for s in reader.list_summaries(limit=50)]
    assert session_id in [s["id"] for s in listed]
    shown = json.loads(agentjournal("show", session_id, "--json", store=store).stdout)
    summary = reader.summary(reader.find_session(session_id))
    trace = session_trace(reader.events.get(summary.id))
    assert shown == views.session_detail(summary, reader.get_session(summary.id)) | {
        "trace": views.session_trace(trace)
    }
    assert shown["messages"][0] == {
        "type": "user",
        "content": "Remember: my favorite color is blue\n$ echo from-the-cli",
    }
    agent = ManagedAgent(store=reader)
    agent.resume_session(session_id)
    assert {k: shown[k] for k in agent.retrieve_session()} == agent.retrieve_session()


def test_list_as_a_table_and_show_as_text(session_id, store):  # type: ignore[no-untyped-def]
    table = agentjournal("list", store=store).stdout.splitlines()
    assert table[0].split("\t")[:3] == ["id", "status", "title"]
    shown = agentjournal("show", session_id, store=store).stdout
    assert "user> Remember: my favorite color is blue" in shown
    assert "tool execute_command -> exit 0" in shown


def test_list_says_when_more_sessions_are_available(tmp_path: Path) -> None:
    store = tmp_path / "many.db"
    made = make_sessions(store, 3)
    first = agentjournal("list", "--limit", "2", "--json", store=store)
    assert len(json_lines(first.stdout)) == 2
    assert "more sessions" in first.stderr and "--all" in first.stderr
    rest = agentjournal("list", "--limit", "2", "--offset", "2", "--json", store=store)
    assert [s["id"] for s in json_lines(first.stdout + rest.stdout)] == made[::-1]
    assert rest.stderr == ""
    every = agentjournal("list", "--all", "--json", store=store)
    assert [s["id"] for s in json_lines(every.stdout)] == made[::-1] and every.stderr == ""


def test_log_as_json_lines_and_filtered(session_id, store):  # type: ignore[no-untyped-def]
    events = json_lines(agentjournal("log", session_id, "--json", store=store).stdout)
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "SessionStarted" and events[-1]["type"] == "TurnCompleted"
    assert all({"session_id", "version", "type", "timestamp", "payload"} == set(e) for e in events)
    only = agentjournal("log", session_id, "--json", "--type", "ToolResultRecorded", store=store).stdout
    (result,) = json_lines(only)
    assert result["payload"]["result"]["output"] == "from-the-cli\n"  # type: ignore[index]


def test_state_at_an_event_and_fork_from_it(session_id, store):  # type: ignore[no-untyped-def]
    state = json.loads(agentjournal("state", session_id, "--at", "2", "--json", store=store).stdout)
    assert state["version"] == 2 and len(state["messages"]) == 1 and state["status"] == "idle"
    fork_id = agentjournal("fork", session_id, "--at", "2", store=store).stdout.strip()
    forked = json.loads(agentjournal("state", fork_id, "--json", store=store).stdout)
    assert forked["messages"] == state["messages"]
    assert forked["lineage"] == {"parent_id": session_id, "parent_version": 2}


def test_fork_timeline_diff_and_verify_speak_json(session_id, store, reader):  # type: ignore[no-untyped-def]
    fork = json.loads(agentjournal("fork", session_id, "--at", "3", "--json", store=store).stdout)
    assert fork == views.session_listing(reader.summary(reader.find_session(fork["id"])))
    assert (fork["parent_id"], fork["parent_version"]) == (session_id, 3)
    sid = reader.find_session(session_id)
    timeline = json_lines(agentjournal("timeline", session_id, "--json", store=store).stdout)
    assert timeline == [views.timeline_entry(e) for e in audit.timeline(reader, sid)]
    compared = json.loads(agentjournal("diff", session_id, fork["id"], "--json", store=store).stdout)
    assert compared == views.session_diff(audit.diff(reader, sid, reader.find_session(fork["id"])))
    assert compared["relation"].startswith(f"{fork['id']} was forked from {session_id}")
    (checked,) = json_lines(agentjournal("verify", session_id, "--json", store=store).stdout)
    assert checked == views.verification(audit.verify(reader, sid)) and checked["ok"] is True


# -- running a turn -------------------------------------------------------------------------


def test_run_continues_an_existing_session(session_id, model_args, store):  # type: ignore[no-untyped-def]
    done = agentjournal(
        "run", "What is my favorite color?", "--session", session_id, *model_args, store=store
    )
    assert done.stdout.strip() == "Your favorite color is blue."


def test_run_as_json_prints_the_outcome_only(model_args, tmp_path: Path) -> None:
    done = agentjournal("run", "Look:\n$ echo json-turn", "--json", *model_args, store=tmp_path / "s.db")
    (outcome,) = json_lines(done.stdout)
    assert outcome["text"] == "The tool returned:\njson-turn" and outcome["stop_reason"] == "end_turn"
    assert set(outcome) == {"session_id", "text", "stop_reason", "usage", "total_usage"}
    assert done.stderr.strip().endswith(f"session {outcome['session_id']}")


def test_run_shows_no_progress_when_stderr_is_not_a_terminal(model_args, tmp_path: Path) -> None:
    done = agentjournal("run", "Look:\n$ echo quiet", *model_args, store=tmp_path / "s.db")
    lines = done.stderr.splitlines()
    assert lines[0] == "" and lines[1].startswith("  -> execute_command ")
    assert re.fullmatch(r"  <- exit 0, \d+ ms", lines[2]) and lines[3].startswith("session ")
    assert len(lines) == 4 and "\x1b" not in done.stderr + done.stdout


def test_run_shows_a_status_line_on_a_terminal(model_args, tmp_path: Path) -> None:
    terminal, stderr = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "agentjournal", "--store", str(tmp_path / "s.db"), "run", "Hello", *model_args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, env={**os.environ, "TERM": "xterm"},
    ) as cli:  # fmt: skip
        os.close(stderr)
        shown = _read_terminal(terminal)
        assert cli.stdout is not None
        stdout = cli.stdout.read().decode()
        assert cli.wait(timeout=60) == 0
    assert "working" in shown and "preparing the host compute" in shown
    assert stdout.startswith("Noted.") and "\x1b" not in stdout


def _read_terminal(terminal: int) -> str:
    """Everything written to a pseudo-terminal until the last writer closes it."""
    chunks = []
    try:
        while chunk := os.read(terminal, 4096):
            chunks.append(chunk)
    except OSError:  # EIO: the other end is closed
        pass
    finally:
        os.close(terminal)
    return b"".join(chunks).decode(errors="replace")


def test_a_prompt_that_is_not_utf8_is_refused_before_anything_is_recorded(model_args, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    done = agentjournal("run", b"\xff\xfe", *model_args, store=store, check=False)
    assert done.returncode == 2
    assert "not UTF-8" in done.stderr and "Traceback" not in done.stderr
    assert not store.exists()  # refused before even the store was opened


# -- naming sessions and titles ------------------------------------------------------------


def test_a_session_can_be_named_by_the_start_of_its_id(session_id, store):  # type: ignore[no-untyped-def]
    shown = agentjournal("show", session_id[:8], store=store).stdout
    assert shown.startswith(f"session {session_id}")
    done = agentjournal("log", session_id[:3], store=store, check=False)
    assert done.returncode == 2 and "is not a session id" in done.stderr


def test_a_full_id_without_dashes_names_its_session(session_id, store):  # type: ignore[no-untyped-def]
    shown = agentjournal("show", session_id.replace("-", ""), store=store).stdout
    assert shown.startswith(f"session {session_id}")


@pytest.mark.parametrize("length", [37, 17, 9])
def test_the_api_form_of_an_id_and_its_start_name_its_session(session_id, store, length):  # type: ignore[no-untyped-def]
    """The page and the API show ``sesn_`` and the hex: that, whole or its start (which
    crosses the dashes the UUID's text has), names the session wherever an id is taken."""
    wire = f"sesn_{session_id.replace('-', '')}"
    shown = agentjournal("show", wire[:length], store=store).stdout
    assert shown.startswith(f"session {session_id}")
    assert agentjournal("log", "--json", wire.upper()[:length], store=store).stdout


def test_files_that_cannot_be_written_or_read_are_plain_errors(session_id, store, tmp_path: Path):  # type: ignore[no-untyped-def]
    for args, says in (
        (("export", session_id, "-o", str(tmp_path / "missing" / "out.jsonl")), "cannot write"),
        (("import", str(tmp_path / "missing.jsonl")), "cannot read"),
        (("import", str(tmp_path)), "cannot read"),
    ):
        done = agentjournal(*args, store=store, check=False)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"agentjournal: error: {says} ") and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["export", "log", "timeline", "show", "verify", "fork"])
def test_a_memory_store_id_names_no_session(store: Path, command: str) -> None:
    """The store keeps memory stores beside sessions: a command that takes a session
    refuses a store's id as it refuses an unknown one, and writes nothing of its log."""
    from agentjournal.application.memory_stores import MemoryStores

    service = open_store(store)
    try:
        memory = MemoryStores(service).create("notes")
        MemoryStores(service).create_memory(memory.id, "/kept.md", "the store's own words")
    finally:
        service.close()
    done = agentjournal(command, str(memory.id), store=store, check=False)
    assert done.returncode == 3, done.stderr
    assert f"no session {memory.id}" in done.stderr and "Traceback" not in done.stderr
    assert "the store's own words" not in done.stdout and "MemoryStore" not in done.stdout


@pytest.mark.parametrize(
    "command", [("list",), ("show", "1234"), ("verify",), ("log", "abcd"), ("dataset", "--all")]
)
def test_a_mistyped_store_is_refused_by_commands_that_read(tmp_path: Path, command: tuple[str, ...]) -> None:
    mistyped = tmp_path / "sesions.db"
    done = agentjournal(*command, store=mistyped, check=False)
    assert done.returncode == 2
    assert f"no session store at {mistyped}" in done.stderr
    assert not mistyped.exists()


def test_run_on_a_new_store_makes_it(model_args, tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "sessions.db"
    agentjournal("run", "Hello", *model_args, store=fresh)
    assert fresh.exists()
    assert agentjournal("list", store=fresh).stdout.count("\n") == 2  # the header and the session


def test_a_model_that_is_not_set_up_is_refused_before_any_call(model_server, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    asked = len(model_server.requests)
    for args, says in (
        (("--model", "gpt-4o"), "needs a key: set OPENAI_API_KEY"),
        (("--model", "nosuchprovider/m"), "finds no provider for this name"),
        (("--model", "openai/m", "--api-base", "http://127.0.0.1:9/v1", "--api-key-env", "TEST_MODEL_KEY"),
         "http://127.0.0.1:9/v1 does not answer"),
    ):  # fmt: skip
        done = agentjournal("run", "Hello", *args, store=store, check=False, env=env)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("agentjournal: the model is not set up: ") and says in done.stderr
    assert len(model_server.requests) == asked
    assert agentjournal("list", "--json", store=store).stdout == ""  # nothing was recorded


def test_serve_checks_the_model_route_before_it_listens(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"AGENTJOURNAL_API_KEYS": "k"}
    for args, says in (
        (("--model-provider", "openai"), "needs a key: set OPENAI_API_KEY"),
        (("--model-provider", "openai", "--api-base", "http://127.0.0.1:9/v1", "--api-key-env", "TEST_MODEL_KEY"),
         "http://127.0.0.1:9/v1 does not answer"),
        (("--api-base", "http://127.0.0.1:9/v1"), "http://127.0.0.1:9/v1 does not answer"),
    ):  # fmt: skip
        done = agentjournal("serve", "--port", "0", *args, store=tmp_path / "s.db", check=False, env=env)
        assert done.returncode == 1 and "serving on" not in done.stdout, done.stdout
        assert says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_failed_run_names_its_session(model_server, model_args, tmp_path: Path) -> None:
    model_server.enqueue(Reply(status=401, error="invalid api key"))
    asked = len(model_server.requests)
    store = tmp_path / "s.db"
    done = agentjournal("run", "Hello", *model_args, store=store, check=False)
    assert done.returncode == 1
    assert "the model is not set up" in done.stderr and "invalid api key" in done.stderr
    (listed,) = json_lines(agentjournal("list", "--json", store=store).stdout)
    assert f"session {listed['id']}" in done.stderr and listed["status"] == "error"
    assert len(model_server.requests) == asked + 1  # a refused key is not tried again


def test_run_title_renames_an_existing_session(session_id, model_args, store):  # type: ignore[no-untyped-def]
    agentjournal("run", "Hello", "--session", session_id, "--title", "Renamed", *model_args, store=store)
    assert json.loads(agentjournal("show", session_id, "--json", store=store).stdout)["title"] == "Renamed"


def test_run_says_which_options_a_resumed_session_keeps_as_recorded(session_id, model_args, store):  # type: ignore[no-untyped-def]
    done = agentjournal(
        "run", "Hello", "--session", session_id, "--system", "Be someone else.", *model_args, store=store
    )
    assert f"agentjournal: warning: session {session_id} keeps its recorded system" in done.stderr
    assert "Warning" not in done.stderr and ".py:" not in done.stderr
    shown = json.loads(agentjournal("state", session_id, "--json", store=store).stdout)
    assert shown["config"]["system"] == "You are a helpful coding assistant."


def test_title_command_sets_a_title(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    (session_id,) = make_sessions(store, 1)
    agentjournal("title", session_id[:8], "Shopping list", store=store)
    shown = json.loads(agentjournal("show", session_id, "--json", store=store).stdout)
    assert shown["title"] == "Shopping list"
    done = agentjournal("title", session_id, "  ", store=store, check=False)
    assert done.returncode == 2 and "title" in done.stderr


# -- what the reading commands load --------------------------------------------------------


def test_audit_commands_do_not_load_the_model_or_container_libraries(session_id, store):  # type: ignore[no-untyped-def]
    code = (
        "import sys; from agentjournal.infrastructure.cli.main import main\n"
        f"for args in (['list'], ['log', {session_id!r}], ['state', {session_id!r}], ['show', {session_id!r}]):\n"
        f"    assert main(['--store', {str(store)!r}, *args]) == 0\n"
        "heavy = sorted(m for m in ('litellm', 'docker', 'openai') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_demo_runs_end_to_end_and_says_it_is_scripted(tmp_path: Path) -> None:
    done = agentjournal("demo", store=tmp_path / "demo.db")
    assert "SCRIPTED model" in done.stdout
    assert "agent> Your favorite color is blue." in done.stdout
    assert "the fork remembers: Your favorite color is blue." in done.stdout
