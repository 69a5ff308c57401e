"""What the session browser reads over HTTP, against a real server process: its page and
assets without a key (and nothing else without one), and the JSON it needs that the API
does not give: sessions listed, searched and paged; fork trees; diffs; turns; the log a
window at a time; terminate."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import pytest

from agentjournal.application import SessionService
from agentjournal.domain import AssistantMessage, Session, SessionConfig, ToolCall, ToolResult, Usage
from agentjournal.infrastructure.server.auth import is_public
from tests.conftest import wait_until
from tests.serving import API_KEY

HEADERS = {"x-api-key": API_KEY}
X = "/x-agentjournal/v1/sessions"
CONFIG = SessionConfig(
    model="gpt-4o-mini", system="Be brief.", name="tester", tools=(), networking={"type": "unrestricted"}
)


# -- helpers the browser tests share --------------------------------------------------


@contextmanager
def opened(store: Path) -> Iterator[SessionService]:
    """The store as another process (the CLI, a script) opens it."""
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        yield service
    finally:
        service.close()


def wire(session_id: UUID) -> str:
    return f"sesn_{session_id.hex}"


def create(store: Path, title: str, config: SessionConfig = CONFIG) -> str:
    with opened(store) as service:
        return wire(service.create_session(config, title=title))


def run_turn(url: str, session_id: str, text: str) -> None:
    """A prompt sent through the API, waited for until the turn has ended."""
    sent = httpx.post(f"{url}/v1/sessions/{session_id}/events", headers=HEADERS,
                      json={"events": [{"type": "user.message", "content": text}]})  # fmt: skip
    assert sent.status_code == 200, sent.text
    wait_until(
        lambda: httpx.get(f"{url}/v1/sessions/{session_id}", headers=HEADERS).json()["status"] != "running",
        f"the turn of {session_id} to end",
        seconds=120,  # a loaded machine's first tool call waits for its sandbox
    )


def fork(url: str, session_id: str, version: int) -> str:
    forked = httpx.post(f"{url}{X}/{session_id}/fork", headers=HEADERS, json={"version": version})
    assert forked.status_code == 200, forked.text
    return str(forked.json()["id"])


def grow(store: Path, session_id: str, events: int) -> None:
    """Append realistic turns (prompt, tool call and result, answer, usage) with the
    domain's own commands until the log holds ``events`` events."""
    with opened(store) as service:
        session: Session = service.get_session(UUID(session_id[5:]))
        n = 0
        while session.version + 9 <= events:
            n += 1
            session.begin_turn(f"prompt {n}: please look at the file and fix it", "test")
            call = ToolCall(f"c{n}", "read_file", '{"path": "src/module.py"}')
            session.add_assistant_message(AssistantMessage("Let me read it.", (call,)))
            session.record_usage("test", Usage(800, 40))
            session.start_tool_call(call)
            session.record_tool_result(
                ToolResult(call.id, call.name, "def f():\n    return 1\n" * 20, 0, 3.2)
            )
            session.add_assistant_message(AssistantMessage("Fixed: f now returns 2."))
            session.record_usage("test", Usage(1200, 25))
            session.complete_turn()
            if n % 50 == 0:
                service.save(session)
        while session.version < events:
            session.set_title(f"title {session.version}")
        service.save(session)


def get(url: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{url}{path}", headers=HEADERS, params=params)  # type: ignore[arg-type]


# -- the page without a key, data only with one ---------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "public"),
    [
        ("GET", "/", True),
        ("HEAD", "/", True),
        ("GET", "/browser/js/app.js", True),
        ("GET", "/browser/style.css", True),
        ("POST", "/", False),
        ("GET", "/browser", False),
        ("GET", "/browserx/app.js", False),
        ("GET", "/browser/../v1/sessions/x", False),
        ("GET", "/x-agentjournal/v1/browser/app.js", False),
        ("GET", "/x-agentjournal/v1/sessions", False),
        ("GET", "/index.html", False),
    ],
)
def test_only_the_page_and_its_assets_are_public(method: str, path: str, public: bool) -> None:
    assert is_public({"type": "http", "method": method, "path": path}) is public


