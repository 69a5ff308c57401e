"""The work folder follows the log: through the real stack (the scripted model over HTTP,
a real store, host and Docker compute), files at every version are what the sandbox held."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from agentjournal.application import audit
from agentjournal.application.api import ManagedAgent
from agentjournal.application.errors import FileNotRecorded
from agentjournal.domain import FileState, Session
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.test_cli import agentjournal

IGNORED = (".venv", ".home", "__pycache__", "node_modules")


@pytest.fixture(params=["host", pytest.param("docker", marks=pytest.mark.docker)])
def compute_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("engine")
    return str(request.param)


@pytest.fixture
def agent(make_agent, compute_kind, request):  # type: ignore[no-untyped-def]
    """A managed agent on each compute; its sessions' sandboxes are released after the test."""
    made: list[ManagedAgent] = []
    sessions = request.getfixturevalue("sessions") if compute_kind == "docker" else []

    def make() -> ManagedAgent:
        made.append(make_agent(compute=compute_kind))
        return made[-1]

    yield make
    for managed in made:
        for summary in managed.list_sessions():
            sessions.append(uuid.UUID(summary["id"]))
            if summary["status"] != "terminated":
                managed.service.terminate(uuid.UUID(summary["id"]))


def held(session: Session, engine: Any = None) -> dict[str, tuple[str, int]]:
    """What the session's sandbox holds now, read around the engine: path to (hash, mode)."""
    assert session.compute is not None
    if session.compute.kind == "host":
        root = Path(session.compute.reference)
        found = {}
        for folder, folders, names in os.walk(root):
            folders[:] = [f for f in folders if f not in IGNORED]
            for name in names:
                path = Path(folder) / name
                if not path.is_symlink():
                    mode = path.stat().st_mode & 0o7777
                    found[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), mode)
        return found
    container = engine.containers.get(session.compute.reference)
    script = (
        "cd /workspace && find . \\( -name .venv -o -name .home -o -name __pycache__ -o -name node_modules \\) "
        "-prune -o -type f -printf '%P\\t%m\\t' -exec sh -c 'sha256sum < \"$1\"' _ {} \\;"
    )
    output = container.exec_run(["sh", "-c", script]).output.decode()
    found = {}
    for line in filter(None, output.splitlines()):
        path, mode, digest = line.split("\t")
        found[path] = (digest.split()[0], int(mode, 8))
    return found


def manifest(files: dict[str, FileState]) -> dict[str, tuple[str, int]]:
    return {path: (state.hash, state.mode) for path, state in files.items()}


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[ScriptedToolCall(name, arguments)])


def test_files_at_every_version_are_what_the_sandbox_held(agent, model_server, request, compute_kind):
    engine = request.getfixturevalue("engine") if compute_kind == "docker" else None
    managed = agent()
    turns = [
        [call("write_file", path="notes/a.txt", content="one\n")],
        [
            call(
                "execute_command",
                command="printf 'two\\n' >> notes/a.txt && printf 'x' > run.sh && chmod 755 run.sh",
            )
        ],
        [
            call("read_file", path="notes/a.txt"),
            call("execute_command", command="rm run.sh && mkdir -p .venv && touch .venv/x"),
        ],
    ]
    seen: list[tuple[int, dict[str, tuple[str, int]]]] = []
    for replies in turns:
        model_server.enqueue(*replies, Reply(text="done"))
        managed.run("go on")
        session = managed.state_at()
        seen.append((session.version, held(session, engine)))
        assert manifest(dict(session.files)) == seen[-1][1]
        for state in session.files.values():  # every file can be read back from the store
            assert hashlib.sha256(managed.service.blobs.get(state.hash)).hexdigest() == state.hash
    assert [sorted(files) for _, files in seen] == [
        ["notes/a.txt"],
        ["notes/a.txt", "run.sh"],
        ["notes/a.txt"],
    ]

    session = managed.state_at()
    changes = [(v, e) for v, e in enumerate(managed.service.events.get(session.id), start=1)
               if isinstance(e, Session.WorkspaceChanged)]  # fmt: skip
    assert len(changes) == 3, "one per call that changed files; reads change nothing"
    for version, change in changes:
        after = managed.service.get_session(session.id, version + 1)
        # Each change comes right before its call's result, so the result's version shows the files.
        assert after.messages[-1].tool_call_id == change.tool_call_id
    assert changes[-1][1].deleted == ("run.sh",)
    assert managed.verify().ok


