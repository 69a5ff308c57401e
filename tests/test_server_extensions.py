"""The log's own powers over HTTP, under /x-agentjournal/v1: state as of any event, the
whole log, fork at any event, verify, export."""

from __future__ import annotations

import sqlite3

import httpx
import msgspec

from tests.serving import API_KEY
from tests.test_server_actions import prompt, send, until_idle
from tests.test_server_sessions import new_session

HEADERS = {"x-api-key": API_KEY}


def test_state_log_fork_verify_and_export_of_a_session(api_server, store):
    client = api_server.client()
    session_id = new_session(store)
    base = f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}"
    send(client, session_id, prompt("Hello, my name is Ada."))
    until_idle(
        client, session_id, extra_headers={"Last-Event-ID": session_id.replace("sesn_", "sevt_") + "0" * 12}
    )
    log = httpx.get(f"{base}/log", headers=HEADERS).json()["data"]
    assert log[0]["type"] == "SessionStarted"
    first_turn_end = next(e["version"] for e in log if e["type"] == "TurnCompleted")

    before = httpx.get(f"{base}/state", params={"version": 2}, headers=HEADERS).json()
    assert before["version"] == 2 and before["messages"] == [
        {"type": "user", "content": "Hello, my name is Ada."}
    ]

    forked = httpx.post(f"{base}/fork", json={"version": first_turn_end}, headers=HEADERS).json()
    assert forked["type"] == "session" and forked["id"] != session_id
    send(client, forked["id"], prompt("What is my name?"))
    after_fork = until_idle(
        client,
        forked["id"],
        extra_headers={"Last-Event-ID": forked["id"].replace("sesn_", "sevt_") + "0" * 12},
    )
    assert [e.content[0].text for e in after_fork if e.type == "agent.message"][-1] == "Your name is Ada."
    # The parent did not move.
    assert httpx.get(f"{base}/state", headers=HEADERS).json()["version"] == log[-1]["version"]

    verified = httpx.get(f"{base}/verify", headers=HEADERS).json()
    assert verified["ok"] and verified["events"] == len(log)
    exported = httpx.get(f"{base}/export", headers=HEADERS)
    lines = exported.content.splitlines()
    assert len(lines) == len(log)
    assert msgspec.json.decode(lines[0])["event"]["originator_version"] == 1


def test_a_tampered_log_fails_verification_over_http(api_server, store):
    session_id = new_session(store)
    base = f"{api_server.url}/x-agentjournal/v1/sessions/{session_id}"
    with sqlite3.connect(store) as db:
        (state,) = db.execute("SELECT state FROM stored_events WHERE originator_version = 1").fetchone()
        db.execute("UPDATE stored_events SET state = ? WHERE originator_version = 1",
                   (state.replace(b"Be brief.", b"Be sneaky"),))  # fmt: skip
    verified = httpx.get(f"{base}/verify", headers=HEADERS).json()
    assert not verified["ok"]
    assert verified["broken"]["version"] == 1


def test_extensions_need_a_key_and_an_existing_session(api_server):
    missing = "sesn_" + "1" * 32
    assert httpx.get(f"{api_server.url}/x-agentjournal/v1/sessions/{missing}/verify").status_code == 401
    found = httpx.get(f"{api_server.url}/x-agentjournal/v1/sessions/{missing}/verify", headers=HEADERS)
    assert found.status_code == 404 and found.json()["error"]["type"] == "not_found_error"