def test_the_page_loads_without_a_key_and_data_needs_one(api_server, store):
    url = api_server.url
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/browser/js/app.js", "/browser/js/session.js", "/browser/style.css"):
        served = httpx.get(f"{url}{asset}")
        assert served.status_code == 200 and served.headers["cache-control"] == "no-cache", asset
    script = httpx.get(f"{url}/browser/js/app.js")
    assert "javascript" in script.headers["content-type"]  # a module script needs a JavaScript type
    revalidated = httpx.get(f"{url}/browser/js/app.js", headers={"if-none-match": script.headers["etag"]})
    assert revalidated.status_code == 304
    assert httpx.get(f"{url}/browser/js/missing.js").status_code == 404
    session_id = create(store, "secret title")
    for path in (X, f"{X}/{session_id}/tree", f"{X}/{session_id}/log/window", f"/v1/sessions/{session_id}"):
        refused = httpx.get(f"{url}{path}")
        assert refused.status_code == 401, path
        assert refused.json()["error"]["type"] == "authentication_error"
        assert "secret title" not in refused.text
    assert httpx.post(f"{url}/", json={}).status_code == 401
    assert httpx.get(f"{url}{X}", headers={"x-api-key": "wrong"}).status_code == 401


def test_a_path_that_climbs_out_of_the_assets_reaches_no_data(api_server, store):
    session_id = create(store, "secret title")
    address = urlsplit(api_server.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port)
    # Sent exactly as written (httpx would resolve the dots first).
    connection.request("GET", f"/browser/../v1/sessions/{session_id}")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status in (401, 404)
    assert b"secret title" not in body


# -- sessions, listed ------------------------------------------------------------------


def test_sessions_are_listed_filtered_searched_and_paged(api_server, store):
    url = api_server.url
    with opened(store) as service:
        ids = [service.create_session(CONFIG, title=f"task {n:03}") for n in range(120)]
        odd = service.create_session(CONFIG, title="The Odd One")
        service.terminate(odd)
    first = get(url, X, limit=50).json()
    assert len(first["data"]) == 50 and first["has_more"]
    assert first["data"][0]["id"] == wire(odd)  # the most recently updated first
    row = first["data"][1]
    assert set(row) >= {"id", "title", "status", "model", "usage", "version", "updated_at", "parent_id"}
    last = get(url, X, limit=50, offset=100).json()
    assert len(last["data"]) == 21 and not last["has_more"]
    every = [r["id"] for offset in (0, 50, 100) for r in get(url, X, limit=50, offset=offset).json()["data"]]
    assert sorted(every) == sorted([wire(i) for i in ids] + [wire(odd)])

    terminated = get(url, X, status="terminated").json()["data"]
    assert [r["id"] for r in terminated] == [wire(odd)]
    assert get(url, X, q="odd one").json()["data"][0]["id"] == wire(odd)  # any case, any part
    assert [r["title"] for r in get(url, X, q="task 11").json()["data"]] == [
        f"task {n}" for n in range(119, 109, -1)
    ]
    paged = get(url, X, q="task", limit=7, offset=112).json()
    assert [r["title"] for r in paged["data"]] == ["task 007", "task 006", "task 005", "task 004",
                                                   "task 003", "task 002", "task 001"]  # fmt: skip
    assert paged["has_more"]
    for prefix in (ids[5].hex[:6], str(ids[5])[:13], wire(ids[5])[:11]):
        found = get(url, X, q=prefix).json()["data"]
        assert wire(ids[5]) in [r["id"] for r in found], prefix
    assert get(url, X, status="sleeping").status_code == 400
    assert get(url, X, limit=0).status_code == 400


def test_ten_thousand_sessions_page_and_search_by_title(api_server, store):
    url = api_server.url
    with opened(store) as service:
        for batch in range(10):
            service.save(*[Session.start(CONFIG, f"bulk {batch * 1000 + n}") for n in range(1000)])
        service.projector.catch_up()
    deep = get(url, X, limit=50, offset=9950).json()
    assert len(deep["data"]) == 50 and not deep["has_more"]
    found = get(url, X, q="bulk 9999").json()["data"]
    assert [r["title"] for r in found] == ["bulk 9999"]


# -- a session's forks, turns, log and end --------------------------------------------