def test_each_file_reads_back_as_it_was_at_each_version(agent, model_server):
    managed = agent()
    model_server.enqueue(call("write_file", path="a.txt", content="first"), Reply(text="done"))
    managed.run("write")
    model_server.enqueue(
        call("execute_command", command="printf second > a.txt && mkdir -p d && printf b > d/b.txt")
    )
    model_server.enqueue(Reply(text="done"))
    managed.run("edit")
    versions = {}
    for version in range(1, managed.state_at().version + 1):
        files = managed.files_at(version)
        versions[version] = {path: files.read(path) for path in files}
    assert versions[1] == {}
    assert {bytes(v.get("a.txt", b"")) for v in versions.values()} == {b"", b"first", b"second"}
    now = managed.files_at()
    assert (
        now.read("a.txt") == b"second"
        and now.under("d") == ["d/b.txt"]
        and now.under(".") == ["a.txt", "d/b.txt"]
    )
    with pytest.raises(FileNotRecorded):
        now.read("nowhere.txt")


def test_files_over_the_size_cap_are_recorded_by_hash_and_size_only(make_agent, model_server, service):
    managed = make_agent()
    model_server.enqueue(
        call("execute_command", command="head -c 20000000 /dev/zero > big.bin"), Reply(text="ok")
    )
    managed.run("big")
    big = managed.files_at()["big.bin"]
    assert big == FileState(hashlib.sha256(bytes(20_000_000)).hexdigest(), 20_000_000, 0o644, stored=False)
    assert not service.blobs.stored([big.hash])
    with pytest.raises(FileNotRecorded, match="size cap"):
        managed.files_at().read("big.bin")


def test_the_command_line_lists_and_prints_files_as_of_an_event(model_server, store, config):
    managed = ManagedAgent(config=config, store=str(store))
    model_server.enqueue(call("write_file", path="src/a.py", content="print(1)\n"), Reply(text="ok"))
    managed.run("one")
    first = managed.state_at().version
    model_server.enqueue(call("write_file", path="src/a.py", content="print(2)\n"), Reply(text="ok"))
    managed.run("two")
    session = str(managed.session_id)
    listing = agentjournal("files", session, store=store).stdout
    assert listing.endswith(" src/a.py\n") and listing.startswith("0644          9 ")
    assert agentjournal("files", session, "src/a.py", store=store).stdout == "print(2)\n"
    assert agentjournal("files", session, "src/a.py", "--at", str(first), store=store).stdout == "print(1)\n"
    missing = agentjournal("files", session, "nope", store=store, check=False)
    assert missing.returncode == 3 and "nope" in missing.stderr


def last_output(managed: ManagedAgent) -> str:
    results = [m for m in managed.state_at().messages if type(m).__name__ == "ToolResult"]
    return str(results[-1].output)


def test_a_fork_starts_with_the_files_of_its_fork_point_and_each_side_diverges(
    agent, model_server, request, compute_kind
):
    engine = request.getfixturevalue("engine") if compute_kind == "docker" else None
    parent = agent()
    model_server.enqueue(call("write_file", path="a.txt", content="one"), Reply(text="ok"))
    parent.run("first")
    fork_point = parent.state_at().version
    model_server.enqueue(
        call("execute_command", command="printf two > a.txt && printf b > b.txt"), Reply(text="ok")
    )
    parent.run("second")

    fork = parent.fork(at_version=fork_point)
    model_server.enqueue(call("execute_command", command="cat a.txt; ls; printf c > c.txt"), Reply(text="ok"))
    fork.run("look")
    assert last_output(fork) == "onea.txt\n"
    fork_state = fork.state_at()
    assert sorted(fork_state.files) == ["a.txt", "c.txt"]
    assert manifest(dict(fork_state.files)) == held(fork_state, engine)
    assert held(parent.state_at(), engine) == manifest(dict(parent.state_at().files))
    assert sorted(parent.files_at()) == ["a.txt", "b.txt"], "the parent does not see the fork's file"
    assert parent.files_at().read("a.txt") == b"two"
    # The fork's files were taken from the store, not stored again.
    assert parent.service.blobs.add([b"one", b"c"]) == 0


def test_a_fork_gets_its_files_after_the_parents_sandbox_is_gone(agent, model_server):
    parent = agent()
    model_server.enqueue(
        call("execute_command", command="mkdir -p src && printf 'print(1)' > src/a.py && chmod 700 src/a.py"),
        Reply(text="ok"),
    )
    parent.run("write")
    binding = parent.state_at().compute
    assert binding is not None
    parent.terminate()  # the Docker sandbox is removed; the host's folder is kept for the user
    if binding.kind == "host":
        shutil.rmtree(binding.reference)

    fork = parent.fork()
    model_server.enqueue(
        call("execute_command", command="cat src/a.py && stat -c %a src/a.py"), Reply(text="ok")
    )
    fork.run("read")
    assert last_output(fork) == "print(1)700\n"
    assert fork.files_at() == parent.files_at()


