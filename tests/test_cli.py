"""The agentjournal command line, run as a user would: in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TEST_KEY


def agentjournal(*args: str, store, check: bool = True, env=None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", "agentjournal.infrastructure.cli", "--store", str(store), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def store(tmp_path_factory):  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("cli") / "sessions.db"


@pytest.fixture(scope="module")
def model_server(_server):  # type: ignore[no-untyped-def]
    return _server


@pytest.fixture(autouse=True)
def _key(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_MODEL_KEY", TEST_KEY)


@pytest.fixture(scope="module")
def session_id(model_server, store) -> str:  # type: ignore[no-untyped-def]
    done = agentjournal(
        "run", "Remember: my favorite color is blue\n$ echo from-the-cli",
        "--model", "openai/gpt-4o-mini", "--api-base", model_server.base_url,
        "--api-key-env", "TEST_MODEL_KEY", store=store, env={**os.environ, "TEST_MODEL_KEY": TEST_KEY},
    )  # fmt: skip
    assert "I'll run that." in done.stdout and "The tool returned:" in done.stdout
    assert "from-the-cli" in done.stdout
    return done.stderr.strip().split()[-1]


def test_run_continues_an_existing_session(session_id, model_server, store):
    done = agentjournal(
        "run", "What is my favorite color?", "--session", session_id, "--model", "openai/gpt-4o-mini",
        "--api-base", model_server.base_url, "--api-key-env", "TEST_MODEL_KEY", store=store,
    )  # fmt: skip
    assert done.stdout.strip() == "Your favorite color is blue."


def test_list_and_show(session_id, store):
    listed = [json.loads(line) for line in agentjournal("list", "--json", store=store).stdout.splitlines()]
    assert session_id in [s["id"] for s in listed]
    listed = [s for s in listed if s["id"] == session_id]
    assert listed[0]["status"] == "idle"
    table = agentjournal("list", store=store).stdout.splitlines()
    assert table[0].split("\t")[:3] == ["id", "status", "title"]
    shown = agentjournal("show", session_id, store=store).stdout
    assert "user> Remember: my favorite color is blue" in shown
    assert "tool execute_command -> exit 0" in shown


def test_log_as_json_lines_and_filtered(session_id, store):
    lines = agentjournal("log", session_id, "--json", store=store).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "SessionStarted" and events[-1]["type"] == "TurnCompleted"
    assert all({"session_id", "version", "type", "timestamp", "payload"} <= set(e) for e in events)
    only = agentjournal("log", session_id, "--json", "--type", "ToolResultRecorded", store=store).stdout
    (result,) = [json.loads(line) for line in only.splitlines()]
    assert result["payload"]["result"]["output"] == "from-the-cli\n"


def test_state_at_an_event_and_fork_from_it(session_id, store):
    state = json.loads(agentjournal("state", session_id, "--at", "2", "--json", store=store).stdout)
    assert state["version"] == 2 and len(state["messages"]) == 1 and state["status"] == "idle"
    fork_id = agentjournal("fork", session_id, "--at", "2", store=store).stdout.strip()
    forked = json.loads(agentjournal("state", fork_id, "--json", store=store).stdout)
    assert forked["messages"] == state["messages"]
    assert forked["lineage"] == {"parent_id": session_id, "parent_version": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "'nope' is not a session id"),
        (("show", "7d4e2a1c-0000-4000-8000-000000000000"), "no session 7d4e2a1c"),
        (("state", "{sid}", "--at", "999"), "has no event 999"),
        (("fork", "{sid}", "--at", "999"), "has no event 999"),
    ],
)
def test_bad_input_is_a_clear_error(session_id, store, args, message):
    done = agentjournal(*(a.format(sid=session_id) for a in args), store=store, check=False)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_audit_commands_do_not_load_the_model_or_container_libraries(session_id, store):
    code = (
        "import sys; from agentjournal.infrastructure.cli import main\n"
        f"for args in (['list'], ['log', {session_id!r}], ['state', {session_id!r}], ['show', {session_id!r}]):\n"
        f"    assert main(['--store', {str(store)!r}, *args]) == 0\n"
        "heavy = sorted(m for m in ('litellm', 'docker', 'openai') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_demo_runs_end_to_end_and_says_it_is_scripted(tmp_path):
    done = agentjournal("demo", store=tmp_path / "demo.db")
    assert "SCRIPTED model" in done.stdout
    assert "agent> Your favorite color is blue." in done.stdout
    assert "the fork remembers: Your favorite color is blue." in done.stdout


def test_a_session_can_be_named_by_the_start_of_its_id(session_id, store):
    shown = agentjournal("show", session_id[:8], store=store).stdout
    assert shown.startswith(f"session {session_id}")
    done = agentjournal("log", session_id[:3], store=store, check=False)
    assert done.returncode == 2 and "is not a session id" in done.stderr