def test_a_fork_tree_holds_the_ancestors_and_every_descendant(api_server, store):
    url = api_server.url
    root = create(store, "root")
    for text in ("one", "two"):
        run_turn(url, root, text)
    child = fork(url, root, 6)
    run_turn(url, child, "three")
    grandchild = fork(url, child, 3)
    sibling = fork(url, root, 2)
    tree = get(url, f"{X}/{child}/tree").json()
    assert tree["session_id"] == child and not tree["truncated"] and tree["missing_parent"] is None
    shape = [(n["id"], n["depth"], n["forked_at"]) for n in tree["nodes"]]
    assert shape == [(root, 0, None), (child, 1, 6), (grandchild, 2, 3)]
    assert sibling not in [n["id"] for n in tree["nodes"]]  # neither ancestor nor descendant
    whole = get(url, f"{X}/{root}/tree").json()["nodes"]
    assert [(n["id"], n["depth"], n["forked_at"]) for n in whole] == [
        (root, 0, None), (sibling, 1, 2), (child, 1, 6), (grandchild, 2, 3),
    ]  # fmt: skip
    assert whole[0]["title"] == "root" and whole[2]["parent_id"] == root


def test_two_sessions_are_compared_from_where_they_part(api_server, store):
    url = api_server.url
    left = create(store, "left")
    run_turn(url, left, "Hello, my name is Ada.")
    right = fork(url, left, get(url, f"{X}/{left}/state").json()["version"])
    run_turn(url, left, "What is my name?")
    run_turn(url, right, "Tell me something else.")
    diff = get(url, f"{X}/{left}/diff", **{"with": right}).json()
    assert (diff["left"], diff["right"], diff["shared_messages"]) == (left, right, 2)
    assert diff["left_only"][0] == {"type": "user", "content": "What is my name?"}
    assert diff["right_only"][0] == {"type": "user", "content": "Tell me something else."}
    assert "was forked from" in diff["relation"]
    assert get(url, f"{X}/{left}/diff").status_code == 400
    assert get(url, f"{X}/{left}/diff", **{"with": "sesn_" + "0" * 32}).status_code == 404


def test_turns_give_usage_and_place_in_the_conversation(api_server, store):
    url = api_server.url
    session_id = create(store, "turns")
    run_turn(url, session_id, "Hello, my name is Ada.")
    run_turn(url, session_id, "What is my name?")
    state = get(url, f"{X}/{session_id}/state").json()
    turns = get(url, f"{X}/{session_id}/turns").json()["data"]
    assert [(t["turn"], t["first_message"], t["message_count"], t["stop_reason"]) for t in turns] == [
        (1, 0, 2, "end_turn"), (2, 2, 2, "end_turn"),
    ]  # fmt: skip
    assert sum(t["usage"]["input_tokens"] for t in turns) == state["usage"]["input_tokens"]
    assert turns[1]["ended"] == state["version"]
    first_end = turns[0]["ended"]
    assert [t["turn"] for t in get(url, f"{X}/{session_id}/turns", version=first_end).json()["data"]] == [1]
    assert get(url, f"{X}/{session_id}/turns", version=state["version"] + 1).status_code == 404

    forked = fork(url, session_id, first_end)
    inherited = get(url, f"{X}/{forked}/turns").json()["data"]
    assert [(t["turn"], t["message_count"]) for t in inherited] == [(0, 2)]


def test_the_log_is_read_a_window_at_a_time(api_server, store):
    url = api_server.url
    session_id = create(store, "windows")
    grow(store, session_id, 1000)
    window = get(url, f"{X}/{session_id}/log/window", after=200, limit=100).json()
    assert window["version"] == 1000
    assert [e["version"] for e in window["data"]] == list(range(201, 301))
    entry = window["data"][0]
    assert set(entry) >= {"version", "type", "timestamp", "payload"}
    assert len(entry["payload"]["hash"]) == 64 and len(entry["payload"]["previous_hash"]) == 64
    tail = get(url, f"{X}/{session_id}/log/window", limit=50).json()["data"]
    assert [e["version"] for e in tail] == list(range(951, 1001))
    assert get(url, f"{X}/{session_id}/log/window", after=1000).json()["data"] == []
    assert get(url, f"{X}/{session_id}/log/window", limit=5000).status_code == 400


def test_terminate_closes_a_session_once(api_server, store):
    url = api_server.url
    session_id = create(store, "to close")
    closed = httpx.post(f"{url}{X}/{session_id}/terminate", headers=HEADERS, json={"reason": "done"})
    assert closed.status_code == 200 and closed.json()["status"] == "terminated"
    log = get(url, f"{X}/{session_id}/log").json()["data"]
    assert log[-1]["type"] == "SessionTerminated" and log[-1]["payload"]["reason"] == "done"
    again = httpx.post(f"{url}{X}/{session_id}/terminate", headers=HEADERS, json={})
    assert again.status_code == 400
    assert httpx.post(f"{url}{X}/{session_id}/terminate", json={}).status_code == 401