def test_verify_finds_stored_contents_that_were_altered_or_removed(model_server, store, config):
    managed = ManagedAgent(config=config, store=str(store))
    model_server.enqueue(call("write_file", path="a.txt", content="honest"), Reply(text="ok"))
    managed.run("write")
    model_server.enqueue(call("write_file", path="b.txt", content="also honest"), Reply(text="ok"))
    managed.run("write again")
    fork = managed.fork()
    assert managed.verify().ok and fork.verify().ok
    digest = managed.files_at()["a.txt"].hash
    with sqlite3.connect(store) as raw:
        raw.execute("UPDATE blobs_v1 SET body = ? WHERE hash = ?", (b"forged", digest))
    broken = managed.verify().broken
    assert broken is not None and "'a.txt'" in broken.problem and "altered" in broken.problem
    assert fork.verify().broken is not None, "the fork names the same contents"
    cli = agentjournal("verify", str(managed.session_id), store=store, check=False)
    assert cli.returncode == 1 and "BROKEN" in cli.stdout
    with sqlite3.connect(store) as raw:
        raw.execute("DELETE FROM blobs_v1 WHERE hash = ?", (digest,))
    broken = managed.verify().broken
    assert broken is not None and "does not hold" in broken.problem


def test_diff_shows_which_files_differ_with_a_unified_diff_for_text(model_server, store, config):
    managed = ManagedAgent(config=config, store=str(store))
    model_server.enqueue(
        call(
            "execute_command",
            command="printf 'a\\nb\\nc\\n' > t.txt && printf 'x' > gone.txt && printf '\\377\\1' > b.bin",
        ),
        Reply(text="ok"),
    )
    managed.run("one")
    fork_point = managed.state_at().version
    fork = managed.fork()
    model_server.enqueue(
        call(
            "execute_command",
            command="printf 'a\\nB\\nc\\n' > t.txt && rm gone.txt && printf '\\377\\2' > b.bin && printf n > new.txt",
        ),
        Reply(text="ok"),
    )
    managed.run("two")
    session = str(managed.session_id)
    result = audit.diff(managed.service, UUID(str(fork.session_id)), UUID(session))
    assert [(f.path, f.change) for f in result.files] == [
        ("b.bin", "changed"), ("gone.txt", "deleted"), ("new.txt", "added"), ("t.txt", "changed"),
    ]  # fmt: skip
    shown = agentjournal("diff", session, session, "--left-at", str(fork_point), store=store).stdout
    assert "4 files differ:" in shown and " deleted gone.txt" in shown and "   added new.txt" in shown
    assert "--- a/t.txt\n+++ b/t.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n" in shown
    assert "(binary, or kept by hash only)" in shown


def test_restore_rolls_the_work_folder_back_as_an_event(agent, model_server, request, compute_kind):
    engine = request.getfixturevalue("engine") if compute_kind == "docker" else None
    managed = agent()
    model_server.enqueue(call("write_file", path="a.txt", content="one"), Reply(text="ok"))
    managed.run("one")
    good = managed.state_at().version
    model_server.enqueue(
        call("execute_command", command="printf two > a.txt && printf b > b.txt"), Reply(text="ok")
    )
    managed.run("two")
    before = managed.state_at().version

    after = managed.restore_files(good)
    session = managed.state_at()
    assert after == session.version == before + 1
    restored = managed.service.events.get(session.id, gt=before)
    assert [(type(e).__name__, e.restored_from, e.deleted) for e in restored] == [
        ("WorkspaceChanged", good, ("b.txt",))
    ]
    assert manifest(dict(session.files)) == manifest(dict(managed.files_at(good))) == held(session, engine)
    assert managed.files_at(before).read("a.txt") == b"two", "the history in between stays"
    assert managed.verify().ok
    model_server.enqueue(call("execute_command", command="cat a.txt; ls"), Reply(text="ok"))
    managed.run("look")
    assert last_output(managed) == "onea.txt\n"


