"""An export is the session, files included: through the real stack (the scripted model
over HTTP, host compute, SQLite files), a session exported and imported into another
store verifies there, and every file reads back at every version."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest
from eventsourcing.cipher import AESCipher

from agentjournal.application import SessionService, audit
from agentjournal.application.api import ManagedAgent
from agentjournal.application.errors import AgentJournalError
from agentjournal.infrastructure.models.scripted import Reply
from tests.test_cli import agentjournal
from tests.test_workspace import call, last_output

SECRET_FILE = b"the launch code is tangerine-42\n"


def sqlite(path: Path, **settings: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), **settings}


@pytest.fixture
def stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Opens services on SQLite files in this test's folder; closes them after."""
    opened: list[SessionService] = []

    def open_(name: str, **settings: str) -> SessionService:
        opened.append(SessionService(sqlite(tmp_path / name, **settings)))
        return opened[-1]

    yield open_
    for service in opened:
        service.close()


def files_everywhere(agent: ManagedAgent, service: SessionService) -> list[dict[str, bytes]]:
    """Each version's files with their contents, as ``service`` reads the agent's session."""
    session_id = agent.state_at().id
    versions = []
    for version in range(1, agent.state_at().version + 1):
        files = service.files_at(session_id, version)
        versions.append({path: files.read(path) for path in files})
    return versions


def contents_lines(lines: list[bytes]) -> list[dict[str, Any]]:
    return [line for line in map(msgspec.json.decode, lines) if line["format"] == audit.CONTENTS_FORMAT]


def test_an_exported_session_imports_with_its_files_and_verifies(model_server, config, stores, tmp_path):
    here = stores("encrypted.db", CIPHER_KEY=AESCipher.create_key(32))
    agent = ManagedAgent(config=config, store=here)
    model_server.enqueue(
        call("write_file", path="notes/a.txt", content=SECRET_FILE.decode()), Reply(text="ok")
    )
    agent.run("write")
    model_server.enqueue(
        call("execute_command", command="printf '\\377\\1' > b.bin && printf two > notes/a.txt"),
        Reply(text="ok"),
    )
    agent.run("change")
    model_server.enqueue(call("execute_command", command="rm b.bin"), Reply(text="ok"))
    agent.run("delete")
    session_id = agent.state_at().id
    lines = list(audit.export_session(here, session_id))

    carried = contents_lines(lines)
    assert [base64.b64decode(line["data"]) for line in carried] == [SECRET_FILE, b"\xff\x01", b"two"]
    assert all(line["hash"] == hashlib.sha256(base64.b64decode(line["data"])).hexdigest() for line in carried)

    there = stores("elsewhere.db", CIPHER_KEY=AESCipher.create_key(32))
    assert audit.import_session(there, lines) == session_id
    assert audit.verify(there, session_id) == audit.verify(here, session_id)
    assert audit.verify(there, session_id).ok
    assert files_everywhere(agent, there) == files_everywhere(agent, here)
    first_change = next(e.version for e in agent.audit_log() if e.type == "WorkspaceChanged")
    assert there.files_at(session_id, first_change).read("notes/a.txt") == SECRET_FILE
    there.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("elsewhere.db*"))
    assert b"tangerine" not in stored, "the import sealed the contents with its own store's cipher"


def test_an_import_with_altered_or_foreign_contents_is_refused_whole(model_server, config, stores):
    here = stores("here.db")
    agent = ManagedAgent(config=config, store=here)
    model_server.enqueue(call("write_file", path="a.txt", content="honest"), Reply(text="ok"))
    agent.run("write")
    lines = list(audit.export_session(here, agent.state_at().id))
    (carried,) = contents_lines(lines)
    at = lines.index(msgspec.json.encode(carried) + b"\n")

    altered = [*lines]
    altered[at] = msgspec.json.encode({**carried, "data": base64.b64encode(b"forged").decode()})
    foreign = [*lines, msgspec.json.encode(
        {"format": audit.CONTENTS_FORMAT, "hash": hashlib.sha256(b"x").hexdigest(), "data": "eA=="}
    )]  # fmt: skip
    for mangled, problem in (
        (altered, f"line {at + 1} of the import holds file contents that do not match their hash"),
        (foreign, "contents that no file of the session has"),
    ):
        there = stores(f"there-{len(mangled)}.db")
        with pytest.raises(AgentJournalError, match=problem):
            audit.import_session(there, mangled)
        assert there.list_summaries() == []
        assert not there.blobs.stored([carried["hash"], hashlib.sha256(b"x").hexdigest()])


def test_an_export_of_events_alone_still_imports(model_server, config, stores):
    """As exports were written before they carried contents: the session imports, and
    verify names the contents this store lacks."""
    here = stores("here.db")
    agent = ManagedAgent(config=config, store=here)
    model_server.enqueue(call("write_file", path="a.txt", content="kept"), Reply(text="ok"))
    agent.run("write")
    events_only = [line for line in audit.export_session(here, agent.state_at().id)
                   if msgspec.json.decode(line)["format"] == audit.EXPORT_FORMAT]  # fmt: skip
    there = stores("there.db")
    session_id = audit.import_session(there, events_only)
    assert there.get_session(session_id).state() == agent.state_at().state()
    broken = audit.verify(there, session_id).broken
    assert broken is not None and "'a.txt' that the store does not hold" in broken.problem


def test_an_exported_fork_carries_the_files_it_took_from_its_parent(model_server, config, stores):
    here = stores("here.db")
    parent = ManagedAgent(config=config, store=here)
    model_server.enqueue(
        call("execute_command", command="mkdir -p src && printf 'print(1)' > src/a.py && chmod 700 src/a.py"),
        Reply(text="ok"),
    )
    parent.run("write")
    fork = parent.fork()
    model_server.enqueue(call("write_file", path="b.txt", content="the fork's"), Reply(text="ok"))
    fork.run("write more")
    fork_id = fork.state_at().id

    there = stores("there.db")
    audit.import_session(there, audit.export_session(here, fork_id))
    assert audit.verify(there, fork_id).ok
    assert there.files_at(fork_id, 1).read("src/a.py") == b"print(1)"
    assert files_everywhere(fork, there) == files_everywhere(fork, here)

    imported = ManagedAgent(config=config, store=there)
    imported.resume_session(str(fork_id))
    model_server.enqueue(
        call("execute_command", command="cat src/a.py b.txt && stat -c %a src/a.py"), Reply(text="ok")
    )
    imported.run("read")  # a new work folder, filled from the imported contents
    assert last_output(imported) == "print(1)the fork's700\n"


def test_the_command_line_exports_and_imports_the_files(model_server, config, tmp_path):
    store, other, exported = tmp_path / "here.db", tmp_path / "there.db", tmp_path / "s.jsonl"
    agent = ManagedAgent(config=config, store=str(store))
    model_server.enqueue(call("write_file", path="a.txt", content="carried"), Reply(text="ok"))
    agent.run("write")
    session = str(agent.session_id)
    agentjournal("export", session, "-o", str(exported), store=store)
    assert agentjournal("import", str(exported), store=other).stdout.strip() == session
    assert "ok" in agentjournal("verify", session, store=other).stdout
    assert agentjournal("files", session, "a.txt", store=other).stdout == "carried"
