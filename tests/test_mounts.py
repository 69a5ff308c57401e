"""Files and repositories mounted through the Python API: an upload read from disk a part
at a time, a repository cloned over git's HTTP transport from a local bare repository,
both read by the session's tools where the system prompt says, carried by a fork and
an export, the token kept nowhere."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from agentjournal.application.audit import export_session
from agentjournal.application.uploads import PART_BYTES
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.test_server_repositories import TOKEN, Repository

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def repository(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "git").mkdir()
    served = Repository(tmp_path / "git")
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_an_uploaded_file_and_a_repository_are_the_sessions_files(
    make_agent, model_server, service, repository, tmp_path
):
    source = tmp_path / "report.txt"
    source.write_bytes(b"quarterly numbers\n" + b"." * PART_BYTES)  # two parts
    agent = make_agent(tools=[{"type": "agent_toolset_20260401"}], working_dir=str(tmp_path / "work"))
    stored = agent.upload_file(source)
    assert (stored.contents.filename, stored.contents.mime_type) == ("report.txt", "text/plain")
    assert len(stored.contents.parts) == 2

    mounted = agent.mount_file(stored.id)
    assert mounted.resource.mount_path == f"/mnt/session/uploads/file_{stored.id.hex}"
    repo = agent.mount_repository(
        repository.url, token=TOKEN, commit=repository.first, mount_path="/workspace/src"
    )
    assert repo.resource.checked_out == repository.first and repo.resource.commit == repository.first
    assert agent.state_at().config.system.endswith("(in your working directory at ./src)")

    model_server.enqueue(
        Reply(
            tool_calls=[
                ScriptedToolCall(
                    "bash", {"command": f"head -c 17 {mounted.resource.path}; cat src/README.md"}
                )
            ]
        ),
        Reply(text="Read them."),
    )
    agent.run("Read the report and the readme.")
    [result] = [m for m in agent.state_at().messages if getattr(m, "tool_call_id", "")]
    assert "quarterly numbers" in result.output and "first" in result.output

    fork = agent.fork()
    assert fork.files_at().read(mounted.resource.path) == source.read_bytes()
    assert fork.files_at().read("src/README.md") == b"first\n"
    assert agent.verify().broken is None

    exported = b"".join(export_session(service, agent.state_at().id)).decode()
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    kept = (
        Path(service.env["SQLITE_DBNAME"]).read_bytes().decode("latin-1")
        if "SQLITE_DBNAME" in service.env
        else ""
    )
    for text in (exported, kept, repr(agent.state_at().state())):
        assert TOKEN not in text and basic not in text
