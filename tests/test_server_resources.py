"""Uploaded files mounted into sessions, at creation and through
``/v1/sessions/{id}/resources``, driven by the official SDK against a real server: the
session's tools read them where the system prompt says, they are among the session's
recorded files (so a fork and the files at a version show them), and an export
carries them."""

from __future__ import annotations

import hashlib
import json
import os

import anthropic
import httpx
import pytest

from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.serving import API_KEY
from tests.test_server_sessions import turn

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]


@pytest.fixture
def client(api_server):  # type: ignore[no-untyped-def]
    return api_server.client()


def new_agent_session(client, **create: object):  # type: ignore[no-untyped-def]
    agent = client.beta.agents.create(
        name="reader", model="gpt-4o-mini", system="Read what you are given.",
        tools=[{"type": "agent_toolset_20260401"}],
    )  # fmt: skip
    environment = client.beta.environments.create(name="e", config={"type": "cloud"})
    return client.beta.sessions.create(agent=agent.id, environment_id=environment.id, **create)


def recorded_files(server, session_id: str, version: int | None = None) -> dict[str, dict]:
    query = f"?version={version}" if version else ""
    answer = httpx.get(
        f"{server.url}/x-agentjournal/v1/sessions/{session_id}/files{query}", headers={"x-api-key": API_KEY}
    )
    assert answer.status_code == 200, answer.text
    return {f["path"]: f for f in answer.json()["data"]}


def test_files_mounted_at_creation_are_read_by_the_tools_where_the_prompt_says(
    api_server, client, model_server
):
    notes = client.beta.files.upload(file=("notes.txt", b"the answer is 42\n"))
    data = client.beta.files.upload(file=("data.csv", b"a,b\n1,2\n"))
    session = new_agent_session(client, resources=[
        {"type": "file", "file_id": notes.id},
        {"type": "file", "file_id": data.id, "mount_path": "/workspace/input/data.csv"},
    ])  # fmt: skip
    default, chosen = session.resources
    assert (default.type, default.file_id, default.mount_path) == (
        "file",
        notes.id,
        f"/mnt/session/uploads/{notes.id}",
    )
    assert (chosen.file_id, chosen.mount_path) == (data.id, "/workspace/input/data.csv")
    files = recorded_files(api_server, session.id)
    assert set(files) == {f"mnt/session/uploads/{notes.id}", "input/data.csv"}

    model_server.enqueue(
        Reply(
            tool_calls=[
                ScriptedToolCall("bash", {"command": f"cat mnt/session/uploads/{notes.id} input/data.csv"})
            ]
        ),
        Reply(text="42."),
    )
    events = turn(client, session.id, "What is the answer?")
    [result] = [e for e in events if e.type == "agent.tool_result"]
    assert "the answer is 42" in result.content[0].text and "1,2" in result.content[0].text
    system = model_server.requests[0]["messages"][0]
    assert system["role"] == "system" and f"/mnt/session/uploads/{notes.id}" in system["content"]
    assert f"./mnt/session/uploads/{notes.id}" in system["content"]


def test_a_file_added_later_is_listed_retrieved_deleted_and_stays_in_the_history(
    api_server, client, model_server
):
    session = new_agent_session(client)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "echo hi > made.txt"})]), Reply(text="ok")
    )
    turn(client, session.id, "Make a file.")  # the session now has a sandbox
    content = os.urandom(5 * 1024 * 1024)  # stored in two parts, mounted whole
    upload = client.beta.files.upload(file=("blob.bin", content))
    added = client.beta.sessions.resources.add(
        session.id, type="file", file_id=upload.id, mount_path="/mnt/data/blob.bin"
    )
    assert (added.type, added.file_id, added.mount_path) == ("file", upload.id, "/mnt/data/blob.bin")
    assert [r.id for r in client.beta.sessions.resources.list(session.id)] == [added.id]
    assert (
        client.beta.sessions.resources.retrieve(added.id, session_id=session.id).mount_path
        == "/mnt/data/blob.bin"
    )
    files = recorded_files(api_server, session.id)
    assert files["mnt/data/blob.bin"]["size"] == len(content) and files["mnt/data/blob.bin"]["stored"]
    assert "made.txt" in files
    before_delete = client.beta.sessions.retrieve(session.id)

    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "sha256sum mnt/data/blob.bin"})]),
        Reply(text="ok"),
    )
    events = turn(client, session.id, "Hash it.")
    [result] = [e for e in events if e.type == "agent.tool_result"]
    assert hashlib.sha256(content).hexdigest() in result.content[0].text

    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.resources.update(added.id, session_id=session.id, authorization_token="x")
    deleted = client.beta.sessions.resources.delete(added.id, session_id=session.id)
    assert (deleted.id, deleted.type) == (added.id, "session_resource_deleted")
    assert list(client.beta.sessions.resources.list(session.id)) == []
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.resources.retrieve(added.id, session_id=session.id)
    assert "mnt/data/blob.bin" in recorded_files(api_server, session.id)  # the session's file now
    assert [r.id for r in before_delete.resources] == [added.id]
    assert client.beta.sessions.retrieve(session.id).resources == []


def test_a_fork_and_an_export_carry_a_mounted_file(api_server, client):
    upload = client.beta.files.upload(file=("notes.txt", b"forked notes"))
    session = new_agent_session(client, resources=[{"type": "file", "file_id": upload.id}])
    headers = {"x-api-key": API_KEY}
    fork = httpx.post(
        f"{api_server.url}/x-agentjournal/v1/sessions/{session.id}/fork", headers=headers, json={}
    )
    assert fork.status_code == 200, fork.text
    path = f"mnt/session/uploads/{upload.id}"
    assert path in recorded_files(api_server, fork.json()["id"])
    client.beta.files.delete(upload.id)  # hidden from the Files API; the sessions keep what they saw
    read = httpx.get(
        f"{api_server.url}/x-agentjournal/v1/sessions/{fork.json()['id']}/files?path={path}", headers=headers
    )
    assert read.content == b"forked notes"
    export = httpx.get(f"{api_server.url}/x-agentjournal/v1/sessions/{session.id}/export", headers=headers)
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert any(line.get("format") == "agentjournal-contents/1" for line in lines)


def test_resources_the_server_cannot_mount_are_refused_before_anything_is_recorded(client):
    upload = client.beta.files.upload(file=("a.txt", b"a"))
    cases = [
        ({"type": "file", "file_id": "file_" + "0" * 32}, anthropic.NotFoundError, "no file"),
        (
            {"type": "file", "file_id": upload.id, "mount_path": "relative/a.txt"},
            anthropic.BadRequestError,
            "absolute",
        ),
        (
            {"type": "file", "file_id": upload.id, "mount_path": "/workspace/../etc/x"},
            anthropic.BadRequestError,
            "absolute",
        ),
        (
            {"type": "file", "file_id": upload.id, "mount_path": "/mnt/memory/x"},
            anthropic.BadRequestError,
            "memory",
        ),
        (
            {"type": "memory_store", "memory_store_id": "memstore_x"},
            anthropic.NotFoundError,
            "memstore_x",
        ),
        ({"type": "nonsense"}, anthropic.BadRequestError, "must be one of"),
    ]
    for resource, error, message in cases:
        with pytest.raises(error) as raised:
            new_agent_session(client, resources=[resource])
        assert message in raised.value.message, resource
    with pytest.raises(anthropic.BadRequestError) as twice:
        new_agent_session(client, resources=[{"type": "file", "file_id": upload.id}] * 2)
    assert "taken" in twice.value.message
    assert client.beta.sessions.list().data == []