def folders(session: Session, engine: Any = None) -> list[str]:
    """The folders the session's sandbox holds now (the engine's own left out), read around
    the engine."""
    assert session.compute is not None
    if session.compute.kind == "host":
        root = Path(session.compute.reference)
        found = []
        for folder, inner, _ in os.walk(root):
            inner[:] = [f for f in inner if f not in IGNORED]
            found += [str((Path(folder) / name).relative_to(root)) for name in inner]
        return sorted(found)
    container = engine.containers.get(session.compute.reference)
    script = "cd /workspace && find . -mindepth 1 \\( -name .venv -o -name .home \\) -prune -o -type d -printf '%P\\n'"
    return sorted(container.exec_run(["sh", "-c", script]).output.decode().split())


def test_restore_swaps_files_and_folders_back_and_removes_emptied_folders(
    agent, model_server, request, compute_kind
):
    engine = request.getfixturevalue("engine") if compute_kind == "docker" else None
    managed = agent()
    model_server.enqueue(
        call(
            "execute_command", command="printf file > x && mkdir y && printf inner > y/inner && printf z > z"
        ),
        Reply(text="ok"),
    )
    managed.run("one")
    good = managed.state_at().version
    model_server.enqueue(
        call(
            "execute_command",
            command="rm x && mkdir -p x/deep && printf a > x/deep/a && rm -r y && printf file > y "
            "&& mkdir -p e/f && printf z > e/f/z && rm z && mkdir z",
        ),
        Reply(text="ok"),
    )
    managed.run("swap")
    assert folders(managed.state_at(), engine) == ["e", "e/f", "x", "x/deep", "z"]

    managed.restore_files(good)
    session = managed.state_at()
    assert manifest(dict(session.files)) == manifest(dict(managed.files_at(good))) == held(session, engine)
    assert folders(session, engine) == ["y"], "emptied or replaced folders are gone"
    assert managed.verify().ok
    model_server.enqueue(call("execute_command", command="cat x y/inner z"), Reply(text="ok"))
    managed.run("look")
    assert last_output(managed) == "fileinnerz"


def test_the_timeline_says_which_files_each_call_created_changed_or_deleted(make_agent, model_server):
    managed = make_agent()
    model_server.enqueue(
        call("execute_command", command="printf a > a.txt && printf b > b.txt"), Reply(text="ok")
    )
    managed.run("make")
    model_server.enqueue(
        call(
            "execute_command", command="printf A > a.txt && rm b.txt && head -c 20000000 /dev/zero > big.bin"
        ),
        Reply(text="ok"),
    )
    managed.run("change")
    calls = [m.tool_calls[0].id for m in managed.state_at().messages if getattr(m, "tool_calls", ())]
    texts = [e.text for e in managed.timeline() if e.actor == "files"]
    assert texts == [
        f"after {calls[0]}: created a.txt, b.txt",
        f"after {calls[1]}: created big.bin; changed a.txt; deleted b.txt; "
        "kept by hash and size only (over a size cap): big.bin",
    ]


def test_the_command_line_restores_a_work_folder(model_server, store, config):
    managed = ManagedAgent(config=config, store=str(store))
    model_server.enqueue(call("write_file", path="a.txt", content="one"), Reply(text="ok"))
    managed.run("one")
    good = managed.state_at().version
    model_server.enqueue(call("write_file", path="a.txt", content="two"), Reply(text="ok"))
    managed.run("two")
    session = str(managed.session_id)
    done = agentjournal("restore", session, "--at", str(good), store=store)
    assert int(done.stdout) == managed.state_at().version
    root = managed.state_at().compute
    assert root is not None and (Path(root.reference) / "a.txt").read_bytes() == b"one"
    assert agentjournal("files", session, "a.txt", store=store).stdout == "one"


def test_contents_beyond_the_sessions_total_are_kept_by_hash_only(service, tmp_path):
    from agentjournal.application.workspace import take_snapshot
    from agentjournal.domain import SessionConfig
    from agentjournal.infrastructure.compute.host import HostCompute

    config = SessionConfig("m", "s", "n", ("execute_command",), snapshot_total_bytes=10)
    session = service.get_session(service.create_session(config))
    compute = HostCompute(tmp_path / "work")
    compute.attach(session.id, None)
    for name, data in (("a.txt", b"123456"), ("b.txt", b"7890"), ("c.txt", b"x")):
        compute.write_file(name, data)
    assert take_snapshot(session, compute, service.blobs, "call") == 10  # a.txt and b.txt fill it
    assert {p: s.stored for p, s in session.files.items()} == {"a.txt": True, "b.txt": True, "c.txt": False}
    compute.write_file("a.txt", b"1")  # room again: the changed file is kept
    assert take_snapshot(session, compute, service.blobs, "call") == 1
    assert session.files["a.txt"].stored
