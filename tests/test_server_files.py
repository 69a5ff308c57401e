"""A session's work folder as of any event over HTTP: /x-agentjournal/v1/sessions/{id}/files."""

from __future__ import annotations

import hashlib
from uuid import UUID

import httpx

from agentjournal.application.service import SessionService
from agentjournal.domain import FileState
from tests.serving import API_KEY
from tests.test_server_sessions import new_session

HEADERS = {"x-api-key": API_KEY}


def state(data: bytes, mode: int = 0o644) -> FileState:
    return FileState(hashlib.sha256(data).hexdigest(), len(data), mode)


def test_files_as_of_each_event_listed_and_read(api_server, store):
    session_id = new_session(store)
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    session = service.get_session(UUID(session_id.removeprefix("sesn_")))
    service.blobs.add([b"one", b"two", b"run"])
    session.record_workspace({"a.txt": state(b"one"), "bin/run": state(b"run", 0o755)}, "call-1")
    session.record_workspace({"a.txt": state(b"two"), "bin/run": state(b"run", 0o755)}, "call-2")
    service.save(session)
    service.close()
    base = f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}/files"

    now = httpx.get(base, headers=HEADERS).json()
    assert now["version"] == 3
    assert [(f["path"], f["size"], f["mode"], f["stored"]) for f in now["data"]] == [
        ("a.txt", 3, 0o644, True),
        ("bin/run", 3, 0o755, True),
    ]
    assert httpx.get(base, params={"path": "a.txt"}, headers=HEADERS).content == b"two"
    assert httpx.get(base, params={"path": "a.txt", "version": 2}, headers=HEADERS).content == b"one"
    assert [f["path"] for f in httpx.get(base, params={"path": "bin"}, headers=HEADERS).json()["data"]] == [
        "bin/run"
    ]
    assert httpx.get(base, params={"version": 1}, headers=HEADERS).json() == {"version": 1, "data": []}
    missing = httpx.get(base, params={"path": "nope"}, headers=HEADERS)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert httpx.get(base).status_code == 401
